// HttpGenerator's per-token statistics: both OpenAI-style "logprobs" shapes (completions:
// token_logprobs + top_logprobs maps; chat / llama.cpp server: content[] with top_logprobs
// lists), the truncated entropy estimate from the listed alternatives, malformed lists, the
// cumulative_logprob extension, and (with the server built) `qstar serve` passing the
// in-process generator's exact statistics through.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "fake_server.hpp"
#include "qstar/core/json.hpp"
#include "qstar/error.hpp"
#include "qstar/http/client.hpp"

#ifdef QSTAR_HAS_HTTP_SERVER
#include "qstar/http/server.hpp"
#include "qstar/torch/lm_generator.hpp"
#include "support/tiny_model.hpp"
#endif

using namespace qstar;

namespace {

/// A server answering every completion with one choice whose "logprobs" (and extra choice
/// fields) are given as JSON text.
struct OneChoice {
  fake::Server s;
  OneChoice(const std::string& logprobs, const std::string& extra = "") {
    const std::string body = R"({"choices":[{"index":0,"text":"ab","finish_reason":"length","logprobs":)" + logprobs +
                             extra + "}]}";
    s.post("/v1/completions",
           [body](const httplib::Request&, httplib::Response& res) { res.set_content(body, "application/json"); });
    s.start();
  }
  Step expand() {
    http::HttpGeneratorParams p;
    p.client.base_urls = {s.url()};
    p.client.request_timeout_s = 2.0;
    p.client.max_retries = 0;
    p.client.api_key_env = "";
    http::HttpGenerator g(p);
    ExpandRequest r;
    r.prompt = "Q";
    r.num_candidates = 1;
    auto out = g.expand(std::span<const ExpandRequest>(&r, 1));
    REQUIRE(out.size() == 1);
    REQUIRE(out[0].size() == 1);
    return out[0][0];
  }
};

std::string error_of(OneChoice& c) {
  try {
    c.expand();
  } catch (const PluginError& e) {
    return e.what();
  }
  return "NO PluginError";
}

// -sum p log p over the listed alternatives, in double.
double listed(std::initializer_list<double> lps) {
  double h = 0;
  for (double lp : lps) h -= std::exp(lp) * lp;
  return h;
}

}  // namespace

TEST_CASE("http generator: completions-shape logprobs: token_logprobs, entropy estimate from top_logprobs") {
  OneChoice c(R"({"tokens":["a","b","\n"],"token_logprobs":[-0.5,-1.25,-0.125],)"
              R"("top_logprobs":[{"a":-0.5,"c":-1.0},{"b":-1.25,"d":-0.5,"e":-3},{"\n":-0.125}]})");
  const Step s = c.expand();
  CHECK(s.token_logprobs == std::vector<float>{-0.5f, -1.25f, -0.125f});
  CHECK(s.num_tokens == 3);
  CHECK(s.logprob == -1.875);
  REQUIRE(s.token_entropies.size() == 3);
  CHECK(s.token_entropies[0] == doctest::Approx(listed({-0.5, -1.0})).epsilon(1e-6));
  CHECK(s.token_entropies[1] == doctest::Approx(listed({-1.25, -0.5, -3.0})).epsilon(1e-6));
  CHECK(s.token_entropies[2] == doctest::Approx(listed({-0.125})).epsilon(1e-6));

  // No top_logprobs, or a position without alternatives: no entropies (never a partial list).
  OneChoice bare(R"({"token_logprobs":[-0.5,-1.25]})");
  const Step b = bare.expand();
  CHECK(b.token_logprobs == std::vector<float>{-0.5f, -1.25f});
  CHECK(b.token_entropies.empty());
  OneChoice gap(R"({"token_logprobs":[-0.5,-1.25],"top_logprobs":[{"a":-0.5},null]})");
  CHECK(gap.expand().token_entropies.empty());
  // qstar serve's exact entropies win over the estimate.
  OneChoice exact(R"({"token_logprobs":[-0.5],"token_entropies":[2.5],"top_logprobs":[{"a":-0.5}]})");
  CHECK(exact.expand().token_entropies == std::vector<float>{2.5f});
}

TEST_CASE("http generator: chat-shape logprobs (content[]): token_logprobs and entropy estimate") {
  OneChoice c(R"({"content":[)"
              R"({"id":5,"token":"a","logprob":-0.25,"bytes":[97],"top_logprobs":[)"
              R"({"id":5,"token":"a","logprob":-0.25},{"id":6,"token":"b","logprob":-1.75}]},)"
              R"({"id":7,"token":"c","logprob":-2.0,"top_logprobs":[{"token":"q","logprob":-0.2},{"token":"c","logprob":-2.0}]}]})");
  const Step s = c.expand();
  CHECK(s.token_logprobs == std::vector<float>{-0.25f, -2.0f});
  CHECK(s.num_tokens == 2);
  CHECK(s.logprob == -2.25);
  REQUIRE(s.token_entropies.size() == 2);
  CHECK(s.token_entropies[0] == doctest::Approx(listed({-0.25, -1.75})).epsilon(1e-6));
  CHECK(s.token_entropies[1] == doctest::Approx(listed({-0.2, -2.0})).epsilon(1e-6));
  // The estimate is a lower bound: the listed mass here is below 1.
  CHECK(s.token_entropies[0] > 0.0f);

  OneChoice no_top(R"({"content":[{"token":"a","logprob":-0.25},{"token":"b","logprob":-0.5,"top_logprobs":[]}]})");
  const Step n = no_top.expand();
  CHECK(n.token_logprobs == std::vector<float>{-0.25f, -0.5f});
  CHECK(n.token_entropies.empty());
  OneChoice empty(R"({"content":[]})");
  const Step e = empty.expand();
  CHECK(e.num_tokens == 0);
  CHECK(e.token_logprobs.empty());
}

