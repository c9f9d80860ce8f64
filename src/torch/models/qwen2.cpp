// The qwen2 family: the Llama-style decoder with biases on q_proj, k_proj and v_proj (none
// on o_proj or the MLP), as HF `modeling_qwen2.py`. Sliding-window attention applies as
// transformers' Qwen2 resolves it: only with use_sliding_window true, on the layers
// i >= max_window_layers or those layer_types names "sliding_attention" (hf/config.hpp).
#include "torch/models/llama.hpp"

namespace qstar::lm {

DecoderFamily qwen2_family() {
  DecoderFamily f;
  f.name = "qwen2";
  f.model_types = {"qwen2"};
  f.architectures = {"Qwen2ForCausalLM",           "Qwen2ForTokenClassification", "Qwen2ForSequenceClassification",
                     "Qwen2ForProcessRewardModel", "Qwen2ForRewardModel",         "Qwen2ForPrmModel"};
  f.load = [](const hf::ModelConfig& cfg, const std::string& dir, const LoadOptions& options) {
    LlamaLayout layout;
    layout.qkv_bias = true;
    return std::shared_ptr<Decoder>(LlamaDecoder::load(cfg, dir, options, layout, "qwen2"));
  };
  return f;
}

}  // namespace qstar::lm
