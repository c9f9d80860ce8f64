// Search with language models: step beam search over Game of 24 puzzles with a causal LM
// proposing steps (LMGenerator) and a process reward model scoring them (PrmVerifier),
// both loaded from Hugging Face folders (config.json, model.safetensors, tokenizer.json).
//
//   example_lm_search GENERATOR_DIR PRM_PATH [--device cpu|cuda] [--puzzles N] [--beams N]
//
// GENERATOR_DIR: a Llama/Qwen2/Qwen3/Mistral *ForCausalLM folder that writes one step per line after
// Game24Task's prompt (the trained default generator of `qstar train`, for instance).
// PRM_PATH: a token-logit or token-class PRM folder, or a TorchScript file (PrmParams.kind
// "auto" decides). Solves ranks 901.. of data/game24/24.csv and prints one line per puzzle
// and a summary "solved K/N". Runs on CPU; --device cuda uses a GPU when LibTorch has one.
#include <algorithm>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <string>
#include <vector>

#include <qstar/qstar.hpp>
#include <qstar/tasks/game24.hpp>
#include <qstar/torch/lm_generator.hpp>
#include <qstar/torch/prm.hpp>

namespace {

[[noreturn]] void usage_error(const std::string& what) {
  std::cerr << "example_lm_search: error: " << what
            << " (usage: example_lm_search GENERATOR_DIR PRM_PATH [--device cpu|cuda]"
               " [--puzzles N] [--beams N])\n";
  std::exit(2);
}

int positive(const std::string& flag, const std::string& value) {
  try {
    std::size_t used = 0;
    const int v = std::stoi(value, &used);
    if (used == value.size() && v >= 1) return v;
  } catch (const std::exception&) {
  }
  usage_error(flag + " must be a positive integer, not '" + value + "'");
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> positional;
  std::string device = "cpu";
  int puzzles = 5, beams = 16;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--device" || a == "--puzzles" || a == "--beams") {
      if (i + 1 >= argc) usage_error(a + " needs a value");
      const std::string v = argv[++i];
      if (a == "--device") device = v;
      else if (a == "--puzzles") puzzles = positive(a, v);
      else beams = positive(a, v);
    } else if (a.rfind("--", 0) == 0) {
      usage_error("unknown flag " + a);
    } else {
      positional.push_back(a);
    }
  }
  if (positional.size() != 2) usage_error("expected GENERATOR_DIR and PRM_PATH");

  try {
    using namespace qstar;
    const auto problems = game24::load_csv(QSTAR_EXAMPLE_DATA, std::pair{901, 900 + puzzles});
    game24::Game24Task task;

    lm::LMGeneratorParams gp;  // one step per line, sampled at temperature 0.7
    gp.device = device;
    gp.temperature = 0.7;
    gp.answer_marker = game24::Game24Task::answer_marker();
    auto gen = lm::LMGenerator::load(positional[0], gp);
    lm::PrmParams pp;
    pp.device = device;
    auto prm = lm::PrmVerifier::load(positional[1], pp);

    BeamParams params;  // N beams (rounded down to a multiple of 4, at least 4), width 4
    params.num_beams = std::max(4, beams / 4 * 4);
    params.width = 4;
    const auto results = beam_search(std::span<const Problem>(problems), task, gen, prm, params,
                                     /*seed=*/0);
    int solved = 0;
    std::int64_t tokens = 0;
    for (std::size_t i = 0; i < results.size(); ++i) {
      const bool ok = results[i].correct.value_or(false);
      solved += ok ? 1 : 0;
      tokens += results[i].stats.generated_tokens;
      std::cout << problems[i].text << ": " << results[i].answer.value_or("(no answer)")
                << (ok ? "  [correct]" : "  [wrong]") << "\n";
    }
    std::cout << "solved " << solved << "/" << results.size() << " with " << params.num_beams
              << " beams on " << device << ", " << tokens << " generated tokens ("
              << gen.name() << ", PRM " << prm.kind() << ")\n";
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "example_lm_search: error: " << e.what() << "\n";
    return 1;
  }
}
