// The LMGenerator's CPU sampler. See sampler.hpp.
#include "torch/sampler.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "qstar/error.hpp"

namespace qstar::lm {

Sampled sample_row(const float* x, std::int64_t V, bool greedy, double temperature, int top_k,
                   double top_p, Rng& rng, Scratch& s, bool want_entropy) {
  // log-sum-exp at temperature 1 (double accumulation).
  float mx = -std::numeric_limits<float>::infinity();
  std::int64_t arg = 0;
  for (std::int64_t i = 0; i < V; ++i)
    if (x[i] > mx) {
      mx = x[i];
      arg = i;
    }
  if (!std::isfinite(mx))
    throw Error("expand: the model produced non-finite logits (NaN or all -inf)");
  const bool t1 = temperature == 1.0;
  const bool sample = !(greedy || temperature <= 0.0);
  const auto inv_t = static_cast<float>(sample ? 1.0 / temperature : 1.0);
  double z1 = 0.0;  // sum exp(x - max) at temperature 1
  // sum exp(x - max) * (x - max) (want_entropy): H = log z1 - ex / z1. A -inf logit has
  // exp 0 and adds nothing (its product would be NaN).
  double ex = 0.0;
  if (sample) s.w.resize(static_cast<std::size_t>(V));
  double total = 0.0;  // sum of the sampling weights
  if (sample && t1) {
    if (want_entropy) {
      for (std::int64_t i = 0; i < V; ++i) {
        const float d = x[i] - mx;
        const float e = std::exp(d);
        s.w[static_cast<std::size_t>(i)] = e;
        z1 += e;
        if (e > 0.0f) ex += static_cast<double>(e) * static_cast<double>(d);
      }
    } else {
      for (std::int64_t i = 0; i < V; ++i) {
        const float e = std::exp(x[i] - mx);
        s.w[static_cast<std::size_t>(i)] = e;
        z1 += e;
      }
    }
    total = z1;
  } else {
    if (want_entropy) {
      for (std::int64_t i = 0; i < V; ++i) {
        const float d = x[i] - mx;
        const float e = std::exp(d);
        z1 += e;
        if (e > 0.0f) ex += static_cast<double>(e) * static_cast<double>(d);
      }
    } else {
      for (std::int64_t i = 0; i < V; ++i) z1 += std::exp(x[i] - mx);
    }
    if (sample)
      for (std::int64_t i = 0; i < V; ++i) {
        const float e = std::exp((x[i] - mx) * inv_t);
        s.w[static_cast<std::size_t>(i)] = e;
        total += e;
      }
  }
  const double lse = static_cast<double>(mx) + std::log(z1);
  if (!std::isfinite(lse)) throw Error("expand: the model produced non-finite logits");
  // Clamped at 0: rounding can leave a one-hot distribution a hair below it.
  const double entropy = want_entropy ? std::max(0.0, std::log(z1) - ex / z1) : 0.0;
  if (!sample) return {static_cast<std::int32_t>(arg), static_cast<double>(x[arg]) - lse, entropy};

  // Filtering: the kept tokens, most probable first (ties: lower id first).
  const auto by_prob = [x](std::int32_t a, std::int32_t b) {
    return x[a] > x[b] || (x[a] == x[b] && a < b);
  };
  const bool use_k = top_k > 0 && top_k < V;
  const bool use_p = top_p < 1.0;
  std::int64_t kept = V;  // number of s.idx entries kept (when filtered)
  if (use_k || use_p) {
    s.idx.resize(static_cast<std::size_t>(V));
    std::iota(s.idx.begin(), s.idx.end(), 0);
    std::int64_t k = use_k ? top_k : std::min<std::int64_t>(V, 64);
    double mass = 0.0;
    for (;;) {
      std::partial_sort(s.idx.begin(), s.idx.begin() + k, s.idx.end(), by_prob);
      if (!use_p) {
        kept = k;
        break;
      }
      // Top-p over the top-k set (or over everything): the denominator is its mass.
      double set_mass = total;
      if (use_k) {
        set_mass = 0.0;
        for (std::int64_t i = 0; i < k; ++i) set_mass += s.w[static_cast<std::size_t>(s.idx[i])];
      }
      const double want = top_p * set_mass;
      mass = 0.0;
      std::int64_t i = 0;
      for (; i < k; ++i) {
        mass += s.w[static_cast<std::size_t>(s.idx[static_cast<std::size_t>(i)])];
        if (mass >= want) break;
      }
      if (i < k) {
        kept = i + 1;
        break;
      }
      if (use_k || k == V) {
        kept = k;
        break;
      }
      k = std::min<std::int64_t>(V, k * 4);
    }
    total = 0.0;
    for (std::int64_t i = 0; i < kept; ++i) total += s.w[static_cast<std::size_t>(s.idx[i])];
  }

  double u = rng.uniform() * total;
  std::int64_t pick = -1;
  if (use_k || use_p) {
    for (std::int64_t i = 0; i < kept; ++i) {
      const std::int32_t id = s.idx[static_cast<std::size_t>(i)];
      const double w = s.w[static_cast<std::size_t>(id)];
      if (w <= 0.0) continue;
      pick = id;
      u -= w;
      if (u < 0.0) break;
    }
  } else {
    for (std::int64_t i = 0; i < V; ++i) {
      const double w = s.w[static_cast<std::size_t>(i)];
      if (w <= 0.0) continue;
      pick = i;
      u -= w;
      if (u < 0.0) break;
    }
  }
  if (pick < 0) pick = arg;
  return {static_cast<std::int32_t>(pick), static_cast<double>(x[pick]) - lse, entropy};
}

}  // namespace qstar::lm
