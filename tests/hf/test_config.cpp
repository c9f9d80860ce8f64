// Tests of config.json parsing (transformers 4.x and 5.x layouts; no LibTorch needed).
#include <doctest/doctest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "qstar/core/json.hpp"
#include "qstar/error.hpp"
#include "qstar/hf/config.hpp"

using qstar::hf::ModelConfig;

namespace {

template <class E, class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  } catch (const std::exception& e) {
    return std::string("<wrong type: ") + e.what() + ">";
  }
  return "<no error>";
}

std::string config_error(const std::string& text) {
  return error_of<qstar::ParseError>([&] { (void)ModelConfig::from_json(text); });
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// A transformers 4.x Llama config (TinyLlama-style).
const char* kLlama4 = R"({
  "architectures": ["LlamaForCausalLM"],
  "attention_bias": false,
  "attention_dropout": 0.0,
  "bos_token_id": 1,
  "eos_token_id": 2,
  "hidden_act": "silu",
  "hidden_size": 2048,
  "initializer_range": 0.02,
  "intermediate_size": 5632,
  "max_position_embeddings": 2048,
  "model_type": "llama",
  "num_attention_heads": 32,
  "num_hidden_layers": 22,
  "num_key_value_heads": 4,
  "pretraining_tp": 1,
  "rms_norm_eps": 1e-05,
  "rope_scaling": null,
  "rope_theta": 10000.0,
  "tie_word_embeddings": false,
  "torch_dtype": "bfloat16",
  "transformers_version": "4.35.0",
  "use_cache": true,
  "vocab_size": 32000
})";

/// A minimal valid body to build bad configs from: `extra` is spliced in first.
std::string tiny(const std::string& extra = "", const std::string& arch = "LlamaForCausalLM",
                 const std::string& model_type = "llama") {
  return R"({)" + extra + R"("architectures":[")" + arch + R"("],"model_type":")" + model_type +
         R"(","vocab_size":100,"hidden_size":64,"intermediate_size":128,"num_hidden_layers":2,)"
         R"("num_attention_heads":4})";
}

/// tiny() with the members of the JSON object `overrides` set (replaced or added); a null
/// override removes the field.
std::string with(const std::string& overrides, const std::string& base = tiny()) {
  qstar::json::Value v = qstar::json::parse(base);
  const qstar::json::Value o = qstar::json::parse(overrides);
  for (const auto& [k, x] : o.as_object()) {
    if (x.is_null()) v.erase(k);
    else v.set(k, x);
  }
  return qstar::json::dump(v);
}

}  // namespace

TEST_CASE("config: transformers 4.x Llama") {
  const ModelConfig c = ModelConfig::from_json(kLlama4);
  CHECK(c.architecture == "LlamaForCausalLM");
  CHECK(c.model_type == "llama");
  CHECK(c.is_causal_lm());
  CHECK_FALSE(c.is_token_classification());
  CHECK(c.vocab_size == 32000);
  CHECK(c.hidden_size == 2048);
  CHECK(c.intermediate_size == 5632);
  CHECK(c.num_hidden_layers == 22);
  CHECK(c.num_attention_heads == 32);
  CHECK(c.num_key_value_heads == 4);
  CHECK(c.head_dim == 64);
  CHECK_FALSE(c.head_dim_given);
  CHECK(c.rms_norm_eps == 1e-5);
  CHECK(c.rope_theta == 10000.0);
  CHECK(c.rope_scaling_type.empty());
  CHECK(c.max_position_embeddings == 2048);
  CHECK_FALSE(c.tie_word_embeddings);
  CHECK_FALSE(c.attention_bias);
  CHECK_FALSE(c.mlp_bias);
  CHECK(c.num_labels == 0);
  CHECK(c.bos_token_id == 1);
  CHECK(c.eos_token_ids == std::vector<int>{2});
  CHECK(c.torch_dtype == "bfloat16");
  CHECK(c.hidden_act == "silu");
  CHECK(c.source == "config.json");
}

