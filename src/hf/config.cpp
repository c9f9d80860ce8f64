// config.json parsing for Llama / Qwen2 / Qwen3 / Mistral model folders (no LibTorch needed).
#include "qstar/hf/config.hpp"

#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>

#include <fmt/format.h>

#include "qstar/core/json.hpp"
#include "qstar/error.hpp"

namespace qstar::hf {

namespace {

constexpr const char* kArchitectures[] = {
    "LlamaForCausalLM",           "Qwen2ForCausalLM",           "LlamaForTokenClassification",
    "Qwen2ForTokenClassification", "Qwen3ForCausalLM",           "MistralForCausalLM",
    "Qwen3ForTokenClassification", "MistralForTokenClassification",
    // verifier heads (src/torch/models/heads.cpp)
    "Qwen2ForProcessRewardModel", "Qwen2ForRewardModel", "Qwen2ForPrmModel", "LlamaForSequenceClassification",
    "Qwen2ForSequenceClassification", "Qwen3ForSequenceClassification", "MistralForSequenceClassification"};

/// The architecture prefix of each model_type ("Qwen3ForCausalLM" is a qwen3).
struct FamilyPrefix {
  const char* prefix;
  const char* model_type;
};
constexpr FamilyPrefix kFamilyPrefixes[] = {
    {"Llama", "llama"}, {"Qwen2", "qwen2"}, {"Qwen3", "qwen3"}, {"Mistral", "mistral"}};
constexpr const char* kModelTypeList = "llama, qwen2, qwen3, mistral";
constexpr const char* kRopeTypeList = "default, linear, dynamic, yarn, llama3";

std::string architecture_list() {
  std::string out;
  for (const char* a : kArchitectures) out += (out.empty() ? "" : ", ") + std::string(a);
  return out;
}

std::string qjson(std::string_view s) {
  std::string out;
  json::dump_string(out, s);
  return out;
}

bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }
bool ends_with(std::string_view s, std::string_view p) {
  return s.size() >= p.size() && s.substr(s.size() - p.size()) == p;
}

/// The model_type an architecture name implies ("" when none).
std::string model_type_of(std::string_view architecture) {
  for (const auto& f : kFamilyPrefixes)
    if (starts_with(architecture, std::string(f.prefix) + "For")) return f.model_type;
  return {};
}

/// Reads fields of one JSON object, with errors naming the source and the field.
class Fields {
 public:
  Fields(const json::Value& obj, std::string_view source, std::string prefix = {})
      : obj_(obj), source_(source), prefix_(std::move(prefix)) {}

  [[noreturn]] void fail(std::string_view key, std::string_view what) const {
    throw ParseError(fmt::format("{}: field {} {}", source_, qjson(prefix_ + std::string(key)), what));
  }

  /// The member, or nullptr when absent or null.
  const json::Value* get(std::string_view key) const {
    const json::Value* v = obj_.find(key);
    return v == nullptr || v->is_null() ? nullptr : v;
  }

  int to_int(std::string_view key, const json::Value& v) const {
    if (!v.is_number()) fail(key, fmt::format("must be an integer, got {}", json::type_name(v.type())));
    double d = 0;
    if (v.is_integer()) {
      d = static_cast<double>(v.as_int());
    } else {
      d = v.as_double();
      if (!std::isfinite(d) || d != std::floor(d))
        fail(key, fmt::format("must be an integer, got {}", json::dump(v)));
    }
    if (d < std::numeric_limits<int>::min() || d > std::numeric_limits<int>::max())
      fail(key, fmt::format("is out of range: {}", json::dump(v)));
    return static_cast<int>(d);
  }

  std::optional<int> opt_int(std::string_view key) const {
    const json::Value* v = get(key);
    if (v == nullptr) return std::nullopt;
    return to_int(key, *v);
  }
  int req_int(std::string_view key) const {
    const json::Value* v = get(key);
    if (v == nullptr) fail(key, "is missing");
    return to_int(key, *v);
  }
  std::optional<double> opt_double(std::string_view key) const {
    const json::Value* v = get(key);
    if (v == nullptr) return std::nullopt;
    if (!v->is_number()) fail(key, fmt::format("must be a number, got {}", json::type_name(v->type())));
    return v->as_double();
  }
  std::optional<bool> opt_bool(std::string_view key) const {
    const json::Value* v = get(key);
    if (v == nullptr) return std::nullopt;
    if (!v->is_bool()) fail(key, fmt::format("must be a bool, got {}", json::type_name(v->type())));
    return v->as_bool();
  }
  std::optional<std::string> opt_string(std::string_view key) const {
    const json::Value* v = get(key);
    if (v == nullptr) return std::nullopt;
    if (!v->is_string()) fail(key, fmt::format("must be a string, got {}", json::type_name(v->type())));
    return v->as_string();
  }
  const json::Value* opt_object(std::string_view key) const {
    const json::Value* v = get(key);
    if (v != nullptr && !v->is_object())
      fail(key, fmt::format("must be an object, got {}", json::type_name(v->type())));
    return v;
  }

