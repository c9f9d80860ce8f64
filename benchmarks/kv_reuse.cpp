// KV reuse and batching efficiency of the LibTorch language-model generator.
//
// Builds a small random-weight Llama (hidden 128, 4 layers, a character vocabulary of 64
// with "\n" made likely) in a temporary folder and runs a step-level beam search of depth 4
// (N = 16 beams, width M = 4, max_step_tokens 16) over a few problems with few-shot-sized
// prompts, twice: with the shared-prefix KV cache and without it (every context recomputed).
// It prints, from that one run:
//   1. KV reuse: tokens the model computed (prefill + decode) against the distinct tokens
//      in the search trees (prompts + every node's step tokens); goal <= 1.1. And the wall
//      time of the uncached search over the cached one; goal >= 3.
//   2. Batching efficiency: end-to-end generated tokens/s of the cached search against a
//      bare batched Decoder::forward replaying the same forwards (same batch sizes,
//      same past lengths, same new-token counts; one contiguous past segment per sequence,
//      no sampling, no cache, no search) over the same number of tokens; goal >= 80%.
//
// Usage: bench_kv_reuse [--problems P] [--prompt-chars C] [--beams N] [--width M]
//                       [--depth D] [--step-tokens T] [--hidden H] [--layers L]
//                       [--threads K] [--device cpu|cuda] [--dtype float32|bfloat16]
//                       [--model-dir DIR (write and keep the model there)] [--repeat R]
//                       [--system-malloc]
//
// Each measurement is taken --repeat times (default 3; each cached search is followed at
// once by the bare replay of its forwards) and the fastest is reported: the machines this
// runs on are often shared. By default glibc's malloc is told
// to keep freed memory (mallopt M_MMAP_THRESHOLD / M_TRIM_THRESHOLD): the forward allocates
// multi-megabyte attention buffers every step, and returning them to the kernel each time
// makes page faults, not arithmetic, dominate (both runs alike); --system-malloc keeps the
// defaults. QSTAR_BENCH_VERBOSE=1 prints every replayed forward next to the generator's.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>
#include <unistd.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <span>
#include <sstream>
#include <string>
#include <vector>

#include "qstar/search/beam.hpp"
#include "qstar/torch/lm_generator.hpp"
#include "qstar/hf/safetensors.hpp"
#include "support/tiny_model.hpp"  // tests/support: the random-weight model writer the tests use
#include "torch/decoder.hpp"

namespace fs = std::filesystem;
using namespace qstar;
using namespace qstar::lm;

namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

struct Options {
  int problems = 4;
  int prompt_chars = 600;
  int beams = 16;
  int width = 4;
  int depth = 4;
  int step_tokens = 16;
  int hidden = 128;
  int layers = 4;
  int threads = 0;
  std::string device = "cpu";
  std::string dtype = "float32";
  std::string model_dir;  // write (and keep) the model there instead of a temporary folder
  int repeat = 3;         // measured runs of each kind; the fastest is reported
  bool tune_malloc = true;
};

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--problems")
      o.problems = std::stoi(next());
    else if (a == "--prompt-chars")
      o.prompt_chars = std::stoi(next());
    else if (a == "--beams")
      o.beams = std::stoi(next());
    else if (a == "--width")
      o.width = std::stoi(next());
    else if (a == "--depth")
      o.depth = std::stoi(next());
    else if (a == "--step-tokens")
      o.step_tokens = std::stoi(next());
    else if (a == "--hidden")
      o.hidden = std::stoi(next());
    else if (a == "--layers")
      o.layers = std::stoi(next());
    else if (a == "--threads")
      o.threads = std::stoi(next());
    else if (a == "--device")
      o.device = next();
    else if (a == "--dtype")
      o.dtype = next();
    else if (a == "--model-dir")
      o.model_dir = next();
    else if (a == "--repeat")
      o.repeat = std::max(1, std::stoi(next()));
    else if (a == "--system-malloc")
      o.tune_malloc = false;
    else {
      std::fprintf(stderr, "unknown option %s (see the header of benchmarks/kv_reuse.cpp)\n",
                   a.c_str());
      std::exit(2);
    }
  }
  return o;
}

