// HttpGenerator against llama.cpp's server (issue #24): fake servers that replay the exact
// replies a real llama-server gave (tests/http/llamacpp_replies.hpp, recorded with
// scripts/llama-server-interop.sh --record) and enforce its rules (n at most its slots, HTTP
// 500 on output it cannot encode), plus the OpenAI-protocol fixes (top_k/min_p always sent,
// "logprobs": null, the content[] logprobs shape with "id" and "bytes").
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <atomic>
#include <cmath>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "fake_server.hpp"
#include "llamacpp_replies.hpp"
#include "qstar/core/json.hpp"
#include "qstar/error.hpp"
#include "qstar/http/client.hpp"

using namespace qstar;

namespace {

json::Value body_of(const httplib::Request& req) { return json::parse(req.body, "request body"); }

http::ClientParams client(const std::string& url) {
  http::ClientParams c;
  c.base_urls = {url};
  c.request_timeout_s = 5.0;
  c.connect_timeout_s = 1.0;
  c.max_retries = 3;
  c.backoff_initial_s = 0.001;
  c.backoff_max_s = 0.005;
  c.api_key_env = "";
  return c;
}

/// A fake llama-server: GET /v1/models as llama-server answers it; POST /completions answered
/// by `reply(body)`; it refuses n above `slots` with llama-server's exact 400.
struct FakeLlama {
  fake::Server s;
  std::mutex mu;
  std::vector<json::Value> bodies;
  std::atomic<int> posts{0};
  FakeLlama(int slots, std::function<void(const json::Value&, httplib::Response&)> reply) {
    s.get("/v1/models", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(llamacpp_replies::kModels, "application/json");
    });
    s.post("/completions", [this, slots, reply](const httplib::Request& req, httplib::Response& res) {
      ++posts;
      const json::Value b = body_of(req);
      {
        std::lock_guard lk(mu);
        bodies.push_back(b);
      }
      if (b.get_int("n") > slots) {
        res.status = 400;
        res.set_content(fmt::format(llamacpp_replies::kNTooLarge, slots, b.get_int("n")), "application/json");
        return;
      }
      reply(b, res);
    });
    s.start();
  }
};

ExpandRequest request(std::uint64_t seed, int n, std::string_view prompt = "Q") {  // the prompt must outlive the request
  ExpandRequest r;
  r.prompt = prompt;
  r.num_candidates = n;
  r.seed = seed;
  return r;
}

// The seed llama.cpp's server is sent for a 64-bit seed: splitmix64's finalizer of seed +
// 0x9e3779b97f4a7c15, top 31 bits; values computed independently (Python, arbitrary
// precision integers).
std::int64_t expected_seed(std::uint64_t seed) {
  if (seed == 0) return 1896895516;
  if (seed == 7) return 837153010;
  if (seed == 0xFFFFFFFFULL) return 970497489;
  if (seed == ~0ULL) return 1919727803;
  FAIL("no reference value for this seed");
  return -1;
}

}  // namespace

TEST_CASE("llama.cpp: auto-detected; native /completions with every sampling field, 31-bit seeds") {
  FakeLlama f(8, [](const json::Value&, httplib::Response& res) {
    res.set_content(llamacpp_replies::kWordStop, "application/json");
  });
  http::HttpGeneratorParams p;
  p.client = client(f.s.url());
  p.step_delimiter = " ";
  p.temperature = 0.7;
  http::HttpGenerator g(p);
  CHECK(g.protocol() == "llama.cpp");
  for (const std::uint64_t seed : {0ULL, 7ULL, 0xFFFFFFFFULL, ~0ULL}) {
    const ExpandRequest r = request(seed, 1);
    auto out = g.expand(std::span<const ExpandRequest>(&r, 1));
    REQUIRE(out[0].size() == 1);
  }
  std::lock_guard lk(f.mu);
  REQUIRE(f.bodies.size() == 4);
  const json::Value& b = f.bodies[0];
  CHECK(b.get_string("prompt") == "Q");
  CHECK(b.get_int("n") == 1);
  CHECK(b.get_int("n_predict") == 64);
  CHECK(b.get_double("temperature") == doctest::Approx(0.7));
  CHECK(b.get_int("top_k") == 0);  // llama.cpp: <= 0 is off (its default is 40)
  CHECK(b.get_double("top_p") == 1.0);
  CHECK(b.get_double("min_p") == 0.0);  // its default is 0.05
  CHECK(b.get_double("typical_p") == 1.0);
  CHECK(b.get_double("repeat_penalty") == 1.0);
  CHECK(b.get_int("n_probs") == 1);
  CHECK(b.at("return_tokens").as_bool());
  CHECK(b.at("stop").at(std::size_t{0}).as_string() == " ");
  // Seeds: in [0, 2^31) (never 0xFFFFFFFF, llama.cpp's "random"), by the reference mapping.
  CHECK(f.bodies[0].get_int("seed") == expected_seed(0));
  CHECK(f.bodies[1].get_int("seed") == expected_seed(7));
  CHECK(f.bodies[2].get_int("seed") == expected_seed(0xFFFFFFFFULL));
  CHECK(f.bodies[3].get_int("seed") == expected_seed(~0ULL));
  for (const auto& x : f.bodies) {
    CHECK(x.get_int("seed") >= 0);
    CHECK(x.get_int("seed") < (std::int64_t{1} << 31));
  }
}

