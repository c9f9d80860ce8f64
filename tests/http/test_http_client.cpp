// HttpGenerator / HttpVerifier against scripted loopback servers: request and reply mapping,
// retries, timeouts, malformed replies, a dead URL among several, the in-flight limit, the
// API key. Every test is bounded (timeouts of a fraction of a second).
#include <doctest/doctest.h>

#include <atomic>
#include <bit>
#include <chrono>
#include <cstdlib>
#include <string>
#include <vector>

#include "fake_server.hpp"
#include "qstar/core/json.hpp"
#include "qstar/core/tree.hpp"
#include "qstar/error.hpp"
#include "qstar/http/client.hpp"

using namespace qstar;
using Clock = std::chrono::steady_clock;

namespace {

json::Value body_of(const httplib::Request& r) { return json::parse(r.body, "request"); }

/// A vLLM-like /v1/completions reply: n choices "step<j>" ending at the stop string.
std::string completion_reply(int n, const std::string& stop = "\n") {
  json::Value choices = json::Value::array();
  for (int j = 0; j < n; ++j) {
    json::Value c = json::Value::object();
    c.set("index", j);
    c.set("text", "step" + std::to_string(j));
    c.set("finish_reason", "stop");
    c.set("stop_reason", stop);
    json::Value lp = json::Value::object();
    json::Value tl = json::Value::array();
    tl.push_back(-0.5);
    tl.push_back(-0.25);
    lp.set("token_logprobs", std::move(tl));
    c.set("logprobs", std::move(lp));
    choices.push_back(std::move(c));
  }
  json::Value o = json::Value::object();
  o.set("choices", std::move(choices));
  return json::dump(o);
}

http::ClientParams fast_client(std::vector<std::string> urls) {
  http::ClientParams c;
  c.base_urls = std::move(urls);
  c.request_timeout_s = 2.0;
  c.connect_timeout_s = 1.0;
  c.max_retries = 2;
  c.backoff_initial_s = 0.01;
  c.backoff_max_s = 0.05;
  c.api_key_env = "QSTAR_TEST_HTTP_KEY";
  return c;
}

struct Fixture {
  Tree tree;
  Problem problem{"p", "1 2 3 4", std::nullopt};
  NodeId leaf = 0;
  Fixture() {
    Step a;
    a.text = "first";
    const NodeId n1 = tree.add_child(Tree::root(), a);
    Step b;
    b.text = "second";
    leaf = tree.add_child(n1, b);
  }
  ExpandRequest request(std::uint64_t seed = 7, int n = 2) const {
    ExpandRequest r;
    r.problem = &problem;
    r.prompt = "Q";
    r.prefix = TrajectoryView(tree, leaf);
    r.num_candidates = n;
    r.seed = seed;
    return r;
  }
};

}  // namespace

