// Tokenizer builders of qstar::hf (char_tokenizer_json, word_tokenizer_json) and the Game of
// 24 vocabulary built on them (include/qstar/tasks/game24/vocab.hpp). No LibTorch.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "qstar/core/json.hpp"
#include "qstar/error.hpp"
#include "qstar/hf/model_io.hpp"
#include "qstar/hf/tokenizer.hpp"
#include "qstar/tasks/game24/vocab.hpp"

using namespace qstar;
using hf::Tokenizer;

namespace {

std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  REQUIRE(in);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// The repository root, from the Game of 24 data file every test binary knows.
std::filesystem::path repo_root() {
  return std::filesystem::path(QSTAR_TEST_DATA).parent_path().parent_path().parent_path();
}

}  // namespace

TEST_CASE("char_tokenizer_json: <unk> is 0, one token per character in order, exact decode") {
  const auto tok = Tokenizer::from_json(hf::char_tokenizer_json("ba\nb"));
  CHECK(tok.vocab_size() == 4);  // <unk> b a \n (the repeated b is ignored)
  CHECK(tok.encode("ab\nz") == std::vector<std::int32_t>{2, 1, 3, 0});
  CHECK(tok.decode(tok.encode("ab\nba")) == "ab\nba");
  CHECK_THROWS_AS(hf::char_tokenizer_json(""), InvalidArgument);
  CHECK_THROWS_AS(hf::char_tokenizer_json("a\xC3\xA9"), InvalidArgument);
}

TEST_CASE("word_tokenizer_json: numbers up to max_number, words and characters are one token") {
  const std::vector<std::string> words{"foo", "Bar"};
  const std::string j = hf::word_tokenizer_json("ab+ \n", words, 12);
  const json::Value v = json::parse(j, "word tokenizer");
  CHECK(v.at("pre_tokenizer").at("pattern").get_string("Regex") == hf::word_tokenizer_pattern());
  const auto tok = Tokenizer::from_json(j);
  // <unk>; a b + " " \n; " +"; 0..12 and " 0".." 12" (0..9 alone are not in chars: new);
  // foo " foo" Bar " Bar".
  CHECK(tok.vocab_size() == 1 + 5 + 1 + 26 + 4);
  CHECK(tok.encode(" foo 12 +").size() == 3);
  CHECK(tok.encode("Bar+a").size() == 3);
  const auto ids = tok.encode("13 c");  // "13" is one piece but above max_number; "c" unknown
  CHECK(ids == std::vector<std::int32_t>{0, 0});
  CHECK(tok.decode(tok.encode("foo + 7\nBar 12")) == "foo + 7\nBar 12");

  CHECK_THROWS_AS(hf::word_tokenizer_json("", words, 9), InvalidArgument);
  CHECK_THROWS_AS(hf::word_tokenizer_json("a\xC3\xA9", words, 9), InvalidArgument);
  CHECK_THROWS_AS(hf::word_tokenizer_json("ab", words, 1000), InvalidArgument);
  CHECK_THROWS_AS(hf::word_tokenizer_json("ab", words, -1), InvalidArgument);
  CHECK_THROWS_AS(hf::word_tokenizer_json("ab", std::vector<std::string>{"no-t"}, 9),
                  InvalidArgument);
}

TEST_CASE("game24 vocab: the character set and the word tokenizer of the shipped models") {
  const std::string chars = game24::game24_chars();
  REQUIRE(chars.size() == 96);
  CHECK(chars[0] == '\n');
  CHECK(chars[1] == ' ');
  CHECK(chars.back() == '~');
  CHECK(game24::game24_word_pattern() == hf::word_tokenizer_pattern());

  const std::string j = game24::game24_word_tokenizer_json();
  const auto tok = Tokenizer::from_json(j);
  CHECK(tok.vocab_size() == 2162);
  const std::string step = "4 + 6 = 10 (left: 5 10 10)\n";
  CHECK(tok.encode(step).size() == 13);
  CHECK(tok.decode(tok.encode(step)) == step);
  for (const auto& w : game24::game24_words()) {
    CAPTURE(w);
    CHECK(tok.encode(w).size() == 1);
    CHECK(tok.encode(" " + w).size() == 1);
  }
  // The shipped models (models/, written by `qstar train`) carry exactly this vocabulary.
  for (const char* m : {"generator", "prm", "orm"}) {
    CAPTURE(m);
    const auto shipped = repo_root() / "models" / m / "tokenizer.json";
    CHECK(json::parse(slurp(shipped), shipped.string()) == json::parse(j, "game24"));
  }
}
