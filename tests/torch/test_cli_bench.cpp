// The CLI flags the test-time-compute benchmark uses with model backends: --orm prm:DIR
// (an outcome verifier from a token-classification folder) and --greedy with an LM
// generator, on tiny random models written by the test.
#include <sstream>
#include <string>
#include <vector>

#include "../cli_run.hpp"
#include "cli/cli.hpp"
#include "qstar/core/json.hpp"
#include "support/tiny_model.hpp"

#include <doctest/doctest.h>

namespace {

using cli_test::Run;
using cli_test::run;

}  // namespace

TEST_CASE("cli bench: --orm prm:DIR ranks best-of-n samples with a token-class model") {
  tiny::TempDir orm;
  tiny::write_model(orm.str(), tiny::token_class("llama", 1), 11);
  tiny::TempDir out;
  const auto path = out.file("bench.json");
  auto bench = [&](const std::string& voting) {
    auto r = run({"bench", "--data", QSTAR_TEST_DATA, "--ranks", "901-905", "--algo", "best-of-n", "--n", "4",
                  "--generator", "programmatic", "--verifier", "none", "--orm", "prm:" + orm.str(), "--voting",
                  voting, "--json", path});
    INFO(r.err);
    REQUIRE(r.code == 0);
    std::ifstream f(path);
    std::stringstream ss;
    ss << f.rdbuf();
    return qstar::json::parse(ss.str());
  };
  const auto v = bench("naive");
  const auto& row = v.get_array("results").at(0);
  CHECK(row.get_string("method").find("orm") != std::string::npos);
  CHECK(row.get_double("verifier_tokens_per_problem") > 0);  // the model read every finished sample
  CHECK(v.at("config").get_string("verifier").find("orm=prm:") != std::string::npos);
  // Deterministic: the same command, the same row (but for timings).
  const auto v2 = bench("naive");
  const auto& again = v2.get_array("results").at(0);
  CHECK(again.get_int("solved") == row.get_int("solved"));
  CHECK(again.get_double("verifier_tokens_per_problem") == row.get_double("verifier_tokens_per_problem"));
}

TEST_CASE("cli: --greedy with an LM generator is temperature 0") {
  tiny::TempDir gen;
  tiny::write_model(gen.str(), tiny::causal_llama(), 5);
  auto steps = [&](std::vector<std::string> extra, const std::string& seed = "9") {
    std::vector<std::string> args = {"solve", "4 5 6 10", "--algo", "best-of-n", "--n", "2", "--max-depth", "2",
                                     "--max-step-tokens", "6", "--generator", "lm:" + gen.str(), "--verifier",
                                     "none", "--json", "--seed", seed};
    args.insert(args.end(), extra.begin(), extra.end());
    auto r = run(args);
    INFO(r.err);
    REQUIRE(r.code == 0);
    return qstar::json::parse(r.out);
  };
  const auto g = steps({"--greedy"});
  const auto t0 = steps({"--temperature", "0"});
  CHECK(g.at("steps") == t0.at("steps"));
  CHECK(g.at("stats").get_int("generated_tokens") == t0.at("stats").get_int("generated_tokens"));
  CHECK(steps({"--greedy"}, "10").at("steps") == g.at("steps"));
}
