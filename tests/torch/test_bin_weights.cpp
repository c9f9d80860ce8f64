// Model folders whose weights are torch.save checkpoints (pytorch_model.bin, or .bin shards
// with pytorch_model.bin.index.json) load to the same model as their safetensors twin: the
// logits (token-classification scores) are identical. The .bin files are written at test time
// by Debian's python3-torch (tests/torch/safetensors_to_bin.py) from the safetensors file.
#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "qstar/hf/safetensors.hpp"
#include "qstar/torch/model.hpp"
#include "support/tiny_model.hpp"

#ifndef QSTAR_PYTHON
#define QSTAR_PYTHON "/usr/bin/python3"
#endif

namespace fs = std::filesystem;

namespace {

/// Runs safetensors_to_bin.py on `dir`; false when no python3 has torch (the test skips).
bool to_bin(const std::string& dir, int shards) {
  const std::string script = std::string(QSTAR_TEST_SCRIPTS) + "/safetensors_to_bin.py";
  for (const std::string& py : {std::string(QSTAR_PYTHON), std::string("/usr/bin/python3")}) {
    if (py.empty() || !fs::exists(py)) continue;
    if (std::system(("\"" + py + "\" -c \"import torch\" > /dev/null 2>&1").c_str()) != 0) continue;
    const std::string err = dir + "/../convert_stderr.txt";
    const std::string cmd = "\"" + py + "\" \"" + script + "\" \"" + dir + "\" --shards " + std::to_string(shards) +
                            " 2> \"" + err + "\"";
    if (std::system(cmd.c_str()) != 0) {
      std::ifstream in(err);
      std::stringstream ss;
      ss << in.rdbuf();
      FAIL("safetensors_to_bin.py failed with " << py << ":\n" << ss.str());
    }
    return true;
  }
  return false;
}

}  // namespace

TEST_CASE("bin weights: a .bin model folder gives the same logits as its safetensors twin") {
  struct Case {
    const char* label;
    tiny::Spec spec;
    int shards;
  };
  const Case cases[] = {
      {"llama, pytorch_model.bin", tiny::causal_llama(), 1},
      {"llama, two .bin shards", tiny::causal_llama(), 2},
      {"qwen2 (tied embeddings), three .bin shards", tiny::causal_qwen2(), 3},
      {"llama token classification, pytorch_model.bin", tiny::token_class("llama", 2), 1},
  };
  const std::vector<std::int32_t> ids = {1, 5, 9, 2, 33, 7};
  for (const Case& c : cases) {
    CAPTURE(c.label);
    tiny::TempDir root;
    const std::string st = root.file("st"), bin = root.file("bin");
    fs::create_directories(st);
    tiny::write_model(st, c.spec, 17);
    fs::copy(st, bin, fs::copy_options::recursive);
    if (!to_bin(bin, c.shards)) {
      MESSAGE("skipping: no python3 with torch (tried " QSTAR_PYTHON " and /usr/bin/python3)");
      return;
    }
    REQUIRE(!fs::exists(bin + "/model.safetensors"));
    CHECK(qstar::hf::WeightStore::open_dir(bin).source() ==
          (c.shards == 1 ? "pytorch_model.bin" : "pytorch_model.bin.index.json"));
    const auto a = qstar::lm::LanguageModel::load(st);
    const auto b = qstar::lm::LanguageModel::load(bin);
    const auto ra = c.spec.num_labels > 0 ? a.token_scores(ids) : a.logits(ids);
    const auto rb = c.spec.num_labels > 0 ? b.token_scores(ids) : b.logits(ids);
    REQUIRE(ra.size() == ids.size());
    CHECK(ra == rb);  // bit-identical weights, the same computation
  }
}