 private:
  const json::Value& obj_;
  std::string_view source_;
  std::string prefix_;
};

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    const int err = errno;
    throw IoError(fmt::format("{}: cannot open: {}", path, std::strerror(err)));
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw IoError(fmt::format("{}: read failed", path));
  return std::move(ss).str();
}

}  // namespace

namespace {

// RoPE: 4.x "rope_theta" + "rope_scaling"; 5.x "rope_parameters" (its keys win). A top-level
// partial_rotary_factor is the default of the dicts' one; a top-level
// original_max_position_embeddings wins over theirs (transformers 5.x standardize_rope_params).
void read_rope(const Fields& f, ModelConfig& c) {
  c.rope_theta = f.opt_double("rope_theta").value_or(c.rope_theta);
  c.partial_rotary_factor = f.opt_double("partial_rotary_factor").value_or(1.0);
  auto read_dict = [&](const json::Value& obj, const std::string& name, bool type_alias) {
    const Fields r(obj, c.source, name + ".");
    auto type = r.opt_string("rope_type");
    if (!type && type_alias) type = r.opt_string("type");
    if (type) c.rope_scaling_type = *type;
    if (name == "rope_parameters") c.rope_theta = r.opt_double("rope_theta").value_or(c.rope_theta);
    auto take = [&](const char* key, std::optional<double>& out) {
      if (auto v = r.opt_double(key)) out = v;
    };
    take("factor", c.rope_factor);
    take("low_freq_factor", c.rope_low_freq_factor);
    take("high_freq_factor", c.rope_high_freq_factor);
    take("attention_factor", c.rope_attention_factor);
    take("beta_fast", c.rope_beta_fast);
    take("beta_slow", c.rope_beta_slow);
    take("mscale", c.rope_mscale);
    take("mscale_all_dim", c.rope_mscale_all_dim);
    if (auto v = r.opt_int("original_max_position_embeddings"))
      c.rope_original_max_position_embeddings = *v;
    if (auto v = r.opt_bool("truncate")) c.rope_truncate = *v;
    if (auto v = r.opt_double("partial_rotary_factor")) c.partial_rotary_factor = *v;
  };
  if (const json::Value* rs = f.opt_object("rope_scaling")) read_dict(*rs, "rope_scaling", true);
  if (const json::Value* rp = f.opt_object("rope_parameters")) {
    for (const char* per_layer : {"full_attention", "sliding_attention"})
      if (const json::Value* v = rp->find(per_layer); v != nullptr && v->is_object())
        throw ParseError(fmt::format(
            "{}: field \"rope_parameters.{}\": RoPE parameters per layer type are not supported",
            c.source, per_layer));
    read_dict(*rp, "rope_parameters", true);
  }
  if (c.rope_scaling_type == "default") c.rope_scaling_type.clear();
  if (auto v = f.opt_int("original_max_position_embeddings"))
    c.rope_original_max_position_embeddings = *v;
  if (c.rope_original_max_position_embeddings == 0)
    c.rope_original_max_position_embeddings = c.max_position_embeddings;
}

// Attention windows, as transformers' MistralConfig / Qwen2Config / Qwen3Config resolve them.
void read_windows(const json::Value& root, const Fields& f, ModelConfig& c) {
  c.use_sliding_window = f.opt_bool("use_sliding_window").value_or(false);
  c.max_window_layers = f.opt_int("max_window_layers").value_or(c.max_window_layers);
  // "sliding_window" absent means transformers' default 4096; null means none.
  const bool window_absent = root.find("sliding_window") == nullptr;
  const std::optional<int> window = window_absent ? std::optional<int>(4096) : f.opt_int("sliding_window");
  std::vector<std::string> given;
  const json::Value* lt = f.get("layer_types");
  if (lt != nullptr) {
    if (!lt->is_array())
      f.fail("layer_types", fmt::format("must be an array, got {}", json::type_name(lt->type())));
    for (std::size_t i = 0; i < lt->size(); ++i) {
      const json::Value& e = lt->as_array()[i];
      if (!e.is_string())
        f.fail(fmt::format("layer_types[{}]", i),
               fmt::format("must be a string, got {}", json::type_name(e.type())));
      given.push_back(e.as_string());
    }
  }
  c.sliding_window.reset();
  if (c.model_type == "mistral")
    c.sliding_window = window;
  else if ((c.model_type == "qwen2" || c.model_type == "qwen3") && c.use_sliding_window)
    c.sliding_window = window;
  // Llama has no windows; the others take layer_types as given (else the rules of
  // sliding_window_of). Never materialised per layer: num_hidden_layers may be huge here.
  if (c.model_type == "mistral" || c.model_type == "qwen2" || c.model_type == "qwen3")
    c.layer_types = std::move(given);
}

}  // namespace

