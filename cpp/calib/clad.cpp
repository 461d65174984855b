// The clad engine of the calibration: Clad writes the pullback of calib_loss (stages.hpp) with
// respect to the gains, and the Hessian, at compile time. Compiled by clang with the Clad plugin; no LibTorch header.
#include <algorithm>

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

// The 2 x 2 Hessian of one event's loss in its two gains, written by Clad (clad::hessian: forward
// mode over the reverse-mode gradient), summed into the count x count Hessian of the mean.
const auto kEventHessian = clad::hessian(event_loss<double>, "gain1, gain2");

void clad_hessian(const double* gains, const double* events, const int* regions, int count, int batch,
                  double* hessian) {
  std::fill(hessian, hessian + long(count) * count, 0.0);
  for (int i = 0; i < batch; ++i) {
    const double* e = events + long(i) * kColumns;
    const int r[2] = {regions[2 * i], regions[2 * i + 1]};
    double block[4] = {0, 0, 0, 0};
    kEventHessian.execute(gains[r[0]], gains[r[1]], e[kEnergy1], e[kEnergy2], e[kOpening], e[kPeak], e[kHalfWidth],
                          e[kSigma], e[kMix], block);
    for (int a = 0; a < 2; ++a)
      for (int b = 0; b < 2; ++b) hessian[long(r[a]) * count + r[b]] += block[2 * a + b] / batch;
  }
}

}  // namespace

Kernels clad_kernels() {
  return {"clad", "clad " CLAD_VERSION_STRING " (clang " __clang_version__ ")", calib_loss<double>, clad_pullback,
          clad_hessian};
}

}  // namespace cladbench::calib
