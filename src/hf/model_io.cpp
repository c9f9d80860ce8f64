// Writing Hugging Face Llama model folders (see include/qstar/hf/model_io.hpp).
#include "qstar/hf/model_io.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>

#include "qstar/core/json.hpp"
#include "qstar/core/rng.hpp"
#include "qstar/error.hpp"
#include "qstar/hf/safetensors.hpp"

namespace qstar::hf {

namespace {

void require(bool ok, std::string_view field, const std::string& what) {
  if (!ok) throw InvalidArgument(fmt::format("ModelSpec.{}: {}", field, what));
}

std::string json_str(std::string_view s) { return json::dump(json::Value(s)); }

}  // namespace

void ModelSpec::validate() const {
  require(architecture == "LlamaForCausalLM" || architecture == "LlamaForTokenClassification",
          "architecture",
          fmt::format("'{}' is not LlamaForCausalLM or LlamaForTokenClassification", architecture));
  require(vocab_size >= 1, "vocab_size", fmt::format("must be >= 1, got {}", vocab_size));
  require(hidden_size > 0, "hidden_size", fmt::format("must be > 0, got {}", hidden_size));
  require(intermediate_size > 0, "intermediate_size",
          fmt::format("must be > 0, got {}", intermediate_size));
  require(num_hidden_layers > 0, "num_hidden_layers",
          fmt::format("must be > 0, got {}", num_hidden_layers));
  require(num_attention_heads > 0 && hidden_size % num_attention_heads == 0 &&
              (hidden_size / num_attention_heads) % 2 == 0,
          "num_attention_heads",
          fmt::format("must divide hidden_size {} into an even head_dim, got {}", hidden_size,
                      num_attention_heads));
  require(num_key_value_heads > 0 && num_attention_heads % num_key_value_heads == 0,
          "num_key_value_heads",
          fmt::format("must divide num_attention_heads {}, got {}", num_attention_heads,
                      num_key_value_heads));
  require(max_position_embeddings > 0, "max_position_embeddings",
          fmt::format("must be > 0, got {}", max_position_embeddings));
  require(rope_theta > 0 && std::isfinite(rope_theta), "rope_theta",
          fmt::format("must be finite and > 0, got {}", rope_theta));
  require(rms_norm_eps > 0 && std::isfinite(rms_norm_eps), "rms_norm_eps",
          fmt::format("must be finite and > 0, got {}", rms_norm_eps));
  require(initializer_range >= 0 && std::isfinite(initializer_range), "initializer_range",
          fmt::format("must be finite and >= 0, got {}", initializer_range));
  if (is_token_classification()) {
    require(num_labels >= 1, "num_labels", fmt::format("must be >= 1, got {}", num_labels));
    require(!tie_word_embeddings, "tie_word_embeddings",
            "a token-classification model has no output embedding to tie");
  }
  for (const auto& [name, id] : {std::pair{"bos_token_id", bos_token_id},
                                 std::pair{"eos_token_id", eos_token_id},
                                 std::pair{"pad_token_id", pad_token_id}})
    require(!id || (*id >= 0 && *id < vocab_size), name,
            fmt::format("must be in [0, {}), got {}", vocab_size, id.value_or(-1)));
}

std::string ModelSpec::config_json() const {
  validate();
  std::string s = "{\n";
  s += fmt::format("  \"architectures\": [{}],\n", json_str(architecture));
  s += "  \"model_type\": \"llama\",\n";
  s += fmt::format("  \"vocab_size\": {},\n  \"hidden_size\": {},\n", vocab_size, hidden_size);
  s += fmt::format("  \"intermediate_size\": {},\n  \"num_hidden_layers\": {},\n",
                   intermediate_size, num_hidden_layers);
  s += fmt::format("  \"num_attention_heads\": {},\n  \"num_key_value_heads\": {},\n",
                   num_attention_heads, num_key_value_heads);
  s += fmt::format("  \"head_dim\": {},\n", hidden_size / num_attention_heads);
  s += fmt::format("  \"max_position_embeddings\": {},\n", max_position_embeddings);
  s += fmt::format("  \"rope_theta\": {},\n  \"rms_norm_eps\": {},\n",
                   json::dump(json::Value(rope_theta)), json::dump(json::Value(rms_norm_eps)));
  s += fmt::format("  \"initializer_range\": {},\n", json::dump(json::Value(initializer_range)));
  s += "  \"hidden_act\": \"silu\",\n  \"attention_bias\": false,\n  \"mlp_bias\": false,\n";
  s += "  \"attention_dropout\": 0.0,\n  \"pretraining_tp\": 1,\n  \"rope_scaling\": null,\n";
  s += fmt::format("  \"tie_word_embeddings\": {},\n", tie_word_embeddings ? "true" : "false");
  if (is_token_classification()) {
    s += "  \"id2label\": {";
    for (int i = 0; i < num_labels; ++i) s += fmt::format("{}\"{}\": \"LABEL_{}\"", i ? ", " : "", i, i);
    s += "},\n  \"label2id\": {";
    for (int i = 0; i < num_labels; ++i) s += fmt::format("{}\"LABEL_{}\": {}", i ? ", " : "", i, i);
    s += "},\n";
  }
  if (bos_token_id) s += fmt::format("  \"bos_token_id\": {},\n", *bos_token_id);
  if (eos_token_id) s += fmt::format("  \"eos_token_id\": {},\n", *eos_token_id);
  if (pad_token_id) s += fmt::format("  \"pad_token_id\": {},\n", *pad_token_id);
  s += "  \"use_cache\": true,\n  \"torch_dtype\": \"float32\"\n}\n";
  return s;
}

ModelConfig ModelSpec::to_config() const { return ModelConfig::from_json(config_json()); }

std::vector<NamedTensor> expected_tensors(const ModelSpec& spec) {
  spec.validate();
  const std::int64_t D = spec.hidden_size, I = spec.intermediate_size, V = spec.vocab_size;
  const std::int64_t hd = D / spec.num_attention_heads;
  const std::int64_t Hq = spec.num_attention_heads * hd, Hkv = spec.num_key_value_heads * hd;
  std::vector<NamedTensor> t;
  t.push_back({"model.embed_tokens.weight", {V, D}, {}});
  for (int l = 0; l < spec.num_hidden_layers; ++l) {
    const std::string p = fmt::format("model.layers.{}.", l);
    t.push_back({p + "input_layernorm.weight", {D}, {}});
    t.push_back({p + "self_attn.q_proj.weight", {Hq, D}, {}});
    t.push_back({p + "self_attn.k_proj.weight", {Hkv, D}, {}});
    t.push_back({p + "self_attn.v_proj.weight", {Hkv, D}, {}});
    t.push_back({p + "self_attn.o_proj.weight", {D, Hq}, {}});
    t.push_back({p + "post_attention_layernorm.weight", {D}, {}});
    t.push_back({p + "mlp.gate_proj.weight", {I, D}, {}});
    t.push_back({p + "mlp.up_proj.weight", {I, D}, {}});
    t.push_back({p + "mlp.down_proj.weight", {D, I}, {}});
  }
  t.push_back({"model.norm.weight", {D}, {}});
  if (spec.is_token_classification())
    t.push_back({"score.weight", {spec.num_labels, D}, {}});
  else if (!spec.tie_word_embeddings)
    t.push_back({"lm_head.weight", {V, D}, {}});
  return t;
}

std::int64_t ModelSpec::num_parameters() const {
  std::int64_t n = 0;
  for (const auto& t : expected_tensors(*this)) {
    std::int64_t k = 1;
    for (auto d : t.shape) k *= d;
    n += k;
  }
  return n;
}

std::vector<NamedTensor> init_weights(const ModelSpec& spec, std::uint64_t seed) {
  auto tensors = expected_tensors(spec);
  Rng rng(derive_seed(seed, std::uint64_t{0x1417}));
  const double sd = spec.initializer_range;
  for (auto& t : tensors) {
    std::int64_t n = 1;
    for (auto d : t.shape) n *= d;
    t.data.resize(static_cast<std::size_t>(n));
    if (t.shape.size() == 1) {  // RMSNorm weights
      std::fill(t.data.begin(), t.data.end(), 1.0f);
      continue;
    }
    for (std::size_t i = 0; i < t.data.size(); i += 2) {  // Box-Muller, two at a time
      const double u1 = 1.0 - rng.uniform(), u2 = rng.uniform();
      const double r = std::sqrt(-2.0 * std::log(u1));
      t.data[i] = static_cast<float>(sd * r * std::cos(2.0 * M_PI * u2));
      if (i + 1 < t.data.size()) t.data[i + 1] = static_cast<float>(sd * r * std::sin(2.0 * M_PI * u2));
    }
  }
  return tensors;
}

namespace {

/// The tokenizer.json around a WordLevel vocabulary and a Split pre-tokenizer.
std::string wordlevel_json(json::Value vocab, std::string_view split_regex) {
  json::Value special = json::Value::object();
  special.set("id", 0);
  special.set("content", "<unk>");
  special.set("single_word", false);
  special.set("lstrip", false);
  special.set("rstrip", false);
  special.set("normalized", false);
  special.set("special", true);
  json::Value added = json::Value::array();
  added.push_back(std::move(special));
  json::Value pattern = json::Value::object();
  pattern.set("Regex", std::string(split_regex));
  json::Value pre = json::Value::object();
  pre.set("type", "Split");
  pre.set("pattern", std::move(pattern));
  pre.set("behavior", "Isolated");
  pre.set("invert", false);
  json::Value decoder = json::Value::object();
  decoder.set("type", "Fuse");
  json::Value model = json::Value::object();
  model.set("type", "WordLevel");
  model.set("vocab", std::move(vocab));
  model.set("unk_token", "<unk>");
  json::Value root = json::Value::object();
  root.set("version", "1.0");
  root.set("truncation", json::Value());
  root.set("padding", json::Value());
  root.set("added_tokens", std::move(added));
  root.set("normalizer", json::Value());
  root.set("pre_tokenizer", std::move(pre));
  root.set("post_processor", json::Value());
  root.set("decoder", std::move(decoder));
  root.set("model", std::move(model));
  return json::dump(root) + "\n";
}

}  // namespace

std::string char_tokenizer_json(std::string_view chars) {
  if (chars.empty()) throw InvalidArgument("char_tokenizer_json: chars: empty");
  std::set<char> seen;
  json::Value vocab = json::Value::object();
  vocab.set("<unk>", 0);
  int id = 1;
  for (char c : chars) {
    if (static_cast<unsigned char>(c) >= 0x80)
      throw InvalidArgument("char_tokenizer_json: chars: only ASCII characters are supported");
    if (!seen.insert(c).second) continue;
    vocab.set(std::string(1, c), id++);
  }
  return wordlevel_json(std::move(vocab), "[\\s\\S]");
}

std::string_view word_tokenizer_pattern() {
  return " ?[0-9]{1,3}| ?[A-Za-z]+| ?[^\\s0-9A-Za-z]|[\\s\\S]";
}

std::string word_tokenizer_json(std::string_view chars, std::span<const std::string> words,
                                int max_number) {
  if (chars.empty()) throw InvalidArgument("word_tokenizer_json: chars: empty");
  if (max_number < 0 || max_number > 999)
    throw InvalidArgument(
        fmt::format("word_tokenizer_json: max_number: must be in 0..999, got {}", max_number));
  std::set<std::string> seen;
  json::Value vocab = json::Value::object();
  vocab.set("<unk>", 0);
  seen.insert("<unk>");
  int id = 1;
  auto add = [&](std::string t) {
    if (seen.insert(t).second) vocab.set(t, id++);
  };
  for (char c : chars)
    if (static_cast<unsigned char>(c) >= 0x80)
      throw InvalidArgument("word_tokenizer_json: chars: only ASCII characters are supported");
  for (char c : chars) add(std::string(1, c));
  for (char c : chars) {
    const bool alnum = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    if (!alnum && c != ' ' && c != '\n' && c != '\t' && c != '\r') add(std::string(" ") + c);
  }
  for (int n = 0; n <= max_number; ++n) {
    add(std::to_string(n));
    add(" " + std::to_string(n));
  }
  for (const auto& w : words) {
    if (w.empty() || !std::all_of(w.begin(), w.end(), [](char c) {
          return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
        }))
      throw InvalidArgument(fmt::format("word_tokenizer_json: words: '{}' is not letters", w));
    add(w);
    add(" " + w);
  }
  return wordlevel_json(std::move(vocab), word_tokenizer_pattern());
}

void write_model_folder(const std::string& dir, const ModelSpec& spec,
                        std::span<const NamedTensor> tensors, const std::string& tokenizer_json,
                        const std::map<std::string, std::string>& metadata) {
  const auto want = expected_tensors(spec);
  if (tensors.size() != want.size())
    throw InvalidArgument(fmt::format("write_model_folder {}: {} tensors given, the spec needs {}",
                                      dir, tensors.size(), want.size()));
  std::vector<TensorToWrite> out;
  out.reserve(tensors.size());
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    const auto& t = tensors[i];
    if (t.name != want[i].name || t.shape != want[i].shape)
      throw InvalidArgument(fmt::format("write_model_folder {}: tensor {} is '{}', expected '{}' "
                                        "with the spec's shape",
                                        dir, i, t.name, want[i].name));
    out.push_back({t.name, DType::F32, t.shape,
                   std::span<const std::byte>(reinterpret_cast<const std::byte*>(t.data.data()),
                                              t.data.size() * sizeof(float))});
  }
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw IoError(fmt::format("{}: cannot create the directory: {}", dir, ec.message()));
  auto meta = metadata;
  meta["format"] = "pt";
  write_safetensors(dir + "/model.safetensors", out, meta);
  auto write_text = [&](const std::string& name, const std::string& text) {
    const std::string path = dir + "/" + name;
    std::ofstream f(path, std::ios::binary);
    if (!f) throw IoError(fmt::format("{}: cannot open for writing", path));
    f << text;
    if (!f) throw IoError(fmt::format("{}: write failed", path));
  };
  write_text("config.json", spec.config_json());
  if (!tokenizer_json.empty()) write_text("tokenizer.json", tokenizer_json);
}