TEST_CASE("http generator: request fields and reply mapping") {
  fake::Server s;
  std::atomic<int> calls{0};
  json::Value seen;
  std::mutex mu;
  s.post("/v1/completions", [&](const httplib::Request& req, httplib::Response& res) {
    ++calls;
    {
      std::lock_guard lk(mu);
      seen = body_of(req);
    }
    json::Value c0 = json::Value::object();
    c0.set("index", 1);
    c0.set("text", "x = 3\nignored");  // a server that keeps the stop string: cut there
    c0.set("finish_reason", "stop");
    c0.set("logprobs", json::parse(R"({"token_logprobs": [-1.0, -2.0, -0.5]})", "t"));
    json::Value c1 = json::Value::object();
    c1.set("index", 0);
    c1.set("text", "Answer: 24");
    c1.set("finish_reason", "stop");
    c1.set("stop_reason", json::Value());  // EOS
    c1.set("logprobs", json::parse(R"({"token_logprobs": [-0.25]})", "t"));
    json::Value o = json::Value::object();
    json::Value ch = json::Value::array();
    ch.push_back(std::move(c0));
    ch.push_back(std::move(c1));
    o.set("choices", std::move(ch));
    res.set_content(json::dump(o), "application/json");
  });
  s.start();
  Fixture f;
  http::HttpGeneratorParams p;
  p.client = fast_client({s.url() + "/v1/"});
  p.client.model = "m";
  p.prompt_template = "<{prompt}>";
  p.max_step_tokens = 10;
  p.temperature = 0.7;
  p.answer_marker = "Answer:";
  http::HttpGenerator g(p);
  CHECK(g.name() == "http:" + s.url());
  ExpandRequest r = f.request(~std::uint64_t{0} - 5, 2);
  r.max_new_tokens = 6;
  auto out = g.expand(std::span<const ExpandRequest>(&r, 1));
  REQUIRE(out.size() == 1);
  REQUIRE(out[0].size() == 2);
  CHECK(out[0][0].text == "Answer: 24");
  CHECK(out[0][0].finish == FinishReason::FinalAnswer);
  CHECK(out[0][0].num_tokens == 1);
  CHECK(out[0][1].text == "x = 3");
  CHECK(out[0][1].finish == FinishReason::StepEnd);
  CHECK(out[0][1].logprob == doctest::Approx(-3.5));
  CHECK(out[0][1].num_tokens == 3);
  CHECK(out[0][1].tokens.empty());
  std::lock_guard lk(mu);
  CHECK(seen.get_string("prompt") == "<Q>first\nsecond\n");
  CHECK(seen.get_int("n") == 2);
  CHECK(seen.get_int("max_tokens") == 6);
  CHECK(seen.get_double("temperature") == doctest::Approx(0.7));
  CHECK(seen.get_int("seed") == -6);  // two's complement of 2^64 - 6
  CHECK(seen.get_string("model") == "m");
  CHECK(seen.at("stop").at(std::size_t{0}).as_string() == "\n");
  CHECK(seen.get_int("logprobs") == 1);
  CHECK(seen.get_int("top_k") == -1);  // always sent: -1 (off) for top_k = 0
  CHECK(seen.get_double("min_p") == 0.0);
}

TEST_CASE("http generator: greedy sends n=1 and repeats; length and EOS finish reasons") {
  fake::Server s;
  s.post("/v1/completions", [&](const httplib::Request& req, httplib::Response& res) {
    const auto b = body_of(req);
    CHECK(b.get_int("n") == 1);
    CHECK(b.get_double("temperature") == 0.0);
    res.set_content(R"({"choices":[{"index":0,"text":"abc","finish_reason":"length","logprobs":{"token_logprobs":[-1,-1]}}]})",
                    "application/json");
  });
  s.start();
  Fixture f;
  http::HttpGeneratorParams p;
  p.client = fast_client({s.url()});
  http::HttpGenerator g(p);
  ExpandRequest r = f.request(1, 3);
  r.greedy = true;
  auto out = g.expand(std::span<const ExpandRequest>(&r, 1));
  REQUIRE(out[0].size() == 3);
  for (const auto& st : out[0]) {
    CHECK(st.text == "abc");
    CHECK(st.finish == FinishReason::Length);
    CHECK(st.num_tokens == 2);
  }
}

TEST_CASE("http generator: a 500 reply is retried and then succeeds") {
  fake::Server s;
  std::atomic<int> calls{0};
  s.post("/v1/completions", [&](const httplib::Request&, httplib::Response& res) {
    if (calls++ == 0) {
      res.status = 500;
      res.set_content(R"({"error":{"message":"engine hiccup"}})", "application/json");
      return;
    }
    res.set_content(completion_reply(2), "application/json");
  });
  s.start();
  Fixture f;
  http::HttpGeneratorParams p;
  p.client = fast_client({s.url()});
  http::HttpGenerator g(p);
  ExpandRequest r = f.request();
  auto out = g.expand(std::span<const ExpandRequest>(&r, 1));
  CHECK(out[0].size() == 2);
  CHECK(calls == 2);
  CHECK(g.stats().retries == 1);
  CHECK(g.stats().requests == 1);
}

