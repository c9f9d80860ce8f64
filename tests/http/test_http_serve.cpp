// `qstar serve` on loopback with tiny random models written by the test: parity of the HTTP
// plug-ins with the in-process LibTorch backends (single expansions, beam search, MCTS),
// batching, input validation, a server killed mid-search, and concurrent searches over two
// server processes.
#ifdef QSTAR_HAS_HTTP_SERVER

#include <doctest/doctest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "qstar/core/json.hpp"
#include "qstar/error.hpp"
#include "qstar/http/client.hpp"
#include "qstar/http/server.hpp"
#include "qstar/search/search.hpp"
#include "qstar/tasks/game24.hpp"
#include "qstar/torch/lm_generator.hpp"
#include "qstar/torch/prm.hpp"
#include "support/serve_process.hpp"
#include "support/tiny_model.hpp"

// Last: <resolv.h>, which httplib pulls in, defines `_res` as a macro.
#include <httplib.h>

#include "http/fake_server.hpp"

using namespace qstar;
using Clock = std::chrono::steady_clock;

namespace {

/// The tiny generator and PRM folders, written once per test binary.
struct Models : tiny::ServedModels {
  Models() : tiny::ServedModels(11, 12) {}
};
const Models& models() {
  static Models m;
  return m;
}

lm::LMGeneratorParams gen_params() {
  lm::LMGeneratorParams p;
  p.max_step_tokens = 12;
  p.temperature = 1.0;
  p.step_delimiter = "\n";
  return p;
}
lm::PrmParams prm_params() {
  lm::PrmParams p;
  p.kind = "token-logit";
  return p;
}

http::ServeParams serve_params() {
  http::ServeParams s;
  s.model_dir = models().gen;
  s.prm_path = models().prm;
  s.lm = gen_params();
  s.prm = prm_params();
  s.port = 0;
  s.threads = 64;
  return s;
}

http::ClientParams client(const std::vector<std::string>& urls) {
  http::ClientParams c;
  c.base_urls = urls;
  c.request_timeout_s = 20;
  c.max_retries = 1;
  c.backoff_initial_s = 0.01;
  c.backoff_max_s = 0.05;
  c.api_key_env = "";
  c.max_in_flight = 8;
  return c;
}

http::HttpGenerator http_gen(const std::vector<std::string>& urls) {
  http::HttpGeneratorParams p;
  p.client = client(urls);
  p.max_step_tokens = gen_params().max_step_tokens;
  p.temperature = gen_params().temperature;
  p.step_delimiter = gen_params().step_delimiter;
  p.answer_marker = gen_params().answer_marker;
  return http::HttpGenerator(p);
}
http::HttpVerifier http_prm(const std::vector<std::string>& urls) {
  http::HttpVerifierParams p;
  p.client = client(urls);
  p.step_tag = " ки";  // the token-logit kind's default tag
  return http::HttpVerifier(p);
}

std::string url_of(int port) { return "http://127.0.0.1:" + std::to_string(port); }

/// `qstar serve` with the test models (and `extra` flags) as a child process.
class ServeProcess : public qstar_test::ServeProcess {
 public:
  explicit ServeProcess(std::vector<std::string> extra = {}) : qstar_test::ServeProcess(args(std::move(extra))) {}

