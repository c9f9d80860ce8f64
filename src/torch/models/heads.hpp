// Internal, torch-typed: the score heads a decoder may carry on its final (normed) hidden
// states instead of (or beside) a language-model head, one per hf::ModelConfig::Head:
//
//   TokenClassification     `score`   Linear(h, num_labels) (+ bias when the checkpoint has one)
//   SequenceClassification  `score`   Linear(h, num_labels, bias=False) (a bias is accepted)
//   ProcessReward           `score.0` Linear(h, h) + ReLU + `score.2` Linear(h, num_labels)
//                           (Qwen2.5-Math-PRM: 2 classes)
//   Reward                  the same with one output (Qwen2.5-Math-RM)
//   ValueHead               `v_head.summary` Linear(h, 1) (Skywork-o1-Open-PRM, TRL's value head;
//                           its dropout is inactive at inference)
//
// apply() returns the raw outputs (no softmax or sigmoid) as float32; how a verifier turns
// them into a score is qstar::lm::PrmVerifier's business.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "qstar/hf/config.hpp"

namespace qstar::lm {

/// Fetches the checkpoint tensor `name` with exactly `shape`, on the model's device in its
/// compute dtype: ParseError naming the file and tensor when it is missing (and `required`)
/// or mis-shaped; undefined when absent and not required.
using TensorGetter = std::function<at::Tensor(const std::string& name,
                                              const std::vector<std::int64_t>& shape, bool required)>;

class ScoreHead {
 public:
  ScoreHead() = default;
  /// The head `config.head()` names (an undefined head for a causal LM). ParseError naming
  /// config.json for num_labels < 1, or the getter's errors for missing / mis-shaped tensors.
  static ScoreHead load(const hf::ModelConfig& config, const TensorGetter& get);

  bool defined() const { return w0_.defined(); }
  hf::ModelConfig::Head kind() const { return kind_; }
  /// The number of outputs per position.
  std::int64_t outputs() const { return outputs_; }
  /// float32 [..., outputs] from hidden states [..., hidden] (model device and dtype).
  at::Tensor apply(const at::Tensor& hidden) const;
  /// Bytes held by the head's tensors.
  std::size_t bytes() const;

 private:
  hf::ModelConfig::Head kind_ = hf::ModelConfig::Head::CausalLM;
  std::int64_t outputs_ = 0;
  at::Tensor w0_, b0_;  // the (first) linear layer
  at::Tensor w1_, b1_;  // ProcessReward / Reward: the second linear layer after the ReLU
};

}  // namespace qstar::lm