TEST_CASE("http generator: a 500 that persists is a PluginError naming the URL and the message") {
  fake::Server s;
  s.post("/v1/completions", [&](const httplib::Request&, httplib::Response& res) {
    res.status = 503;
    res.set_content(R"({"error":{"message":"overloaded"}})", "application/json");
  });
  s.start();
  Fixture f;
  http::HttpGeneratorParams p;
  p.client = fast_client({s.url()});
  http::HttpGenerator g(p);
  ExpandRequest r = f.request();
  try {
    g.expand(std::span<const ExpandRequest>(&r, 1));
    FAIL("expected a PluginError");
  } catch (const PluginError& e) {
    const std::string m = e.what();
    CHECK(m.find(s.url() + "/v1/completions") != std::string::npos);
    CHECK(m.find("HTTP 503") != std::string::npos);
    CHECK(m.find("overloaded") != std::string::npos);
    CHECK(m.find("3 attempts") != std::string::npos);
  }
  CHECK(g.stats().attempts == 3);
  CHECK(g.stats().failures == 1);
}

TEST_CASE("http generator: a malformed JSON reply is a clear error after the retries") {
  fake::Server s;
  std::atomic<int> calls{0};
  s.post("/v1/completions", [&](const httplib::Request&, httplib::Response& res) {
    ++calls;
    res.set_content(R"({"choices": [)", "application/json");
  });
  s.start();
  Fixture f;
  http::HttpGeneratorParams p;
  p.client = fast_client({s.url()});
  p.client.max_retries = 1;
  http::HttpGenerator g(p);
  ExpandRequest r = f.request();
  CHECK_THROWS_WITH_AS(g.expand(std::span<const ExpandRequest>(&r, 1)),
                       doctest::Contains("malformed JSON reply"), PluginError);
  CHECK(calls == 2);
}

TEST_CASE("http generator: a well-formed reply of the wrong shape is not retried") {
  fake::Server s;
  std::atomic<int> calls{0};
  s.post("/v1/completions", [&](const httplib::Request&, httplib::Response& res) {
    ++calls;
    res.set_content(completion_reply(1), "application/json");  // n=2 asked
  });
  s.start();
  Fixture f;
  http::HttpGeneratorParams p;
  p.client = fast_client({s.url()});
  http::HttpGenerator g(p);
  ExpandRequest r = f.request();
  CHECK_THROWS_WITH_AS(g.expand(std::span<const ExpandRequest>(&r, 1)),
                       doctest::Contains("expected 2 choices (n), got 1"), PluginError);
  CHECK(calls == 1);
}

TEST_CASE("http generator: a stalled server times out; no hang") {
  fake::Server s;
  s.post("/v1/completions", [&](const httplib::Request&, httplib::Response& res) {
    s.stall();
    res.set_content(completion_reply(2), "application/json");
  });
  s.start();
  Fixture f;
  http::HttpGeneratorParams p;
  p.client = fast_client({s.url()});
  p.client.request_timeout_s = 0.3;
  p.client.max_retries = 1;
  http::HttpGenerator g(p);
  ExpandRequest r = f.request();
  const auto t0 = Clock::now();
  CHECK_THROWS_WITH_AS(g.expand(std::span<const ExpandRequest>(&r, 1)), doctest::Contains("2 attempts"), PluginError);
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  CHECK(secs >= 0.55);
  CHECK(secs < 3.0);
  s.release();
}

TEST_CASE("http generator: a 4xx is not retried and names the server's message") {
  fake::Server s;
  std::atomic<int> calls{0};
  s.post("/v1/completions", [&](const httplib::Request&, httplib::Response& res) {
    ++calls;
    res.status = 400;
    res.set_content(R"({"error":{"message":"'n' must be in [1, 4]"}})", "application/json");
  });
  s.start();
  Fixture f;
  http::HttpGeneratorParams p;
  p.client = fast_client({s.url()});
  http::HttpGenerator g(p);
  ExpandRequest r = f.request();
  CHECK_THROWS_WITH_AS(g.expand(std::span<const ExpandRequest>(&r, 1)), doctest::Contains("'n' must be in [1, 4]"),
                       PluginError);
  CHECK(calls == 1);
}