 private:
  static std::vector<std::string> args(std::vector<std::string> extra) {
    std::vector<std::string> a = {QSTAR_CLI_EXE, "serve", "--model", models().gen, "--prm", models().prm,
                                  "--prm-kind", "token-logit", "--port", "0", "--http-threads", "64"};
    for (auto& e : extra) a.push_back(std::move(e));
    return a;
  }
};

struct Prefix {
  Tree tree;
  Problem problem{"p", "4 5 6 10", std::nullopt};
  NodeId leaf = 0;
  Prefix() {
    Step a;
    a.text = "4 + 6 = 10 (left: 5 10 10)";
    leaf = tree.add_child(Tree::root(), a);
  }
};

SearchParams beam_params() {
  BeamParams b;
  b.num_beams = 4;
  b.width = 2;
  b.max_depth = 3;
  b.max_step_tokens = 12;
  b.keep_tree = false;
  return b;
}
SearchParams mcts_params() {
  MctsParams m;
  m.num_simulations = 6;
  m.leaves_per_iteration = 2;
  m.expand_k = 2;
  m.max_depth = 3;
  m.max_step_tokens = 12;
  return m;
}

std::vector<Problem> problems() {
  return {{"a", "4 5 6 10", std::nullopt}, {"b", "1 2 3 4", std::nullopt}};
}

void check_same(const std::vector<SearchResult>& a, const std::vector<SearchResult>& b) {
  REQUIRE(a.size() == b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    CHECK(a[i].answer == b[i].answer);
    CHECK(a[i].chosen == b[i].chosen);
    CHECK(a[i].stats.generated_tokens == b[i].stats.generated_tokens);
    CHECK(a[i].stats.nodes == b[i].stats.nodes);
    REQUIRE(a[i].candidates.size() == b[i].candidates.size());
    for (std::size_t k = 0; k < a[i].candidates.size(); ++k) {
      CHECK(a[i].candidates[k].steps == b[i].candidates[k].steps);
      CHECK(a[i].candidates[k].score == doctest::Approx(b[i].candidates[k].score).epsilon(1e-5));
    }
  }
}

httplib::Result post(int port, const std::string& path, const std::string& body) {
  httplib::Client c("127.0.0.1", port);
  c.set_read_timeout(20, 0);
  return c.Post(path.c_str(), body, "application/json");
}

}  // namespace

TEST_CASE("serve: HTTP expansions equal the in-process LMGenerator's for the same seeds") {
  auto server = http::Server::start(serve_params());
  auto local = lm::LMGenerator::load(models().gen, gen_params());
  auto remote = http_gen({url_of(server->port())});
  Prefix f;
  std::vector<ExpandRequest> reqs;
  for (int i = 0; i < 6; ++i) {
    ExpandRequest r;
    r.problem = &f.problem;
    r.prompt = "Use 4 5 6 10 to make 24.\n";
    r.prefix = i % 2 ? TrajectoryView(f.tree, f.leaf) : TrajectoryView(f.tree, Tree::root());
    r.num_candidates = 3;
    r.seed = 0x9e3779b97f4a7c15ULL * static_cast<std::uint64_t>(i + 1);  // top bit set for some
    r.greedy = i == 4;
    r.max_new_tokens = i == 5 ? 3 : 0;
    reqs.push_back(r);
  }
  const auto a = local.expand(reqs);
  const auto b = remote.expand(reqs);
  REQUIRE(a.size() == b.size());
  int distinct = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    REQUIRE(a[i].size() == b[i].size());
    for (std::size_t j = 0; j < a[i].size(); ++j) {
      CHECK(a[i][j].text == b[i][j].text);
      CHECK(a[i][j].num_tokens == b[i][j].num_tokens);
      CHECK(a[i][j].finish == b[i][j].finish);
      CHECK(a[i][j].logprob == doctest::Approx(b[i][j].logprob).epsilon(1e-5));
      CHECK(b[i][j].tokens.empty());  // the one documented difference: no token ids over HTTP
      if (j > 0 && a[i][j].text != a[i][0].text) ++distinct;
    }
  }
  CHECK(distinct > 0);  // sampling really happened
  const auto st = server->stats();
  CHECK(st.completions == 6);
  CHECK(st.expand_calls >= 1);
}

