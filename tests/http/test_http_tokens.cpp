// HttpGenerator's task-neutral defaults (no answer marker unless one is set) and
// Step::tokens from a tokenizer (an hf::Tokenizer object or a tokenizer.json / model folder
// path), against a scripted loopback server.
#include <doctest/doctest.h>

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "fake_server.hpp"
#include "qstar/core/json.hpp"
#include "qstar/core/tree.hpp"
#include "qstar/error.hpp"
#include "qstar/hf/model_io.hpp"
#include "qstar/hf/tokenizer.hpp"
#include "qstar/http/client.hpp"

using namespace qstar;

namespace {

struct Choice {
  std::string text;
  std::string finish;  // "stop" or "length"
  bool eos = false;    // stop_reason null (EOS) instead of the stop string
  int tokens = 2;      // token logprobs in the reply
};

/// A server whose /v1/completions answers every request with `choices`.
struct Server {
  fake::Server s;
  explicit Server(std::vector<Choice> choices) {
    s.post("/v1/completions", [choices](const httplib::Request&, httplib::Response& res) {
      json::Value arr = json::Value::array();
      for (std::size_t j = 0; j < choices.size(); ++j) {
        json::Value c = json::Value::object();
        c.set("index", static_cast<std::int64_t>(j));
        c.set("text", choices[j].text);
        c.set("finish_reason", choices[j].finish);
        if (choices[j].finish == "stop") {
          if (choices[j].eos)
            c.set("stop_reason", json::Value());
          else
            c.set("stop_reason", "\n");
        }
        json::Value lp = json::Value::object();
        json::Value tl = json::Value::array();
        for (int k = 0; k < choices[j].tokens; ++k) tl.push_back(-0.5);
        lp.set("token_logprobs", std::move(tl));
        c.set("logprobs", std::move(lp));
        arr.push_back(std::move(c));
      }
      json::Value o = json::Value::object();
      o.set("choices", std::move(arr));
      res.set_content(json::dump(o), "application/json");
    });
    s.start();
  }
};

http::HttpGeneratorParams params(const std::string& url) {
  http::HttpGeneratorParams p;
  p.client.base_urls = {url};
  p.client.request_timeout_s = 2.0;
  p.client.connect_timeout_s = 1.0;
  p.client.max_retries = 0;
  p.client.api_key_env.clear();
  return p;
}

std::vector<Step> expand(http::HttpGenerator& g, int n) {
  Tree tree;
  Step a;
  a.text = "a";
  const NodeId leaf = tree.add_child(Tree::root(), a);
  Problem problem{"p", "x", std::nullopt};
  ExpandRequest r;
  r.problem = &problem;
  r.prompt = "Q";
  r.prefix = TrajectoryView(tree, leaf);
  r.num_candidates = n;
  r.seed = 5;
  auto out = g.expand(std::span<const ExpandRequest>(&r, 1));
  REQUIRE(out.size() == 1);
  return out[0];
}

/// A fresh directory, removed at the end of the test.
struct TempDir {
  std::filesystem::path path;
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "qstar-http-tok-XXXXXX").string();
    REQUIRE(mkdtemp(tmpl.data()) != nullptr);
    path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

const char* const kChars = "\nabx=0123456789 ";

}  // namespace

TEST_CASE("http generator: no answer marker by default, so the finish reason is the server's") {
  Server srv({{"Answer: 24", "stop", true}, {"x Answer: y", "stop", false}});
  http::HttpGeneratorParams p = params(srv.s.url());
  CHECK(p.answer_marker.empty());
  http::HttpGenerator plain(p);
  CHECK(plain.tokenizer() == nullptr);
  auto steps = expand(plain, 2);
  REQUIRE(steps.size() == 2);
  CHECK(steps[0].finish == FinishReason::Eos);
  CHECK(steps[1].finish == FinishReason::StepEnd);
  CHECK(steps[0].tokens.empty());
  CHECK(steps[1].tokens.empty());

  p.answer_marker = "Answer:";  // a task that trusts the marker sets it
  http::HttpGenerator marked(p);
  steps = expand(marked, 2);
  CHECK(steps[0].finish == FinishReason::FinalAnswer);
  CHECK(steps[1].finish == FinishReason::FinalAnswer);
}

TEST_CASE("http generator: a tokenizer fills Step::tokens (delimiter tokens for a step that hit it)") {
  Server srv({{"ab", "stop", false, 2},
              {"ba", "stop", true, 3},
              {"a=", "length", false, 4},
              {"x 1\nignored", "stop", false, 5}});
  const auto tok = hf::Tokenizer::from_json(hf::char_tokenizer_json(kChars));
  http::HttpGeneratorParams p = params(srv.s.url());
  p.tokenizer = tok;
  p.answer_marker = "b";
  http::HttpGenerator g(p);
  REQUIRE(g.tokenizer() != nullptr);
  const auto steps = expand(g, 4);
  REQUIRE(steps.size() == 4);

  CHECK(steps[0].finish == FinishReason::FinalAnswer);  // StepEnd with the marker
  CHECK(steps[0].tokens == tok.encode("ab\n"));
  CHECK(steps[1].finish == FinishReason::FinalAnswer);  // Eos with the marker: no delimiter
  CHECK(steps[1].tokens == tok.encode("ba"));
  CHECK(steps[2].finish == FinishReason::Length);
  CHECK(steps[2].tokens == tok.encode("a="));
  CHECK(steps[3].text == "x 1");
  CHECK(steps[3].finish == FinishReason::StepEnd);  // cut at the delimiter the server kept
  CHECK(steps[3].tokens == tok.encode("x 1\n"));
  CHECK(tok.decode(steps[3].tokens) == "x 1\n");
  // num_tokens and logprob are the server's.
  CHECK(steps[0].num_tokens == 2);
  CHECK(steps[3].num_tokens == 5);
  CHECK(steps[3].logprob == doctest::Approx(-2.5));
  for (const auto& s : steps)
    for (const auto id : s.tokens) CHECK(id != 0);  // no <unk>: every character is known
}

TEST_CASE("http generator: tokenizer_path takes a tokenizer.json or a model folder") {
  Server srv({{"ab", "stop", false, 2}});
  TempDir dir;
  const std::string json_text = hf::char_tokenizer_json(kChars);
  {
    std::ofstream out(dir.path / "tokenizer.json", std::ios::binary);
    out << json_text;
  }
  const auto want = hf::Tokenizer::from_json(json_text).encode("ab\n");
  for (const auto& path : {dir.path.string(), (dir.path / "tokenizer.json").string()}) {
    CAPTURE(path);
    http::HttpGeneratorParams p = params(srv.s.url());
    p.tokenizer_path = path;
    http::HttpGenerator g(p);
    REQUIRE(g.tokenizer() != nullptr);
    CHECK(g.tokenizer()->source() == (dir.path / "tokenizer.json").string());
    CHECK(expand(g, 1)[0].tokens == want);
  }

  http::HttpGeneratorParams missing = params(srv.s.url());
  missing.tokenizer_path = (dir.path / "nope.json").string();
  CHECK_THROWS_WITH_AS(http::HttpGenerator{missing}, doctest::Contains("nope.json"), IoError);

  http::HttpGeneratorParams both = params(srv.s.url());
  both.tokenizer_path = dir.path.string();
  both.tokenizer = hf::Tokenizer::from_json(json_text);
  CHECK_THROWS_WITH_AS(both.validate(), doctest::Contains("HttpGeneratorParams.tokenizer_path"),
                       InvalidArgument);
}
