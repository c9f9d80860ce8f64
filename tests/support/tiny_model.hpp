// Tiny random-weight Llama/Qwen2/Qwen3/Mistral model folders for the LibTorch tests: config.json,
// model.safetensors (float32, seeded) and a character-level tokenizer.json (WordLevel, one
// token per code point, Fuse decoder, plus Math-Shepherd's " ки" tag as an added token).
#pragma once

#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "qstar/hf/safetensors.hpp"

namespace tiny {

namespace fs = std::filesystem;
using qstar::hf::DType;
using qstar::hf::TensorToWrite;
using qstar::hf::write_safetensors;

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

/// The tensors of a Llama / Qwen2 / Qwen3 / Mistral folder, by name, shape and kind, in the order the test
/// writers draw their random values (so a writer's weights depend only on its seed).
struct Layout {
  int hidden = 32, inter = 64, layers = 2, heads = 4, kv = 2, vocab = 64;
  int num_labels = 0;            // > 0: token classification (score.weight)
  bool tie = false;              // causal LM: no lm_head.weight
  bool write_head = true;        // causal LM, untied: write lm_head.weight
  bool qkv_bias = false;         // q/k/v_proj.bias (Qwen2, or Llama attention_bias)
  bool o_bias = false;           // o_proj.bias (Llama attention_bias)
  bool mlp_bias = false;         // gate/up/down_proj.bias (Llama mlp_bias)
  bool score_bias = false;       // score.bias
  int head_dim = 0;              // > 0: config's head_dim (else hidden / heads)
  bool qk_norm = false;          // self_attn.q_norm / k_norm [head_dim] (Qwen3)
};

/// Kinds: 'e' embedding, 'n' norm, 'w' q/k/v/gate/up weight, 'o' o_proj/down_proj weight,
/// 'b' bias, 'h' lm_head, 's' score.
struct TensorSpec {
  std::string name;
  std::vector<std::int64_t> shape;
  char kind;
};

inline std::vector<TensorSpec> tensor_layout(const Layout& s) {
  const std::int64_t D = s.hidden, I = s.inter, V = s.vocab, H = s.heads, KV = s.kv;
  const std::int64_t hd = s.head_dim > 0 ? s.head_dim : D / H;
  std::vector<TensorSpec> ts;
  ts.push_back({"model.embed_tokens.weight", {V, D}, 'e'});
  for (int i = 0; i < s.layers; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    ts.push_back({p + "input_layernorm.weight", {D}, 'n'});
    ts.push_back({p + "self_attn.q_proj.weight", {H * hd, D}, 'w'});
    ts.push_back({p + "self_attn.k_proj.weight", {KV * hd, D}, 'w'});
    ts.push_back({p + "self_attn.v_proj.weight", {KV * hd, D}, 'w'});
    if (s.qkv_bias) {
      ts.push_back({p + "self_attn.q_proj.bias", {H * hd}, 'b'});
      ts.push_back({p + "self_attn.k_proj.bias", {KV * hd}, 'b'});
      ts.push_back({p + "self_attn.v_proj.bias", {KV * hd}, 'b'});
    }
    if (s.qk_norm) {
      ts.push_back({p + "self_attn.q_norm.weight", {hd}, 'n'});
      ts.push_back({p + "self_attn.k_norm.weight", {hd}, 'n'});
    }
    ts.push_back({p + "self_attn.o_proj.weight", {D, H * hd}, 'o'});
    if (s.o_bias) ts.push_back({p + "self_attn.o_proj.bias", {D}, 'b'});
    ts.push_back({p + "post_attention_layernorm.weight", {D}, 'n'});
    ts.push_back({p + "mlp.gate_proj.weight", {I, D}, 'w'});
    ts.push_back({p + "mlp.up_proj.weight", {I, D}, 'w'});
    ts.push_back({p + "mlp.down_proj.weight", {D, I}, 'o'});
    if (s.mlp_bias) {
      ts.push_back({p + "mlp.gate_proj.bias", {I}, 'b'});
      ts.push_back({p + "mlp.up_proj.bias", {I}, 'b'});
      ts.push_back({p + "mlp.down_proj.bias", {D}, 'b'});
    }
  }
  ts.push_back({"model.norm.weight", {D}, 'n'});
  if (s.num_labels > 0) {
    ts.push_back({"score.weight", {s.num_labels, D}, 's'});
    if (s.score_bias) ts.push_back({"score.bias", {s.num_labels}, 'b'});
  } else if (!s.tie && s.write_head) {
    ts.push_back({"lm_head.weight", {V, D}, 'h'});
  }
  return ts;
}

/// A tensor's value from one standard-normal draw z: fill(tensor, element index, z, fan_in).
using Fill = std::function<float(const TensorSpec&, std::size_t, float, float)>;

/// The tests' usual fill: embeddings z, norms 1 + 0.2 z, biases 0.2 z, matrices
/// gain * z / sqrt(fan_in).
inline Fill standard_fill(float gain = 1.0f) {
  return [gain](const TensorSpec& t, std::size_t, float z, float fan_in) {
    switch (t.kind) {
      case 'e': return z;
      case 'n': return 1.0f + 0.2f * z;
      case 'b': return 0.2f * z;
      default: return gain * z / std::sqrt(fan_in);
    }
  };
}

/// Writes `path` (a .safetensors file): each tensor of `ts` in order, every element one
/// draw of a std::mt19937(seed) standard normal mapped through `fill`, then `post` (if set)
/// may edit a tensor's values.
inline void write_weights(const std::string& path, const std::vector<TensorSpec>& ts, unsigned seed,
                          const Fill& fill,
                          const std::function<void(const TensorSpec&, std::vector<float>&)>& post = {}) {
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
    for (std::size_t i = 0; i < v.size(); ++i) v[i] = fill(t, i, normal(rng), fan_in);
    if (post) post(t, v);
    data.push_back(std::move(v));
    const auto& d = data.back();
    out.push_back({t.name, DType::F32, t.shape,
                   std::span<const std::byte>(reinterpret_cast<const std::byte*>(d.data()),
                                              d.size() * sizeof(float))});
  }
  write_safetensors(path, out, {{"format", "pt"}});
}

