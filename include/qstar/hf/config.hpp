// config.json of a Hugging Face Llama / Qwen2 / Qwen3 / Mistral model folder (transformers 4.x
// and 5.x layouts).
//
// from_json / from_file parse the fields below and then call validate(), so a returned config
// is always valid. Every error is a qstar::ParseError whose message starts with the source
// (the file path) and names the field, e.g.
//   config.json: field "hidden_size" is missing
//   config.json: architectures[0] "GPT2LMHeadModel" is not supported (LlamaForCausalLM, ...)
// from_file throws IoError naming the file when it cannot be read.
//
// Accepted layouts:
//  * rope_theta: top-level "rope_theta" (4.x) or "rope_parameters": {"rope_theta": ...} (5.x);
//    when both are given, rope_parameters wins. Default 10000.
//  * RoPE scaling: "rope_scaling" {"rope_type"|"type": ...} (4.x) or rope_parameters'
//    "rope_type" (5.x); "default" and null mean none (rope_scaling_type empty). Types linear,
//    dynamic, yarn and llama3 with their transformers fields (rope_* below); any other type is
//    a ParseError naming the file and the type. partial_rotary_factor must be 1.
//  * Attention windows, as transformers' configs resolve them: mistral slides every layer over
//    "sliding_window" (absent: 4096, transformers' default; null: none); qwen2 / qwen3 slide
//    only when "use_sliding_window" is true, the layers i >= "max_window_layers" (default 28),
//    or those "layer_types" names "sliding_attention"; llama never slides.
//  * dtype: "dtype" (5.x) or "torch_dtype" (4.x).
//  * num_labels: the size of "id2label" when present (transformers keeps id2label when the
//    two disagree), else "num_labels", else 2 for the classification / process-reward heads
//    and 0 for a causal LM; 1 for Qwen2ForRewardModel and Qwen2ForPrmModel (scalar heads).
//  * "architectures" absent or empty: inferred from model_type as the causal LM.
//  * A field given as null is treated as absent.
//
// No LibTorch here: this header is plain C++20.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace qstar::hf {

struct ModelConfig {
  /// First of "architectures": "<Family>ForCausalLM" or "<Family>ForTokenClassification"
  /// with Family Llama, Qwen2, Qwen3 or Mistral.
  std::string architecture;
  std::string model_type;  ///< "llama" | "qwen2" | "qwen3" | "mistral"
  int vocab_size = 0, hidden_size = 0, intermediate_size = 0, num_hidden_layers = 0;
  int num_attention_heads = 0, num_key_value_heads = 0;  ///< kv heads default to attention heads
  int head_dim = 0;  ///< default hidden_size / num_attention_heads (qwen3: 128, as transformers)
  double rms_norm_eps = 1e-6, rope_theta = 10000.0;
  int max_position_embeddings = 2048;
  bool tie_word_embeddings = false;
  bool attention_bias = false;  ///< llama / qwen3 "attention_bias"; qwen2: always true (q/k/v
                                ///< only); mistral: always false
  bool mlp_bias = false;
  /// The score head's output count: id2label's size, else "num_labels", else 2 for the
  /// classification heads and Qwen2ForProcessRewardModel; always 1 for Qwen2ForRewardModel and
  /// Qwen2ForPrmModel; 0 for a causal LM.
  int num_labels = 0;
  std::optional<int> bos_token_id;
  std::vector<int> eos_token_ids;  ///< "eos_token_id": an int or a list
  std::string torch_dtype;         ///< "float32", "bfloat16", ... when given
  std::string rope_scaling_type;   ///< empty when none; linear, dynamic, yarn or llama3

  // ---- additions ----
  std::string hidden_act = "silu";   ///< validate() accepts only "silu" (SwiGLU)
  bool head_dim_given = false;       ///< "head_dim" was in the file
  bool use_sliding_window = false;   ///< qwen2 / qwen3 "use_sliding_window"
  std::optional<int> pad_token_id;
  std::string source = "config.json";  ///< the file named in error messages

  // ---- RoPE scaling (rope_scaling / rope_parameters; transformers' modeling_rope_utils) ----
  std::optional<double> rope_factor;       ///< "factor": linear, dynamic, llama3 (required), yarn
  std::optional<double> rope_low_freq_factor, rope_high_freq_factor;  ///< llama3 (required)
  /// llama3 / yarn "original_max_position_embeddings" (a top-level one wins, as transformers
  /// 5.x); default max_position_embeddings.
  int rope_original_max_position_embeddings = 0;
  std::optional<double> rope_attention_factor;             ///< yarn; default from factor/mscale
  std::optional<double> rope_beta_fast, rope_beta_slow;    ///< yarn; default 32 / 1
  std::optional<double> rope_mscale, rope_mscale_all_dim;  ///< yarn (DeepSeek style)
  bool rope_truncate = true;            ///< yarn: floor/ceil the correction range
  double partial_rotary_factor = 1.0;   ///< validate() accepts only 1

  // ---- attention windows ----
  std::optional<int> sliding_window;     ///< the effective window (null: no layer slides)
  int max_window_layers = 28;            ///< qwen2 / qwen3 "max_window_layers"
  /// Per layer "full_attention" or "sliding_attention", as config.json gives it (mistral,
  /// qwen2, qwen3); empty: the family's rule (mistral: all layers; qwen2 / qwen3: layers
  /// >= max_window_layers) when there is a window.
  std::vector<std::string> layer_types;
  /// Layer `layer`'s window: a key j is seen by query i when 0 <= i - j < window (in cache
  /// order); 0 = full causal attention (no window, or a full layer).
  int sliding_window_of(int layer) const;

  /// What sits on the decoder's final hidden states, from the architecture.
  enum class Head {
    CausalLM,                ///< *ForCausalLM: lm_head (or the tied embedding)
    TokenClassification,     ///< *ForTokenClassification: `score` Linear(h, num_labels)
    SequenceClassification,  ///< *ForSequenceClassification: `score` Linear(h, num_labels, no bias)
    ProcessReward,           ///< Qwen2ForProcessRewardModel: score.0 Linear(h,h), ReLU, score.2 Linear(h, num_labels)
    Reward,                  ///< Qwen2ForRewardModel: the same with one output
    ValueHead,               ///< Qwen2ForPrmModel (Skywork PRM): v_head.summary Linear(h, 1)
  };
  Head head() const;
  /// True for every head but CausalLM (a `score`-like head whose raw outputs score() gives).
  bool has_score_head() const;
  /// True for the *ForTokenClassification architectures.
  bool is_token_classification() const;
  /// True for the *ForSequenceClassification architectures.
  bool is_sequence_classification() const;
  /// True for the *ForCausalLM architectures.
  bool is_causal_lm() const;

  /// Reads, parses and validates `path` (IoError when unreadable, ParseError otherwise).
  static ModelConfig from_file(const std::string& path);
  /// Parses and validates `text`; `source` names it in errors.
  static ModelConfig from_json(std::string_view text, std::string_view source = "config.json");
  /// Positive sizes, heads divide the hidden size (unless head_dim is given), kv heads divide
  /// heads, known architecture and model_type, silu activation, positive finite eps/theta,
  /// num_labels >= 1 for token classification, a known RoPE type with its fields, windows
  /// consistent with layer_types. ParseError naming `source` and the field.
  void validate() const;

 private:
  void validate_rope() const;
  void validate_windows() const;
};

}  // namespace qstar::hf