TEST_CASE("serve: given the model's tokenizer, HTTP steps carry the in-process token ids") {
  // Over HTTP the ids come from re-encoding the step text (+ the delimiter when the step
  // ended there), so they equal the generated ids exactly where those round-trip.
  auto server = http::Server::start(serve_params());
  auto local = lm::LMGenerator::load(models().gen, gen_params());
  http::HttpGeneratorParams hp = http_gen({url_of(server->port())}).params();
  hp.tokenizer_path = models().gen;  // the model folder: its tokenizer.json
  http::HttpGenerator remote(hp);
  REQUIRE(remote.tokenizer() != nullptr);
  const hf::Tokenizer& tok = *remote.tokenizer();
  Prefix f;
  std::vector<ExpandRequest> reqs;
  for (int i = 0; i < 6; ++i) {
    ExpandRequest r;
    r.problem = &f.problem;
    r.prompt = "Use 4 5 6 10 to make 24.\n";
    r.prefix = i % 2 ? TrajectoryView(f.tree, f.leaf) : TrajectoryView(f.tree, Tree::root());
    r.num_candidates = 3;
    r.seed = 77 + static_cast<std::uint64_t>(i);
    r.max_new_tokens = i == 5 ? 3 : 0;  // Length steps too
    reqs.push_back(r);
  }
  const auto a = local.expand(reqs);
  const auto b = remote.expand(reqs);
  REQUIRE(a.size() == b.size());
  int same = 0, steps = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    REQUIRE(a[i].size() == b[i].size());
    for (std::size_t j = 0; j < a[i].size(); ++j) {
      const Step& x = a[i][j];
      const Step& y = b[i][j];
      CAPTURE(x.text);
      ++steps;
      CHECK(x.text == y.text);
      CHECK(x.num_tokens == y.num_tokens);
      const std::string expected = x.finish == FinishReason::StepEnd ? x.text + "\n" : x.text;
      CHECK(y.tokens == tok.encode(expected));
      if (tok.encode(expected) == x.tokens) {
        CHECK(y.tokens == x.tokens);
        ++same;
      }
    }
  }
  MESSAGE(same << " of " << steps << " steps' generated ids round-trip through text");
  CHECK(same > 0);
}

TEST_CASE("serve: HTTP PRM scores equal the in-process PrmVerifier's") {
  auto server = http::Server::start(serve_params());
  auto local = lm::PrmVerifier::load(models().prm, prm_params());
  auto remote = http_prm({url_of(server->port())});
  Prefix f;
  Step b;
  b.text = "10 + 10 = 20 (left: 5 20)";
  const NodeId n2 = f.tree.add_child(f.leaf, b);
  std::vector<StepScoreRequest> reqs(2);
  for (auto& r : reqs) {
    r.problem = &f.problem;
    r.prompt = "Use 4 5 6 10 to make 24.\n";
    r.trajectory = TrajectoryView(f.tree, n2);
  }
  reqs[1].first_new = 1;
  const auto x = local.score_steps(reqs);
  const auto y = remote.score_steps(reqs);
  REQUIRE(x.size() == y.size());
  for (std::size_t i = 0; i < x.size(); ++i) {
    REQUIRE(x[i].size() == y[i].size());
    for (std::size_t k = 0; k < x[i].size(); ++k) CHECK(x[i][k] == doctest::Approx(y[i][k]).epsilon(1e-5));
  }
  // classify: the last step of each input
  http::HttpVerifierParams cp = remote.params();
  cp.api = "classify";
  http::HttpVerifier cls(cp);
  const auto z = cls.score_steps(reqs);
  for (std::size_t i = 0; i < x.size(); ++i)
    for (std::size_t k = 0; k < x[i].size(); ++k) CHECK(x[i][k] == doctest::Approx(z[i][k]).epsilon(1e-5));
}

/// The in-process LMGenerator with Step::tokens dropped: later expansions re-encode each
/// step's text + delimiter, exactly as a text protocol must.
struct TextOnly {
  lm::LMGenerator inner;
  std::vector<std::vector<Step>> expand(std::span<const ExpandRequest> b) {
    auto out = inner.expand(b);
    for (auto& v : out)
      for (auto& s : v) s.tokens.clear();
    return out;
  }
};

