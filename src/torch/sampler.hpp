// Internal: the LMGenerator's CPU sampler over one row of float32 logits (temperature, then
// top-k, then top-p; ties broken by the lower id; greedy is the argmax, lowest id among
// equal maxima). Deterministic given the row and the Rng. No LibTorch.
#pragma once

#include <cstdint>
#include <vector>

#include "qstar/core/rng.hpp"

namespace qstar::lm {

struct Sampled {
  std::int32_t id = 0;
  double logprob = 0.0;  // log-softmax at temperature 1
};

// Scratch space of one sampling thread.
struct Scratch {
  std::vector<float> w;
  std::vector<std::int32_t> idx;
};

// Samples one token from a row of V float32 logits. qstar::Error for non-finite logits.
Sampled sample_row(const float* x, std::int64_t V, bool greedy, double temperature, int top_k,
                   double top_p, Rng& rng, Scratch& s);

}  // namespace qstar::lm