// 64 tokens: <unk>, </s>, "\n", and 61 printable characters.
std::vector<std::string> vocab() {
  std::vector<std::string> v = {"<unk>", "</s>", "\n"};
  const std::string chars = " .,:;=+-*/()0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQ";
  for (char c : chars) {
    if (v.size() == 64) break;
    v.emplace_back(1, c);
  }
  return v;
}


// Random Llama weights; "\n" gets a logit bias of about `nl_bias` nats through a shared
// embedding component on hidden dim 0 that lm_head's dim-0 column reads.
void write_model(const std::string& dir, int hidden, int layers, float nl_bias) {
  const auto voc = vocab();
  tiny::Layout l;
  l.hidden = hidden;
  l.inter = 3 * hidden;
  l.layers = layers;
  l.heads = 4;
  l.kv = 2;
  l.vocab = static_cast<int>(voc.size());
  tiny::write_biased_model(dir, l, 7, {{2, nl_bias}}, voc, 4096);  // "\n" is id 2
}

struct BenchTask {
  std::string format(const Problem& p) const { return p.text; }
  bool is_terminal(const Step& s) const { return s.finish != FinishReason::StepEnd; }
  std::optional<std::string> extract_answer(TrajectoryView t) const {
    return t.empty() ? std::string() : std::string(t.text(t.size() - 1));
  }
  std::string canonicalize(std::string_view a) const { return std::string(a); }
};

struct HalfVerifier {
  std::vector<std::vector<double>> score_steps(std::span<const StepScoreRequest> batch) {
    std::vector<std::vector<double>> out;
    out.reserve(batch.size());
    for (const auto& r : batch)
      out.emplace_back(r.trajectory.size() - static_cast<std::size_t>(r.first_new), 0.5);
    return out;
  }
};

struct Run {
  std::vector<SearchResult> results;
  LMGeneratorStats stats;
  std::vector<ForwardRecord> log;
  double wall = 0.0;
};

Run run_search(const std::string& dir, const Options& o, bool cache,
               const std::vector<Problem>& problems) {
  LMGeneratorParams p;
  p.device = o.device;
  p.dtype = o.dtype;
  p.max_step_tokens = o.step_tokens;
  p.use_cache = cache;
  p.record_forwards = true;
  p.kv_cache_bytes = 0;
  LMGenerator gen = LMGenerator::load(dir, p);
  BeamParams bp;
  bp.num_beams = o.beams;
  bp.width = o.width;
  bp.max_depth = o.depth;
  bp.keep_tree = true;
  BenchTask task;
  HalfVerifier ver;
  Run r;
  const auto t0 = Clock::now();
  r.results = beam_search(std::span<const Problem>(problems), task, gen, ver, bp, 2024);
  r.wall = since(t0);
  r.stats = gen.stats();
  r.log = gen.forward_log();
  return r;
}