TEST_CASE("serve: beam search and MCTS through HTTP match the in-process backends") {
  // Over HTTP a step's context is its TEXT (+ delimiter), re-tokenized by the server; in
  // process it is the generated token ids. The two agree exactly when the ids round-trip
  // through text. Checked here: (1) against the in-process backend fed text contexts
  // (TextOnly), the searches are identical; (2) against the plain in-process backend, every
  // node that differs lies below a step whose tokens do not round-trip (the tiny model can
  // sample ids that decode to nothing, or <unk>).
  auto server = http::Server::start(serve_params());
  const game24::Game24Task task;
  const auto probs = problems();
  for (SearchParams sp : {beam_params(), mcts_params()}) {
    CAPTURE(std::string(algorithm_name(sp)));
    common(sp).keep_tree = true;
    auto hg = http_gen({url_of(server->port())});
    auto hv = http_prm({url_of(server->port())});
    const auto b = search(probs, task, hg, hv, sp, 5);
    CHECK(hg.stats().requests > 0);
    CHECK(hv.stats().requests > 0);
    {
      TextOnly lg{lm::LMGenerator::load(models().gen, gen_params())};
      auto lv = lm::PrmVerifier::load(models().prm, prm_params());
      check_same(search(probs, task, lg, lv, sp, 5), b);
    }
    auto lg = lm::LMGenerator::load(models().gen, gen_params());
    auto lv = lm::PrmVerifier::load(models().prm, prm_params());
    const auto a = search(probs, task, lg, lv, sp, 5);
    int differing = 0, lossy = 0;
    for (std::size_t i = 0; i < a.size(); ++i) {
      const Tree& ta = *a[i].tree;
      const Tree& tb = *b[i].tree;
      auto round_trips = [&](NodeId n) {
        const auto ids = lg.tokenizer().encode(std::string(ta.text(n)) + "\n");
        const auto got = ta.tokens(n);
        return std::vector<std::int32_t>(got.begin(), got.end()) == ids || ta[n].finish != FinishReason::StepEnd;
      };
      // Nodes are created in the same order while the searches agree: the first node that
      // differs must lie below a step whose tokens do not round-trip.
      int lossy_here = 0;
      bool first = true;
      for (NodeId n = 1; n < static_cast<NodeId>(ta.size()); ++n) lossy_here += round_trips(n) ? 0 : 1;
      for (NodeId n = 1; n < static_cast<NodeId>(std::min(ta.size(), tb.size())); ++n) {
        if (ta.text(n) == tb.text(n) && ta[n].parent == tb[n].parent) continue;
        ++differing;
        if (!first) continue;
        first = false;
        bool explained = false;
        for (NodeId p = ta[n].parent; p > 0 && !explained; p = ta[p].parent) explained = !round_trips(p);
        CHECK_MESSAGE(explained, "node " << n << " is the first to differ, below steps that all round-trip");
      }
      lossy += lossy_here;
      if (lossy_here == 0) check_same(std::vector<SearchResult>{a[i]}, std::vector<SearchResult>{b[i]});
    }
    MESSAGE(std::string(algorithm_name(sp)) << ": " << lossy << " steps whose tokens do not round-trip through text, "
                               << differing << " nodes differ from the token-id in-process search");
  }
}

TEST_CASE("serve: concurrent requests are batched into few expand calls") {
  auto sp = serve_params();
  sp.batch_window_ms = 50;
  auto server = http::Server::start(sp);
  auto remote = http_gen({url_of(server->port())});
  Prefix f;
  std::vector<ExpandRequest> reqs;
  for (int i = 0; i < 16; ++i) {
    ExpandRequest r;
    r.problem = &f.problem;
    r.prompt = "q";
    r.prefix = TrajectoryView(f.tree, Tree::root());
    r.num_candidates = 2;
    r.seed = static_cast<std::uint64_t>(i);
    reqs.push_back(r);
  }
  remote.expand(reqs);
  const auto st = server->stats();
  CHECK(st.completions == 16);
  CHECK(st.expand_calls < 16);
  CHECK(st.max_batch_seen >= 2);
  MESSAGE("16 concurrent requests -> " << st.expand_calls << " expand calls, largest batch " << st.max_batch_seen);
}

