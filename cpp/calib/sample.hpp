// The Z->ee sample the calibration fits: a seeded generator, a detector with R calorimeter regions
// (eta bins, each with a gain and a resolution), and the packing of the measured electrons into
// the event rows of stages.hpp, with the checks that turn bad input into a clear error.
// These stages make the data; they are not differentiated. Plain C++: no LibTorch, no Clad.
#pragma once

#include <cstdint>
#include <vector>

namespace cladbench::calib {

struct GeneratorConfig {
  long events = 100000;  // accepted events
  std::uint64_t seed = 1;
  double eta_max = 2.5;       // calorimeter acceptance |eta| < eta_max, split into R equal eta bins
  double pt_min = 20.0;       // GeV, both electrons (true pT: no selection bias from the gains)
  double mass_window = 20.0;  // GeV: generated masses in m_Z +- mass_window (symmetric: no location bias)
  double z_pt_mean = 6.0;     // GeV, exponential Z transverse momentum
  double z_rapidity_sigma = 1.5;
};

// Electrons, two per event (electron j of event i at 2i + j).
struct Electrons {
  std::vector<double> energy, eta, phi;  // true energies, or measured ones after detect()
  std::vector<int> region;               // filled by detect()
  std::vector<double> true_mass;         // per event: the generated Z mass
  long events() const { return long(true_mass.size()); }
};

// Z -> ee: m from a Breit-Wigner (m_Z, Gamma_Z) in the mass window, Z pT and rapidity, decay
// isotropic in the Z frame, massless electrons; events with an electron outside the acceptance
// or below pt_min are regenerated. Seeded std::mt19937_64: the same config gives the same sample.
Electrons generate_z_ee(const GeneratorConfig& config);

// The region (eta bin) of an electron: R equal bins over [-eta_max, eta_max].
int region_of(double eta, int regions, double eta_max);

// The detector: measured energy = gain[r] * E * (1 + resolution[r] * z), z ~ N(0, 1) (seeded).
Electrons detect(const Electrons& truth, const std::vector<double>& gains, const std::vector<double>& resolution,
                 double eta_max, std::uint64_t seed);

// Measured electrons packed into the rows calib_loss reads (stages.hpp), checked:
// std::invalid_argument names the first bad value (non-finite or non-positive energy, non-finite
// direction, region out of range, bad resolution), a region without electrons, or regions whose
// gains the sample cannot separate.
struct Sample {
  Sample(const std::vector<double>& energy, const std::vector<double>& eta, const std::vector<double>& phi,
         const std::vector<int>& region, const std::vector<double>& resolution);
  int regions = 0;
  long events = 0;
  std::vector<double> rows;           // [events x kColumns]
  std::vector<int> region;            // [events x 2]
  std::vector<double> measured_mass;  // [events]: the mass with all gains 1 (uncalibrated)
};

// Throws std::invalid_argument unless gains has `regions` finite positive values.
void check_gains(const std::vector<double>& gains, int regions);

}  // namespace cladbench::calib
