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

struct Kernels {
  std::string engine;     // "clad", "manual"
  std::string generator;  // who wrote the pullback
  Forward forward = nullptr;
  Pullback pullback = nullptr;
};

Kernels manual_kernels();  // manual.cpp
Kernels clad_kernels();    // clad.cpp, linked only when Clad is found (CLADBENCH_CALIB_CLAD)

}  // namespace cladbench::calib
