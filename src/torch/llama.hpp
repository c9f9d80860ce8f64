// Internal, torch-typed: the Llama / Qwen2 decoder (HF `modeling_llama.py` /
// `modeling_qwen2.py` math) with a batched, ragged, cached forward built for a
// shared-prefix KV cache. Not a public header: include it only from src/torch/*.cpp and
// tests (it pulls in ATen).
//
// Math (HF parity): token embedding; per layer x += o_proj(attn(RMSNorm(x))) and
// x += down(silu(gate(h)) * up(h)) with h = RMSNorm(x); final RMSNorm; lm_head (or the tied
// embedding) / the token-classification `score` head. RMSNorm in float32 (cast back, then
// times the weight), RoPE half-split `rotate_half` with inv_freq/cos/sin in float32 (cast
// to the compute dtype), GQA query head h reads kv head h / n_rep, attention scores
// softmaxed in float32 with an explicit additive mask. On CPU everything runs in float32.
// Only the default RoPE is supported (other rope_scaling types are rejected at load);
// Qwen2's optional sliding-window attention (use_sliding_window) is not applied.
//
// Threading: forward() is const and keeps no mutable state: several threads may call it
// at once. Every entry point opens its own c10::InferenceMode guard; tensors it returns
// (KV segments, logits) are inference tensors, so keep later in-place work on them inside
// an InferenceMode guard too.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "qstar/hf/config.hpp"
#include "qstar/hf/safetensors.hpp"

namespace qstar::lm {

/// Where and how to run a model.
struct LoadOptions {
  /// "cpu", "cuda" or "cuda:N".
  std::string device = "cpu";
  /// Compute dtype on CUDA. On CPU the model always computes in float32 (LibTorch 1.13
  /// lacks fp16 CPU kernels and its bf16 CPU matmul is ~25x slower).
  hf::DType dtype = hf::DType::F32;
};

/// "float32"/"fp32"/"f32", "bfloat16"/"bf16", "float16"/"fp16"/"f16"/"half" (case
/// insensitive) → DType. InvalidArgument naming `field` otherwise.
hf::DType parse_dtype(std::string_view name, std::string_view field = "dtype");

/// The KV of a run of consecutive tokens of one sequence, for every layer: k[l] and v[l]
/// are [n_kv_heads, length, head_dim] tensors in the model's compute dtype on its device
/// (keys after RoPE, at the tokens' absolute positions). A default-constructed segment is
/// empty (no layers, length 0).
struct KVSegment {
  std::vector<at::Tensor> k, v;

  /// Number of tokens (0 when empty).
  std::int64_t length() const;
  /// Bytes held by the K and V tensors (their own elements; views count their extent).
  std::size_t nbytes() const;
  /// Tokens [start, start+len) of this segment as views (no copy). InvalidArgument when
  /// the range is out of bounds.
  KVSegment slice(std::int64_t start, std::int64_t len) const;
  /// Concatenation of segments, in order, as one new contiguous segment (copies).
  static KVSegment concat(std::span<const KVSegment* const> parts);
};

/// One sequence of a batched forward.
struct SequenceInput {
  /// Past KV of the sequence as consecutive segments, in token order (non-owning: they
  /// must outlive the call). Empty segments are skipped. Every non-empty one must have the
  /// model's layer count and [n_kv_heads, len, head_dim] shapes on the model's device.
  std::vector<const KVSegment*> past;
  /// New token ids (at least one).
  std::vector<std::int64_t> tokens;
  /// Absolute position of tokens[0]; -1 means the total past length (the usual case).
  std::int64_t position = -1;
};

/// Which logits a forward returns.
enum class LogitsMode {
  None,  ///< no logits (e.g. a token-classification model, or prefill only)
  Last,  ///< the last new token's logits: [1, vocab]
  All,   ///< every new token's logits: [T_new, vocab]
};

/// How the batch's past KV is laid out for attention (the results are identical).
enum class PastAssembly {
  Auto,    ///< Copy on CPU; Gather on CUDA when there are more than two past segments
  Copy,    ///< one copy per (sequence, segment, layer): least memory traffic
  Gather,  ///< per layer, one cat of the distinct segments and one index_select: O(1)
           ///< kernel launches however many segments (and shared segments are read once)
};

struct ForwardOptions {
  LogitsMode logits = LogitsMode::Last;
  /// Also return the final (normed) hidden states [T_new, hidden] in the compute dtype.
  bool hidden = false;
  /// true: each sequence's new KV is its own contiguous tensor (one clone per sequence and
  /// layer). false: views into the batch's per-layer K/V tensors (no copies, but a view
  /// keeps the whole batch's new-token KV alive): for decode loops that consolidate the
  /// tokens of a step themselves (KVSegment::concat) before storing them.
  bool copy_kv = true;
  PastAssembly past = PastAssembly::Auto;
};

/// One sequence's results.
struct SequenceOutput {
  /// The new tokens' KV: per layer [n_kv_heads, T_new, head_dim]. With
  /// ForwardOptions::copy_kv (the default) contiguous and owning its memory (not a view
  /// into the batch), ready to be stored as a new segment.
  KVSegment kv;
  /// float32 on the model device: [T_new, vocab] (All) or [1, vocab] (Last); undefined
  /// for LogitsMode::None.
  at::Tensor logits;
  /// [T_new, hidden] after the final RMSNorm (compute dtype, model device) when
  /// ForwardOptions::hidden, else undefined. `score(hidden)` gives the token-class scores.
  at::Tensor hidden;
};

/// A loaded Llama-family decoder (LlamaForCausalLM, Qwen2ForCausalLM and their
/// ForTokenClassification variants).
class LlamaModel {
 public:
  /// Loads `dir`/config.json and the safetensors weights (model.safetensors or shards),
  /// checking every tensor's shape against the config. ParseError naming the file and the
  /// tensor for a missing or mis-shaped tensor, or the config field for an unsupported
  /// architecture or rope_scaling type; InvalidArgument for a bad device; Error when CUDA
  /// is requested but not available.
  static std::shared_ptr<LlamaModel> load(const std::string& dir, const LoadOptions& options = {});

