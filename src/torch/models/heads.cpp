// The score heads (models/heads.hpp): loading by architecture and the raw outputs.
#include "torch/models/heads.hpp"

#include <c10/core/InferenceMode.h>
#include <fmt/format.h>

#include "qstar/error.hpp"
#include "torch/models/layers.hpp"

namespace qstar::lm {

using Head = hf::ModelConfig::Head;

ScoreHead ScoreHead::load(const hf::ModelConfig& cfg, const TensorGetter& get) {
  ScoreHead h;
  h.kind_ = cfg.head();
  if (h.kind_ == Head::CausalLM) return h;
  const std::int64_t D = cfg.hidden_size, N = cfg.num_labels;
  if (N < 1)
    throw ParseError(fmt::format("{}: num_labels: must be positive for {}, got {}", cfg.source,
                                 cfg.architecture, N));
  h.outputs_ = N;
  switch (h.kind_) {
    case Head::TokenClassification:
    case Head::SequenceClassification:
      // HF's *ForTokenClassification `score` has a bias, *ForSequenceClassification's has
      // none; checkpoints with or without one are accepted.
      h.w0_ = get("score.weight", {N, D}, true);
      h.b0_ = get("score.bias", {N}, false);
      break;
    case Head::ProcessReward:
    case Head::Reward:
      h.w0_ = get("score.0.weight", {D, D}, true);
      h.b0_ = get("score.0.bias", {D}, true);
      h.w1_ = get("score.2.weight", {N, D}, true);
      h.b1_ = get("score.2.bias", {N}, true);
      break;
    case Head::ValueHead:
      h.w0_ = get("v_head.summary.weight", {1, D}, true);
      h.b0_ = get("v_head.summary.bias", {1}, true);
      break;
    case Head::CausalLM:
      break;
  }
  return h;
}

at::Tensor ScoreHead::apply(const at::Tensor& hidden) const {
  c10::InferenceMode guard;
  at::Tensor y = layers::linear(hidden, w0_, b0_);
  if (w1_.defined()) y = layers::linear(at::relu(y), w1_, b1_);
  return y.to(at::kFloat);
}

std::size_t ScoreHead::bytes() const {
  std::size_t n = 0;
  for (const at::Tensor* t : {&w0_, &b0_, &w1_, &b1_})
    if (t->defined()) n += static_cast<std::size_t>(t->numel()) * t->element_size();
  return n;
}

}  // namespace qstar::lm
