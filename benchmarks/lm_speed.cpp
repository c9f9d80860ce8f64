// Tokens/s of qstar's LMGenerator on the workloads of benchmarks/vs_llamacpp.sh (the same
// ones llama.cpp's llama-bench and llama-batched-bench time), on a model folder:
//   prefill   one 512-token context (llama-bench pp512): prefill tokens / prefill time
//   decode    1 sequence, 128 new tokens from a 1-token context (llama-bench tg128)
//   batch8    8 sequences sharing a 512-token context, 32 new tokens each
//             (llama-batched-bench -npp 512 -ntg 32 -npl 8 -pps): decode tokens / decode time,
//             and all tokens (512 + 8 x 32) / total time
//   batch32   the same with 32 sequences
//   search    8 rounds of 8 continuations x 16 tokens; each round's context is the previous
//             context + its first continuation (a growing shared prefix, as a search makes):
//             generated tokens / total time
// Context tokens are random ids (seeded, never EOS); sampling is at temperature 1 with a fixed
// seed and the step delimiter is a string the model never emits, so a sequence stops only at
// its token cap or at EOS (the counts printed are the tokens actually generated).
//
// Usage: bench_lm_speed --model DIR [--threads N] [--aten-threads N --blas-threads N]
//                       [--rows prefill,decode,batch8,batch32,search] [--repeat R] [--warmup W] [--json]
//                       [--dtype float32|bfloat16|float16|int8]
// (QSTAR_SMALL_M_ROWS=0 in the environment turns the small-M decode kernel off: the
// previous ATen / BLAS path, for before / after comparisons.)
// --threads N: qstar::lm::set_threads(N); --aten-threads / --blas-threads set ATen's and the
// BLAS's pools apart (for measuring the default); neither: the library's default. Each row
// is run --repeat times (default 3) and the fastest is printed (the machine is shared), with
// the process CPU seconds (all threads) and wall seconds of that whole row call: on a loaded
// machine wall time counts the time other work held the core, CPU time does not. --warmup W
// (default 0) first runs each row W times untimed, as llama-bench warms up before timing.
#include <dlfcn.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "qstar/core/tree.hpp"
#include "qstar/torch/lm_generator.hpp"
#include "qstar/torch/threads.hpp"

using namespace qstar;
using namespace qstar::lm;

namespace {

struct Result {
  double tokens = 0;   ///< tokens counted for the row's rate
  double seconds = 0;  ///< the time they took
  double total_tokens = 0, total_seconds = 0;  ///< batch rows: prompt + generated, end to end
  double cpu_seconds = 0, wall_seconds = 0;  ///< the whole row call: process CPU time, wall time
};

/// OpenBLAS's kernel set in use ("Haswell": AVX2, "SkylakeX" / "Cooperlake": AVX-512; the
/// environment's OPENBLAS_CORETYPE forces one), "" without OpenBLAS.
std::string openblas_core() {
  using NameFn = char* (*)();
  const auto f = reinterpret_cast<NameFn>(::dlsym(RTLD_DEFAULT, "openblas_get_corename"));
  return f != nullptr ? std::string(f()) : std::string();
}

/// User + system CPU seconds of the process so far (all its threads).
double cpu_now() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         1e-6 * static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

/// A tree whose only step holds `tokens` (the context: empty prompt + one step of ids).
Tree context_tree(const std::vector<TokenId>& tokens) {
  Tree t;
  Step s;
  s.tokens = tokens;
  s.num_tokens = static_cast<std::int32_t>(tokens.size());
  t.add_child(0, s);
  return t;
}

std::vector<TokenId> random_ids(std::size_t n, int vocab, const std::vector<std::int32_t>& eos, std::mt19937_64& rng) {
  std::vector<TokenId> out;
  std::uniform_int_distribution<int> d(0, vocab - 1);
  while (out.size() < n) {
    const int id = d(rng);
    bool bad = false;
    for (auto e : eos) bad = bad || e == id;
    if (!bad) out.push_back(id);
  }
  return out;
}

/// One request on `context`, `cands` candidates of at most `new_tokens` tokens.
std::vector<Step> run_one(LMGenerator& g, const std::vector<TokenId>& context, int cands, int new_tokens, std::uint64_t seed) {
  Tree t = context_tree(context);
  ExpandRequest q;
  q.prompt = "";
  q.prefix = t.trajectory(1);
  q.num_candidates = cands;
  q.max_new_tokens = new_tokens;
  q.seed = seed;
  auto out = g.expand(std::span<const ExpandRequest>(&q, 1));
  return out.at(0);
}

Result row(const std::string& name, LMGenerator& g, int vocab, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  const auto eos = g.eos_ids();
  g.clear_cache();
  g.reset_stats();
  Result r;
  if (name == "prefill") {
    const auto ctx = random_ids(513, vocab, eos, rng);  // 512 before the last, +1: 513 prefilled
    run_one(g, ctx, 1, 1, seed);
    const auto s = g.stats();
    r.tokens = static_cast<double>(s.prefill_tokens_computed);
    r.seconds = s.prefill_seconds;
  } else if (name == "decode") {
    run_one(g, random_ids(1, vocab, eos, rng), 1, 128, seed);
    const auto s = g.stats();
    r.tokens = static_cast<double>(s.generated_tokens);
    r.seconds = s.decode_seconds;
  } else if (name == "batch8" || name == "batch32") {
    const int n = name == "batch8" ? 8 : 32;
    const double t0 = now();
    run_one(g, random_ids(512, vocab, eos, rng), n, 32, seed);
    r.total_seconds = now() - t0;
    const auto s = g.stats();
    r.tokens = static_cast<double>(s.generated_tokens);
    r.seconds = s.decode_seconds;
    r.total_tokens = static_cast<double>(s.prefill_tokens_computed + s.generated_tokens);
  } else if (name == "search") {
    auto ctx = random_ids(512, vocab, eos, rng);
    const double t0 = now();
    for (int round = 0; round < 8; ++round) {
      const auto steps = run_one(g, ctx, 8, 16, seed + static_cast<std::uint64_t>(round));
      for (auto id : steps.at(0).tokens) ctx.push_back(id);
      if (steps.at(0).tokens.empty()) ctx.push_back(random_ids(1, vocab, eos, rng)[0]);
    }
    r.seconds = now() - t0;
    r.tokens = static_cast<double>(g.stats().generated_tokens);
    r.total_seconds = r.seconds;
    r.total_tokens = static_cast<double>(g.stats().prefill_tokens_computed + g.stats().generated_tokens);
  } else {
    std::fprintf(stderr, "bench_lm_speed: unknown row '%s'\n", name.c_str());
    std::exit(2);
  }
  return r;
}

int int_arg(const std::string& flag, const char* v, long lo = 1) {
  char* end = nullptr;
  const long n = std::strtol(v, &end, 10);
  if (*end || n < lo || n > 4096) {
    std::fprintf(stderr, "bench_lm_speed: --%s: '%s' is not an integer in [%ld, 4096]\n", flag.c_str(), v, lo);
    std::exit(2);
  }
  return static_cast<int>(n);
}

}  // namespace

