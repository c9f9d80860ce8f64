// Writing Hugging Face model folders: config.json, model.safetensors and a character-level
// tokenizer.json, for a Llama causal LM (LlamaForCausalLM) or a token-classification model
// (LlamaForTokenClassification). The folders use transformers' key names and config
// fields, so both qstar's loader (LanguageModel, LMGenerator, PrmVerifier) and HF
// transformers can read them. Random initialisation from a seed (HF's: normal(0,
// initializer_range) for embeddings and linear weights, ones for RMSNorm weights).
// No LibTorch here (plain C++20; the writer is in src/hf/model_io.cpp).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "qstar/hf/config.hpp"

namespace qstar::hf {

/// The shape of a Llama model to create. validate() throws InvalidArgument naming the field.
struct ModelSpec {
  /// "LlamaForCausalLM" or "LlamaForTokenClassification".
  std::string architecture = "LlamaForCausalLM";
  /// Tokens in the vocabulary (>= 1; the tokenizer's size).
  int vocab_size = 0;
  /// Width of the residual stream (> 0, a multiple of num_attention_heads).
  int hidden_size = 128;
  /// Width of the SwiGLU MLP (> 0).
  int intermediate_size = 256;
  /// Decoder layers (> 0).
  int num_hidden_layers = 4;
  /// Query heads (> 0, divides hidden_size; head_dim = hidden_size / heads must be even).
  int num_attention_heads = 4;
  /// Key/value heads (> 0, divides num_attention_heads; fewer than the query heads is GQA).
  int num_key_value_heads = 2;
  /// Longest sequence the config declares (> 0).
  int max_position_embeddings = 512;
  /// RoPE base (> 0).
  double rope_theta = 10000.0;
  /// RMSNorm epsilon (> 0).
  double rms_norm_eps = 1e-6;
  /// Standard deviation of the random initialisation (>= 0).
  double initializer_range = 0.02;
  /// Causal LM only: the output head is the token embedding (no lm_head.weight).
  bool tie_word_embeddings = false;
  /// Token classification only: labels of the `score` head (>= 1; a PRM uses 1).
  int num_labels = 1;
  /// Written to config.json when set.
  std::optional<int> bos_token_id{}, eos_token_id{}, pad_token_id{};

  bool is_token_classification() const { return architecture == "LlamaForTokenClassification"; }
  void validate() const;
  /// The config.json text (transformers 4.x layout, "torch_dtype": "float32").
  std::string config_json() const;
  /// The parsed, validated ModelConfig of config_json().
  ModelConfig to_config() const;
  /// Parameter count (the tensors of expected_tensors()).
  std::int64_t num_parameters() const;
};

/// A float32 tensor in row-major order.
struct NamedTensor {
  std::string name;
  std::vector<std::int64_t> shape;
  std::vector<float> data;
};

/// The tensor names and shapes a folder of `spec` holds, in the order they are written:
/// model.embed_tokens.weight, then per layer input_layernorm, self_attn.{q,k,v,o}_proj,
/// post_attention_layernorm, mlp.{gate,up,down}_proj, then model.norm.weight, then
/// lm_head.weight (untied causal LM) or score.weight (token classification). Data empty.
std::vector<NamedTensor> expected_tensors(const ModelSpec& spec);

/// expected_tensors() filled with a seeded random initialisation (deterministic for the
/// seed on every platform: qstar::Rng and Box-Muller).
std::vector<NamedTensor> init_weights(const ModelSpec& spec, std::uint64_t seed);

/// A character-level tokenizer.json: a WordLevel model with "<unk>" as id 0 and one token
/// per byte of `chars` (ASCII; duplicates are ignored) in order, a pre-tokenizer that
/// splits every character, the Fuse decoder and no normaliser or post-processor, so the
/// ids of a text are its characters' ids (unknown ones -> <unk>). InvalidArgument for an
/// empty or non-ASCII `chars`.
std::string char_tokenizer_json(std::string_view chars);
/// A word-level tokenizer.json for arithmetic text: a WordLevel model and a Split
/// pre-tokenizer (regex word_tokenizer_pattern(), Isolated) that cuts the text into numbers
/// of up to three digits, runs of letters and single other characters, each with the one
/// space before it if there is one (" 10", " +", "(", "left", ":"). The vocabulary is
/// "<unk>" (id 0), every byte of `chars` (its visible non-alphanumeric ones also after a
/// space), the numbers 0..max_number with and without a space, and every word of `words`
/// with and without a space; anything else becomes <unk>. The Fuse decoder joins tokens
/// back, so decode(encode(t)) == t for every text made of known pieces. An arithmetic step
/// ("12 + 34 = 46") is 5 tokens instead of 12 characters, and every number up to
/// max_number is one token. InvalidArgument for an empty or non-ASCII `chars`, max_number
/// outside 0..999 or a word that is not letters.
std::string word_tokenizer_json(std::string_view chars, std::span<const std::string> words,
                                int max_number);
/// The pre-tokenizer regex of word_tokenizer_json().
std::string_view word_tokenizer_pattern();

/// Writes `dir` (created if missing): config.json from `spec`, model.safetensors with
/// `tensors` (float32, in the given order, `metadata` in its header plus "format": "pt"),
/// and tokenizer.json with `tokenizer_json` (skipped when empty). InvalidArgument naming the
/// tensor when the tensors are not exactly expected_tensors(spec) by name and shape (or
/// data sizes do not match); IoError naming the file when writing fails.
void write_model_folder(const std::string& dir, const ModelSpec& spec,
                        std::span<const NamedTensor> tensors, const std::string& tokenizer_json,
                        const std::map<std::string, std::string>& metadata = {});

/// Reads a model folder's config.json back as a ModelSpec (Llama causal LM or token
/// classification). ParseError naming the file for other architectures or fields it cannot
/// express (biases, Qwen2).
ModelSpec read_model_spec(const std::string& dir);

/// Reads every tensor of `dir`/model.safetensors (or shards) as float32, in
/// expected_tensors(read_model_spec(dir)) order. ParseError naming the tensor when one is
/// missing or mis-shaped.
std::vector<NamedTensor> read_model_tensors(const std::string& dir);

}  // namespace qstar::hf