TEST_CASE("config: defaults of a minimal Llama config") {
  const ModelConfig c = ModelConfig::from_json(tiny());
  CHECK(c.num_key_value_heads == 4);  // defaults to the attention heads
  CHECK(c.head_dim == 16);
  CHECK(c.rms_norm_eps == 1e-6);
  CHECK(c.rope_theta == 10000.0);
  CHECK(c.max_position_embeddings == 2048);
  CHECK_FALSE(c.bos_token_id.has_value());
  CHECK(c.eos_token_ids.empty());
  CHECK(c.torch_dtype.empty());
  CHECK(c.rope_scaling_type.empty());
  // Explicit nulls are absent fields.
  const ModelConfig n = ModelConfig::from_json(tiny(R"("num_key_value_heads":null,"bos_token_id":null,"eos_token_id":null,"head_dim":null,)"));
  CHECK(n.num_key_value_heads == 4);
  CHECK(n.head_dim == 16);
  CHECK_FALSE(n.bos_token_id.has_value());
  // Llama with biases.
  const ModelConfig b = ModelConfig::from_json(tiny(R"("attention_bias":true,"mlp_bias":true,)"));
  CHECK(b.attention_bias);
  CHECK(b.mlp_bias);
  // No "architectures": inferred from model_type.
  const ModelConfig q = ModelConfig::from_json(
      R"({"model_type":"qwen2","vocab_size":10,"hidden_size":8,"intermediate_size":16,"num_hidden_layers":1,"num_attention_heads":2})");
  CHECK(q.architecture == "Qwen2ForCausalLM");
}

TEST_CASE("config: transformers 5.x layout with rope_parameters and dtype") {
  const ModelConfig c = ModelConfig::from_json(R"({
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "vocab_size": 128256, "hidden_size": 256, "intermediate_size": 512,
    "num_hidden_layers": 2, "num_attention_heads": 8, "num_key_value_heads": 2,
    "head_dim": 64,
    "rope_parameters": {"rope_theta": 500000.0, "rope_type": "default"},
    "dtype": "float32",
    "bos_token_id": 128000, "eos_token_id": [128001, 128008, 128009],
    "tie_word_embeddings": true,
    "transformers_version": "5.0.0"
  })");
  CHECK(c.rope_theta == 500000.0);
  CHECK(c.rope_scaling_type.empty());
  CHECK(c.torch_dtype == "float32");
  CHECK(c.head_dim == 64);  // given, although 256 / 8 = 32
  CHECK(c.head_dim_given);
  CHECK(c.num_key_value_heads == 2);
  CHECK(c.eos_token_ids == std::vector<int>{128001, 128008, 128009});
  CHECK(c.bos_token_id == 128000);
  CHECK(c.tie_word_embeddings);

  // rope scaling in both layouts.
  CHECK(ModelConfig::from_json(tiny(R"("rope_parameters":{"rope_theta":1e6,"rope_type":"llama3","factor":8.0,)"
                                    R"("low_freq_factor":1.0,"high_freq_factor":4.0},)"))
            .rope_scaling_type == "llama3");
  const ModelConfig s4 = ModelConfig::from_json(
      tiny(R"("rope_theta":500000.0,"rope_scaling":{"factor":8.0,"rope_type":"llama3","low_freq_factor":1.0,)"
           R"("high_freq_factor":4.0},)"));
  CHECK(s4.rope_scaling_type == "llama3");
  CHECK(s4.rope_theta == 500000.0);
  CHECK(ModelConfig::from_json(tiny(R"("rope_scaling":{"type":"linear","factor":2.0},)")).rope_scaling_type ==
        "linear");
  // rope_parameters wins over a stale top-level rope_theta.
  CHECK(ModelConfig::from_json(tiny(R"("rope_theta":10000.0,"rope_parameters":{"rope_theta":20000.0},)"))
            .rope_theta == 20000.0);
  // "dtype" wins over "torch_dtype".
  CHECK(ModelConfig::from_json(tiny(R"("torch_dtype":"float16","dtype":"bfloat16",)")).torch_dtype == "bfloat16");
}

