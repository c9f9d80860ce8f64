// Internal: the LMGenerator's CPU sampler over one row of float32 logits (temperature, then
// top-k, then top-p; ties broken by the lower id; greedy is the argmax, lowest id among
// equal maxima). Deterministic given the row and the Rng. No LibTorch.
//
// The reported statistics are those of the MODEL's distribution, softmax(x) at temperature
// 1, whatever the sampling settings: logprob = log softmax(x)[id], entropy = -sum p log p
// of softmax(x) (both accumulated in double; the entropy costs one multiply-add per logit
// inside the log-sum-exp pass that is needed anyway).
#pragma once

#include <cstdint>
#include <vector>

#include "qstar/core/rng.hpp"

namespace qstar::lm {

struct Sampled {
  std::int32_t id = 0;
  double logprob = 0.0;  // log-softmax at temperature 1
  double entropy = 0.0;  // of softmax at temperature 1, in nats (0 unless asked for)
};

// Scratch space of one sampling thread.
struct Scratch {
  std::vector<float> w;
  std::vector<std::int32_t> idx;
};

// Samples one token from a row of V float32 logits; with want_entropy, also computes the
// entropy. qstar::Error for non-finite logits.
Sampled sample_row(const float* x, std::int64_t V, bool greedy, double temperature, int top_k,
                   double top_p, Rng& rng, Scratch& s, bool want_entropy = false);

}  // namespace qstar::lm
