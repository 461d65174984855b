// The differentiable part of the Z->ee calibration: calibration -> invariant mass -> loss, each
// stage a plain C++ forward function over doubles (no LibTorch, no Clad), composed into one loss on
// the kernel contract (docs/architecture.md, "The kernel contract"):
//
//   calib_loss(gains, events, regions, dims, count, batch, ws, loss)
//
//   gains    [count]            the fitted gain of each calorimeter region (the parameters)
//   events   [batch x kColumns] one row per event (see Column): data, not differentiated
//   regions  [batch x 2]        the region of each electron
//   dims, ws                    unused (no shapes to pass, no workspace needed: see below)
//   loss                        the mean negative log-likelihood per event
//
// The engines differ only in who writes the pullback of calib_loss with respect to the gains:
// Clad (clad.cpp), by hand (manual.cpp) or LibTorch autograd (torch_reference.cpp).
//
// Why per event and per scalar: every stage maps one event's numbers to one number, and the loss
// sums over events. Written so, no array element is ever overwritten in a loop, so Clad keeps no
// tape, and no workspace is needed (Clad 2.4 tapes every overwritten array element, see
// cpp/kernels/layers.hpp).
#pragma once

#include <cmath>

namespace cladbench::calib {

inline constexpr double kZMass = 91.1876;  // GeV (PDG)
inline constexpr double kZWidth = 2.4952;  // GeV (PDG)

// One event row of `events`. Everything the loss needs that does not depend on the gains is
// computed once, when the sample is made (sample.hpp): the opening factor from the electrons'
// directions and the shape of the event's mass peak from the regions' known resolutions.
enum Column : int {
  kEnergy1 = 0,    // measured (uncalibrated) energy of electron 1, GeV
  kEnergy2 = 1,    // ... of electron 2
  kOpening = 2,    // 2 (1 - cos theta_12): m^2 = E1 E2 * opening for massless electrons
  kPeak = 3,       // where the calibrated peak is expected, GeV: m_Z (1 - (s1^2 + s2^2) / 8), see sample.cpp
  kHalfWidth = 4,  // pseudo-Voigt half width at half maximum, GeV
  kSigma = 5,      // its Gaussian's sigma (GeV), same FWHM
  kMix = 6,        // its Lorentzian fraction
  kColumns = 7
};

// Internal linkage: Clad emits the derivatives it generates as strong symbols named after the
// original function, so every TU keeps its own private copy (see cpp/kernels/layers.hpp).
namespace {

// Stage 1, calibration: the measured energy divided by the region's fitted gain.
template <class T>
T calibrate(T measured, T gain) {
  return measured / gain;
}

// Stage 2, invariant mass of two massless electrons.
template <class T>
T invariant_mass(T e1, T e2, T opening) {
  return std::sqrt(e1 * e2 * opening);
}

// Stage 3, the loss of one event: -log of the likelihood of its measured mass given the gains.
// The mass model is a Breit-Wigner (at the event's expected peak, Gamma_Z) convolved with the event's Gaussian
// resolution (a Voigt profile), in the pseudo-Voigt approximation (Thompson, Cox, Hastings 1987; ~1% accurate): a
// Lorentzian and a Gaussian with the same FWHM, mixed. Since m = m_measured / sqrt(g1 g2), the density of the
// *measured* mass is V(m) * m / m_measured: the -log(m) term is that Jacobian. Without it the fit prefers gains that
// spread the peak, a bias as large as the statistical error.
template <class T>
T event_nll(T mass, T peak, T half_width, T sigma, T mix) {
  const T u = mass - peak;
  const T lorentz = half_width / (M_PI * (u * u + half_width * half_width));
  const T gauss = std::exp(-u * u / (2 * sigma * sigma)) / (sigma * std::sqrt(2 * M_PI));
  return -std::log(mass * (mix * lorentz + (1 - mix) * gauss));
}

// One event's loss as a function of its two electrons' gains (scalars, so that Clad's Hessian of it
// is a 2 x 2 matrix): the stages composed.
template <class T>
T event_loss(T gain1, T gain2, T energy1, T energy2, T opening, T peak, T half_width, T sigma, T mix) {
  return event_nll(invariant_mass(calibrate(energy1, gain1), calibrate(energy2, gain2), opening), peak, half_width,
                   sigma, mix);
}

// The composition, on the kernel contract: the mean over events of event_loss. An event whose
// electrons are in different regions depends on both gains, through the geometric mean
// sqrt(g1 g2) of its calibration; the sum over all events fits all gains jointly.
template <class T>
void calib_loss(const T* gains, const T* events, const int* regions, const int* dims, int count, int batch, T* ws,
                T* loss) {
  T total = 0;
  for (int i = 0; i < batch; ++i)  // one expression: a local here would be taped per event
    total += event_loss(gains[regions[2 * i]], gains[regions[2 * i + 1]], events[i * kColumns + kEnergy1],
                        events[i * kColumns + kEnergy2], events[i * kColumns + kOpening], events[i * kColumns + kPeak],
                        events[i * kColumns + kHalfWidth], events[i * kColumns + kSigma], events[i * kColumns + kMix]);
  *loss = total / batch;
}

}  // namespace
}  // namespace cladbench::calib