TEST_CASE("config: Qwen2 with tied embeddings and a list eos") {
  const ModelConfig c = ModelConfig::from_json(R"({
    "architectures": ["Qwen2ForCausalLM"],
    "attention_dropout": 0.0,
    "bos_token_id": 151643,
    "eos_token_id": [151645, 151643],
    "hidden_act": "silu",
    "hidden_size": 896,
    "initializer_range": 0.02,
    "intermediate_size": 4864,
    "max_position_embeddings": 32768,
    "max_window_layers": 21,
    "model_type": "qwen2",
    "num_attention_heads": 14,
    "num_hidden_layers": 24,
    "num_key_value_heads": 2,
    "rms_norm_eps": 1e-06,
    "rope_theta": 1000000.0,
    "sliding_window": 32768,
    "tie_word_embeddings": true,
    "torch_dtype": "bfloat16",
    "transformers_version": "4.40.1",
    "use_cache": true,
    "use_sliding_window": false,
    "vocab_size": 151936
  })");
  CHECK(c.architecture == "Qwen2ForCausalLM");
  CHECK(c.model_type == "qwen2");
  CHECK(c.tie_word_embeddings);
  CHECK(c.attention_bias);  // q/k/v bias, always, for qwen2
  CHECK_FALSE(c.mlp_bias);
  CHECK(c.eos_token_ids == std::vector<int>{151645, 151643});
  CHECK(c.bos_token_id == 151643);
  CHECK(c.num_key_value_heads == 2);
  CHECK(c.head_dim == 64);
  CHECK(c.rope_theta == 1000000.0);
  CHECK(c.max_position_embeddings == 32768);
  CHECK_FALSE(c.use_sliding_window);
  // Qwen2's bias does not depend on "attention_bias".
  CHECK(ModelConfig::from_json(tiny(R"("attention_bias":false,)", "Qwen2ForCausalLM", "qwen2")).attention_bias);
}

TEST_CASE("config: verifier heads (reward models, value head, sequence classification)") {
  using Head = ModelConfig::Head;
  // Qwen2.5-Math-PRM's config has no num_labels: 2 classes.
  ModelConfig c = ModelConfig::from_json(tiny("", "Qwen2ForProcessRewardModel", "qwen2"));
  CHECK(c.head() == Head::ProcessReward);
  CHECK(c.has_score_head());
  CHECK_FALSE(c.is_causal_lm());
  CHECK(c.num_labels == 2);
  // The scalar heads have one output whatever the file says (transformers' default id2label).
  c = ModelConfig::from_json(tiny(R"("id2label":{"0":"LABEL_0","1":"LABEL_1"},)", "Qwen2ForRewardModel", "qwen2"));
  CHECK(c.head() == Head::Reward);
  CHECK(c.num_labels == 1);
  c = ModelConfig::from_json(tiny(R"("num_labels":2,)", "Qwen2ForPrmModel", "qwen2"));
  CHECK(c.head() == Head::ValueHead);
  CHECK(c.num_labels == 1);
  c = ModelConfig::from_json(tiny(R"("id2label":{"0":"LABEL_0"},)", "LlamaForSequenceClassification"));
  CHECK(c.head() == Head::SequenceClassification);
  CHECK(c.is_sequence_classification());
  CHECK(c.num_labels == 1);
  CHECK(ModelConfig::from_json(tiny("", "Qwen2ForSequenceClassification", "qwen2")).num_labels == 2);
  // model_type follows the architecture's family when absent; a mismatch is named.
  CHECK(ModelConfig::from_json(tiny("", "Qwen2ForRewardModel", "")).model_type == "qwen2");
  CHECK(config_error(tiny("", "Qwen2ForPrmModel", "llama")).find("does not match model_type") != std::string::npos);
  CHECK(ModelConfig::from_json(tiny()).head() == Head::CausalLM);
  CHECK_FALSE(ModelConfig::from_json(tiny()).has_score_head());
}

