// Determinism of the LibTorch forward across intra-op thread counts (issue #7): the same
// model and tokens give bit-identical logits with 1, 2 and 4 ATen threads on the CPU.
// (CUDA is not covered: see docs/reliability.md on GPU non-determinism.)
#include <ATen/Parallel.h>
#include <unistd.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "qstar/torch/model.hpp"
#include "support/tiny_model.hpp"

// doctest after the torch headers (glog redefines CHECK; see test_model.cpp).
#include <doctest/doctest.h>
#undef CHECK
#define CHECK(...) DOCTEST_CHECK(__VA_ARGS__)

using namespace qstar::lm;
using namespace qstar::hf;

TEST_CASE("lm: logits are bit-identical across ATen thread counts on the CPU") {
  // Big enough that ATen's parallel paths engage: activations of 128 x 512 floats exceed
  // the 32768-element grain size.
  tiny::TempDir dir;
  tiny::Spec spec;
  spec.hidden = 256;
  spec.inter = 512;
  spec.vocab = 1024;
  tiny::write_model(dir.str(), spec, 7, false);
  const auto lm = LanguageModel::load(dir.str());
  std::vector<std::int32_t> tokens(128);
  std::mt19937 rng(3);
  for (auto& t : tokens) t = static_cast<std::int32_t>(rng() % 1024);

  const int saved = at::get_num_threads();
  std::vector<std::vector<std::vector<float>>> runs;
  for (int threads : {1, 2, 4}) {
    at::set_num_threads(threads);
    CHECK(at::get_num_threads() == threads);
    runs.push_back(lm.logits(tokens));
  }
  at::set_num_threads(saved);

  REQUIRE(runs[0].size() == tokens.size());
  for (std::size_t r = 1; r < runs.size(); ++r) {
    CAPTURE(r);
    std::size_t differing = 0;
    for (std::size_t i = 0; i < tokens.size(); ++i)
      differing += std::memcmp(runs[0][i].data(), runs[r][i].data(), runs[0][i].size() * sizeof(float)) != 0;
    CHECK(differing == 0);
  }
}