/// The config.json fields every writer shares (no braces): architectures, model_type, the
/// sizes, rms_norm_eps 1e-6, hidden_act silu, tie_word_embeddings, torch_dtype float32, and
/// id2label when num_labels > 0.
inline std::string config_fields(const std::string& arch, const std::string& model_type,
                                 const Layout& s, double rope_theta, int max_positions) {
  std::ostringstream c;
  c.precision(17);
  c << "\"architectures\": [\"" << arch << "\"], \"model_type\": \"" << model_type
    << "\", \"vocab_size\": " << s.vocab << ", \"hidden_size\": " << s.hidden
    << ", \"intermediate_size\": " << s.inter << ", \"num_hidden_layers\": " << s.layers
    << ", \"num_attention_heads\": " << s.heads << ", \"num_key_value_heads\": " << s.kv
    << ", \"rms_norm_eps\": 1e-06, \"rope_theta\": ";
  if (rope_theta == std::floor(rope_theta) && std::fabs(rope_theta) < 1e15)
    c << static_cast<long long>(rope_theta) << ".0";  // "10000.0", as transformers writes it
  else
    c << rope_theta;
  c << ", \"max_position_embeddings\": " << max_positions
    << ", \"hidden_act\": \"silu\", \"tie_word_embeddings\": " << (s.tie ? "true" : "false")
    << ", \"torch_dtype\": \"float32\"";
  if (s.num_labels > 0) {
    c << ", \"id2label\": {";
    for (int i = 0; i < s.num_labels; ++i) c << (i ? ", " : "") << "\"" << i << "\": \"LABEL_" << i << "\"";
    c << "}";
  }
  return c.str();
}