TEST_CASE("config: token classification heads") {
  const ModelConfig c = ModelConfig::from_json(tiny(
      R"("id2label":{"0":"LABEL_0","1":"LABEL_1"},"label2id":{"LABEL_0":0,"LABEL_1":1},)",
      "Qwen2ForTokenClassification", "qwen2"));
  CHECK(c.architecture == "Qwen2ForTokenClassification");
  CHECK(c.is_token_classification());
  CHECK_FALSE(c.is_causal_lm());
  CHECK(c.num_labels == 2);
  CHECK(ModelConfig::from_json(tiny(R"("id2label":{"0":"good"},)", "LlamaForTokenClassification")).num_labels == 1);
  CHECK(ModelConfig::from_json(tiny(R"("num_labels":1,)", "LlamaForTokenClassification")).num_labels == 1);
  // id2label wins when the two disagree (as in transformers).
  CHECK(ModelConfig::from_json(tiny(R"("num_labels":5,"id2label":{"0":"a","1":"b","2":"c"},)",
                                    "LlamaForTokenClassification"))
            .num_labels == 3);
  // Neither given: transformers' default of two labels.
  CHECK(ModelConfig::from_json(tiny("", "LlamaForTokenClassification")).num_labels == 2);
  CHECK(config_error(tiny(R"("num_labels":0,)", "LlamaForTokenClassification")) ==
        R"(config.json: field "num_labels" must be at least 1 for LlamaForTokenClassification, got 0)");
}

TEST_CASE("config: bad configs name the file and the field") {
  CHECK(contains(config_error(R"({"architectures": ["LlamaForCausalLM"],)"), "config.json: line 1 col"));
  CHECK(config_error("[1]") == "config.json: must be a JSON object, got array");
  CHECK(config_error(with(R"({"hidden_size":null})")) == R"(config.json: field "hidden_size" is missing)");
  CHECK(config_error(with(R"({"num_hidden_layers":null})")) == R"(config.json: field "num_hidden_layers" is missing)");
  CHECK(config_error(with(R"({"hidden_size":"64"})")) == R"(config.json: field "hidden_size" must be an integer, got string)");
  CHECK(config_error(with(R"({"hidden_size":64.5})")) == R"(config.json: field "hidden_size" must be an integer, got 64.5)");
  CHECK(ModelConfig::from_json(with(R"({"hidden_size":64.0})")).hidden_size == 64);
  CHECK(config_error(with(R"({"vocab_size":1e12})")) == R"(config.json: field "vocab_size" is out of range: 1e+12)");
  CHECK(config_error(with(R"({"vocab_size":3000000000})")) == R"(config.json: field "vocab_size" is out of range: 3000000000)");
  CHECK(config_error(with(R"({"intermediate_size":-5})")) == R"(config.json: field "intermediate_size" must be positive, got -5)");
  CHECK(config_error(with(R"({"num_attention_heads":5})")) ==
        R"(config.json: field "num_attention_heads" (5) must divide hidden_size (64) when head_dim is not given)");
  CHECK(ModelConfig::from_json(with(R"({"num_attention_heads":5,"num_key_value_heads":1,"head_dim":16})")).head_dim == 16);
  CHECK(config_error(tiny(R"("num_key_value_heads":3,)")) ==
        R"(config.json: field "num_key_value_heads" (3) must divide num_attention_heads (4))");
  CHECK(config_error(tiny(R"("num_key_value_heads":0,)")) ==
        R"(config.json: field "num_key_value_heads" must be positive, got 0)");
  CHECK(config_error(tiny("", "GPT2LMHeadModel")) ==
        R"(config.json: architectures[0] "GPT2LMHeadModel" is not supported (LlamaForCausalLM, Qwen2ForCausalLM, LlamaForTokenClassification, Qwen2ForTokenClassification, Qwen3ForCausalLM, MistralForCausalLM, Qwen3ForTokenClassification, MistralForTokenClassification, Qwen2ForProcessRewardModel, Qwen2ForRewardModel, Qwen2ForPrmModel, LlamaForSequenceClassification, Qwen2ForSequenceClassification, Qwen3ForSequenceClassification, MistralForSequenceClassification))");
  CHECK(config_error(tiny("", "GemmaForCausalLM", "gemma")) ==
        R"(config.json: architectures[0] "GemmaForCausalLM" is not supported (LlamaForCausalLM, Qwen2ForCausalLM, LlamaForTokenClassification, Qwen2ForTokenClassification, Qwen3ForCausalLM, MistralForCausalLM, Qwen3ForTokenClassification, MistralForTokenClassification, Qwen2ForProcessRewardModel, Qwen2ForRewardModel, Qwen2ForPrmModel, LlamaForSequenceClassification, Qwen2ForSequenceClassification, Qwen3ForSequenceClassification, MistralForSequenceClassification))");
  CHECK(config_error(tiny("", "LlamaForCausalLM", "gemma")) ==
        R"(config.json: field "model_type" "gemma" is not supported (llama, qwen2, qwen3, mistral))");
  CHECK(config_error(tiny("", "LlamaForCausalLM", "mistral")) ==
        R"(config.json: architectures[0] "LlamaForCausalLM" does not match model_type "mistral")");
  CHECK(config_error(tiny("", "Qwen2ForCausalLM", "llama")) ==
        R"(config.json: architectures[0] "Qwen2ForCausalLM" does not match model_type "llama")");
  CHECK(config_error(tiny(R"("hidden_act":"gelu",)")) == R"(config.json: field "hidden_act" "gelu" is not supported (silu))");
  CHECK(config_error(tiny(R"("rms_norm_eps":0,)")) == R"(config.json: field "rms_norm_eps" must be positive and finite, got 0)");
  CHECK(config_error(tiny(R"("rope_theta":-1.0,)")) == R"(config.json: field "rope_theta" must be positive and finite, got -1)");
  CHECK(config_error(tiny(R"("eos_token_id":"</s>",)")) == R"(config.json: field "eos_token_id" must be an integer, got string)");
  CHECK(config_error(tiny(R"("eos_token_id":[1,"x"],)")) == R"(config.json: field "eos_token_id[1]" must be an integer, got string)");
  CHECK(config_error(tiny(R"("tie_word_embeddings":1,)")) == R"(config.json: field "tie_word_embeddings" must be a bool, got integer)");
  CHECK(config_error(tiny(R"("rope_parameters":{"rope_theta":"big"},)")) ==
        R"(config.json: field "rope_parameters.rope_theta" must be a number, got string)");
  CHECK(config_error(tiny(R"("rope_scaling":3,)")) == R"(config.json: field "rope_scaling" must be an object, got integer)");
  CHECK(config_error(R"({"vocab_size":100,"hidden_size":64,"intermediate_size":128,"num_hidden_layers":2,"num_attention_heads":4})") ==
        R"(config.json: field "architectures" is missing (and no model_type implies one))");
  CHECK(config_error(R"({"architectures":[1],"vocab_size":100})") == "config.json: architectures[0] must be a string, got integer");
  // validate() on a hand-built config.
  ModelConfig c = ModelConfig::from_json(tiny());
  c.hidden_size = 0;
  c.source = "/models/x/config.json";
  CHECK(error_of<qstar::ParseError>([&] { c.validate(); }) ==
        R"(/models/x/config.json: field "hidden_size" must be positive, got 0)");
}