bool ModelConfig::is_token_classification() const {
  return ends_with(architecture, "ForTokenClassification");
}
bool ModelConfig::is_causal_lm() const { return ends_with(architecture, "ForCausalLM"); }
bool ModelConfig::is_sequence_classification() const {
  return ends_with(architecture, "ForSequenceClassification");
}
ModelConfig::Head ModelConfig::head() const {
  if (is_token_classification()) return Head::TokenClassification;
  if (is_sequence_classification()) return Head::SequenceClassification;
  if (architecture == "Qwen2ForProcessRewardModel") return Head::ProcessReward;
  if (architecture == "Qwen2ForRewardModel") return Head::Reward;
  if (architecture == "Qwen2ForPrmModel") return Head::ValueHead;
  return Head::CausalLM;
}
bool ModelConfig::has_score_head() const { return head() != Head::CausalLM; }

ModelConfig ModelConfig::from_file(const std::string& path) { return from_json(read_file(path), path); }

ModelConfig ModelConfig::from_json(std::string_view text, std::string_view source) {
  ModelConfig c;
  c.source = std::string(source);
  const json::Value root = json::parse(text, source);
  if (!root.is_object())
    throw ParseError(fmt::format("{}: must be a JSON object, got {}", source, json::type_name(root.type())));
  const Fields f(root, source);

  // architecture / model_type
  if (const json::Value* a = f.get("architectures")) {
    if (!a->is_array())
      f.fail("architectures", fmt::format("must be an array, got {}", json::type_name(a->type())));
    if (a->size() > 0) {
      const json::Value& first = a->as_array()[0];
      if (!first.is_string())
        throw ParseError(fmt::format("{}: architectures[0] must be a string, got {}", source,
                                     json::type_name(first.type())));
      c.architecture = first.as_string();
    }
  }
  c.model_type = f.opt_string("model_type").value_or("");
  if (c.model_type.empty()) c.model_type = model_type_of(c.architecture);
  if (c.architecture.empty()) {
    for (const auto& fam : kFamilyPrefixes)
      if (c.model_type == fam.model_type) c.architecture = std::string(fam.prefix) + "ForCausalLM";
  }

  // sizes
  c.vocab_size = f.req_int("vocab_size");
  c.hidden_size = f.req_int("hidden_size");
  c.intermediate_size = f.req_int("intermediate_size");
  c.num_hidden_layers = f.req_int("num_hidden_layers");
  c.num_attention_heads = f.req_int("num_attention_heads");
  c.num_key_value_heads = f.opt_int("num_key_value_heads").value_or(c.num_attention_heads);
  if (auto hd = f.opt_int("head_dim")) {
    c.head_dim = *hd;
    c.head_dim_given = true;
  } else if (c.model_type == "qwen3") {
    c.head_dim = 128;  // transformers' Qwen3Config default, not hidden / heads
  } else if (c.num_attention_heads > 0) {
    c.head_dim = c.hidden_size / c.num_attention_heads;
  }
  c.max_position_embeddings = f.opt_int("max_position_embeddings").value_or(c.max_position_embeddings);
  c.rms_norm_eps = f.opt_double("rms_norm_eps").value_or(c.rms_norm_eps);
  c.hidden_act = f.opt_string("hidden_act").value_or(c.hidden_act);

  read_rope(f, c);
  read_windows(root, f, c);

  // flags
  c.tie_word_embeddings = f.opt_bool("tie_word_embeddings").value_or(false);
  c.attention_bias = f.opt_bool("attention_bias").value_or(false);
  c.mlp_bias = f.opt_bool("mlp_bias").value_or(false);
  if (c.model_type == "qwen2") {
    c.attention_bias = true;  // q/k/v bias (no o_proj bias)
    c.mlp_bias = false;
  } else if (c.model_type == "mistral") {
    c.attention_bias = false;  // transformers' Mistral has no biases, whatever the file says
    c.mlp_bias = false;
  } else if (c.model_type == "qwen3") {
    c.mlp_bias = false;  // attention_bias (q/k/v/o) as given
  }

  // labels. The reward heads fix their own output count whatever config.json says (as
  // transformers' and vLLM's Qwen2ForRewardModel / Qwen2ForPrmModel do): one scalar.
  const auto num_labels = f.opt_int("num_labels");
  const Head head = c.head();
  if (head == Head::Reward || head == Head::ValueHead)
    c.num_labels = 1;
  else if (const json::Value* id2label = f.opt_object("id2label"))
    c.num_labels = static_cast<int>(id2label->size());
  else if (num_labels)
    c.num_labels = *num_labels;
  else if (head != Head::CausalLM)
    c.num_labels = 2;  // transformers' default (Qwen2ForProcessRewardModel: 2 classes)

  // special tokens
  c.bos_token_id = f.opt_int("bos_token_id");
  c.pad_token_id = f.opt_int("pad_token_id");
  if (const json::Value* eos = f.get("eos_token_id")) {
    if (eos->is_array()) {
      for (std::size_t i = 0; i < eos->size(); ++i)
        c.eos_token_ids.push_back(f.to_int(fmt::format("eos_token_id[{}]", i), eos->as_array()[i]));
    } else {
      c.eos_token_ids.push_back(f.to_int("eos_token_id", *eos));
    }
  }

  // dtype: "dtype" (5.x) or "torch_dtype" (4.x)
  if (auto d = f.opt_string("dtype"))
    c.torch_dtype = *d;
  else
    c.torch_dtype = f.opt_string("torch_dtype").value_or("");

  c.validate();
  return c;
}