/// A Llama causal LM folder for sampling tests: random weights (seeded) in which token id
/// gets a logit bias of about `biases[id]` nats (every embedding carries 3.0 on hidden dim
/// 0 and lm_head's dim-0 column, zero elsewhere, reads it), and a WordLevel tokenizer over
/// `vocab` (one token per entry, in order; "<unk>" must be id 0; "</s>" id 1 is a special
/// added token, the EOS).
inline void write_biased_model(const std::string& dir, const Layout& l, unsigned seed,
                               const std::vector<std::pair<std::size_t, float>>& biases,
                               const std::vector<std::string>& vocab, int max_positions) {
  const auto D = static_cast<std::size_t>(l.hidden);
  write_weights(
      dir + "/model.safetensors", tensor_layout(l), seed,
      [D](const TensorSpec& t, std::size_t i, float z, float fan_in) {
        switch (t.kind) {
          case 'e': return i % D == 0 ? 3.0f : z;
          case 'w': return z / std::sqrt(fan_in);
          case 'o': return 0.5f * z / std::sqrt(fan_in);  // keep the dim-0 signal
          case 'n': return 1.0f + 0.1f * z;
          case 'h': return i % D == 0 ? 0.0f : 1.5f * z / std::sqrt(fan_in);
          default: return z;
        }
      },
      [&](const TensorSpec& t, std::vector<float>& v) {
        if (t.kind == 'h')
          for (const auto& [id, b] : biases) v[id * D] = b;
      });
  std::ofstream(dir + "/config.json") << "{" << config_fields("LlamaForCausalLM", "llama", l, 10000.0, max_positions) << "}";
  std::ostringstream t;
  t << "{\"version\": \"1.0\", \"added_tokens\": [{\"id\": 1, \"content\": \"</s>\", "
       "\"single_word\": false, \"lstrip\": false, \"rstrip\": false, \"normalized\": false, "
       "\"special\": true}], \"normalizer\": null, \"pre_tokenizer\": {\"type\": \"Split\", "
       "\"pattern\": {\"Regex\": \"[\\\\s\\\\S]\"}, \"behavior\": \"Isolated\", \"invert\": "
       "false}, \"post_processor\": null, \"decoder\": {\"type\": \"Fuse\"}, \"model\": "
       "{\"type\": \"WordLevel\", \"unk_token\": \"<unk>\", \"vocab\": {";
  for (std::size_t i = 0; i < vocab.size(); ++i) t << (i ? ", " : "") << "\"" << json_escape(vocab[i]) << "\": " << i;
  t << "}}}";
  std::ofstream(dir + "/tokenizer.json") << t.str();
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
  Layout l;
  l.hidden = s.hidden;
  l.inter = s.inter;
  l.layers = s.layers;
  l.heads = s.heads;
  l.kv = s.kv;
  l.vocab = s.vocab;
  l.num_labels = s.num_labels;
  l.tie = s.tie;
  l.qkv_bias = s.model_type == "qwen2";
  write_weights(dir + "/model.safetensors", tensor_layout(l), seed,
                standard_fill(2.0f));
  std::ofstream(dir + "/config.json") << "{" << config_fields(s.arch, s.model_type, l, 10000.0, 512) << "}\n";
  if (tokenizer) write_tokenizer(dir + "/tokenizer.json");
}

/// A tiny Llama generator (gen/) and a tiny Qwen2 causal-LM PRM (prm/) in one temporary
/// folder, for tests that serve them. The generator's vocabulary lacks the PRM's tag " ки": a
/// text protocol cannot tell a tag inside a step's text from the tag after it.
struct ServedModels {
  TempDir dir;
  std::string gen, prm;
  ServedModels(unsigned gen_seed, unsigned prm_seed) : gen(dir.file("gen")), prm(dir.file("prm")) {
    std::filesystem::create_directories(gen);
    std::filesystem::create_directories(prm);
    write_model(gen, causal_llama(), gen_seed);
    write_model(prm, causal_qwen2(), prm_seed);
    write_tokenizer(gen + "/tokenizer.json", /*with_ki=*/false);
  }
};

}  // namespace tiny