// Replays the recorded forwards with bare Decoder::forward calls: the same batch sizes,
// past lengths and new-token counts, each past one contiguous segment (views of one random
// KV buffer), random token ids, logits of the last token, as the generator asks for.
struct Replay {
  double prefill = 0.0, decode = 0.0;
  double total() const { return prefill + decode; }
};
Replay replay(const Decoder& m, const std::vector<ForwardRecord>& log) {
  c10::InferenceMode guard;
  std::int64_t max_past = 1;
  for (const auto& r : log)
    for (auto p : r.past_lens) max_past = std::max(max_past, p);
  const auto opts = at::TensorOptions().dtype(m.dtype()).device(m.device());
  KVSegment pool;
  for (int l = 0; l < m.num_layers(); ++l) {
    pool.k.push_back(at::randn({m.num_kv_heads(), max_past, m.head_dim()}, opts));
    pool.v.push_back(at::randn({m.num_kv_heads(), max_past, m.head_dim()}, opts));
  }
  std::map<std::int64_t, KVSegment> views;
  std::mt19937 rng(1);
  std::uniform_int_distribution<int> tok(3, m.config().vocab_size - 1);
  Replay total;
  for (const auto& r : log) {
    std::vector<SequenceInput> in(r.past_lens.size());
    for (std::size_t b = 0; b < in.size(); ++b) {
      const std::int64_t p = r.past_lens[b];
      if (p > 0) {
        auto it = views.find(p);
        if (it == views.end()) it = views.emplace(p, pool.slice(0, p)).first;
        in[b].past = {&it->second};
      }
      for (std::int64_t i = 0; i < r.new_lens[b]; ++i) in[b].tokens.push_back(tok(rng));
    }
    ForwardOptions fo;
    fo.logits = LogitsMode::Last;
    fo.copy_kv = !r.decode;
    const auto t0 = Clock::now();
    auto out = m.forward(in, fo);
    std::vector<at::Tensor> rows;
    for (auto& x : out) rows.push_back(x.logits);
    const at::Tensor logits = at::cat(rows, 0).to(at::kCPU);
    const double dt = since(t0);
    (r.decode ? total.decode : total.prefill) += dt;
    if (std::getenv("QSTAR_BENCH_VERBOSE"))
      std::printf("   replay %s B=%zu past[0]=%lld new[0]=%lld: bare %.4f s, generator %.4f s\n",
                  r.decode ? "decode " : "prefill", in.size(),
                  static_cast<long long>(r.past_lens[0]), static_cast<long long>(r.new_lens[0]), dt,
                  r.seconds);
  }
  return total;
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  if (o.threads > 0) at::set_num_threads(o.threads);
#ifdef __GLIBC__
  if (o.tune_malloc) {
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
    mallopt(M_TOP_PAD, 64 << 20);
  }
#endif
  const fs::path dir = o.model_dir.empty() ? fs::temp_directory_path() /
                                                 ("qstar_kv_reuse_" + std::to_string(::getpid()))
                                           : fs::path(o.model_dir);
  fs::create_directories(dir);
  struct Cleanup {
    fs::path p;
    ~Cleanup() {
      std::error_code ec;
      if (!p.empty()) fs::remove_all(p, ec);
    }
  } cleanup{o.model_dir.empty() ? dir : fs::path()};
  write_model(dir.string(), o.hidden, o.layers, 1.6f);

  // Few-shot-sized prompts: random "worked examples" text, then the problem.
  std::vector<Problem> problems;
  std::mt19937 rng(11);
  const auto voc = vocab();
  std::uniform_int_distribution<std::size_t> pick(3, voc.size() - 1);
  for (int i = 0; i < o.problems; ++i) {
    std::string text;
    while (static_cast<int>(text.size()) < o.prompt_chars)
      text += (text.size() % 40 == 39) ? std::string("\n") : voc[pick(rng)];
    problems.push_back({"p" + std::to_string(i), text, std::nullopt});
  }

  std::printf(
      "qstar kv_reuse: model hidden %d, layers %d, vocab %zu, device %s; "
      "beam search N=%d M=%d depth %d, max_step_tokens %d, %d problems x %d prompt "
      "chars; %d threads; best of %d runs%s\n",
      o.hidden, o.layers, voc.size(), o.device.c_str(), o.beams, o.width, o.depth, o.step_tokens,
      o.problems, o.prompt_chars, at::get_num_threads(), o.repeat,
      o.tune_malloc ? "" : "; system malloc");

  // Warm-up (allocator, thread pool), then the measured runs.
  {
    Options w = o;
    w.depth = 2;
    run_search(dir.string(), w, true, std::vector<Problem>(problems.begin(), problems.begin() + 1));
  }
  // Cached searches, each followed by a bare replay of its forwards (pairs taken close in
  // time), then the uncached searches.
  LMGeneratorParams lp;
  lp.device = o.device;
  lp.dtype = o.dtype;
  LMGenerator holder = LMGenerator::load(dir.string(), lp);
  const Decoder& m = *holder.model().impl();
  Run cached, uncached;
  Replay bare;
  for (int i = 0; i < o.repeat; ++i) {
    Run c = run_search(dir.string(), o, true, problems);
    if (i == 0) replay(m, c.log);  // warm-up
    const Replay r = replay(m, c.log);
    if (i == 0 || r.total() < bare.total()) bare = r;
    if (i == 0 || c.wall < cached.wall) cached = std::move(c);
  }
  for (int i = 0; i < o.repeat; ++i) {
    Run u = run_search(dir.string(), o, false, problems);
    if (i == 0 || u.wall < uncached.wall) uncached = std::move(u);
  }

  // Same trees?
  bool same = cached.results.size() == uncached.results.size();
  std::int64_t distinct = 0, nodes = 0, generated = 0;
  int max_depth = 0;
  for (std::size_t i = 0; same && i < cached.results.size(); ++i) {
    const Tree& a = *cached.results[i].tree;
    const Tree& b = *uncached.results[i].tree;
    same = a.size() == b.size();
    for (NodeId id = 1; same && id < static_cast<NodeId>(a.size()); ++id)
      same = std::equal(a.tokens(id).begin(), a.tokens(id).end(), b.tokens(id).begin(),
                        b.tokens(id).end());
  }
  {
    LMGenerator probe = LMGenerator::load(dir.string(), LMGeneratorParams{});
    for (const auto& r : cached.results) {
      const Tree& t = *r.tree;
      ExpandRequest q;
      q.prompt = r.problem.text;
      distinct += static_cast<std::int64_t>(probe.context_tokens(q).size());
      for (NodeId id = 1; id < static_cast<NodeId>(t.size()); ++id) {
        distinct += static_cast<std::int64_t>(t.tokens(id).size());
        max_depth = std::max(max_depth, t[id].depth);
      }
      nodes += static_cast<std::int64_t>(t.size());
      generated += r.stats.generated_tokens;
    }
  }

  const auto& cs = cached.stats;
  const auto& us = uncached.stats;
  const double computed_c = static_cast<double>(cs.prefill_tokens_computed + cs.decode_tokens);
  const double computed_u = static_cast<double>(us.prefill_tokens_computed + us.decode_tokens);
  std::printf(
      "\ntrees: %lld nodes, depth %d, %lld distinct tokens (prompts + steps), %lld "
      "generated tokens; cached and uncached trees identical: %s\n",
      static_cast<long long>(nodes), max_depth, static_cast<long long>(distinct),
      static_cast<long long>(generated), same ? "yes" : "NO");
  std::printf("\n1. KV reuse\n");
  std::printf("   cached:   prefill computed %lld, reused %lld, decode %lld, forwards %lld\n",
              static_cast<long long>(cs.prefill_tokens_computed),
              static_cast<long long>(cs.cached_tokens_reused),
              static_cast<long long>(cs.decode_tokens), static_cast<long long>(cs.forward_calls));
  std::printf("   uncached: prefill computed %lld, decode %lld, forwards %lld\n",
              static_cast<long long>(us.prefill_tokens_computed),
              static_cast<long long>(us.decode_tokens), static_cast<long long>(us.forward_calls));
  std::printf("   computed / distinct tokens: cached %.3f (goal <= 1.1), uncached %.3f\n",
              computed_c / static_cast<double>(distinct),
              computed_u / static_cast<double>(distinct));
  std::printf("   prefill computed / distinct tokens: cached %.3f, uncached %.3f\n",
              static_cast<double>(cs.prefill_tokens_computed) / static_cast<double>(distinct),
              static_cast<double>(us.prefill_tokens_computed) / static_cast<double>(distinct));
  std::printf("   wall: cached %.3f s, uncached %.3f s, uncached / cached = %.2fx (goal >= 3)\n",
              cached.wall, uncached.wall, uncached.wall / cached.wall);
  std::printf("   generated tokens/s: cached %.0f, uncached %.0f\n",
              static_cast<double>(generated) / cached.wall,
              static_cast<double>(generated) / uncached.wall);
  std::printf(
      "   cached run: prefill %.3f s, decode %.3f s (all forwards %.3f s, sampling %.3f s), "
      "search + verifier %.3f s\n",
      cs.prefill_seconds, cs.decode_seconds, cs.forward_seconds, cs.sample_seconds,
      cached.wall - cs.prefill_seconds - cs.decode_seconds);

  // 2. Batching efficiency.
  const double e2e = static_cast<double>(generated) / cached.wall;
  std::printf("\n2. Batching efficiency (%zu forwards replayed bare)\n", cached.log.size());
  std::printf("   end-to-end search: %.0f generated tokens/s\n", e2e);
  std::printf(
      "   bare forwards (prefill + decode), same tokens: %.0f tokens/s -> "
      "efficiency %.1f%% (goal >= 80%%)\n",
      static_cast<double>(generated) / bare.total(), 100.0 * bare.total() / cached.wall);
  std::printf(
      "   by phase: prefill bare %.3f s / generator %.3f s = %.1f%%; decode bare %.3f s / "
      "generator %.3f s = %.1f%%\n",
      bare.prefill, cs.prefill_seconds, 100.0 * bare.prefill / cs.prefill_seconds, bare.decode,
      cs.decode_seconds, 100.0 * bare.decode / cs.decode_seconds);
  return same ? 0 : 1;
}
