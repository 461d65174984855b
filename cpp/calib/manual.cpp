// The manual engine of the calibration: hand-written pullbacks of the stages in stages.hpp, chained
// per event. Same signatures Clad derives (one adjoint per argument, accumulated).
#include "kernels.hpp"
#include "stages.hpp"

namespace cladbench::calib {
namespace {

void calibrate_pullback(double measured, double gain, double d_y, double* d_measured, double* d_gain) {
  *d_measured += d_y / gain;
  *d_gain -= d_y * measured / (gain * gain);
}

void invariant_mass_pullback(double e1, double e2, double opening, double d_y, double* d_e1, double* d_e2,
                             double* d_opening) {
  const double m = invariant_mass(e1, e2, opening);  // dm/dx = m / (2 x) for each factor x
  *d_e1 += d_y * m / (2 * e1);
  *d_e2 += d_y * m / (2 * e2);
  *d_opening += d_y * m / (2 * opening);
}

// Only the mass's adjoint: the peak's position and shape (peak, half width, sigma, mix) are data here.
void event_nll_pullback(double mass, double peak, double half_width, double sigma, double mix, double d_y,
                        double* d_mass) {
  const double u = mass - peak;
  const double q = u * u + half_width * half_width;
  const double lorentz = half_width / (M_PI * q);
  const double gauss = std::exp(-u * u / (2 * sigma * sigma)) / (sigma * std::sqrt(2 * M_PI));
  const double density = mix * lorentz + (1 - mix) * gauss;
  const double d_density = mix * lorentz * (-2 * u / q) + (1 - mix) * gauss * (-u / (sigma * sigma));
  *d_mass += -d_y * (1 / mass + d_density / density);  // -log(m) - log(V(m - m_Z))
}

void manual_pullback(const double* gains, const double* events, const int* regions, const int*, int, int batch, double*,
                     double* loss, double* d_gains, double*, double*, double* d_loss) {
  const double d_event = *d_loss / batch;  // loss = mean of event_nll
  double total = 0;
  for (int i = 0; i < batch; ++i) {
    const double* e = events + i * kColumns;
    const int r1 = regions[2 * i], r2 = regions[2 * i + 1];
    const double e1 = calibrate(e[kEnergy1], gains[r1]), e2 = calibrate(e[kEnergy2], gains[r2]);
    const double m = invariant_mass(e1, e2, e[kOpening]);
    total += event_nll(m, e[kPeak], e[kHalfWidth], e[kSigma], e[kMix]);
    double d_m = 0, d_e1 = 0, d_e2 = 0, unused = 0;
    event_nll_pullback(m, e[kPeak], e[kHalfWidth], e[kSigma], e[kMix], d_event, &d_m);
    invariant_mass_pullback(e1, e2, e[kOpening], d_m, &d_e1, &d_e2, &unused);
    calibrate_pullback(e[kEnergy1], gains[r1], d_e1, &unused, &d_gains[r1]);
    calibrate_pullback(e[kEnergy2], gains[r2], d_e2, &unused, &d_gains[r2]);
  }
  *loss = total / batch;
  *d_loss = 0;  // the seed is consumed, as in Clad's derivatives
}

}  // namespace

Kernels manual_kernels() {
  return {"manual", "hand-written (cpp/calib/manual.cpp)", calib_loss<double>, manual_pullback};
}

}  // namespace cladbench::calib