  const hf::ModelConfig& config() const { return config_; }
  const std::string& dir() const { return dir_; }
  /// The device holding the weights (with its index: "cuda" loads as cuda:<current>).
  at::Device device() const { return device_; }
  /// The compute dtype (float32 on CPU).
  at::ScalarType dtype() const { return dtype_; }
  /// True for *ForCausalLM (lm_head.weight, or the tied embedding).
  bool has_lm_head() const { return lm_head_.defined(); }
  /// True for *ForTokenClassification (score.weight [num_labels, hidden]).
  bool has_score_head() const { return score_w_.defined(); }
  int num_layers() const { return config_.num_hidden_layers; }
  int num_kv_heads() const { return config_.num_key_value_heads; }
  int head_dim() const { return config_.head_dim; }
  /// Bytes of KV one token takes (all layers, K and V).
  std::size_t kv_bytes_per_token() const;
  /// Bytes held by the weights.
  std::size_t weight_bytes() const;

  /// The batched, ragged, cached forward. Sequences are padded to the batch's longest
  /// past and longest new run and attend under an explicit additive mask (causal among
  /// the new tokens, full over the real past, -inf over padding). InvalidArgument naming
  /// the sequence for an empty token list, an out-of-range token id, a negative position,
  /// a malformed segment, or logits asked of a model without an lm_head.
  std::vector<SequenceOutput> forward(std::span<const SequenceInput> batch,
                                      const ForwardOptions& options = {}) const;

  /// Every position's logits of one uncached sequence: float32 [T, vocab] on the model
  /// device.
  at::Tensor forward_tokens(std::span<const std::int64_t> tokens) const;
  /// Final hidden states [T, hidden] of one uncached sequence (compute dtype, device).
  at::Tensor hidden_states(std::span<const std::int64_t> tokens) const;
  /// The token-classification head: score(hidden) as float32 [..., num_labels] (bias
  /// added when the checkpoint has score.bias). InvalidArgument without a score head.
  at::Tensor score(const at::Tensor& hidden) const;
  /// The language-model head: float32 [..., vocab]. InvalidArgument without an lm_head.
  at::Tensor lm_logits(const at::Tensor& hidden) const;

 private:
  struct Layer {
    at::Tensor input_norm, post_norm;
    at::Tensor wq, wk, wv, wo, bq, bk, bv, bo;
    at::Tensor w_gate, w_up, w_down, b_gate, b_up, b_down;
  };

  LlamaModel() = default;
  at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& w) const;

  hf::ModelConfig config_;
  std::string dir_;
  at::Device device_{at::kCPU};
  at::ScalarType dtype_ = at::kFloat;
  at::Tensor embed_;  // [vocab, hidden]
  std::vector<Layer> layers_;
  at::Tensor norm_;
  at::Tensor lm_head_;  // [vocab, hidden]; the embedding when tied; undefined for token cls
  at::Tensor score_w_, score_b_;
  at::Tensor inv_freq_;  // float32 [head_dim/2] on the device
};

}  // namespace qstar::lm