TEST_CASE("serve: a burst of 64 simultaneous connects all complete at once (listen backlog)") {
  // cpp-httplib's own backlog is 5: the kernel drops the SYNs of a burst beyond it and the
  // clients resend them after 1 s. qstar serve widens the backlog (src/http/server.cpp).
  auto server = http::Server::start(serve_params());
  CHECK(fake::connect_burst(server->port(), 64, std::chrono::milliseconds(500)) == 64);
}

TEST_CASE("serve: bad requests get 4xx with a JSON error body naming the field") {
  auto sp = serve_params();
  sp.max_n = 4;
  sp.max_body_bytes = 4096;
  auto server = http::Server::start(sp);
  const int port = server->port();
  struct Case {
    std::string path, body;
    int status;
    std::string needle;
  };
  const std::vector<Case> cases = {
      {"/v1/completions", "{not json", 400, "request body"},
      {"/v1/completions", "[1]", 400, "JSON object"},
      {"/v1/completions", R"({"prompt": "x", "max_tokens": 4})", 400, "'stop' is required"},
      {"/v1/completions", R"({"prompt": "x", "stop": "\n", "n": 5})", 400, "'n' must be in [1, 4]"},
      {"/v1/completions", R"({"prompt": "x", "stop": "\n", "max_tokens": 0})", 400, "'max_tokens'"},
      {"/v1/completions", R"({"prompt": [1, 2], "stop": "\n"})", 400, "token-id input"},
      {"/v1/completions", R"({"prompt": "x", "stop": "\n", "temperature": -1})", 400, "'temperature'"},
      {"/v1/completions", R"({"prompt": "x", "stop": "\n", "stream": true})", 400, "'stream'"},
      {"/v1/completions", R"({"prompt": "x", "stop": ["a", "b"]})", 400, "'stop'"},
      {"/v1/completions", "{\"prompt\": \"" + std::string(5000, 'a') + "\", \"stop\": \"\\n\"}", 413, "size limit"},
      {"/classify", R"({"input": "no tag here"})", 400, "no step tag"},
      {"/pooling", R"({})", 400, "'input' is required"},
      {"/nope", R"({})", 404, "no such endpoint"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.body.substr(0, 80));
    auto r = post(port, c.path, c.body);
    REQUIRE(r);
    CHECK(r->status == c.status);
    const auto v = json::parse(r->body, "error body");
    CHECK(v.at("error").get_string("message").find(c.needle) != std::string::npos);
  }
  // A good request still works afterwards.
  auto ok = post(port, "/v1/completions", R"({"prompt": "x", "stop": "\n", "n": 2, "max_tokens": 4, "logprobs": 0})");
  REQUIRE(ok);
  CHECK(ok->status == 200);
  const auto v = json::parse(ok->body, "reply");
  CHECK(v.get_array("choices").size() == 2);
  CHECK(server->stats().bad_requests == static_cast<std::int64_t>(cases.size()));
}

TEST_CASE("serve: the qstar serve process answers, stops on SIGTERM and reports") {
  ServeProcess proc;
  auto remote = http_gen({proc.url()});
  Prefix f;
  ExpandRequest r;
  r.problem = &f.problem;
  r.prompt = "q";
  r.prefix = TrajectoryView(f.tree, Tree::root());
  r.num_candidates = 2;
  CHECK(remote.expand(std::span<const ExpandRequest>(&r, 1)).at(0).size() == 2);
  const std::string tail = proc.terminate();
  CHECK(tail.find("stopped (SIGTERM)") != std::string::npos);
  CHECK(tail.find("1 completions") != std::string::npos);
}