TEST_CASE("llama.cpp: a stop-string stop counts every generated token; unlisted tokens drop token_logprobs") {
  // Recorded: the server lists the logprobs without the token holding the stop string (and,
  // in kWordStopMerged, without tokens that end inside a UTF-8 character) but returns every
  // generated id.
  for (const char* fixture : {llamacpp_replies::kWordStop, llamacpp_replies::kWordStopMerged}) {
    FakeLlama f(8, [fixture](const json::Value&, httplib::Response& res) { res.set_content(fixture, "application/json"); });
    http::HttpGeneratorParams p;
    p.client = client(f.s.url());
    p.step_delimiter = " ";
    http::HttpGenerator g(p);
    const ExpandRequest r = request(1, 1);
    const Step s = g.expand(std::span<const ExpandRequest>(&r, 1))[0][0];
    const json::Value rec = json::parse(fixture, "fixture");
    const auto& ids = rec.at("tokens").as_array();
    const auto& listed = rec.at("completion_probabilities").as_array();
    REQUIRE(listed.size() < ids.size());
    CHECK(s.finish == FinishReason::StepEnd);
    CHECK(s.text == rec.get_string("content"));
    CHECK(s.num_tokens == static_cast<std::int32_t>(ids.size()));
    CHECK(s.num_tokens == rec.get_int("tokens_predicted"));
    REQUIRE(s.tokens.size() == ids.size());
    for (std::size_t k = 0; k < ids.size(); ++k) CHECK(s.tokens[k] == ids[k].as_int());
    CHECK(s.token_logprobs.empty());  // not every token's logprob is known
    CHECK(s.token_entropies.empty());
    double sum = 0;
    for (const auto& e : listed) sum += e.get_double("logprob");
    CHECK(s.logprob == doctest::Approx(sum).epsilon(1e-12));
  }
}

TEST_CASE("llama.cpp: EOS (stop_type eos, even with empty text) is Eos; the EOS token is not counted") {
  FakeLlama f(8, [](const json::Value&, httplib::Response& res) {
    res.set_content(llamacpp_replies::kEos, "application/json");
  });
  http::HttpGeneratorParams p;
  p.client = client(f.s.url());
  p.step_delimiter = " ";
  http::HttpGenerator g(p);
  const ExpandRequest r = request(1, 1);
  const Step s = g.expand(std::span<const ExpandRequest>(&r, 1))[0][0];
  const json::Value rec = json::parse(llamacpp_replies::kEos, "fixture");
  const auto& ids = rec.at("tokens").as_array();
  CHECK(s.finish == FinishReason::Eos);
  CHECK(s.text == rec.get_string("content"));
  CHECK(s.num_tokens == static_cast<std::int32_t>(ids.size()) - 1);
  const auto& listed = rec.at("completion_probabilities").as_array();
  if (listed.size() == ids.size()) {  // every token listed: exact statistics, EOS's left out
    REQUIRE(s.token_logprobs.size() == ids.size() - 1);
    for (std::size_t k = 0; k + 1 < ids.size(); ++k)
      CHECK(s.token_logprobs[k] == static_cast<float>(listed[k].get_double("logprob")));
  }
}

