// Regression tests for bugs the libFuzzer targets found in the model-folder loaders
// (tests/fuzz, docs/reliability.md). Each input is also kept in the fuzz seed corpus
// (tests/fuzz/corpus/<target>/regress_*), which scripts/fuzz.sh replays.
#include <doctest/doctest.h>

#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "qstar/error.hpp"
#include "qstar/hf/safetensors.hpp"
#include "qstar/hf/tokenizer.hpp"
#include "support/tiny_model.hpp"

using qstar::hf::Tokenizer;

namespace {

std::string load_error(const std::string& text) {
  try {
    (void)Tokenizer::from_json(text);
  } catch (const qstar::ParseError& e) {
    return e.what();
  } catch (const std::exception& e) {
    return std::string("not a ParseError: ") + e.what();
  }
  return "no error";
}

}  // namespace

TEST_CASE("fuzz regression: a token id near INT32_MAX is rejected, not allocated (tokenizer.json)") {
  // Found by fuzz_tokenizer: vocab ids size id-indexed tables (max id + 1). INT32_MAX
  // overflowed `max_id + 1` (UB) and asked for 2^31 strings (64 GiB).
  CHECK(load_error(R"({"model":{"type":"WordLevel","vocab":{"a":2147483647},"unk_token":"a"}})") ==
        "tokenizer.json: model.vocab.\"a\": token id 2147483647 out of range");
  CHECK(load_error(R"({"model":{"type":"WordLevel","vocab":{"a":16777216},"unk_token":"a"}})").find(
            "out of range") != std::string::npos);  // the cap is 2^24 - 1
  // Added tokens and post-processor ids are held to the same range.
  CHECK(load_error(R"({"model":{"type":"WordLevel","vocab":{"a":0},"unk_token":"a"},
      "added_tokens":[{"id":2000000000,"content":"<x>","special":true}]})")
            .find("added_tokens[0].id: token id 2000000000 out of range") != std::string::npos);
  CHECK(load_error(R"({"model":{"type":"WordLevel","vocab":{"a":0},"unk_token":"a"},
      "post_processor":{"type":"BertProcessing","sep":["a",2147483647],"cls":["a",0]}})")
            .find("out of range") != std::string::npos);
  // A sparse id inside the range loads (it costs memory, not correctness).
  const Tokenizer t = Tokenizer::from_json(R"({"model":{"type":"WordLevel","vocab":{"a":0,"b":65535},"unk_token":"a"}})");
  CHECK(t.vocab_size() == 65536);
  CHECK(t.encode("b") == std::vector<std::int32_t>{65535});
}

TEST_CASE("fuzz regression: a shard name with a NUL byte is rejected (model.safetensors.index.json)") {
  // Found by fuzz_safetensors' oracle: "shard.safetensors\u0000junk" passed the folder check
  // and the OS opened "shard.safetensors" (the name cut at the NUL), a file the index does
  // not name.
  tiny::TempDir dir;
  std::vector<std::byte> one(4);
  const float x = 1.0f;
  std::memcpy(one.data(), &x, 4);
  const std::vector<qstar::hf::TensorToWrite> ts = {{"a", qstar::hf::DType::F32, {1}, one}};
  qstar::hf::write_safetensors(dir.file("shard.safetensors"), ts);
  auto open_with = [&](const std::string& index) -> std::string {
    std::ofstream(dir.file("model.safetensors.index.json"), std::ios::binary | std::ios::trunc) << index;
    try {
      (void)qstar::hf::WeightStore::open_dir(dir.str());
    } catch (const qstar::Error& e) {
      return e.what();
    }
    return "no error";
  };
  CHECK(open_with(R"({"weight_map":{"a":"shard.safetensors"}})") == "no error");
  const std::string err = open_with(R"({"weight_map":{"a":"shard.safetensors\u0000junk"}})");
  CHECK(err.find("is not a file name inside the model folder") != std::string::npos);
  CHECK(open_with(R"({"weight_map":{"a":"..\u0000"}})").find("is not a file name inside") != std::string::npos);
}
