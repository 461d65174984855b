// The clad engine of the calibration: Clad writes the pullback of calib_loss (stages.hpp) with
// respect to the gains at compile time. Compiled by clang with the Clad plugin; no LibTorch header.
#include "clad/Differentiator/Differentiator.h"
#include "clad/Differentiator/Version.h"
#include "kernels.hpp"
#include "stages.hpp"

namespace cladbench::calib {
namespace {

const auto kGradient = clad::gradient(calib_loss<double>, "gains, ws, loss");

void clad_pullback(const double* gains, const double* events, const int* regions, const int* dims, int count, int batch,
                   double* ws, double* loss, double* d_gains, double*, double* d_ws, double* d_loss) {
  kGradient.execute(gains, events, regions, dims, count, batch, ws, loss, d_gains, d_ws, d_loss);
}

}  // namespace

Kernels clad_kernels() {
  return {"clad", "clad " CLAD_VERSION_STRING " (clang " __clang_version__ ")", calib_loss<double>, clad_pullback};
}

}  // namespace cladbench::calib