TEST_CASE("serve: a server killed mid-search gives a PluginError naming its URL, no hang") {
  ServeProcess proc;
  const std::string url = proc.url();
  // A generator that kills the server right after its first call returns: the search has
  // proposals and goes on to score them on a dead server.
  struct KillingGen {
    http::HttpGenerator inner;
    ServeProcess* proc;
    int calls = 0;
    std::vector<std::vector<Step>> expand(std::span<const ExpandRequest> b) {
      auto out = inner.expand(b);
      if (++calls == 1) proc->kill9();
      return out;
    }
  } gen{http_gen({url}), &proc};
  auto hv = http_prm({url});
  const game24::Game24Task task;
  const auto probs = problems();
  const auto t0 = Clock::now();
  try {
    search(probs, task, gen, hv, beam_params(), 3);
    FAIL("expected a PluginError");
  } catch (const PluginError& e) {
    CHECK(std::string(e.what()).find(url) != std::string::npos);
  }
  CHECK(gen.calls == 1);
  CHECK(std::chrono::duration<double>(Clock::now() - t0).count() < 10.0);
}

TEST_CASE("serve: concurrent searches over two server processes all finish with the in-process results") {
  ServeProcess s1, s2;
  const game24::Game24Task task;
  const auto probs = problems();
  const SearchParams sp = beam_params();
  constexpr int kSearches = 4;
  std::vector<std::vector<SearchResult>> want(kSearches);
  {
    TextOnly lg{lm::LMGenerator::load(models().gen, gen_params())};  // text contexts, as over HTTP
    auto lv = lm::PrmVerifier::load(models().prm, prm_params());
    for (int i = 0; i < kSearches; ++i) want[i] = search(probs, task, lg, lv, sp, 100 + static_cast<std::uint64_t>(i));
  }
  const auto t0 = Clock::now();
  std::vector<std::future<std::vector<SearchResult>>> futs;
  std::vector<http::HttpGenerator> gens;
  for (int i = 0; i < kSearches; ++i) {
    futs.push_back(std::async(std::launch::async, [&, i] {
      auto hg = http_gen({s1.url(), s2.url()});
      auto hv = http_prm({s1.url(), s2.url()});
      auto r = search(probs, task, hg, hv, sp, 100 + static_cast<std::uint64_t>(i));
      const auto st = hg.stats();
      CHECK(st.per_url[0] > 0);
      CHECK(st.per_url[1] > 0);
      return r;
    }));
  }
  std::int64_t tokens = 0;
  for (int i = 0; i < kSearches; ++i) {
    const auto got = futs[static_cast<std::size_t>(i)].get();
    check_same(want[static_cast<std::size_t>(i)], got);
    for (const auto& r : got) tokens += r.stats.generated_tokens;
  }
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  MESSAGE(kSearches << " concurrent beam searches x " << probs.size() << " problems over 2 qstar serve processes: "
                    << secs << " s, " << tokens / secs << " generated tokens/s");
}

TEST_CASE("serve: with an API key, requests without it get 401; the HTTP plug-ins send it") {
  ::setenv("QSTAR_TEST_SERVE_KEY", "k-123", 1);
  auto sp = serve_params();
  sp.api_key_env = "QSTAR_TEST_SERVE_KEY";
  auto server = http::Server::start(sp);
  auto r = post(server->port(), "/v1/completions", R"({"prompt": "x", "stop": "\n"})");
  REQUIRE(r);
  CHECK(r->status == 401);
  http::HttpGeneratorParams p;
  p.client = client({url_of(server->port())});
  p.client.api_key_env = "QSTAR_TEST_SERVE_KEY";
  http::HttpGenerator g(p);
  Prefix f;
  ExpandRequest q;
  q.problem = &f.problem;
  q.prompt = "q";
  q.prefix = TrajectoryView(f.tree, Tree::root());
  CHECK(g.expand(std::span<const ExpandRequest>(&q, 1)).at(0).size() == 1);
  ::unsetenv("QSTAR_TEST_SERVE_KEY");
  CHECK_THROWS_WITH_AS(http::Server::start(sp), doctest::Contains("ServeParams.api_key_env"), InvalidArgument);
}

