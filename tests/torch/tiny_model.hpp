// Tiny random-weight Llama/Qwen2 model folders for the LibTorch tests: config.json,
// model.safetensors (float32, seeded) and a character-level tokenizer.json (WordLevel, one
// token per code point, Fuse decoder, plus Math-Shepherd's " ки" tag as an added token).
#pragma once

#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "qstar/torch/safetensors.hpp"

namespace tiny {

namespace fs = std::filesystem;
using qstar::lm::DType;
using qstar::lm::TensorToWrite;
using qstar::lm::write_safetensors;

/// A temporary directory removed with its contents on destruction.
class TempDir {
 public:
  TempDir() {
    static int counter = 0;
    std::random_device rd;
    path_ = fs::temp_directory_path() / ("qstar_test_" + std::to_string(::getpid()) + "_" +
                                         std::to_string(counter++) + "_" +
                                         std::to_string(rd() % 100000));
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string str() const { return path_.string(); }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  fs::path path_;
};

// A character vocabulary (WordLevel, one token per code point, Fuse decoder) plus the
// added token " ки" (Math-Shepherd's tag) as one token.
inline const char* const kChars = " \n+-=*/()?:#0123456789abcdefghijklmnopqrstuvwxyz";

inline std::string json_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '\n') o += "\\n";
    else if (c == '"') o += "\\\"";
    else if (c == '\\') o += "\\\\";
    else o += c;
  }
  return o;
}

inline void write_tokenizer(const std::string& path, bool with_ki = true) {
  std::ostringstream v;
  v << "{\"<unk>\": 0";
  int id = 1;
  for (const char* c = kChars; *c; ++c) v << ", \"" << json_escape(std::string(1, *c)) << "\": " << id++;
  v << "}";
  std::ostringstream t;
  t << "{\"version\": \"1.0\", \"added_tokens\": [";
  if (with_ki)
    t << "{\"id\": " << id
      << ", \"content\": \" ки\", \"single_word\": false, \"lstrip\": false, \"rstrip\": false, "
         "\"normalized\": false, \"special\": false}";
  t << "], \"normalizer\": null,"
       " \"pre_tokenizer\": {\"type\": \"Split\", \"pattern\": {\"Regex\": \"[\\\\s\\\\S]\"}, "
       "\"behavior\": \"Isolated\", \"invert\": false},"
       " \"post_processor\": null, \"decoder\": {\"type\": \"Fuse\"},"
       " \"model\": {\"type\": \"WordLevel\", \"vocab\": "
    << v.str() << ", \"unk_token\": \"<unk>\"}}";
  std::ofstream(path) << t.str();
}

struct Spec {
  std::string arch = "LlamaForCausalLM";
  std::string model_type = "llama";
  int hidden = 32, inter = 64, layers = 2, heads = 4, kv = 2, vocab = 64;
  int num_labels = 0;  // > 0: token classification
  bool tie = false;
};

inline Spec causal_llama() { return Spec{}; }
inline Spec causal_qwen2() {
  Spec s;
  s.arch = "Qwen2ForCausalLM";
  s.model_type = "qwen2";
  s.tie = true;
  return s;
}
inline Spec token_class(const std::string& family, int labels) {
  Spec s;
  s.model_type = family;
  s.arch = family == "qwen2" ? "Qwen2ForTokenClassification" : "LlamaForTokenClassification";
  s.num_labels = labels;
  return s;
}

// config.json + model.safetensors (random float32 weights) + tokenizer.json.
inline void write_model(const std::string& dir, const Spec& s, unsigned seed, bool tokenizer = true) {
  const std::int64_t D = s.hidden, I = s.inter, V = s.vocab, hd = s.hidden / s.heads;
  const std::int64_t H = s.heads, KV = s.kv;
  const bool qwen2 = s.model_type == "qwen2";
  struct T {
    std::string name;
    std::vector<std::int64_t> shape;
    char kind;
  };
  std::vector<T> ts;
  ts.push_back({"model.embed_tokens.weight", {V, D}, 'e'});
  for (int i = 0; i < s.layers; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    ts.push_back({p + "input_layernorm.weight", {D}, 'n'});
    ts.push_back({p + "self_attn.q_proj.weight", {H * hd, D}, 'w'});
    ts.push_back({p + "self_attn.k_proj.weight", {KV * hd, D}, 'w'});
    ts.push_back({p + "self_attn.v_proj.weight", {KV * hd, D}, 'w'});
    if (qwen2) {
      ts.push_back({p + "self_attn.q_proj.bias", {H * hd}, 'b'});
      ts.push_back({p + "self_attn.k_proj.bias", {KV * hd}, 'b'});
      ts.push_back({p + "self_attn.v_proj.bias", {KV * hd}, 'b'});
    }
    ts.push_back({p + "self_attn.o_proj.weight", {D, H * hd}, 'w'});
    ts.push_back({p + "post_attention_layernorm.weight", {D}, 'n'});
    ts.push_back({p + "mlp.gate_proj.weight", {I, D}, 'w'});
    ts.push_back({p + "mlp.up_proj.weight", {I, D}, 'w'});
    ts.push_back({p + "mlp.down_proj.weight", {D, I}, 'w'});
  }
  ts.push_back({"model.norm.weight", {D}, 'n'});
  if (s.num_labels > 0) {
    ts.push_back({"score.weight", {s.num_labels, D}, 'w'});
  } else if (!s.tie) {
    ts.push_back({"lm_head.weight", {V, D}, 'w'});
  }
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<std::vector<float>> data;
  data.reserve(ts.size());
  std::vector<TensorToWrite> out;
  for (const auto& t : ts) {
    std::int64_t n = 1;
    for (auto d : t.shape) n *= d;
    std::vector<float> v(static_cast<std::size_t>(n));
    const float fan_in = t.shape.size() == 2 ? static_cast<float>(t.shape[1]) : 1.0f;
    for (auto& x : v) {
      const float z = normal(rng);
      x = t.kind == 'e' ? z : t.kind == 'w' ? 2.0f * z / std::sqrt(fan_in)
                          : t.kind == 'n'   ? 1.0f + 0.2f * z
                                            : 0.2f * z;
    }
    data.push_back(std::move(v));
    const auto& d = data.back();
    out.push_back({t.name, DType::F32, t.shape,
                   std::span<const std::byte>(reinterpret_cast<const std::byte*>(d.data()),
                                              d.size() * sizeof(float))});
  }
  write_safetensors(dir + "/model.safetensors", out, {{"format", "pt"}});
  std::ostringstream c;
  c << "{\"architectures\": [\"" << s.arch << "\"], \"model_type\": \"" << s.model_type
    << "\", \"vocab_size\": " << V << ", \"hidden_size\": " << D
    << ", \"intermediate_size\": " << I << ", \"num_hidden_layers\": " << s.layers
    << ", \"num_attention_heads\": " << H << ", \"num_key_value_heads\": " << KV
    << ", \"rms_norm_eps\": 1e-06, \"rope_theta\": 10000.0, \"max_position_embeddings\": 512,"
       " \"hidden_act\": \"silu\", \"tie_word_embeddings\": "
    << (s.tie ? "true" : "false") << ", \"torch_dtype\": \"float32\"";
  if (s.num_labels > 0) {
    c << ", \"id2label\": {";
    for (int i = 0; i < s.num_labels; ++i)
      c << (i ? ", " : "") << "\"" << i << "\": \"LABEL_" << i << "\"";
    c << "}";
  }
  c << "}\n";
  std::ofstream(dir + "/config.json") << c.str();
  if (tokenizer) write_tokenizer(dir + "/tokenizer.json");
}

}  // namespace tiny
