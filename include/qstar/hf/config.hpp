// config.json of a Hugging Face Llama / Qwen2 model folder (transformers 4.x and 5.x layouts).
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
//    "rope_type" (5.x); "default" and null mean none (rope_scaling_type empty).
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
  /// First of "architectures": "LlamaForCausalLM", "Qwen2ForCausalLM",
  /// "LlamaForTokenClassification" or "Qwen2ForTokenClassification".
  std::string architecture;
  std::string model_type;  ///< "llama" | "qwen2"
  int vocab_size = 0, hidden_size = 0, intermediate_size = 0, num_hidden_layers = 0;
  int num_attention_heads = 0, num_key_value_heads = 0;  ///< kv heads default to attention heads
  int head_dim = 0;                                      ///< default hidden_size / num_attention_heads
  double rms_norm_eps = 1e-6, rope_theta = 10000.0;
  int max_position_embeddings = 2048;
  bool tie_word_embeddings = false;
  bool attention_bias = false;  ///< llama "attention_bias"; qwen2: always true (q/k/v only)
  bool mlp_bias = false;
  /// The score head's output count: id2label's size, else "num_labels", else 2 for the
  /// classification heads and Qwen2ForProcessRewardModel; always 1 for Qwen2ForRewardModel and
  /// Qwen2ForPrmModel; 0 for a causal LM.
  int num_labels = 0;
  std::optional<int> bos_token_id;
  std::vector<int> eos_token_ids;  ///< "eos_token_id": an int or a list
  std::string torch_dtype;         ///< "float32", "bfloat16", ... when given
  std::string rope_scaling_type;   ///< empty when none; the loader rejects unsupported ones

  // ---- additions ----
  std::string hidden_act = "silu";   ///< validate() accepts only "silu" (SwiGLU)
  bool head_dim_given = false;       ///< "head_dim" was in the file
  bool use_sliding_window = false;   ///< qwen2 "use_sliding_window"
  std::optional<int> pad_token_id;
  std::string source = "config.json";  ///< the file named in error messages

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
  /// num_labels >= 1 for token classification. ParseError naming `source` and the field.
  void validate() const;
};

}  // namespace qstar::hf
