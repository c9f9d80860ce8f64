// Deterministic, platform-independent random numbers. The standard library's
// distributions are implementation-defined, so qstar draws its own from splitmix64 /
// xoshiro256** bits: the same seed gives the same numbers with every compiler.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <span>
#include <vector>

namespace qstar {

/// One round of splitmix64: a good 64-bit mixer.
inline constexpr std::uint64_t splitmix64(std::uint64_t x) noexcept {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

/// Derives a child seed from a seed and any number of integer coordinates, e.g.
/// derive_seed(seed, problem, node, expansion). Order matters.
template <class... Ints>
inline constexpr std::uint64_t derive_seed(std::uint64_t seed, Ints... coords) noexcept {
  std::uint64_t h = splitmix64(seed ^ 0x5173746172ull);  // "qstar"
  ((h = splitmix64(h ^ static_cast<std::uint64_t>(coords))), ...);
  return h;
}

/// xoshiro256** generator; satisfies std::uniform_random_bit_generator.
class Rng {
 public:
  using result_type = std::uint64_t;
  explicit Rng(std::uint64_t seed = 0) noexcept { reseed(seed); }
  void reseed(std::uint64_t seed) noexcept {
    std::uint64_t x = seed;
    for (auto& w : s_) {
      x += 0x9E3779B97F4A7C15ull;
      w = splitmix64(x);
    }
  }
  static constexpr result_type min() noexcept { return 0; }
  static constexpr result_type max() noexcept { return std::numeric_limits<result_type>::max(); }
  result_type operator()() noexcept {
    const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const std::uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }
  /// Uniform double in [0, 1) with 53 random bits.
  double uniform() noexcept { return static_cast<double>((*this)() >> 11) * 0x1.0p-53; }
  /// Uniform integer in [0, n) (n > 0), by Lemire's multiply-shift with rejection.
  std::uint64_t below(std::uint64_t n) noexcept {
    if (n <= 1) return 0;
    const std::uint64_t threshold = (0 - n) % n;
    for (;;) {
      const __uint128_t m = static_cast<__uint128_t>((*this)()) * n;
      if (static_cast<std::uint64_t>(m) >= threshold) return static_cast<std::uint64_t>(m >> 64);
    }
  }
  /// Standard normal (Box-Muller; one value per call).
  double normal() noexcept {
    double u1 = uniform();
    while (u1 <= 0.0) u1 = uniform();
    const double u2 = uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }
  /// Gamma(shape, 1) by Marsaglia-Tsang (shape < 1 handled by the boost u^(1/shape)).
  double gamma(double shape) noexcept {
    if (shape < 1.0) {
      double u = uniform();
      while (u <= 0.0) u = uniform();
      return gamma(shape + 1.0) * std::pow(u, 1.0 / shape);
    }
    const double d = shape - 1.0 / 3.0;
    const double c = 1.0 / std::sqrt(9.0 * d);
    for (;;) {
      double x = normal();
      double v = 1.0 + c * x;
      if (v <= 0.0) continue;
      v = v * v * v;
      const double u = uniform();
      if (u < 1.0 - 0.0331 * x * x * x * x) return d * v;
      if (u > 0.0 && std::log(u) < 0.5 * x * x + d * (1.0 - v + std::log(v))) return d * v;
    }
  }
  /// A Dirichlet(alpha, ..., alpha) sample of size n.
  std::vector<double> dirichlet(std::size_t n, double alpha) {
    std::vector<double> out(n);
    double sum = 0.0;
    for (auto& x : out) sum += (x = gamma(alpha));
    if (sum <= 0.0) {
      for (auto& x : out) x = 1.0 / static_cast<double>(n);
    } else {
      for (auto& x : out) x /= sum;
    }
    return out;
  }

 private:
  static constexpr std::uint64_t rotl(std::uint64_t x, int k) noexcept {
    return (x << k) | (x >> (64 - k));
  }
  std::uint64_t s_[4]{};
};

}  // namespace qstar