TEST_CASE("http generator: one of several URLs down; every request still succeeds") {
  fake::Server s;
  std::atomic<int> calls{0};
  s.post("/v1/completions", [&](const httplib::Request& req, httplib::Response& res) {
    ++calls;
    res.set_content(completion_reply(static_cast<int>(body_of(req).get_int("n"))), "application/json");
  });
  s.start();
  Fixture f;
  const std::string dead = "http://127.0.0.1:" + std::to_string(fake::dead_port());
  http::HttpGeneratorParams p;
  p.client = fast_client({dead, s.url()});
  http::HttpGenerator g(p);
  std::vector<ExpandRequest> reqs;
  for (int i = 0; i < 12; ++i) reqs.push_back(f.request(static_cast<std::uint64_t>(i), 2));
  auto out = g.expand(reqs);
  REQUIRE(out.size() == 12);
  for (const auto& v : out) CHECK(v.size() == 2);
  const auto st = g.stats();
  CHECK(st.requests == 12);
  CHECK(st.per_url[0] == 0);
  CHECK(st.per_url[1] == 12);
  CHECK(st.retries >= 1);
  CHECK(calls == 12);
}

TEST_CASE("fake server: its listen backlog holds a burst of 64 connects before anything accepts") {
  // The client tests open up to max_in_flight connections at once; with cpp-httplib's
  // backlog of 5, a loaded machine dropped SYNs and a live URL timed out (seen in CI).
  fake::Server s;  // bound and listening, not accepting yet
  CHECK(fake::connect_burst(s.port(), 64, std::chrono::milliseconds(500)) == 64);
}

TEST_CASE("http generator: every URL down is a PluginError naming them, quickly") {
  const std::string a = "http://127.0.0.1:" + std::to_string(fake::dead_port());
  Fixture f;
  http::HttpGeneratorParams p;
  p.client = fast_client({a});
  http::HttpGenerator g(p);
  ExpandRequest r = f.request();
  const auto t0 = Clock::now();
  try {
    g.expand(std::span<const ExpandRequest>(&r, 1));
    FAIL("expected a PluginError");
  } catch (const PluginError& e) {
    CHECK(std::string(e.what()).find(a + "/v1/completions") != std::string::npos);
    CHECK(std::string(e.what()).find("failed after 3 attempts") != std::string::npos);
  }
  CHECK(std::chrono::duration<double>(Clock::now() - t0).count() < 2.0);
}

