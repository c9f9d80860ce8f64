// A decoder model loaded from a Hugging Face folder (public, torch-free wrapper) by the
// family registered for its config.json (llama, qwen2; src/torch/models/). LibTorch stays
// behind a PImpl: this header includes no <torch/...> or ATen header. Backend sources reach
// the full batched, cached forward through impl() (src/torch/decoder.hpp).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "qstar/hf/config.hpp"

namespace qstar::lm {

class Decoder;  // src/torch/decoder.hpp

/// A loaded *ForCausalLM / *ForTokenClassification model of a registered family.
/// Copies share the same weights. Thread-safe for concurrent const calls.
class LanguageModel {
 public:
  /// Loads `dir` (config.json + model.safetensors or shards). `device` is "cpu", "cuda"
  /// or "cuda:N"; `dtype` is "float32", "bfloat16", "float16" or "int8" (CPU only): the
  /// weights' dtype (on CUDA also the compute dtype; on CPU the weight matrices are stored
  /// in it and upcast per matmul, computing in float32; int8 is weight-only with a float32
  /// scale per output row of the linear layers, embeddings stay float32). qstar::ParseError naming the file and tensor/field for a
  /// malformed model; InvalidArgument for a bad device or dtype; Error when CUDA is
  /// requested but absent.
  static LanguageModel load(const std::string& dir, const std::string& device = "cpu",
                            const std::string& dtype = "float32");

  /// Wraps an already loaded model (must not be null).
  explicit LanguageModel(std::shared_ptr<Decoder> impl);

  const hf::ModelConfig& config() const;
  /// Every position's logits of one uncached sequence: [T][vocab], float32.
  /// InvalidArgument for a model without a language-model head or a bad token id.
  std::vector<std::vector<float>> logits(std::span<const std::int32_t> tokens) const;
  /// The token-classification head's raw scores (logits) at every position:
  /// [T][num_labels]. InvalidArgument for a model without a `score` head.
  std::vector<std::vector<float>> token_scores(std::span<const std::int32_t> tokens) const;
  /// "cpu", "cuda:0", ...
  std::string device() const;
  /// "float32", "bfloat16" or "float16": the compute dtype (always float32 on CPU).
  std::string dtype() const;
  /// "float32", "bfloat16", "float16" or "int8": the storage dtype of the weight matrices (the
  /// `dtype` asked at load, on CPU too).
  std::string weight_dtype() const;
  /// True for *ForCausalLM, false for *ForTokenClassification.
  bool has_lm_head() const;
  bool has_score_head() const;

  /// The internal torch-typed model, for other backend sources.
  std::shared_ptr<Decoder> impl() const { return impl_; }

 private:
  std::shared_ptr<Decoder> impl_;
};

}  // namespace qstar::lm
