// A downstream program built against qstar by tests/package/driver.cmake, once through
// find_package (installed prefix) and once through add_subdirectory. It prints one line per
// check and exits non-zero on the first failure.
//   core:  step beam search with the Game of 24 programmatic generator and exact oracle PRM,
//          run twice to check the result is deterministic for a seed.
//   torch: (QSTAR_CONSUMER_TORCH) writes a tiny random Llama model with qstar's safetensors
//          writer, loads it, checks the logits, and samples steps with LMGenerator.
#include <cmath>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include <qstar/qstar.hpp>
#include <qstar/tasks/game24.hpp>
#include <qstar/version.hpp>

#ifdef QSTAR_CONSUMER_TORCH
#include <unistd.h>

#include <qstar/torch/lm_generator.hpp>
#include <qstar/torch/model.hpp>
#include <qstar/hf/safetensors.hpp>
#endif

namespace {

[[noreturn]] void fail(const std::string& what) {
  std::cerr << "consumer: FAILED: " << what << "\n";
  std::exit(1);
}

void check_core() {
  using namespace qstar;
  std::vector<Problem> problems{{"a", "4 5 6 10", std::nullopt}, {"b", "1 1 4 6", std::nullopt}};
  game24::Game24Task task;
  game24::ProgrammaticGenerator gen;
  game24::OracleStepVerifier prm;
  BeamParams params;
  params.num_beams = 40;
  params.width = 8;
  const auto first = beam_search(std::span<const Problem>(problems), task, gen, prm, params, 3);
  const auto second = beam_search(std::span<const Problem>(problems), task, gen, prm, params, 3);
  int solved = 0;
  for (std::size_t i = 0; i < problems.size(); ++i) {
    if (first[i].answer != second[i].answer || first[i].steps() != second[i].steps())
      fail("beam search is not deterministic for problem " + problems[i].text);
    if (first[i].correct.value_or(false)) ++solved;
  }
  // With an exact oracle and 40 beams both puzzles are solved.
  if (solved != 2) fail("beam search + oracle solved " + std::to_string(solved) + "/2");
  std::cout << "core: beam search + oracle solved 2/2, answer " << first[0].answer.value_or("")
            << ", deterministic\n";
}

#ifdef QSTAR_CONSUMER_TORCH
// A character vocabulary: "<unk>" then one token per character of kChars.
constexpr const char* kChars = " \n+-=*/()0123456789:abcdefghijklmnopqrstuvwxyz";

void write_tiny_model(const std::filesystem::path& dir) {
  namespace hf = qstar::hf;
  const std::int64_t D = 16, I = 32, V = 64, H = 2, KV = 1, hd = D / H;
  struct Spec {
    std::string name;
    std::vector<std::int64_t> shape;
    bool norm;
  };
  std::vector<Spec> specs{{"model.embed_tokens.weight", {V, D}, false}};
  const std::string p = "model.layers.0.";
  specs.push_back({p + "input_layernorm.weight", {D}, true});
  specs.push_back({p + "self_attn.q_proj.weight", {H * hd, D}, false});
  specs.push_back({p + "self_attn.k_proj.weight", {KV * hd, D}, false});
  specs.push_back({p + "self_attn.v_proj.weight", {KV * hd, D}, false});
  specs.push_back({p + "self_attn.o_proj.weight", {D, H * hd}, false});
  specs.push_back({p + "post_attention_layernorm.weight", {D}, true});
  specs.push_back({p + "mlp.gate_proj.weight", {I, D}, false});
  specs.push_back({p + "mlp.up_proj.weight", {I, D}, false});
  specs.push_back({p + "mlp.down_proj.weight", {D, I}, false});
  specs.push_back({"model.norm.weight", {D}, true});
  specs.push_back({"lm_head.weight", {V, D}, false});
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 0.5f);
  std::vector<std::vector<float>> data;
  data.reserve(specs.size());
  std::vector<hf::TensorToWrite> tensors;
  for (const auto& s : specs) {
    std::int64_t n = 1;
    for (auto d : s.shape) n *= d;
    std::vector<float> v(static_cast<std::size_t>(n));
    for (auto& x : v) x = s.norm ? 1.0f : normal(rng);
    data.push_back(std::move(v));
    tensors.push_back({s.name, hf::DType::F32, s.shape,
                       std::as_bytes(std::span<const float>(data.back()))});
  }
  hf::write_safetensors((dir / "model.safetensors").string(), tensors);
  std::ofstream(dir / "config.json")
      << "{\"architectures\": [\"LlamaForCausalLM\"], \"model_type\": \"llama\", "
         "\"vocab_size\": 64, \"hidden_size\": 16, \"intermediate_size\": 32, "
         "\"num_hidden_layers\": 1, \"num_attention_heads\": 2, \"num_key_value_heads\": 1, "
         "\"rms_norm_eps\": 1e-06, \"rope_theta\": 10000.0, \"max_position_embeddings\": 256, "
         "\"hidden_act\": \"silu\", \"tie_word_embeddings\": false, \"torch_dtype\": \"float32\"}\n";
  std::string vocab = "{\"<unk>\": 0";
  int id = 1;
  for (const char* c = kChars; *c; ++c) {
    const std::string tok = *c == '\n' ? "\\n" : std::string(1, *c);
    vocab += ", \"" + tok + "\": " + std::to_string(id++);
  }
  vocab += "}";
  std::ofstream(dir / "tokenizer.json")
      << "{\"version\": \"1.0\", \"added_tokens\": [], \"normalizer\": null, "
         "\"pre_tokenizer\": {\"type\": \"Split\", \"pattern\": {\"Regex\": \"[\\\\s\\\\S]\"}, "
         "\"behavior\": \"Isolated\", \"invert\": false}, \"post_processor\": null, "
         "\"decoder\": {\"type\": \"Fuse\"}, \"model\": {\"type\": \"WordLevel\", \"vocab\": "
      << vocab << ", \"unk_token\": \"<unk>\"}}\n";
}

