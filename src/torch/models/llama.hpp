// Internal, torch-typed: the Llama-style decoder (HF `modeling_llama.py` math) that the
// llama, qwen2, qwen3 and mistral families share. A family is a LlamaLayout (which
// projections carry biases, whether q / k are normed) plus its registration; see llama.cpp,
// qwen2.cpp, qwen3.cpp and mistral.cpp.
//
// Math (HF parity): token embedding; per layer x += o_proj(attn(RMSNorm(x))) and
// x += down(silu(gate(h)) * up(h)) with h = RMSNorm(x); final RMSNorm; lm_head (or the tied
// embedding) / a score head (models/heads.hpp). RMSNorm in float32 (cast back, then
// times the weight), Qwen3's q_norm / k_norm (RMSNorm over head_dim, per head, before RoPE),
// RoPE half-split `rotate_half` with inv_freq/cos/sin in float32 (cast to the compute dtype)
// and the scaling types of models/rope.hpp, GQA query head h reads kv head h / n_rep,
// attention scores softmaxed in float32 with an explicit additive mask (models/layers.hpp):
// causal, and on sliding layers (config.sliding_window_of) also key j hidden from query i
// when i - j >= window, in cache order, as transformers' sliding_window_overlay.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "torch/decoder.hpp"
#include "torch/models/heads.hpp"
#include "torch/models/rope.hpp"

namespace qstar::lm {

/// Which linear layers of a Llama-style checkpoint have biases.
struct LlamaLayout {
  bool qkv_bias = false;  ///< q_proj, k_proj, v_proj
  bool o_bias = false;    ///< o_proj
  bool mlp_bias = false;  ///< gate_proj, up_proj, down_proj
  bool qk_norm = false;   ///< self_attn.q_norm / k_norm [head_dim] (Qwen3)
};

class LlamaDecoder final : public Decoder {
 public:
  /// Loads `dir` (config already read and validated) with `layout`, checking every
  /// tensor's shape against the config. `family` names it.
  static std::shared_ptr<LlamaDecoder> load(const hf::ModelConfig& config, const std::string& dir,
                                            const LoadOptions& options, const LlamaLayout& layout,
                                            std::string family);

  bool has_lm_head() const override { return lm_head_.defined(); }
  bool has_score_head() const override { return head_.defined(); }
  std::size_t weight_bytes() const override;
  std::vector<SequenceOutput> forward(std::span<const SequenceInput> batch,
                                      const ForwardOptions& options = {}) const override;
  at::Tensor score(const at::Tensor& hidden) const override;
  at::Tensor lm_logits(const at::Tensor& hidden) const override;

 private:
  struct Layer {
    at::Tensor input_norm, post_norm;
    at::Tensor wq, wk, wv, wo, bq, bk, bv, bo;
    at::Tensor w_gate, w_up, w_down, b_gate, b_up, b_down;
    // int8 storage (LoadOptions::int8): float32 [rows] scales of the int8 matrices above.
    at::Tensor sq, sk, sv, so, s_gate, s_up, s_down;
    at::Tensor q_norm, k_norm;  // [head_dim] when the layout has them
    std::int64_t window = 0;    // sliding window; 0 = full causal attention
  };

  using Decoder::Decoder;

  at::Tensor embed_;  // [vocab, hidden]
  std::vector<Layer> layers_;
  at::Tensor norm_;
  at::Tensor lm_head_;  // [vocab, hidden]; the embedding when tied; undefined with a score head
  at::Tensor lm_head_scale_;  // int8 storage: lm_head_'s row scales (a tied head is quantised apart)
  ScoreHead head_;      // the score head (models/heads.hpp); undefined for a causal LM
  Rope rope_;
};

/// The built-in families (registered by the registry in decoder.cpp).
DecoderFamily llama_family();
DecoderFamily qwen2_family();
DecoderFamily qwen3_family();
DecoderFamily mistral_family();

}  // namespace qstar::lm
