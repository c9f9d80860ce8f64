// Internal, torch-typed: a Llama-style decoder as trainable tensors (autograd) for the
// trainer, built from the same layer functions as the inference decoder
// (src/torch/models/layers.hpp: RMSNorm, RoPE, grouped-query attention, SwiGLU MLP), so the
// training forward computes what inference computes. CPU / float32; no biases (the
// architectures hf::ModelSpec describes).
//
// Shared-prefix forward: when every sequence of a batch starts with the same tokens (an
// instruction common to all prompts), hidden(prefix, ids) runs that prefix once (batch 1)
// and lets all B suffixes attend to its keys and values, so a batch costs P + B*S tokens
// instead of B*(P+S), with exactly the logits of the full sequences (tests pin this against
// the inference decoder). Gradients flow into the prefix's computation from every suffix.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "qstar/hf/model_io.hpp"

namespace qstar::train::detail {

class TrainableDecoder {
 public:
  /// Trainable copies of `tensors` (expected_tensors(spec) order, float32).
  static TrainableDecoder from_tensors(const hf::ModelSpec& spec,
                                       const std::vector<hf::NamedTensor>& tensors);
  /// read_model_spec + read_model_tensors of `dir`.
  static TrainableDecoder load(const std::string& dir);

  const hf::ModelSpec& spec() const { return spec_; }
  /// Every trainable tensor (requires_grad), in expected_tensors() order.
  const std::vector<at::Tensor>& parameters() const { return params_; }
  const std::vector<std::string>& names() const { return names_; }

  /// Final (normed) hidden states [B, S, D] of the sequences prefix + ids[b]: `prefix` is a
  /// [P] int64 tensor (P may be 0, or the tensor undefined), `ids` [B, S] int64
  /// (right-padded rows are fine: a position never sees later ones).
  at::Tensor hidden(const at::Tensor& prefix, const at::Tensor& ids) const;
  /// [..., vocab] (lm_head, or the tied embedding). Causal LMs only.
  at::Tensor lm_logits(const at::Tensor& hidden) const;
  /// [..., num_labels]. Token classifiers only.
  at::Tensor score(const at::Tensor& hidden) const;

  /// The current weights, expected_tensors() order.
  std::vector<hf::NamedTensor> to_named() const;
  /// write_model_folder(dir, spec, to_named(), tokenizer_json, metadata).
  void save(const std::string& dir, const std::string& tokenizer_json,
            const std::map<std::string, std::string>& metadata = {}) const;
  /// A token classifier with this model's trunk and a fresh score head (init from `seed`).
  TrainableDecoder as_token_classifier(int num_labels, std::uint64_t seed) const;

 private:
  const at::Tensor& p(const std::string& name) const;

  hf::ModelSpec spec_;
  std::vector<std::string> names_;
  std::vector<at::Tensor> params_;
  std::map<std::string, std::size_t> index_;
  at::Tensor inv_freq_;
};

}  // namespace qstar::train::detail