TEST_CASE("llama.cpp: a length stop lists every token: exact logprobs and entropies from top_logprobs") {
  FakeLlama f(8, [](const json::Value&, httplib::Response& res) {
    res.set_content(llamacpp_replies::kLength, "application/json");
  });
  http::HttpGeneratorParams p;
  p.client = client(f.s.url());
  p.step_delimiter = " ";
  p.logprobs = 2;
  http::HttpGenerator g(p);
  const ExpandRequest r = request(1, 1);
  const Step s = g.expand(std::span<const ExpandRequest>(&r, 1))[0][0];
  const json::Value rec = json::parse(llamacpp_replies::kLength, "fixture");
  const auto& listed = rec.at("completion_probabilities").as_array();
  CHECK(s.finish == FinishReason::Length);
  REQUIRE(s.num_tokens == static_cast<std::int32_t>(listed.size()));
  REQUIRE(s.token_logprobs.size() == listed.size());
  REQUIRE(s.token_entropies.size() == listed.size());
  double sum = 0;
  for (std::size_t k = 0; k < listed.size(); ++k) {
    const double lp = listed[k].get_double("logprob");
    sum += lp;
    CHECK(s.token_logprobs[k] == static_cast<float>(lp));
    double h = 0;
    for (const auto& a : listed[k].at("top_logprobs").as_array()) h -= std::exp(a.get_double("logprob")) * a.get_double("logprob");
    CHECK(s.token_entropies[k] == doctest::Approx(h).epsilon(1e-6));
  }
  CHECK(s.logprob == doctest::Approx(sum).epsilon(1e-12));
}

TEST_CASE("llama.cpp: a length stop with unlisted tokens (incomplete UTF-8): exact count, no per-token lists") {
  FakeLlama f(8, [](const json::Value&, httplib::Response& res) {
    res.set_content(llamacpp_replies::kLengthMerged, "application/json");
  });
  http::HttpGeneratorParams p;
  p.client = client(f.s.url());
  p.step_delimiter = " ";
  http::HttpGenerator g(p);
  const ExpandRequest r = request(1, 1);
  const Step s = g.expand(std::span<const ExpandRequest>(&r, 1))[0][0];
  const json::Value rec = json::parse(llamacpp_replies::kLengthMerged, "fixture");
  CHECK(s.finish == FinishReason::Length);
  CHECK(s.num_tokens == rec.get_int("tokens_predicted"));
  CHECK(rec.at("completion_probabilities").as_array().size() < rec.at("tokens").as_array().size());
  CHECK(s.token_logprobs.empty());
}

TEST_CASE("llama.cpp: n above the server's slots is split; choice k keeps seed + k") {
  // The server (2 slots) refuses n = 5 with its 400; the generator splits into 2 + 2 + 1,
  // seeding each piece with seed + its first choice (the server seeds choice j with seed + j).
  FakeLlama f(2, [](const json::Value& b, httplib::Response& res) {
    const std::int64_t n = b.get_int("n");
    std::string arr = "[";
    for (std::int64_t j = 0; j < n; ++j) {
      json::Value one = json::parse(llamacpp_replies::kWordStop, "fixture");
      one.set("index", j);
      one.set("content", fmt::format("s{}", b.get_int("seed") + j));
      arr += (j ? "," : "") + json::dump(one);
    }
    res.set_content(n == 1 ? json::dump(json::parse(arr + "]", "x").at(std::size_t{0})) : arr + "]", "application/json");
  });
  http::HttpGeneratorParams p;
  p.client = client(f.s.url());
  p.step_delimiter = " ";
  http::HttpGenerator g(p);
  const ExpandRequest r = request(7, 5);
  auto out = g.expand(std::span<const ExpandRequest>(&r, 1));
  REQUIRE(out[0].size() == 5);
  const std::int64_t s0 = expected_seed(7);
  for (int k = 0; k < 5; ++k) CHECK(out[0][static_cast<std::size_t>(k)].text == fmt::format("s{}", s0 + k));
  CHECK(g.stats().splits == 1);
  const int before = f.posts.load();
  CHECK(before == 4);  // the refused n = 5, then 2 + 2 + 1
  // The limit is remembered: the next call splits at once.
  out = g.expand(std::span<const ExpandRequest>(&r, 1));
  CHECK(f.posts.load() - before == 3);
  for (int k = 0; k < 5; ++k) CHECK(out[0][static_cast<std::size_t>(k)].text == fmt::format("s{}", s0 + k));
}

