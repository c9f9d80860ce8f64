// Search throughput through HTTP (`qstar serve` + HttpGenerator / HttpVerifier) against the
// in-process LibTorch backends, with 1 and with 2 server processes, measured in one run.
//
// Writes a small random-weight Llama generator (character vocabulary, hidden --hidden,
// --layers layers) and a tiny Qwen2 token-logit PRM into a temporary folder, then runs the
// same beam search (N = --beams, width --width, depth --depth, --step-tokens tokens per
// step) over --problems Game of 24 problems, --searches times concurrently (one thread per
// search, seeds 0..searches-1), in three set-ups:
//   in-process : LMGenerator + PrmVerifier in this process (one instance shared by the
//                search threads; their calls are serialized by the backends' locks)
//   http x1    : one `qstar serve` child process; every search thread has its own
//                HttpGenerator / HttpVerifier pointing at it
//   http x2    : two `qstar serve` child processes; the plug-ins spread over both
// Each set-up runs --repeat times (default 3) and the fastest wall time is kept. Printed:
// wall seconds, generated tokens per second, and each HTTP set-up's throughput as a ratio of
// the in-process one. The server processes are started before timing (model load excluded).
//
// Usage: bench_http_throughput [--qstar PATH] [--problems P] [--searches S] [--beams N]
//                              [--width M] [--depth D] [--step-tokens T] [--hidden H]
//                              [--layers L] [--repeat R]
#include <csignal>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <string>
#include <vector>

#include "qstar/http/client.hpp"
#include "qstar/search/search.hpp"
#include "qstar/tasks/game24.hpp"
#include "qstar/torch/lm_generator.hpp"
#include "qstar/torch/prm.hpp"
#include "support/tiny_model.hpp"

using namespace qstar;
using Clock = std::chrono::steady_clock;

namespace {

struct Options {
  std::string qstar = QSTAR_CLI_EXE;
  int problems = 4, searches = 4, beams = 8, width = 2, depth = 4, step_tokens = 12, hidden = 64, layers = 2,
      repeat = 3;
};

class ServeProcess {
 public:
  ServeProcess(const std::string& exe, const std::string& gen, const std::string& prm) {
    int fds[2];
    if (::pipe(fds) != 0) throw std::runtime_error("pipe failed");
    std::vector<std::string> args = {exe, "serve", "--model", gen, "--prm", prm, "--prm-kind", "token-logit",
                                     "--port", "0"};
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(fds[1], 1);
      ::close(fds[0]);
      ::close(fds[1]);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    ::close(fds[1]);
    out_ = ::fdopen(fds[0], "r");
    char line[512] = {0};
    if (!std::fgets(line, sizeof line, out_)) throw std::runtime_error("qstar serve did not start: " + exe);
    const std::string s = line;
    const auto at = s.find("127.0.0.1:");
    if (at == std::string::npos) throw std::runtime_error("unexpected qstar serve output: " + s);
    url_ = "http://127.0.0.1:" + std::to_string(std::stoi(s.substr(at + 10)));
  }
  ~ServeProcess() {
    ::kill(pid_, SIGTERM);
    ::waitpid(pid_, nullptr, 0);
    if (out_) std::fclose(out_);
  }
  const std::string& url() const { return url_; }