TEST_CASE("config: from_file names the path") {
  const auto dir = std::filesystem::temp_directory_path() / ("qstar_cfg_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "config.json").string();
  {
    std::ofstream(path) << kLlama4;
  }
  const ModelConfig c = ModelConfig::from_file(path);
  CHECK(c.hidden_size == 2048);
  CHECK(c.source == path);
  {
    std::ofstream(path) << tiny("", "GPT2LMHeadModel");
  }
  CHECK(contains(error_of<qstar::ParseError>([&] { (void)ModelConfig::from_file(path); }),
                 path + R"(: architectures[0] "GPT2LMHeadModel" is not supported)"));
  {
    std::ofstream(path) << "{\"vocab_size\": 1,\n  oops}";
  }
  CHECK(contains(error_of<qstar::ParseError>([&] { (void)ModelConfig::from_file(path); }), path + ": line 2 col 3"));
  const std::string missing = (dir / "nope.json").string();
  CHECK(contains(error_of<qstar::IoError>([&] { (void)ModelConfig::from_file(missing); }), missing + ": cannot open"));
  std::filesystem::remove_all(dir);
}

TEST_CASE("config: RoPE scaling types and their fields") {
  // Llama-3.2-1B's config.json (transformers 4.45).
  const ModelConfig l = ModelConfig::from_json(R"({
    "architectures": ["LlamaForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
    "bos_token_id": 128000, "eos_token_id": 128001, "head_dim": 64, "hidden_act": "silu",
    "hidden_size": 2048, "initializer_range": 0.02, "intermediate_size": 8192,
    "max_position_embeddings": 131072, "mlp_bias": false, "model_type": "llama",
    "num_attention_heads": 32, "num_hidden_layers": 16, "num_key_value_heads": 8,
    "pretraining_tp": 1, "rms_norm_eps": 1e-05,
    "rope_scaling": {"factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                     "original_max_position_embeddings": 8192, "rope_type": "llama3"},
    "rope_theta": 500000.0, "tie_word_embeddings": true, "torch_dtype": "bfloat16",
    "transformers_version": "4.45.0.dev0", "use_cache": true, "vocab_size": 128256})");
  CHECK(l.rope_scaling_type == "llama3");
  CHECK(l.rope_factor == 32.0);
  CHECK(l.rope_low_freq_factor == 1.0);
  CHECK(l.rope_high_freq_factor == 4.0);
  CHECK(l.rope_original_max_position_embeddings == 8192);
  CHECK(l.sliding_window_of(0) == 0);
  // yarn: factor optional (then max / original), defaults, the 5.x layout and DeepSeek's mscales.
  const ModelConfig y = ModelConfig::from_json(tiny(
      R"("max_position_embeddings":4096,"rope_parameters":{"rope_type":"yarn","rope_theta":1e6,)"
      R"("original_max_position_embeddings":1024,"truncate":false,"mscale":0.707,"mscale_all_dim":0.707,)"
      R"("beta_fast":16,"attention_factor":1.5},)"));
  CHECK(y.rope_scaling_type == "yarn");
  CHECK_FALSE(y.rope_factor.has_value());
  CHECK(y.rope_original_max_position_embeddings == 1024);
  CHECK_FALSE(y.rope_truncate);
  CHECK(y.rope_mscale == 0.707);
  CHECK(y.rope_beta_fast == 16.0);
  CHECK_FALSE(y.rope_beta_slow.has_value());
  CHECK(y.rope_attention_factor == 1.5);
  CHECK(y.rope_theta == 1e6);
  // Without original_max_position_embeddings: max_position_embeddings (transformers 5.x); a
  // top-level one (Phi-3 style) wins over the dict's.
  CHECK(ModelConfig::from_json(tiny(R"("rope_scaling":{"type":"yarn","factor":4.0},)"))
            .rope_original_max_position_embeddings == 2048);
  CHECK(ModelConfig::from_json(tiny(R"("original_max_position_embeddings":512,)"
                                    R"("rope_scaling":{"type":"yarn","factor":4.0,"original_max_position_embeddings":256},)"))
            .rope_original_max_position_embeddings == 512);
  CHECK(ModelConfig::from_json(tiny(R"("rope_scaling":{"rope_type":"dynamic","factor":2.0},)")).rope_factor == 2.0);
  // rope_parameters' keys win over rope_scaling's.
  CHECK(ModelConfig::from_json(tiny(R"("rope_scaling":{"type":"linear","factor":2.0},"rope_parameters":{"factor":3.0},)"))
            .rope_factor == 3.0);

  CHECK(config_error(tiny(R"("rope_scaling":{"rope_type":"longrope","factor":4.0},)")) ==
        R"(config.json: rope_scaling / rope_parameters: rope type "longrope" is not supported (default, linear, dynamic, yarn, llama3))");
  CHECK(config_error(tiny(R"("rope_parameters":{"rope_type":"su"},)")) ==
        R"(config.json: rope_scaling / rope_parameters: rope type "su" is not supported (default, linear, dynamic, yarn, llama3))");
  CHECK(config_error(tiny(R"("rope_scaling":{"type":"linear"},)")) ==
        R"(config.json: field "rope_scaling.factor" is missing (required by rope type "linear"))");
  CHECK(config_error(tiny(R"("rope_scaling":{"type":"dynamic","factor":-1},)")) ==
        R"(config.json: field "rope_scaling.factor" must be positive and finite, got -1)");
  CHECK(config_error(tiny(R"("rope_scaling":{"rope_type":"llama3","factor":8.0,"low_freq_factor":1.0},)")) ==
        R"(config.json: field "rope_scaling.high_freq_factor" is missing (required by rope type "llama3"))");
  CHECK(config_error(tiny(R"("rope_scaling":{"rope_type":"llama3","factor":8.0,"low_freq_factor":4.0,"high_freq_factor":4.0},)")) ==
        R"(config.json: field "rope_scaling.high_freq_factor" (4) must be above low_freq_factor (4))");
  CHECK(config_error(tiny(R"("rope_scaling":{"rope_type":"yarn","factor":4.0,"original_max_position_embeddings":-1},)")) ==
        R"(config.json: field "rope_scaling.original_max_position_embeddings" must be positive, got -1)");
  CHECK(config_error(tiny(R"("partial_rotary_factor":0.5,)")) ==
        R"(config.json: field "partial_rotary_factor" must be 1 (partial rotary embeddings are not supported for llama), got 0.5)");
  CHECK(config_error(tiny(R"("rope_parameters":{"rope_theta":1e4,"partial_rotary_factor":0.25},)")) ==
        R"(config.json: field "partial_rotary_factor" must be 1 (partial rotary embeddings are not supported for llama), got 0.25)");
  CHECK(config_error(tiny(R"("rope_parameters":{"full_attention":{"rope_type":"default"}},)")) ==
        R"(config.json: field "rope_parameters.full_attention": RoPE parameters per layer type are not supported)");
  CHECK(config_error(tiny(R"("rope_scaling":{"rope_type":"linear","factor":"2"},)")) ==
        R"(config.json: field "rope_scaling.factor" must be a number, got string)");
}

TEST_CASE("config: Qwen3, Mistral and sliding windows as transformers resolves them") {
  // Qwen3-0.6B's config.json.
  const ModelConfig q3 = ModelConfig::from_json(R"({
    "architectures": ["Qwen3ForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
    "bos_token_id": 151643, "eos_token_id": 151645, "head_dim": 128, "hidden_act": "silu",
    "hidden_size": 1024, "initializer_range": 0.02, "intermediate_size": 3072,
    "max_position_embeddings": 40960, "max_window_layers": 28, "model_type": "qwen3",
    "num_attention_heads": 16, "num_hidden_layers": 28, "num_key_value_heads": 8,
    "rms_norm_eps": 1e-06, "rope_scaling": null, "rope_theta": 1000000, "sliding_window": null,
    "tie_word_embeddings": true, "torch_dtype": "bfloat16", "transformers_version": "4.51.0",
    "use_cache": true, "use_sliding_window": false, "vocab_size": 151936})");
  CHECK(q3.model_type == "qwen3");
  CHECK(q3.head_dim == 128);
  CHECK_FALSE(q3.attention_bias);
  CHECK_FALSE(q3.sliding_window.has_value());
  CHECK(q3.layer_types.empty());
  CHECK(q3.sliding_window_of(27) == 0);
  // A huge layer count with a window costs nothing until asked (no per-layer list is built).
  const ModelConfig huge = ModelConfig::from_json(
      with(R"({"num_hidden_layers":2000000000,"sliding_window":8,"model_type":"mistral",)"
           R"("architectures":["MistralForCausalLM"]})"));
  CHECK(huge.sliding_window_of(1999999999) == 8);
  CHECK(huge.sliding_window_of(2000000000) == 0);
  // Qwen3 without head_dim: transformers' default 128, not hidden / heads; attention_bias as given.
  const ModelConfig q3b = ModelConfig::from_json(tiny(R"("attention_bias":true,)", "Qwen3ForCausalLM", "qwen3"));
  CHECK(q3b.head_dim == 128);
  CHECK_FALSE(q3b.head_dim_given);
  CHECK(q3b.attention_bias);
  CHECK(ModelConfig::from_json(tiny("", "Qwen3ForTokenClassification", "qwen3")).num_labels == 2);
  // The model_type follows from the architecture, and the architecture from the model_type.
  CHECK(ModelConfig::from_json(with(R"({"model_type":null,"architectures":["MistralForCausalLM"]})")).model_type ==
        "mistral");
  CHECK(ModelConfig::from_json(with(R"({"model_type":"qwen3","architectures":null})")).architecture ==
        "Qwen3ForCausalLM");

  // Mistral-7B-v0.1: every layer slides over 4096; absent means 4096, null none; no biases.
  const ModelConfig m = ModelConfig::from_json(tiny(R"("sliding_window":4096,"attention_bias":true,)",
                                                    "MistralForCausalLM", "mistral"));
  CHECK(m.sliding_window == 4096);
  CHECK(m.sliding_window_of(0) == 4096);
  CHECK(m.sliding_window_of(1) == 4096);
  CHECK_FALSE(m.attention_bias);
  CHECK(ModelConfig::from_json(tiny("", "MistralForCausalLM", "mistral")).sliding_window_of(1) == 4096);
  CHECK(ModelConfig::from_json(tiny(R"("sliding_window":null,)", "MistralForCausalLM", "mistral"))
            .sliding_window_of(0) == 0);

  // DeepSeek-R1-Distill-Qwen-1.5B: a window and max_window_layers, but use_sliding_window false.
  const ModelConfig r1 = ModelConfig::from_json(R"({
    "architectures": ["Qwen2ForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 151643,
    "eos_token_id": 151643, "hidden_act": "silu", "hidden_size": 1536, "initializer_range": 0.02,
    "intermediate_size": 8960, "max_position_embeddings": 131072, "max_window_layers": 21,
    "model_type": "qwen2", "num_attention_heads": 12, "num_hidden_layers": 28,
    "num_key_value_heads": 2, "rms_norm_eps": 1e-06, "rope_theta": 10000, "sliding_window": 4096,
    "tie_word_embeddings": false, "torch_dtype": "bfloat16", "transformers_version": "4.44.0",
    "use_cache": true, "use_mrope": false, "use_sliding_window": false, "vocab_size": 151936})");
  CHECK_FALSE(r1.sliding_window.has_value());
  for (int i = 0; i < 28; ++i) CHECK(r1.sliding_window_of(i) == 0);
  CHECK(r1.head_dim == 128);
  // The same with use_sliding_window true: layers 21.. slide.
  const std::string r1_on = R"("use_sliding_window":true,"sliding_window":4096,"max_window_layers":1,)";
  const ModelConfig q2 = ModelConfig::from_json(tiny(r1_on, "Qwen2ForCausalLM", "qwen2"));
  CHECK(q2.sliding_window_of(0) == 0);
  CHECK(q2.sliding_window_of(1) == 4096);
  CHECK(ModelConfig::from_json(tiny(R"("use_sliding_window":true,)", "Qwen2ForCausalLM", "qwen2"))
            .sliding_window_of(1) == 0);  // max_window_layers defaults to 28
  // Llama never slides.
  CHECK(ModelConfig::from_json(tiny(r1_on)).sliding_window_of(1) == 0);
  // layer_types given: as written.
  const ModelConfig lt = ModelConfig::from_json(tiny(
      R"("use_sliding_window":true,"sliding_window":8,"layer_types":["sliding_attention","full_attention"],)",
      "Qwen3ForCausalLM", "qwen3"));
  CHECK(lt.sliding_window_of(0) == 8);
  CHECK(lt.sliding_window_of(1) == 0);

  CHECK(config_error(tiny(R"("layer_types":["sliding_attention","full_attention"],)", "Qwen2ForCausalLM", "qwen2")) ==
        R"(config.json: field "layer_types[0]" is sliding_attention but there is no window (sliding_window null, or use_sliding_window false))");
  CHECK(config_error(tiny(R"("layer_types":["full_attention"],)", "Qwen2ForCausalLM", "qwen2")) ==
        R"(config.json: field "layer_types" has 1 entries, expected num_hidden_layers (2))");
  CHECK(config_error(tiny(R"("layer_types":["full_attention","chunked_attention"],)", "MistralForCausalLM", "mistral")) ==
        R"(config.json: field "layer_types[1]" "chunked_attention" is not supported (full_attention, sliding_attention))");
  CHECK(config_error(tiny(R"("layer_types":"full",)", "MistralForCausalLM", "mistral")) ==
        R"(config.json: field "layer_types" must be an array, got string)");
  CHECK(config_error(tiny(R"("sliding_window":0,)", "MistralForCausalLM", "mistral")) ==
        R"(config.json: field "sliding_window" must be positive, got 0)");
  CHECK(config_error(tiny("", "Qwen3ForCausalLM", "qwen2")) ==
        R"(config.json: architectures[0] "Qwen3ForCausalLM" does not match model_type "qwen2")");
}
