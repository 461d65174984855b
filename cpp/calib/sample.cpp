#include "sample.hpp"

#include <algorithm>
#include <cmath>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>

#include "stages.hpp"

namespace cladbench::calib {
namespace {

[[noreturn]] void fail(const std::string& what) { throw std::invalid_argument(what); }

std::string num(double x) {
  std::ostringstream out;
  out << x;
  return out.str();
}

struct FourVector {
  double e, px, py, pz;
};

// p* (in the frame where `frame` is at rest) boosted to the frame where `frame` has momentum P.
FourVector boost(const FourVector& p, const FourVector& frame) {
  const double bx = frame.px / frame.e, by = frame.py / frame.e, bz = frame.pz / frame.e;
  const double b2 = bx * bx + by * by + bz * bz;
  const double gamma = 1 / std::sqrt(1 - b2);
  const double bp = bx * p.px + by * p.py + bz * p.pz;
  const double k = b2 > 0 ? (gamma - 1) * bp / b2 + gamma * p.e : 0;
  return {gamma * (p.e + bp), p.px + k * bx, p.py + k * by, p.pz + k * bz};
}

// The pseudo-Voigt's shape for an event whose mass resolution is sigma_m (GeV): the FWHM of a
// Voigt of Gamma_Z and sigma_m, and the Lorentzian fraction (Thompson, Cox, Hastings 1987).
void pseudo_voigt(double sigma_m, double* half_width, double* sigma, double* mix) {
  const double to_fwhm = 2 * std::sqrt(2 * std::log(2.0));
  const double g = to_fwhm * sigma_m, l = kZWidth;
  const double f = std::pow(std::pow(g, 5) + 2.69269 * std::pow(g, 4) * l + 2.42843 * std::pow(g, 3) * l * l +
                                4.47163 * g * g * std::pow(l, 3) + 0.07842 * g * std::pow(l, 4) + std::pow(l, 5),
                            0.2);
  const double r = l / f;
  *mix = 1.36603 * r - 0.47719 * r * r + 0.11116 * r * r * r;
  *half_width = f / 2;
  *sigma = f / to_fwhm;
}

// Regions whose gains the sample cannot separate: an event constrains g1 * g2 of its two regions,
// so the gains of a connected group of regions are all fixed only if the group has an event with
// both electrons in one region, or an odd cycle of pairs (else g -> g*c on one side, g/c on the
// other, leaves every event's mass unchanged). Returns an empty string when all are separable.
std::string inseparable_regions(const std::vector<int>& region, int regions) {
  std::vector<std::vector<int>> pairs(regions);
  std::vector<bool> self(regions, false);
  for (size_t i = 0; i + 1 < region.size(); i += 2) {
    const int a = region[i], b = region[i + 1];
    if (a == b) self[a] = true;
    pairs[a].push_back(b);
    pairs[b].push_back(a);
  }
  for (auto& p : pairs) {
    std::sort(p.begin(), p.end());
    p.erase(std::unique(p.begin(), p.end()), p.end());
  }
  std::vector<int> colour(regions, -1);
  for (int start = 0; start < regions; ++start) {
    if (colour[start] >= 0) continue;
    std::vector<int> group{start};
    colour[start] = 0;
    bool separable = false;
    for (size_t k = 0; k < group.size(); ++k) {
      const int a = group[k];
      separable = separable || self[a];
      for (int b : pairs[a]) {
        if (colour[b] < 0) {
          colour[b] = 1 - colour[a];
          group.push_back(b);
        } else if (colour[b] == colour[a]) {
          separable = true;  // an odd cycle
        }
      }
    }
    if (!separable) {
      std::sort(group.begin(), group.end());
      std::string names;
      for (int a : group) names += (names.empty() ? "" : ", ") + std::to_string(a);
      return names;
    }
  }
  return "";
}

}  // namespace

int region_of(double eta, int regions, double eta_max) {
  const int r = int(std::floor((eta + eta_max) / (2 * eta_max) * regions));
  return std::clamp(r, 0, regions - 1);
}

Electrons generate_z_ee(const GeneratorConfig& c) {
  if (c.events < 1) fail("the generator needs at least one event, got " + std::to_string(c.events));
  std::mt19937_64 rng(c.seed);
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::exponential_distribution<double> exponential(1.0 / c.z_pt_mean);
  // Breit-Wigner by inverting its CDF over the window.
  const auto cdf = [](double m) { return 0.5 + std::atan(2 * (m - kZMass) / kZWidth) / M_PI; };
  const double u_lo = cdf(kZMass - c.mass_window), u_hi = cdf(kZMass + c.mass_window);

  Electrons out;
  out.energy.reserve(2 * c.events);
  while (out.events() < c.events) {
    const double m = kZMass + kZWidth / 2 * std::tan(M_PI * (u_lo + (u_hi - u_lo) * uniform(rng) - 0.5));
    const double pt = exponential(rng), y = c.z_rapidity_sigma * normal(rng), phi = 2 * M_PI * uniform(rng);
    const double mt = std::sqrt(m * m + pt * pt);
    const FourVector z{mt * std::cosh(y), pt * std::cos(phi), pt * std::sin(phi), mt * std::sinh(y)};
    const double cos_t = 2 * uniform(rng) - 1, sin_t = std::sqrt(1 - cos_t * cos_t), phi_star = 2 * M_PI * uniform(rng);
    const FourVector rest{m / 2, m / 2 * sin_t * std::cos(phi_star), m / 2 * sin_t * std::sin(phi_star), m / 2 * cos_t};
    const FourVector e1 = boost(rest, z);
    const FourVector e2{z.e - e1.e, z.px - e1.px, z.py - e1.py, z.pz - e1.pz};
    double eta[2], phis[2];
    bool accepted = true;
    int j = 0;
    for (const FourVector& e : {e1, e2}) {
      const double pt_e = std::hypot(e.px, e.py);
      eta[j] = std::asinh(e.pz / pt_e);
      phis[j] = std::atan2(e.py, e.px);
      accepted = accepted && pt_e > c.pt_min && std::abs(eta[j]) < c.eta_max;
      ++j;
    }
    if (!accepted) continue;
    for (int k = 0; k < 2; ++k) {
      const FourVector& e = k == 0 ? e1 : e2;
      out.energy.push_back(std::sqrt(e.px * e.px + e.py * e.py + e.pz * e.pz));  // massless
      out.eta.push_back(eta[k]);
      out.phi.push_back(phis[k]);
    }
    out.true_mass.push_back(m);
  }
  return out;
}

Electrons detect(const Electrons& truth, const std::vector<double>& gains, const std::vector<double>& resolution,
                 double eta_max, std::uint64_t seed) {
  const int regions = int(gains.size());
  if (regions < 1 || resolution.size() != gains.size())
    fail("the detector needs one gain and one resolution per region, got " + std::to_string(gains.size()) +
         " gains and " + std::to_string(resolution.size()) + " resolutions");
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  Electrons out = truth;
  out.region.resize(truth.energy.size());
  for (size_t j = 0; j < truth.energy.size(); ++j) {
    const int r = region_of(truth.eta[j], regions, eta_max);
    out.region[j] = r;
    out.energy[j] = gains[r] * truth.energy[j] * std::max(1 + resolution[r] * normal(rng), 0.01);
  }
  return out;
}

void check_gains(const std::vector<double>& gains, int regions) {
  if (int(gains.size()) != regions)
    fail("expected " + std::to_string(regions) + " gains (one per region), got " + std::to_string(gains.size()));
  for (int r = 0; r < regions; ++r)
    if (!std::isfinite(gains[r]) || gains[r] <= 0)
      fail("the gain of region " + std::to_string(r) + " is " + num(gains[r]) + "; gains must be finite and positive");
}

Sample::Sample(const std::vector<double>& energy, const std::vector<double>& eta, const std::vector<double>& phi,
               const std::vector<int>& region_in, const std::vector<double>& resolution)
    : regions(int(resolution.size())), events(long(energy.size() / 2)) {
  if (regions < 1) fail("no regions: give one resolution per calorimeter region");
  if (energy.size() % 2 || eta.size() != energy.size() || phi.size() != energy.size() ||
      region_in.size() != energy.size())
    fail("energy, eta, phi and region need two values (electrons) per event, and as many of each");
  if (events < 1) fail("no events: the calibration needs a Z -> ee sample");
  for (int r = 0; r < regions; ++r)
    if (!std::isfinite(resolution[r]) || resolution[r] <= 0 || resolution[r] >= 1)
      fail("the resolution of region " + std::to_string(r) + " is " + num(resolution[r]) +
           "; a relative energy resolution must be in (0, 1)");
  std::vector<long> electrons(regions, 0);
  for (size_t j = 0; j < energy.size(); ++j) {
    const std::string where = "event " + std::to_string(j / 2) + ", electron " + std::to_string(j % 2 + 1) + ": ";
    if (!std::isfinite(energy[j]) || energy[j] <= 0)
      fail(where + "energy is " + num(energy[j]) + " GeV; measured energies must be finite and positive");
    if (!std::isfinite(eta[j]) || !std::isfinite(phi[j]))
      fail(where + "direction (eta " + num(eta[j]) + ", phi " + num(phi[j]) + ") is not finite");
    if (region_in[j] < 0 || region_in[j] >= regions)
      fail(where + "region " + std::to_string(region_in[j]) + " is not one of the " + std::to_string(regions) +
           " regions");
    ++electrons[region_in[j]];
  }
  for (int r = 0; r < regions; ++r)
    if (electrons[r] == 0)
      fail("region " + std::to_string(r) + " of " + std::to_string(regions) +
           " has no electrons: its gain cannot be fitted; use fewer regions or more events");
  const std::string inseparable = inseparable_regions(region_in, regions);
  if (!inseparable.empty())
    fail("the gains of regions " + inseparable +
         " cannot be separated: no event has both electrons in one of them, or an odd cycle of pairs of them");

  region = region_in;
  rows.resize(events * kColumns);
  measured_mass.resize(events);
  for (long i = 0; i < events; ++i) {
    const double e1 = energy[2 * i], e2 = energy[2 * i + 1];
    const double cos_open =
        (std::cos(phi[2 * i] - phi[2 * i + 1]) + std::sinh(eta[2 * i]) * std::sinh(eta[2 * i + 1])) /
        (std::cosh(eta[2 * i]) * std::cosh(eta[2 * i + 1]));
    double* row = &rows[i * kColumns];
    row[kEnergy1] = e1;
    row[kEnergy2] = e2;
    row[kOpening] = 2 * (1 - cos_open);
    // The event's mass resolution, from its regions' energy resolutions (m ~ sqrt(E1 E2)), and where
    // its peak is expected: E (1 + r z) smears sqrt(E1 E2) by sqrt((1 + r1 z1)(1 + r2 z2)), whose mean
    // is 1 - (r1^2 + r2^2) / 8 to second order. Centred at m_Z instead, the fitted gains would come
    // out low by that much: ~1e-4, a whole sigma with 1e5 events in 2 regions (toys).
    const double r1 = resolution[region[2 * i]], r2 = resolution[region[2 * i + 1]];
    row[kPeak] = kZMass * (1 - (r1 * r1 + r2 * r2) / 8);
    pseudo_voigt(0.5 * kZMass * std::sqrt(r1 * r1 + r2 * r2), &row[kHalfWidth], &row[kSigma], &row[kMix]);
    measured_mass[i] = invariant_mass(e1, e2, row[kOpening]);
  }
}

}  // namespace cladbench::calib