TEST_CASE("http generator: concurrency stays within max_in_flight; round-robin spreads") {
  fake::Server a, b;
  std::atomic<int> now{0}, peak{0};
  auto handler = [&](const httplib::Request& req, httplib::Response& res) {
    const int c = ++now;
    int p = peak.load();
    while (c > p && !peak.compare_exchange_weak(p, c)) {
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    --now;
    res.set_content(completion_reply(static_cast<int>(body_of(req).get_int("n"))), "application/json");
  };
  a.post("/v1/completions", handler);
  b.post("/v1/completions", handler);
  a.start();
  b.start();
  Fixture f;
  http::HttpGeneratorParams p;
  p.client = fast_client({a.url(), b.url()});
  p.client.max_in_flight = 4;
  p.client.balance = "round-robin";
  http::HttpGenerator g(p);
  std::vector<ExpandRequest> reqs;
  for (int i = 0; i < 16; ++i) reqs.push_back(f.request(static_cast<std::uint64_t>(i), 1));
  const auto t0 = Clock::now();
  auto out = g.expand(reqs);
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  CHECK(out.size() == 16);
  CHECK(peak <= 4);
  CHECK(peak >= 2);
  CHECK(secs < 16 * 0.03);  // concurrent, not serial
  CHECK(g.stats().per_url[0] == 8);
  CHECK(g.stats().per_url[1] == 8);
}

TEST_CASE("http generator: the API key goes in the Authorization header, never in messages") {
  ::setenv("QSTAR_TEST_HTTP_KEY", "sk-test-secret", 1);
  fake::Server s;
  std::string auth;
  std::mutex mu;
  s.post("/v1/completions", [&](const httplib::Request& req, httplib::Response& res) {
    {
      std::lock_guard lk(mu);
      auth = req.get_header_value("Authorization");
    }
    res.status = 401;
    res.set_content(R"({"error":{"message":"bad key"}})", "application/json");
  });
  s.start();
  Fixture f;
  http::HttpGeneratorParams p;
  p.client = fast_client({s.url()});
  http::HttpGenerator g(p);
  ::unsetenv("QSTAR_TEST_HTTP_KEY");
  ExpandRequest r = f.request();
  try {
    g.expand(std::span<const ExpandRequest>(&r, 1));
    FAIL("expected a PluginError");
  } catch (const PluginError& e) {
    CHECK(std::string(e.what()).find("sk-test-secret") == std::string::npos);
    CHECK(std::string(e.what()).find("bad key") != std::string::npos);
  }
  std::lock_guard lk(mu);
  CHECK(auth == "Bearer sk-test-secret");
}

TEST_CASE("http verifier: pooling rows at the step tags") {
  fake::Server s;
  std::vector<std::string> inputs;
  std::mutex mu;
  s.post("/pooling", [&](const httplib::Request& req, httplib::Response& res) {
    const std::string in = body_of(req).get_string("input");
    {
      std::lock_guard lk(mu);
      inputs.push_back(in);
    }
    // one row per tag "<t>": [1 - s, s] with s = 0.1 * (index + 1)
    json::Value rows = json::Value::array();
    std::size_t pos = 0;
    int k = 0;
    while ((pos = in.find("<t>", pos)) != std::string::npos) {
      json::Value row = json::Value::array();
      row.push_back(1.0 - 0.1 * (k + 1));
      row.push_back(0.1 * (k + 1));
      rows.push_back(std::move(row));
      pos += 3;
      ++k;
    }
    json::Value item = json::Value::object();
    item.set("index", 0);
    item.set("data", std::move(rows));
    json::Value data = json::Value::array();
    data.push_back(std::move(item));
    json::Value o = json::Value::object();
    o.set("data", std::move(data));
    res.set_content(json::dump(o), "application/json");
  });
  s.start();
  Fixture f;
  http::HttpVerifierParams p;
  p.client = fast_client({s.url()});
  p.step_tag = "<t>";
  p.step_separator = "|";
  p.prompt_template = "[{prompt}]";
  http::HttpVerifier v(p);
  StepScoreRequest r;
  r.problem = &f.problem;
  r.prompt = "Q";
  r.trajectory = TrajectoryView(f.tree, f.leaf);
  r.first_new = 1;
  auto out = v.score_steps(std::span<const StepScoreRequest>(&r, 1));
  REQUIRE(out.size() == 1);
  REQUIRE(out[0].size() == 1);
  CHECK(out[0][0] == doctest::Approx(0.2));
  CHECK(inputs.at(0) == "[Q]first<t>|second<t>");
  OutcomeRequest o;
  o.problem = &f.problem;
  o.prompt = "Q";
  o.trajectory = r.trajectory;
  auto oc = v.score_outcomes(std::span<const OutcomeRequest>(&o, 1));
  CHECK(oc.at(0) == doctest::Approx(0.2));  // Last
}

TEST_CASE("http verifier: a row count that does not match the steps, or a bad score, is a PluginError") {
  fake::Server s;
  std::atomic<int> mode{0};
  s.post("/pooling", [&](const httplib::Request&, httplib::Response& res) {
    if (mode == 0) res.set_content(R"({"data":[{"index":0,"data":[[0.5,0.5]]}]})", "application/json");
    else res.set_content(R"({"data":[{"index":0,"data":[[0.5,0.5],[-0.5,1.5]]}]})", "application/json");
  });
  s.start();
  Fixture f;
  http::HttpVerifierParams p;
  p.client = fast_client({s.url()});
  http::HttpVerifier v(p);
  StepScoreRequest r;
  r.problem = &f.problem;
  r.prompt = "Q";
  r.trajectory = TrajectoryView(f.tree, f.leaf);
  CHECK_THROWS_WITH_AS(v.score_steps(std::span<const StepScoreRequest>(&r, 1)),
                       doctest::Contains("1 score rows for 2 steps"), PluginError);
  mode = 1;
  CHECK_THROWS_WITH_AS(v.score_steps(std::span<const StepScoreRequest>(&r, 1)),
                       doctest::Contains("not a finite number in [0, 1]"), PluginError);
}

TEST_CASE("http verifier: classify sends one input per new step") {
  fake::Server s;
  json::Value seen;
  std::mutex mu;
  s.post("/classify", [&](const httplib::Request& req, httplib::Response& res) {
    {
      std::lock_guard lk(mu);
      seen = body_of(req);
    }
    res.set_content(R"({"data":[{"index":1,"probs":[0.1,0.9],"num_classes":2},{"index":0,"probs":[0.7,0.3],"num_classes":2}]})",
                    "application/json");
  });
  s.start();
  Fixture f;
  http::HttpVerifierParams p;
  p.client = fast_client({s.url()});
  p.api = "classify";
  http::HttpVerifier v(p);
  StepScoreRequest r;
  r.problem = &f.problem;
  r.prompt = "Q";
  r.trajectory = TrajectoryView(f.tree, f.leaf);
  auto out = v.score_steps(std::span<const StepScoreRequest>(&r, 1));
  REQUIRE(out.at(0).size() == 2);
  CHECK(out[0][0] == doctest::Approx(0.3));
  CHECK(out[0][1] == doctest::Approx(0.9));
  std::lock_guard lk(mu);
  CHECK(seen.at("input").at(std::size_t{0}).as_string() == "Qfirst\n");
  CHECK(seen.at("input").at(std::size_t{1}).as_string() == "Qfirst\nsecond\n");
}

TEST_CASE("http params: validation names the field") {
  http::HttpGeneratorParams p;
  CHECK_THROWS_WITH_AS(p.validate(), doctest::Contains("ClientParams.base_urls"), InvalidArgument);
  p.client.base_urls = {"ftp://x"};
  CHECK_THROWS_WITH_AS(p.validate(), doctest::Contains("does not start with http://"), InvalidArgument);
  p.client.base_urls = {"http://127.0.0.1:1"};
  p.client.balance = "random";
  CHECK_THROWS_WITH_AS(p.validate(), doctest::Contains("ClientParams.balance"), InvalidArgument);
  p.client.balance = "round-robin";
  p.step_delimiter = "";
  CHECK_THROWS_WITH_AS(p.validate(), doctest::Contains("HttpGeneratorParams.step_delimiter"), InvalidArgument);
  p.step_delimiter = "\n";
  p.top_p = 0;
  CHECK_THROWS_WITH_AS(p.validate(), doctest::Contains("HttpGeneratorParams.top_p"), InvalidArgument);
  http::HttpVerifierParams v;
  v.client.base_urls = {"http://127.0.0.1:1"};
  v.api = "reward";
  CHECK_THROWS_WITH_AS(v.validate(), doctest::Contains("HttpVerifierParams.api"), InvalidArgument);
  CHECK(http::split_urls("http://a:1,http://b:2").size() == 2);
  CHECK_THROWS_AS(http::split_urls("http://a:1,,http://b"), InvalidArgument);
}
