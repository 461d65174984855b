// The calibration loss and its pullback as the rest of the project sees them, per engine.
// Plain C++: no LibTorch, no Clad.
#pragma once

#include <string>

namespace cladbench::calib {

// calib_loss's signature (stages.hpp) and its pullback's, in double: the adjoints d_gains
// accumulate (+=) the gradient scaled by the seed *d_loss. Only the gains are differentiated;
// d_events and d_ws are not written and may be nullptr.
using Forward = void (*)(const double* gains, const double* events, const int* regions, const int* dims, int count,
                         int batch, double* ws, double* loss);
using Pullback = void (*)(const double* gains, const double* events, const int* regions, const int* dims, int count,
                          int batch, double* ws, double* loss, double* d_gains, double* d_events, double* d_ws,
                          double* d_loss);

// The Hessian of calib_loss (the mean NLL) with respect to the gains: hessian [count x count],
// overwritten. Each event depends on two gains, so it is a sum of 2 x 2 blocks, one per event.
using Hessian = void (*)(const double* gains, const double* events, const int* regions, int count, int batch,
                         double* hessian);

struct Kernels {
  std::string engine;     // "clad", "manual"
  std::string generator;  // who wrote the pullback
  Forward forward = nullptr;
  Pullback pullback = nullptr;
  Hessian hessian = nullptr;  // clad's (clad::hessian of event_loss); none by hand
};

Kernels manual_kernels();  // manual.cpp
Kernels clad_kernels();    // clad.cpp, linked only when Clad is found (CLADBENCH_CALIB_CLAD)

}  // namespace cladbench::calib