void ModelConfig::validate() const {
  auto fail = [&](std::string_view what) { throw ParseError(fmt::format("{}: {}", source, what)); };
  auto field = [&](std::string_view name, std::string_view what) {
    fail(fmt::format("field {} {}", qjson(name), what));
  };

  if (architecture.empty()) {
    if (model_type.empty()) field("architectures", "is missing (and no model_type implies one)");
    fail(fmt::format("field \"architectures\" is missing and model_type {} is not supported ({})",
                     qjson(model_type), kModelTypeList));
  }
  bool known = false;
  for (const char* a : kArchitectures) known = known || architecture == a;
  if (!known)
    fail(fmt::format("architectures[0] {} is not supported ({})", qjson(architecture), architecture_list()));
  bool known_type = false;
  for (const auto& fam : kFamilyPrefixes) known_type = known_type || model_type == fam.model_type;
  if (!known_type)
    field("model_type", fmt::format("{} is not supported ({})", qjson(model_type), kModelTypeList));
  if (model_type_of(architecture) != model_type)
    fail(fmt::format("architectures[0] {} does not match model_type {}", qjson(architecture),
                     qjson(model_type)));

  auto positive = [&](std::string_view name, int v) {
    if (v <= 0) field(name, fmt::format("must be positive, got {}", v));
  };
  positive("vocab_size", vocab_size);
  positive("hidden_size", hidden_size);
  positive("intermediate_size", intermediate_size);
  positive("num_hidden_layers", num_hidden_layers);
  positive("num_attention_heads", num_attention_heads);
  positive("num_key_value_heads", num_key_value_heads);
  if (!head_dim_given && model_type != "qwen3" && hidden_size % num_attention_heads != 0)
    field("num_attention_heads", fmt::format("({}) must divide hidden_size ({}) when head_dim is not given",
                                             num_attention_heads, hidden_size));
  positive("head_dim", head_dim);
  if (num_attention_heads % num_key_value_heads != 0)
    field("num_key_value_heads",
          fmt::format("({}) must divide num_attention_heads ({})", num_key_value_heads, num_attention_heads));
  positive("max_position_embeddings", max_position_embeddings);
  if (!(std::isfinite(rms_norm_eps) && rms_norm_eps > 0))
    field("rms_norm_eps", fmt::format("must be positive and finite, got {}", rms_norm_eps));
  if (!(std::isfinite(rope_theta) && rope_theta > 0))
    field("rope_theta", fmt::format("must be positive and finite, got {}", rope_theta));
  if (hidden_act != "silu" && hidden_act != "swish")
    field("hidden_act", fmt::format("{} is not supported (silu)", qjson(hidden_act)));
  if (has_score_head() && num_labels < 1)
    field("num_labels", fmt::format("must be at least 1 for {}, got {}", architecture, num_labels));
  if (num_labels < 0) field("num_labels", fmt::format("must not be negative, got {}", num_labels));
  validate_rope();
  validate_windows();
}