int main(int argc, char** argv) {
  std::map<std::string, std::string> a;
  for (int i = 1; i < argc; ++i) {
    std::string k = argv[i];
    if (k == "--json") { a["json"] = "1"; continue; }
    if (k.rfind("--", 0) != 0 || i + 1 >= argc) {
      std::fprintf(stderr, "usage: bench_lm_speed --model DIR [--threads N] [--aten-threads N --blas-threads N] [--rows LIST] [--repeat R] [--warmup W] [--json] [--dtype D]\n");
      return 2;
    }
    a[k.substr(2)] = argv[++i];
  }
  if (!a.count("model")) {
    std::fprintf(stderr, "bench_lm_speed: --model DIR is required\n");
    return 2;
  }
  const int repeat = a.count("repeat") ? int_arg("repeat", a["repeat"].c_str()) : 3;
  const int warmup = a.count("warmup") ? int_arg("warmup", a["warmup"].c_str(), 0) : 0;
  LMGeneratorParams p;
  p.step_delimiter = "\x01\x02qstar-never\x03";
  p.max_step_tokens = 128;
  p.temperature = 1.0;
  p.token_stats = false;
  p.kv_cache_bytes = std::int64_t{2} << 30;
  if (a.count("dtype")) p.dtype = a["dtype"];  // float32 (default), bfloat16, float16, int8
  apply_default_threads();  // as the CLI does; the flags below override it
  LMGenerator g = LMGenerator::load(a["model"], p);
  if (a.count("threads")) set_threads(int_arg("threads", a["threads"].c_str()));
  if (a.count("aten-threads") || a.count("blas-threads")) {
    const auto now_set = thread_settings();
    set_threads(a.count("aten-threads") ? int_arg("aten-threads", a["aten-threads"].c_str()) : now_set.aten,
                a.count("blas-threads") ? int_arg("blas-threads", a["blas-threads"].c_str()) : std::max(1, now_set.blas));
  }
  const auto ts = thread_settings();
  const std::string blas_core = openblas_core();
  const int vocab = static_cast<int>(g.tokenizer().vocab_size());
  std::vector<std::string> rows;
  {
    std::stringstream ss(a.count("rows") ? a["rows"] : "prefill,decode,batch8,batch32,search");
    for (std::string r; std::getline(ss, r, ',');) rows.push_back(r);
  }
  const bool json = a.count("json") != 0;
  if (!json)
    std::printf("threads: aten %d, %s %d (kernels: %s)\n%-8s %12s %10s %12s %8s %8s\n", ts.aten,
                ts.blas_library.empty() ? "blas" : ts.blas_library.c_str(), ts.blas, blas_core.c_str(), "row",
                "tokens/s", "tokens", "total tok/s", "cpu s", "wall s");
  else
    std::printf("{\"aten_threads\": %d, \"blas_threads\": %d, \"blas_kernels\": \"%s\", \"rows\": {", ts.aten,
                ts.blas, blas_core.c_str());
  for (std::size_t i = 0; i < rows.size(); ++i) {
    Result best;
    for (int k = 0; k < warmup; ++k) (void)row(rows[i], g, vocab, 1234);
    for (int k = 0; k < repeat; ++k) {
      const double c0 = cpu_now(), w0 = now();
      Result r = row(rows[i], g, vocab, 1234);
      r.cpu_seconds = cpu_now() - c0;
      r.wall_seconds = now() - w0;
      if (k == 0 || r.tokens / r.seconds > best.tokens / best.seconds) best = r;
    }
    const double rate = best.tokens / best.seconds;
    const double total = best.total_seconds > 0 ? best.total_tokens / best.total_seconds : 0.0;
    if (!json)
      std::printf("%-8s %12.2f %10.0f %12.2f %8.2f %8.2f\n", rows[i].c_str(), rate, best.tokens, total,
                  best.cpu_seconds, best.wall_seconds);
    else
      std::printf(
          "%s\"%s\": {\"tokens_per_s\": %.4f, \"tokens\": %.0f, \"total_tokens_per_s\": %.4f, "
          "\"cpu_seconds\": %.4f, \"wall_seconds\": %.4f}",
          i ? ", " : "", rows[i].c_str(), rate, best.tokens, total, best.cpu_seconds, best.wall_seconds);
    std::fflush(stdout);
  }
  if (json) std::printf("}}\n");
  return 0;
}
