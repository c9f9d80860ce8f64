// The qwen3 family (HF `modeling_qwen3.py`): the Llama-style decoder with q_norm / k_norm
// (RMSNorm over head_dim, per head, before RoPE; self_attn.q_norm.weight [head_dim]), biases
// on q/k/v/o only when "attention_bias" is true (default false), none on the MLP, head_dim
// from config.json (transformers' default 128, not hidden / heads), and qwen2's optional
// sliding windows (use_sliding_window, max_window_layers, layer_types; hf/config.hpp).
#include "torch/models/llama.hpp"

namespace qstar::lm {

DecoderFamily qwen3_family() {
  DecoderFamily f;
  f.name = "qwen3";
  f.model_types = {"qwen3"};
  f.architectures = {"Qwen3ForCausalLM", "Qwen3ForTokenClassification", "Qwen3ForSequenceClassification"};
  f.load = [](const hf::ModelConfig& cfg, const std::string& dir, const LoadOptions& options) {
    LlamaLayout layout;
    layout.qkv_bias = cfg.attention_bias;
    layout.o_bias = cfg.attention_bias;
    layout.qk_norm = true;
    return std::shared_ptr<Decoder>(LlamaDecoder::load(cfg, dir, options, layout, "qwen3"));
  };
  return f;
}

}  // namespace qstar::lm