ModelSpec read_model_spec(const std::string& dir) {
  const std::string path = dir + "/config.json";
  const ModelConfig c = ModelConfig::from_file(path);
  if (c.model_type != "llama" ||
      (c.architecture != "LlamaForCausalLM" && c.architecture != "LlamaForTokenClassification"))
    throw ParseError(fmt::format("{}: architecture {} is not a Llama causal LM or token classifier",
                                 path, c.architecture));
  if (c.attention_bias || c.mlp_bias)
    throw ParseError(fmt::format("{}: biases are not supported by the trainer", path));
  ModelSpec s;
  s.architecture = c.architecture;
  s.vocab_size = c.vocab_size;
  s.hidden_size = c.hidden_size;
  s.intermediate_size = c.intermediate_size;
  s.num_hidden_layers = c.num_hidden_layers;
  s.num_attention_heads = c.num_attention_heads;
  s.num_key_value_heads = c.num_key_value_heads;
  s.max_position_embeddings = c.max_position_embeddings;
  s.rope_theta = c.rope_theta;
  s.rms_norm_eps = c.rms_norm_eps;
  s.tie_word_embeddings = c.tie_word_embeddings;
  s.num_labels = c.is_token_classification() ? c.num_labels : 1;
  s.bos_token_id = c.bos_token_id;
  if (!c.eos_token_ids.empty()) s.eos_token_id = c.eos_token_ids.front();
  s.pad_token_id = c.pad_token_id;
  if (c.head_dim != c.hidden_size / c.num_attention_heads)
    throw ParseError(fmt::format("{}: head_dim {} != hidden_size / num_attention_heads", path,
                                 c.head_dim));
  try {
    s.validate();
  } catch (const InvalidArgument& e) {
    throw ParseError(fmt::format("{}: {}", path, e.what()));
  }
  return s;
}

std::vector<NamedTensor> read_model_tensors(const std::string& dir) {
  const ModelSpec spec = read_model_spec(dir);
  const WeightStore ws = WeightStore::open_dir(dir);
  auto tensors = expected_tensors(spec);
  for (auto& t : tensors) {
    const TensorView& v = ws.at(t.name);
    if (v.shape != t.shape)
      throw ParseError(fmt::format("{}: tensor '{}' does not have the config's shape",
                                   ws.file_of(t.name), t.name));
    t.data = tensor_to_float(v);
  }
  return tensors;
}

}  // namespace qstar::hf