namespace {
/// Runs the qstar executable through the shell; its output (stdout + stderr) and exit code.
std::pair<std::string, int> run_cli(const std::string& args) {
  const std::string cmd = std::string("'") + QSTAR_CLI_EXE + "' " + args + " 2>&1";
  FILE* f = ::popen(cmd.c_str(), "r");
  REQUIRE(f != nullptr);
  std::string out;
  char buf[4096];
  std::size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  const int status = ::pclose(f);
  return {out, WIFEXITED(status) ? WEXITSTATUS(status) : -1};
}
}  // namespace

TEST_CASE("serve: the CLI drives qstar serve through --generator/--verifier http:URL; bad flags exit 2") {
  auto server = http::Server::start(serve_params());
  const std::string url = url_of(server->port());
  {
    auto [out, code] = run_cli("solve \"4 5 6 10\" --algo beam --n 4 --max-depth 2 --generator http:" + url +
                               " --verifier http:" + url + " --step-tag ' ки' --json");
    CHECK(code == 0);
    CHECK(out.find("\"algo\":\"beam\"") != std::string::npos);
  }
  CHECK(server->stats().completions > 0);
  CHECK(server->stats().scored_inputs > 0);
  const std::string dead = "http://127.0.0.1:" + std::to_string(::getpid() % 2 ? 9 : 7);  // discard/echo: closed
  {
    auto [out, code] = run_cli("solve \"4 5 6 10\" --verifier oracle --http-retries 0 --generator http:" + dead);
    CHECK(code == 1);
    CHECK(out.rfind("qstar: error: http:" + dead, 0) == 0);
  }
  // Each run loads LibTorch (~1-2 s): a few representative bad inputs only.
  struct Bad {
    std::string args, needle;
  };
  for (const Bad& b : std::vector<Bad>{
           {"serve", "give --model DIR and/or --prm PATH"},
           {"serve --model /nonexistent/qstar-model", "/nonexistent/qstar-model"},
           {"solve \"4 5 6 10\" --verifier oracle --step-tag x", "--step-tag applies only to --verifier http:URL"},
           {"solve \"4 5 6 10\" --verifier oracle --generator http:ftp://x", "does not start with http://"},
           {"solve \"4 5 6 10\" --verifier http:" + url + " --http-api reward", "HttpVerifierParams.api"},
       }) {
    CAPTURE(b.args);
    auto [out, code] = run_cli(b.args);
    CHECK(code == 2);
    CHECK(out.rfind("qstar: error: ", 0) == 0);
    CHECK(out.find(b.needle) != std::string::npos);
    CHECK(std::count(out.begin(), out.end(), '\n') == 1);
  }
}

TEST_CASE("serve: ServeParams validation names the field") {
  http::ServeParams p;
  CHECK_THROWS_WITH_AS(p.validate(), doctest::Contains("ServeParams.model_dir"), InvalidArgument);
  p.model_dir = "x";
  p.max_n = 0;
  CHECK_THROWS_WITH_AS(p.validate(), doctest::Contains("ServeParams.max_n"), InvalidArgument);
  p.max_n = 4;
  p.batch_window_ms = -1;
  CHECK_THROWS_WITH_AS(p.validate(), doctest::Contains("ServeParams.batch_window_ms"), InvalidArgument);
  p.batch_window_ms = 1;
  p.port = 70000;
  CHECK_THROWS_WITH_AS(p.validate(), doctest::Contains("ServeParams.port"), InvalidArgument);
}

#endif  // QSTAR_HAS_HTTP_SERVER
