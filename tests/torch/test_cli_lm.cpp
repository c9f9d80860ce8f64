// The CLI's language-model commands and flags (qstar lm logits|tokenize|generate,
// --generator lm:DIR, --verifier prm:DIR) on a tiny random model written by the test.
#include <ATen/ATen.h>

#include <sstream>
#include <string>
#include <vector>

#include "../cli_run.hpp"
#include "cli/cli.hpp"
#include "qstar/core/json.hpp"
#include "qstar/torch/model.hpp"
#include "qstar/hf/tokenizer.hpp"
#include "support/tiny_model.hpp"

#include <doctest/doctest.h>
#undef CHECK
#define CHECK(...) DOCTEST_CHECK(__VA_ARGS__)

namespace {

using cli_test::Run;
using cli_test::run;

}  // namespace

TEST_CASE("cli lm: logits --json equals LanguageModel::logits; tokenize; generate") {
  tiny::TempDir dir;
  tiny::write_model(dir.str(), tiny::causal_llama(), 7);
  auto r = run({"lm", "logits", "--model", dir.str(), "--text", "3+4=7", "--json"});
  REQUIRE(r.code == 0);
  const auto v = qstar::json::parse(r.out);
  const auto& rows = v.get_array("logits");
  REQUIRE(rows.size() == 5);
  const auto tok = qstar::hf::Tokenizer::from_file(dir.file("tokenizer.json"));
  const auto ids = tok.encode("3+4=7");
  const auto ref = qstar::lm::LanguageModel::load(dir.str()).logits(ids);
  REQUIRE(rows[0].size() == ref[0].size());
  double worst = 0;
  for (std::size_t i = 0; i < rows.size(); ++i)
    for (std::size_t j = 0; j < ref[i].size(); ++j)
      worst = std::max(worst, std::abs(rows[i].at(j).as_double() - static_cast<double>(ref[i][j])));
  CHECK(worst == 0.0);  // the same float32 values, printed exactly

  r = run({"lm", "logits", "--model", dir.str(), "--tokens", "1,2,3"});
  REQUIRE(r.code == 0);
  CHECK(r.out.find("position 2 token 3:") != std::string::npos);

  r = run({"lm", "tokenize", "--model", dir.str(), "--text", "ab", "--json"});
  REQUIRE(r.code == 0);
  CHECK(qstar::json::parse(r.out).get_string("decoded") == "ab");

  r = run({"lm", "generate", "--model", dir.str(), "--prompt", "3+4", "--steps", "2", "--max-step-tokens", "5",
           "--json", "--seed", "4"});
  REQUIRE(r.code == 0);
  const auto g = qstar::json::parse(r.out);
  REQUIRE(g.at("steps").size() >= 1);
  for (const auto& s : g.get_array("steps")) CHECK(s.get_array("tokens").size() <= 5);
  // Deterministic for a seed (the timing field aside).
  const auto again = qstar::json::parse(run({"lm", "generate", "--model", dir.str(), "--prompt", "3+4", "--steps", "2",
                                             "--max-step-tokens", "5", "--json", "--seed", "4"})
                                            .out);
  CHECK(qstar::json::dump(again.at("steps")) == qstar::json::dump(g.at("steps")));
  CHECK(again.get_int("generated_tokens") == g.get_int("generated_tokens"));
  std::int64_t kept = 0;
  for (const auto& s : g.get_array("steps")) kept += static_cast<std::int64_t>(s.get_array("tokens").size());
  CHECK(g.get_int("generated_tokens") == kept);  // one candidate: every generated token is kept
  CHECK(g.at("expand_seconds").as_double() > 0.0);

  // --candidates K: K continuations per step in one batched call, the first one followed.
  r = run({"lm", "generate", "--model", dir.str(), "--prompt", "3+4", "--steps", "1", "--max-step-tokens", "5",
           "--candidates", "3", "--json", "--seed", "4"});
  REQUIRE(r.code == 0);
  const auto c = qstar::json::parse(r.out);
  REQUIRE(c.at("steps").size() == 1);
  const auto first = static_cast<std::int64_t>(c.get_array("steps")[0].get_array("tokens").size());
  CHECK(c.get_int("generated_tokens") >= first + 2);  // two more candidates, one token at least each
  CHECK(c.get_int("generated_tokens") <= 3 * 5);
  CHECK(run({"lm", "generate", "--model", dir.str(), "--prompt", "x", "--candidates", "0"}).code == 2);
}

TEST_CASE("cli lm: solve with --generator lm:DIR --verifier prm:DIR runs end to end") {
  tiny::TempDir dir;
  tiny::write_model(dir.str(), tiny::causal_llama(), 3);
  auto r = run({"solve", "4 5 6 10", "--algo", "beam", "--n", "4", "--width", "2", "--max-depth", "3",
                "--max-step-tokens", "6", "--generator", "lm:" + dir.str(), "--verifier", "prm:" + dir.str(),
                "--json"});
  INFO(r.err);
  REQUIRE(r.code == 0);
  const auto v = qstar::json::parse(r.out);
  CHECK(v.at("stats").get_int("generator_calls") >= 1);
  CHECK(v.at("stats").get_int("verifier_calls") >= 1);
  CHECK(v.at("stats").get_int("generated_tokens") <= 4 * 3 * 6);
}

TEST_CASE("cli lm: bad input exits 2 with one line naming the problem") {
  tiny::TempDir dir;
  tiny::write_model(dir.str(), tiny::causal_llama(), 3);
  struct Case {
    std::vector<std::string> args;
    std::string needle;
  };
  const std::vector<Case> cases = {
      {{"lm", "logits", "--model", dir.file("nope"), "--text", "a"}, "nope"},
      {{"lm", "logits", "--model", dir.str()}, "--text"},
      {{"lm", "logits", "--model", dir.str(), "--tokens", "1,99999"}, "99999"},
      {{"lm", "frob"}, "unknown subcommand"},
      {{"lm", "generate", "--model", dir.str(), "--prompt", "x", "--temperature", "-1"}, "temperature"},
      {{"solve", "4 5 6 10", "--generator", "lm:" + dir.file("missing")}, "missing"},
      {{"solve", "4 5 6 10", "--verifier", "prm:" + dir.str(), "--prm-kind", "nonsense"}, "kind"},
      {{"solve", "4 5 6 10", "--generator", "programmatic", "--temperature", "0.5"}, "--temperature applies only"},
  };
  for (const auto& c : cases) {
    std::string joined;
    for (const auto& a : c.args) joined += a + " ";
    CAPTURE(joined);
    const auto r = run(c.args);
    CHECK(r.code == 2);
    CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
    CHECK(r.err.find(c.needle) != std::string::npos);
  }
}