void check_torch() {
  namespace fs = std::filesystem;
  const fs::path dir =
      fs::temp_directory_path() / ("qstar_consumer_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  struct Cleanup {
    fs::path p;
    ~Cleanup() {
      std::error_code ec;
      fs::remove_all(p, ec);
    }
  } cleanup{dir};
  write_tiny_model(dir);

  const auto model = qstar::lm::LanguageModel::load(dir.string());
  const std::vector<std::int32_t> tokens{5, 9, 3, 12};
  const auto logits = model.logits(tokens);
  if (logits.size() != tokens.size() || logits[0].size() != 64)
    fail("logits shape " + std::to_string(logits.size()) + "x" +
         std::to_string(logits.empty() ? 0 : logits[0].size()) + ", expected 4x64");
  for (const auto& row : logits)
    for (float x : row)
      if (!std::isfinite(x)) fail("non-finite logit");

  qstar::lm::LMGeneratorParams gp;
  gp.max_step_tokens = 6;
  auto gen = qstar::lm::LMGenerator::load(dir.string(), gp);
  const qstar::Problem problem{"p", "4 5 6 10", std::nullopt};
  qstar::ExpandRequest req;
  req.problem = &problem;
  req.prompt = "4 5 6 10\n";
  req.num_candidates = 3;
  req.seed = 11;
  const auto a = gen.expand(std::span<const qstar::ExpandRequest>(&req, 1));
  const auto b = gen.expand(std::span<const qstar::ExpandRequest>(&req, 1));
  if (a.size() != 1 || a[0].size() != 3) fail("LMGenerator did not return 3 steps");
  for (std::size_t i = 0; i < 3; ++i) {
    if (a[0][i].text != b[0][i].text || a[0][i].tokens != b[0][i].tokens)
      fail("LMGenerator is not deterministic for a seed");
    if (a[0][i].tokens.empty() || a[0][i].tokens.size() > 6) fail("step length out of range");
  }
  std::cout << "torch: loaded a tiny Llama (logits 4x64), sampled 3 steps, deterministic\n";
}
#endif

}  // namespace

int main() {
  try {
#ifdef QSTAR_CONSUMER_EXPECT_VERSION
    if (std::string(qstar::version_string) != QSTAR_CONSUMER_EXPECT_VERSION)
      fail(std::string("headers say qstar ") + qstar::version_string + ", the package " +
           QSTAR_CONSUMER_EXPECT_VERSION);
#endif
    std::cout << "qstar " << qstar::version_string << "\n";
    check_core();
#ifdef QSTAR_CONSUMER_TORCH
    check_torch();
#endif
    std::cout << "consumer: ok\n";
    return 0;
  } catch (const std::exception& e) {
    fail(e.what());
  }
}