void ModelConfig::validate_rope() const {
  auto field = [&](std::string_view name, std::string_view what) {
    throw ParseError(fmt::format("{}: field {} {}", source, qjson(name), what));
  };
  auto positive = [&](std::string_view name, const std::optional<double>& v, bool required) {
    if (!v) {
      if (required)
        field(name, fmt::format("is missing (required by rope type {})", qjson(rope_scaling_type)));
      return;
    }
    if (!(std::isfinite(*v) && *v > 0))
      field(name, fmt::format("must be positive and finite, got {}", *v));
  };
  if (partial_rotary_factor != 1.0)
    field("partial_rotary_factor",
          fmt::format("must be 1 (partial rotary embeddings are not supported for {}), got {}",
                      model_type, partial_rotary_factor));
  const std::string& t = rope_scaling_type;
  if (t.empty()) return;
  if (t != "linear" && t != "dynamic" && t != "yarn" && t != "llama3")
    throw ParseError(fmt::format("{}: rope_scaling / rope_parameters: rope type {} is not supported ({})",
                                 source, qjson(t), kRopeTypeList));
  positive("rope_scaling.factor", rope_factor, t != "yarn");
  if (t == "dynamic" && head_dim <= 2)
    field("head_dim", fmt::format("must be above 2 for dynamic RoPE, got {}", head_dim));
  if (t == "llama3" || t == "yarn") {
    if (rope_original_max_position_embeddings <= 0)
      field("rope_scaling.original_max_position_embeddings",
            fmt::format("must be positive, got {}", rope_original_max_position_embeddings));
  }
  if (t == "llama3") {
    positive("rope_scaling.low_freq_factor", rope_low_freq_factor, true);
    positive("rope_scaling.high_freq_factor", rope_high_freq_factor, true);
    if (!(*rope_low_freq_factor < *rope_high_freq_factor))
      field("rope_scaling.high_freq_factor",
            fmt::format("({}) must be above low_freq_factor ({})", *rope_high_freq_factor,
                        *rope_low_freq_factor));
  }
  if (t == "yarn") {
    positive("rope_scaling.attention_factor", rope_attention_factor, false);
    positive("rope_scaling.beta_fast", rope_beta_fast, false);
    positive("rope_scaling.beta_slow", rope_beta_slow, false);
    for (const auto& [name, v] : {std::pair{"rope_scaling.mscale", rope_mscale},
                                  std::pair{"rope_scaling.mscale_all_dim", rope_mscale_all_dim}})
      if (v && !std::isfinite(*v)) field(name, fmt::format("must be finite, got {}", *v));
  }
}

void ModelConfig::validate_windows() const {
  auto field = [&](std::string_view name, std::string_view what) {
    throw ParseError(fmt::format("{}: field {} {}", source, qjson(name), what));
  };
  if (sliding_window && *sliding_window <= 0)
    field("sliding_window", fmt::format("must be positive, got {}", *sliding_window));
  if (layer_types.empty()) return;
  if (static_cast<int>(layer_types.size()) != num_hidden_layers)
    field("layer_types", fmt::format("has {} entries, expected num_hidden_layers ({})",
                                     layer_types.size(), num_hidden_layers));
  for (std::size_t i = 0; i < layer_types.size(); ++i) {
    const std::string& t = layer_types[i];
    if (t != "full_attention" && t != "sliding_attention")
      field(fmt::format("layer_types[{}]", i),
            fmt::format("{} is not supported (full_attention, sliding_attention)", qjson(t)));
    if (t == "sliding_attention" && !sliding_window)
      field(fmt::format("layer_types[{}]", i),
            "is sliding_attention but there is no window (sliding_window null, or "
            "use_sliding_window false)");
  }
}

int ModelConfig::sliding_window_of(int layer) const {
  if (!sliding_window || layer < 0 || layer >= num_hidden_layers) return 0;
  if (!layer_types.empty())
    return layer_types[static_cast<std::size_t>(layer)] == "sliding_attention" ? *sliding_window : 0;
  if (model_type == "mistral") return *sliding_window;
  if (model_type == "qwen2" || model_type == "qwen3")
    return layer >= max_window_layers ? *sliding_window : 0;
  return 0;
}

}  // namespace qstar::hf