TEST_CASE("llama.cpp: a deterministic HTTP 500 is tried twice, then that candidate is dropped; the rest go on") {
  // The server fails (as on invalid UTF-8 output) for choice seeds that are odd.
  FakeLlama f(8, [](const json::Value& b, httplib::Response& res) {
    const std::int64_t n = b.get_int("n"), seed = b.get_int("seed");
    bool fail = false;
    for (std::int64_t j = 0; j < n; ++j) fail = fail || (seed + j) % 2 != 0;
    if (fail) {
      res.status = 500;
      res.set_content(llamacpp_replies::kServer500, "application/json");
      return;
    }
    res.set_content(llamacpp_replies::kWordStop, "application/json");
  });
  http::HttpGeneratorParams p;
  p.client = client(f.s.url());
  p.step_delimiter = " ";
  http::HttpGenerator g(p);
  std::vector<ExpandRequest> reqs = {request(7, 1), request(0, 1), request(7, 4)};
  const bool s7_even = expected_seed(7) % 2 == 0, s0_even = expected_seed(0) % 2 == 0;
  auto out = g.expand(reqs);
  CHECK(out[0].size() == (s7_even ? 1u : 0u));
  CHECK(out[1].size() == (s0_even ? 1u : 0u));
  CHECK(out[2].size() == 2u);  // 4 choices: the 2 with odd seeds fail
  const auto st = g.stats();
  CHECK(st.dropped == (s7_even ? 0 : 1) + (s0_even ? 0 : 1) + 2);
  CHECK(st.failures == 0);
}

TEST_CASE("llama.cpp: when every request of a call fails with HTTP 500 it is a PluginError naming the server") {
  FakeLlama f(8, [](const json::Value&, httplib::Response& res) {
    res.status = 500;
    res.set_content(llamacpp_replies::kServer500, "application/json");
  });
  http::HttpGeneratorParams p;
  p.client = client(f.s.url());
  http::HttpGenerator g(p);
  const ExpandRequest r = request(1, 1);
  CHECK_THROWS_WITH_AS(g.expand(std::span<const ExpandRequest>(&r, 1)), doctest::Contains(f.s.url().c_str()), PluginError);
  CHECK(f.posts.load() == 2);  // one retry with the same request, not max_retries
  CHECK(g.stats().dropped == 1);
  CHECK(g.stats().failures == 1);
}

TEST_CASE("openai protocol: top_k (-1 for off) and min_p always sent; \"logprobs\": null; content[] with id and bytes") {
  fake::Server s;
  std::mutex mu;
  json::Value seen;
  s.post("/v1/completions", [&](const httplib::Request& req, httplib::Response& res) {
    {
      std::lock_guard lk(mu);
      seen = body_of(req);
    }
    res.set_content(llamacpp_replies::kOaiTwoChoices, "application/json");
  });
  s.start();
  http::HttpGeneratorParams p;
  p.client = client(s.url());
  p.server = "openai";
  p.step_delimiter = " ";
  http::HttpGenerator g(p);
  const ExpandRequest r = request(5, 2);
  auto out = g.expand(std::span<const ExpandRequest>(&r, 1));
  {
    std::lock_guard lk(mu);
    CHECK(seen.get_int("top_k") == -1);
    CHECK(seen.get_double("min_p") == 0.0);
    CHECK(seen.get_int("seed") == 5);  // the OpenAI protocol keeps the 64-bit seed
  }
  const json::Value rec = json::parse(llamacpp_replies::kOaiTwoChoices, "fixture");
  REQUIRE(out[0].size() == 2);
  for (std::size_t k = 0; k < 2; ++k) {
    const json::Value& c = rec.at("choices").at(k);
    const std::size_t idx = static_cast<std::size_t>(c.get_int("index"));
    const Step& st = out[0][idx];
    CHECK(st.text == c.get_string("text"));
    if (c.at("logprobs").is_null()) {
      CHECK(st.num_tokens == 0);
      CHECK(st.logprob == 0.0);
    } else {
      CHECK(st.num_tokens == static_cast<std::int32_t>(c.at("logprobs").at("content").as_array().size()));
    }
  }
}

TEST_CASE("llama.cpp: a server that is not llama.cpp's is driven with the OpenAI protocol") {
  fake::Server s;
  s.get("/v1/models", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(R"({"object":"list","data":[{"id":"m","object":"model","owned_by":"vllm"}]})", "application/json");
  });
  s.start();
  http::HttpGeneratorParams p;
  p.client = client(s.url());
  CHECK(http::HttpGenerator(p).protocol() == "openai");
}
