// Regression tests for bugs the libFuzzer targets found in the model-folder loaders
// (tests/fuzz, docs/reliability.md). Each input is also kept in the fuzz seed corpus
// (tests/fuzz/corpus/<target>/regress_*), which scripts/fuzz.sh replays.
#include <doctest/doctest.h>

#include <string>

#include "qstar/error.hpp"
#include "qstar/torch/tokenizer.hpp"

using qstar::lm::Tokenizer;

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