 private:
  pid_t pid_ = -1;
  FILE* out_ = nullptr;
  std::string url_;
};

struct Run {
  double seconds = 0;
  std::int64_t tokens = 0;
};

template <class MakePlugins>
Run run_searches(const Options& o, const std::vector<Problem>& probs, MakePlugins make) {
  const game24::Game24Task task;
  BeamParams bp;
  bp.num_beams = o.beams;
  bp.width = o.width;
  bp.max_depth = o.depth;
  bp.max_step_tokens = o.step_tokens;
  Run best;
  for (int rep = 0; rep < o.repeat; ++rep) {
    const auto t0 = Clock::now();
    std::vector<std::future<std::int64_t>> futs;
    for (int s = 0; s < o.searches; ++s)
      futs.push_back(std::async(std::launch::async, [&, s] {
        auto [gen, ver] = make();
        std::int64_t tokens = 0;
        for (const auto& r : search(probs, task, *gen, *ver, SearchParams(bp), static_cast<std::uint64_t>(s)))
          tokens += r.stats.generated_tokens;
        return tokens;
      }));
    std::int64_t tokens = 0;
    for (auto& f : futs) tokens += f.get();
    const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
    if (rep == 0 || secs < best.seconds) best = {secs, tokens};
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    auto num = [&] { return std::stoi(v); };
    if (k == "--qstar") o.qstar = v;
    else if (k == "--problems") o.problems = num();
    else if (k == "--searches") o.searches = num();
    else if (k == "--beams") o.beams = num();
    else if (k == "--width") o.width = num();
    else if (k == "--depth") o.depth = num();
    else if (k == "--step-tokens") o.step_tokens = num();
    else if (k == "--hidden") o.hidden = num();
    else if (k == "--layers") o.layers = num();
    else if (k == "--repeat") o.repeat = num();
    else {
      std::fprintf(stderr, "bench_http_throughput: unknown flag %s\n", k.c_str());
      return 2;
    }
  }
  std::signal(SIGPIPE, SIG_IGN);
  tiny::TempDir dir;
  const std::string gen = dir.file("gen"), prm = dir.file("prm");
  std::filesystem::create_directories(gen);
  std::filesystem::create_directories(prm);
  tiny::Spec gs = tiny::causal_llama();
  gs.hidden = o.hidden;
  gs.inter = 2 * o.hidden;
  gs.layers = o.layers;
  tiny::write_model(gen, gs, 21);
  tiny::write_tokenizer(gen + "/tokenizer.json", false);  // no PRM tag inside generated steps
  tiny::write_model(prm, tiny::causal_qwen2(), 22);

  std::vector<Problem> probs;
  const char* puzzles[] = {"4 5 6 10", "1 2 3 4", "2 3 5 12", "1 1 4 6", "3 3 8 8", "1 5 5 5", "2 2 6 6", "4 4 7 7"};
  for (int i = 0; i < o.problems; ++i) probs.push_back({std::to_string(i), puzzles[i % 8], std::nullopt});

  lm::LMGeneratorParams gp;
  gp.max_step_tokens = o.step_tokens;
  lm::PrmParams pp;
  pp.kind = "token-logit";

  // In-process: one backend instance shared by the search threads.
  auto lg = lm::LMGenerator::load(gen, gp);
  auto lv = lm::PrmVerifier::load(prm, pp);
  const Run local = run_searches(o, probs, [&] {
    return std::pair{std::make_unique<lm::LMGenerator>(lg), std::make_unique<lm::PrmVerifier>(lv)};
  });

  auto http_run = [&](const std::vector<std::string>& urls) {
    return run_searches(o, probs, [&] {
      http::HttpGeneratorParams hg;
      hg.client.base_urls = urls;
      hg.client.api_key_env.clear();
      hg.max_step_tokens = o.step_tokens;
      hg.answer_marker = gp.answer_marker;  // as the in-process generator
      http::HttpVerifierParams hv;
      hv.client = hg.client;
      hv.step_tag = " ки";
      return std::pair{std::make_unique<http::HttpGenerator>(hg), std::make_unique<http::HttpVerifier>(hv)};
    });
  };
  Run one, two;
  {
    ServeProcess s1(o.qstar, gen, prm);
    one = http_run({s1.url()});
  }
  {
    ServeProcess s1(o.qstar, gen, prm), s2(o.qstar, gen, prm);
    two = http_run({s1.url(), s2.url()});
  }
  std::printf("workload: %d concurrent beam searches (N=%d, M=%d, depth %d, %d tokens/step) x %d problems; "
              "generator hidden %d, %d layers; best of %d\n",
              o.searches, o.beams, o.width, o.depth, o.step_tokens, o.problems, o.hidden, o.layers, o.repeat);
  std::printf("%-12s %10s %12s %14s %10s\n", "setup", "wall s", "gen tokens", "tokens/s", "vs local");
  auto row = [&](const char* name, const Run& r) {
    const double tps = static_cast<double>(r.tokens) / r.seconds;
    const double base = static_cast<double>(local.tokens) / local.seconds;
    std::printf("%-12s %10.3f %12lld %14.1f %10.3f\n", name, r.seconds, static_cast<long long>(r.tokens), tps,
                tps / base);
  };
  row("in-process", local);
  row("http x1", one);
  row("http x2", two);
  return 0;
}
