// The mistral family (HF `modeling_mistral.py`): the Llama layout without any bias, head_dim
// from config.json when given (Mistral-Nemo: 128 with hidden 5120 and 32 heads), and every
// layer attending over a sliding window of "sliding_window" tokens (absent: 4096,
// transformers' default; null: full attention; hf/config.hpp), cached decoding included.
#include "torch/models/llama.hpp"

namespace qstar::lm {

DecoderFamily mistral_family() {
  DecoderFamily f;
  f.name = "mistral";
  f.model_types = {"mistral"};
  f.architectures = {"MistralForCausalLM", "MistralForTokenClassification", "MistralForSequenceClassification"};
  f.load = [](const hf::ModelConfig& cfg, const std::string& dir, const LoadOptions& options) {
    return std::shared_ptr<Decoder>(LlamaDecoder::load(cfg, dir, options, LlamaLayout{}, "mistral"));
  };
  return f;
}

}  // namespace qstar::lm
