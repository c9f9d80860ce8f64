// Bad model folders through the CLI (issue #7): a missing file, malformed JSON, an unknown
// architecture, wrong tensor shapes, a truncated safetensors file or a bad tokenizer.json
// each end with exit 2 and one stderr line naming the file and the field or tensor.
#include <ATen/ATen.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "../cli_run.hpp"
#include "cli/cli.hpp"
#include "support/tiny_model.hpp"

#include <doctest/doctest.h>
#undef CHECK
#define CHECK(...) DOCTEST_CHECK(__VA_ARGS__)

namespace {

using cli_test::Run;
using cli_test::run;

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void spit(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
}

void replace(const std::string& path, const std::string& from, const std::string& to) {
  std::string s = slurp(path);
  const auto at = s.find(from);
  REQUIRE(at != std::string::npos);
  s.replace(at, from.size(), to);
  spit(path, s);
}

}  // namespace

TEST_CASE("cli lm: each kind of broken model folder is one error line naming the file, exit 2") {
  struct Case {
    const char* what;
    std::function<void(const tiny::TempDir&)> breakit;
    std::vector<std::string> needles;  // all must appear in the error line
  };
  const std::vector<Case> cases = {
      {"missing config.json", [](const tiny::TempDir& d) { std::filesystem::remove(d.file("config.json")); },
       {"config.json"}},
      {"malformed config.json", [](const tiny::TempDir& d) { spit(d.file("config.json"), "{\"vocab_size\": 64,"); },
       {"config.json", "line 1"}},
      {"unknown architecture",
       [](const tiny::TempDir& d) { replace(d.file("config.json"), "LlamaForCausalLM", "GPT2LMHeadModel"); },
       {"config.json", "GPT2LMHeadModel"}},
      {"a field of the wrong type",
       [](const tiny::TempDir& d) { replace(d.file("config.json"), "\"rope_theta\": 10000.0", "\"rope_theta\": \"big\""); },
       {"config.json", "rope_theta"}},
      {"wrong tensor shape",
       [](const tiny::TempDir& d) { replace(d.file("config.json"), "\"intermediate_size\": 64", "\"intermediate_size\": 48"); },
       {"model.safetensors", "mlp"}},
      {"truncated safetensors",
       [](const tiny::TempDir& d) {
         const std::string s = slurp(d.file("model.safetensors"));
         spit(d.file("model.safetensors"), s.substr(0, s.size() - 10));
       },
       {"model.safetensors"}},
      {"malformed tokenizer.json", [](const tiny::TempDir& d) { spit(d.file("tokenizer.json"), "{\"model\": ["); },
       {"tokenizer.json"}},
      {"tokenizer.json with a bad field",
       [](const tiny::TempDir& d) { replace(d.file("tokenizer.json"), "\"WordLevel\"", "\"Unigram\""); },
       {"tokenizer.json", "model.type"}},
  };
  for (const auto& c : cases) {
    const std::string what = c.what;
    CAPTURE(what);
    tiny::TempDir dir;
    tiny::write_model(dir.str(), tiny::causal_llama(), 5);
    c.breakit(dir);
    const auto r = run({"lm", "logits", "--model", dir.str(), "--text", "1+2"});
    CAPTURE(r.err);
    CHECK(r.code == 2);
    CHECK(r.out.empty());
    CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
    CHECK(r.err.rfind("qstar: error: ", 0) == 0);
    for (const auto& n : c.needles) CHECK(r.err.find(n) != std::string::npos);
  }
}