TEST_CASE("http generator: malformed per-token logprobs are PluginErrors naming the element") {
  OneChoice missing(R"({"content":[{"token":"a","logprob":-0.25},{"token":"b"}]})");
  CHECK(error_of(missing).find("choice 0: logprobs.content[1]: no \"logprob\"") != std::string::npos);
  OneChoice text(R"({"content":[{"token":"a","logprob":"x"}]})");
  CHECK(error_of(text).find("logprobs.content[0].logprob is not a finite number") != std::string::npos);
  OneChoice legacy(R"({"token_logprobs":[-0.5,null]})");
  CHECK(error_of(legacy).find("token_logprobs[1] is not a finite number") != std::string::npos);
  OneChoice count(R"({"token_logprobs":[-0.5,-1],"top_logprobs":[{"a":-0.5}]})");
  CHECK(error_of(count).find("top_logprobs: not one entry per token logprob") != std::string::npos);
  OneChoice alt(R"({"token_logprobs":[-0.5],"top_logprobs":[{"a":"x"}]})");
  CHECK(error_of(alt).find("top_logprobs[0] is not a finite number") != std::string::npos);
  OneChoice ent(R"({"token_logprobs":[-0.5],"token_entropies":[-1]})");
  CHECK(error_of(ent).find("token entropy is not a finite number >= 0") != std::string::npos);
  OneChoice neither(R"({"tokens":["a"]})");
  CHECK(error_of(neither).find("no token logprobs") != std::string::npos);
}

TEST_CASE("http generator: cumulative_logprob (qstar's extension) gives the unrounded logprob") {
  OneChoice c(R"({"token_logprobs":[-0.1,-0.2]})", R"(,"cumulative_logprob":-0.30000000000000004,"num_tokens":2)");
  const Step s = c.expand();
  CHECK(s.logprob == -0.30000000000000004);
  CHECK(s.token_logprobs == std::vector<float>{-0.1f, -0.2f});
  CHECK(s.num_tokens == 2);
}

#ifdef QSTAR_HAS_HTTP_SERVER
TEST_CASE("serve: HTTP steps carry the in-process generator's token statistics exactly") {
  tiny::TempDir dir;
  tiny::write_model(dir.str(), tiny::causal_llama(), 31);
  lm::LMGeneratorParams gp;
  gp.max_step_tokens = 8;
  http::ServeParams sp;
  sp.model_dir = dir.str();
  sp.lm = gp;
  sp.port = 0;
  // Bit-exact logprobs need the same float computation on both sides: each request forwarded
  // alone and in the same order (a batch of a different makeup, or a prompt prefix reused
  // from the KV cache at a different point, changes the last bits). So the server runs one
  // request per batch, the client sends one at a time, and the local generator expands them
  // one by one in the same order.
  sp.max_batch_requests = 1;
  auto server = http::Server::start(sp);
  auto local = lm::LMGenerator::load(dir.str(), gp);
  http::HttpGeneratorParams hp;
  hp.client.base_urls = {"http://127.0.0.1:" + std::to_string(server->port())};
  hp.client.api_key_env = "";
  hp.client.request_timeout_s = 20;
  hp.max_step_tokens = gp.max_step_tokens;
  hp.client.max_in_flight = 1;
  http::HttpGenerator remote(hp);
  const std::vector<std::string> prompts = {"1 2 3 0\n", "1 2 3 1\n", "4 4\n"};  // outlive the requests
  std::vector<ExpandRequest> reqs;
  for (int i = 0; i < 3; ++i) {
    ExpandRequest r;
    r.prompt = prompts[static_cast<std::size_t>(i)];
    r.num_candidates = 3;
    r.seed = 77 + static_cast<std::uint64_t>(i);
    reqs.push_back(r);
  }
  std::vector<std::vector<Step>> a;
  for (const auto& r : reqs) a.push_back(local.expand(std::span<const ExpandRequest>(&r, 1)).at(0));
  const auto b = remote.expand(reqs);
  REQUIRE(a.size() == b.size());
  int tokens = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    REQUIRE(a[i].size() == b[i].size());
    for (std::size_t j = 0; j < a[i].size(); ++j) {
      CHECK(a[i][j].text == b[i][j].text);
      CHECK(a[i][j].logprob == b[i][j].logprob);  // cumulative_logprob: unrounded
      CHECK(a[i][j].token_logprobs == b[i][j].token_logprobs);  // float -> JSON -> float: exact
      CHECK(a[i][j].token_entropies == b[i][j].token_entropies);
      CHECK(b[i][j].token_logprobs.size() == static_cast<std::size_t>(b[i][j].num_tokens));
      tokens += b[i][j].num_tokens;
    }
  }
  CHECK(tokens > 0);
}
#endif
