// bfloat16 / float16 weight storage on CPU (lm::LoadOptions::dtype): speed, accuracy and
// memory against float32 storage. Three modes:
//
//   bench_weight_dtype speed [--preset llama-134m|qwen2-0.5b] [--prompt T] [--decode N]
//                            [--threads 1,2] [--repeat R] [--skip-matmul | --only-matmul]
//                            [--system-malloc]
//     Writes a random-weight float32 model folder in a temporary directory (deleted after)
//     and, for float32 / bfloat16 / float16 storage and each thread count, prints prefill
//     tokens/s (one forward of T prompt tokens), decode tokens/s (N cached single-token
//     greedy steps after it) and the weights' bytes (repeats interleave the dtypes); then
//     the accuracy cost (below); then
//     (unless --skip-matmul) the matmul kernels behind it at the model's MLP and lm_head
//     shapes: float32 at::linear, LibTorch's native bfloat16 at::linear, and upcast_linear
//     at several chunk sizes. Best of R runs each (the machine is shared).
//   bench_weight_dtype write DIR [--preset llama-7b|mistral-7b|llama-134m|qwen2-0.5b]
//                            [--dtype bf16|f16|f32] [--seed S]
//     Writes a random-weight model folder of that shape, one safetensors shard per layer
//     plus one for the embedding / norm / head, with model.safetensors.index.json.
//   bench_weight_dtype load DIR [--dtype bf16|f16|f32] [--prompt T] [--decode N]
//                            [--threads K]
//     Loads DIR with that storage dtype and prints the load time, the resident set after
//     the load (VmRSS = RssAnon + RssFile, from /proc/self/status), one forward's time over
//     T tokens and N greedy cached decode steps' tokens/s. Run it under /usr/bin/time -v for
//     the peak (benchmarks/memory_7b.sh).
//
// Accuracy (speed mode), on the same random token sequence (T tokens, every position's
// logits): (a) bf16 / f16 storage of the float32 weights (rounded to nearest even at load)
// against float32 storage of those float32 weights: max |Δlogit| / max |logit|, mean
// |Δlogit|, and the fraction of positions whose argmax agrees; (b) bf16 / f16 storage
// against float32 storage of the already-rounded weights: 0 when the upcast is exact.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include <algorithm>
#include <chrono>
#include <ctime>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "qstar/hf/safetensors.hpp"
#include "support/tiny_model.hpp"  // tests/support: TempDir
#include "torch/decoder.hpp"
#include "torch/models/layers.hpp"

namespace fs = std::filesystem;
using namespace qstar;
using namespace qstar::lm;

namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }
// CPU seconds of the whole process (every thread): on a shared machine the wall clock counts
// the neighbours' time too, CPU time only ours (with 1 thread it is the compute time).
double cpu_now() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

[[noreturn]] void usage(const std::string& why) {
  std::fprintf(stderr, "%s (see the header of benchmarks/weight_dtype.cpp)\n", why.c_str());
  std::exit(2);
}

struct Shape {
  std::string name;
  std::int64_t hidden, inter, layers, heads, kv, vocab;
  bool tie;
  double eps, theta;
  std::string arch, model_type;
};

Shape preset(const std::string& name) {
  if (name == "llama-134m") return {name, 768, 2048, 12, 12, 12, 32000, false, 1e-5, 10000.0, "LlamaForCausalLM", "llama"};
  if (name == "qwen2-0.5b") return {name, 896, 4864, 24, 14, 2, 151936, true, 1e-6, 1000000.0, "Qwen2ForCausalLM", "qwen2"};
  if (name == "llama-7b") return {name, 4096, 11008, 32, 32, 32, 32000, false, 1e-5, 10000.0, "LlamaForCausalLM", "llama"};
  if (name == "mistral-7b") return {name, 4096, 14336, 32, 32, 8, 32000, false, 1e-5, 1000000.0, "MistralForCausalLM", "llama"};
  usage("unknown preset " + name);
}

struct Options {
  std::string mode, dir, preset = "llama-134m", dtype = "bf16";
  int prompt = 128, decode = 32, repeat = 3;
  std::vector<int> threads = {1, 2};
  unsigned seed = 1;
  bool matmul = true, only_matmul = false, tune_malloc = true;
};

Options parse(int argc, char** argv) {
  Options o;
  if (argc < 2) usage("usage: bench_weight_dtype speed|write|load ...");
  o.mode = argv[1];
  int i = 2;
  if (o.mode == "write" || o.mode == "load") {
    if (argc < 3) usage(o.mode + " needs a folder");
    o.dir = argv[i++];
    o.threads = {0};
  } else if (o.mode != "speed") {
    usage("unknown mode " + o.mode);
  }
  for (; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) usage(a + " needs a value");
      return argv[++i];
    };
    if (a == "--preset") o.preset = next();
    else if (a == "--dtype") o.dtype = next();
    else if (a == "--prompt") o.prompt = std::stoi(next());
    else if (a == "--decode") o.decode = std::stoi(next());
    else if (a == "--repeat") o.repeat = std::max(1, std::stoi(next()));
    else if (a == "--seed") o.seed = static_cast<unsigned>(std::stoul(next()));
    else if (a == "--skip-matmul") o.matmul = false;
    else if (a == "--only-matmul") o.only_matmul = true;
    else if (a == "--system-malloc") o.tune_malloc = false;
    else if (a == "--threads") {
      o.threads.clear();
      std::stringstream ss(next());
      for (std::string t; std::getline(ss, t, ',');) o.threads.push_back(std::stoi(t));
    } else usage("unknown option " + a);
  }
  return o;
}

// ---- writing a random model folder -------------------------------------------------------

// A fast reproducible generator: uniform in [-a, a) (std ~ a / sqrt 3), per tensor seeded.
struct Rng {
  std::uint64_t s;
  float uniform(float a) {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return a * (static_cast<float>(s >> 40) * (2.0f / 16777216.0f) - 1.0f);
  }
};

struct Tensor {
  std::string name;
  std::vector<std::int64_t> shape;
  float scale;  // uniform half-width; < 0: a norm weight, 1 + uniform(-scale)
};

std::vector<Tensor> tensors_of(const Shape& s, int layer) {  // layer -1: embed, norm, head
  const std::int64_t D = s.hidden, I = s.inter, hd = D / s.heads;
  const float wd = 1.7f / std::sqrt(static_cast<float>(D)), wi = 1.7f / std::sqrt(static_cast<float>(I));
  if (layer < 0) {
    std::vector<Tensor> t = {{"model.embed_tokens.weight", {s.vocab, D}, 1.7f},
                             {"model.norm.weight", {D}, -0.1f}};
    if (!s.tie) t.push_back({"lm_head.weight", {s.vocab, D}, wd});
    return t;
  }
  const std::string p = "model.layers." + std::to_string(layer) + ".";
  std::vector<Tensor> t = {{p + "input_layernorm.weight", {D}, -0.1f},
                           {p + "self_attn.q_proj.weight", {s.heads * hd, D}, wd},
                           {p + "self_attn.k_proj.weight", {s.kv * hd, D}, wd},
                           {p + "self_attn.v_proj.weight", {s.kv * hd, D}, wd}};
  if (s.model_type == "qwen2")
    for (const char* b : {"q", "k", "v"})
      t.push_back({p + "self_attn." + b + "_proj.bias",
                   {(std::string(b) == "q" ? s.heads : s.kv) * hd}, 0.1f});
  for (Tensor x : std::vector<Tensor>{{p + "self_attn.o_proj.weight", {D, s.heads * hd}, wd},
                                      {p + "post_attention_layernorm.weight", {D}, -0.1f},
                                      {p + "mlp.gate_proj.weight", {I, D}, wd},
                                      {p + "mlp.up_proj.weight", {I, D}, wd},
                                      {p + "mlp.down_proj.weight", {D, I}, wi}})
    t.push_back(std::move(x));
  return t;
}

void write_config(const std::string& dir, const Shape& s, hf::DType dt) {
  std::ofstream c(dir + "/config.json");
  c << "{\"architectures\": [\"" << (s.model_type == "llama" ? "LlamaForCausalLM" : s.arch)
    << "\"], \"model_type\": \"" << s.model_type << "\", \"vocab_size\": " << s.vocab
    << ", \"hidden_size\": " << s.hidden << ", \"intermediate_size\": " << s.inter
    << ", \"num_hidden_layers\": " << s.layers << ", \"num_attention_heads\": " << s.heads
    << ", \"num_key_value_heads\": " << s.kv << ", \"rms_norm_eps\": " << s.eps
    << ", \"rope_theta\": " << std::fixed << s.theta << ", \"max_position_embeddings\": 4096"
    << ", \"hidden_act\": \"silu\", \"tie_word_embeddings\": " << (s.tie ? "true" : "false")
    << ", \"torch_dtype\": \""
    << (dt == hf::DType::BF16 ? "bfloat16" : dt == hf::DType::F16 ? "float16" : "float32")
    << "\"}\n";
}

// One shard per layer plus one for the rest; returns the bytes written.
std::size_t write_model(const std::string& dir, const Shape& s, hf::DType dt, unsigned seed) {
  fs::create_directories(dir);
  write_config(dir, s, dt);
  std::map<std::string, std::string> weight_map;
  std::size_t total = 0;
  const int shards = static_cast<int>(s.layers) + 1;
  for (int k = 0; k < shards; ++k) {
    const std::string file = "model-" + std::to_string(k + 1) + "-of-" + std::to_string(shards) + ".safetensors";
    const auto ts = tensors_of(s, k == shards - 1 ? -1 : k);
    std::vector<std::vector<std::byte>> data(ts.size());
    std::vector<hf::TensorToWrite> out;
    for (std::size_t j = 0; j < ts.size(); ++j) {
      const Tensor& t = ts[j];
      std::int64_t n = 1;
      for (auto d : t.shape) n *= d;
      Rng rng{0x9E3779B97F4A7C15ull * (seed + 1) + std::hash<std::string>{}(t.name)};
      data[j].resize(static_cast<std::size_t>(n) * hf::dtype_size(dt));
      std::byte* p = data[j].data();
      for (std::int64_t e = 0; e < n; ++e) {
        const float v = t.scale < 0 ? 1.0f + rng.uniform(-t.scale) : rng.uniform(t.scale);
        if (dt == hf::DType::F32) {
          std::memcpy(p + 4 * e, &v, 4);
        } else {
          const std::uint16_t b = dt == hf::DType::BF16 ? hf::float_to_bf16(v) : hf::float_to_f16(v);
          std::memcpy(p + 2 * e, &b, 2);
        }
      }
      out.push_back({t.name, dt, t.shape, data[j]});
      weight_map[t.name] = file;
      total += data[j].size();
    }
    hf::write_safetensors(dir + "/" + file, out, {{"format", "pt"}});
  }
  std::ofstream idx(dir + "/model.safetensors.index.json");
  idx << "{\"metadata\": {\"total_size\": " << total << "}, \"weight_map\": {";
  bool first = true;
  for (const auto& [name, file] : weight_map) {
    idx << (first ? "" : ", ") << "\"" << name << "\": \"" << file << "\"";
    first = false;
  }
  idx << "}}\n";
  return total;
}

// ---- running -----------------------------------------------------------------------------

std::map<std::string, long> proc_status() {  // kB fields of /proc/self/status
  std::map<std::string, long> m;
  std::ifstream f("/proc/self/status");
  for (std::string line; std::getline(f, line);) {
    const auto c = line.find(':');
    if (c == std::string::npos) continue;
    const std::string key = line.substr(0, c);
    if (key == "VmRSS" || key == "RssAnon" || key == "RssFile" || key == "VmHWM")
      m[key] = std::stol(line.substr(c + 1));
  }
  return m;
}

std::string rss_line() {
  auto m = proc_status();
  char b[200];
  std::snprintf(b, sizeof b, "VmRSS %.2f GiB (RssAnon %.2f, RssFile %.2f), VmHWM %.2f GiB",
                m["VmRSS"] / 1048576.0, m["RssAnon"] / 1048576.0, m["RssFile"] / 1048576.0,
                m["VmHWM"] / 1048576.0);
  return b;
}

std::vector<std::int64_t> random_tokens(int n, std::int64_t vocab, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<std::int64_t> u(0, vocab - 1);
  std::vector<std::int64_t> t(static_cast<std::size_t>(n));
  for (auto& x : t) x = u(rng);
  return t;
}

struct Timing {
  double prefill_s = 1e30, decode_s = 1e30;          // wall clock
  double prefill_cpu = 1e30, decode_cpu = 1e30;      // process CPU time
  std::vector<std::int64_t> generated;
};

// One prefill forward over `prompt`, then `steps` greedy single-token cached steps.
Timing prefill_decode(const Decoder& m, const std::vector<std::int64_t>& prompt, int steps) {
  c10::InferenceMode guard;
  Timing r;
  SequenceInput in;
  in.tokens = prompt;
  auto t0 = Clock::now();
  double c0 = cpu_now();
  auto out = m.forward({&in, 1});
  r.prefill_s = since(t0);
  r.prefill_cpu = cpu_now() - c0;
  std::vector<KVSegment> segs;
  segs.reserve(static_cast<std::size_t>(steps) + 1);
  segs.push_back(std::move(out[0].kv));
  std::int64_t next = out[0].logits.argmax(-1).item<std::int64_t>();
  t0 = Clock::now();
  c0 = cpu_now();
  for (int s = 0; s < steps; ++s) {
    r.generated.push_back(next);
    SequenceInput d;
    for (const auto& seg : segs) d.past.push_back(&seg);
    d.tokens = {next};
    auto o = m.forward({&d, 1});
    next = o[0].logits.argmax(-1).item<std::int64_t>();
    segs.push_back(std::move(o[0].kv));
  }
  r.decode_s = since(t0);
  r.decode_cpu = cpu_now() - c0;
  return r;
}

const char* dt_name(hf::DType d) { return d == hf::DType::F32 ? "float32" : d == hf::DType::BF16 ? "bfloat16" : "float16"; }

void speed(const Options& o) {
  const Shape s = preset(o.preset);
  tiny::TempDir tmp;
  const std::string dir = tmp.file("model");
  auto t0 = Clock::now();
  write_model(dir, s, hf::DType::F32, o.seed);
  std::printf("model: %s (hidden %ld, inter %ld, %ld layers, %ld/%ld heads, vocab %ld%s), random float32 "
              "weights written in %.1f s\n",
              s.name.c_str(), s.hidden, s.inter, s.layers, s.heads, s.kv, s.vocab, s.tie ? ", tied" : "",
              since(t0));
  const auto prompt = random_tokens(o.prompt, s.vocab, 3);
  std::printf("prompt %d tokens, then %d greedy decode steps (1 token each, cached); best of %d\n\n",
              o.prompt, o.decode, o.repeat);
  std::printf("tok/s by wall clock, and by process CPU time (tokens per CPU-second, all threads)\n\n");
  std::printf("| storage | threads | weight MB | prefill tok/s | decode tok/s | prefill tok/CPU-s | decode tok/CPU-s |\n"
              "| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n");
  std::map<hf::DType, std::shared_ptr<Decoder>> models;
  for (hf::DType dt : {hf::DType::F32, hf::DType::BF16, hf::DType::F16})
    models[dt] = load_decoder(dir, LoadOptions{"cpu", dt});
  std::map<hf::DType, Timing> first;
  const std::vector<hf::DType> dts = {hf::DType::F32, hf::DType::BF16, hf::DType::F16};
  for (int th : o.threads) {
    at::set_num_threads(th);
    // Repeats interleave the storage dtypes, so a change in the machine's load hits all.
    std::map<hf::DType, Timing> best;
    for (int r = 0; r < o.repeat; ++r)
      for (hf::DType dt : dts) {
        Timing t = prefill_decode(*models[dt], prompt, o.decode);
        Timing& b = best[dt];
        b.prefill_s = std::min(b.prefill_s, t.prefill_s);
        b.decode_s = std::min(b.decode_s, t.decode_s);
        b.prefill_cpu = std::min(b.prefill_cpu, t.prefill_cpu);
        b.decode_cpu = std::min(b.decode_cpu, t.decode_cpu);
        b.generated = t.generated;
      }
    for (hf::DType dt : dts) {
      const Timing& b = best[dt];
      if (!first.count(dt)) first[dt] = b;
      std::printf("| %s | %d | %.0f | %.1f | %.2f | %.1f | %.2f |\n", dt_name(dt), th,
                  static_cast<double>(models[dt]->weight_bytes()) / 1048576.0, o.prompt / b.prefill_s,
                  o.decode / b.decode_s, o.prompt / b.prefill_cpu, o.decode / b.decode_cpu);
    }
    std::fflush(stdout);
  }
  for (hf::DType dt : {hf::DType::BF16, hf::DType::F16}) {
    const auto& a = first[dt].generated;
    const auto& b = first[hf::DType::F32].generated;
    std::size_t same = 0;
    while (same < a.size() && a[same] == b[same]) ++same;
    std::printf("greedy decode, %s storage: first %zu of %zu tokens equal float32 storage's\n",
                dt_name(dt), same, a.size());
  }

  // Accuracy.
  c10::InferenceMode guard;
  const at::Tensor ref = models[hf::DType::F32]->forward_tokens(prompt);
  const at::Tensor ref_top = ref.argmax(-1);
  std::printf("\naccuracy over %d positions' logits (max |logit| of float32 storage: %.3f)\n", o.prompt,
              ref.abs().max().item<double>());
  for (hf::DType dt : {hf::DType::BF16, hf::DType::F16}) {
    const at::Tensor l = models[dt]->forward_tokens(prompt);
    const at::Tensor d = (l.to(at::kDouble) - ref.to(at::kDouble)).abs();
    std::printf("(a) %s storage of the float32 weights vs float32 storage: max rel %.3e, mean |d| %.3e, "
                "argmax agreement %.4f\n",
                dt_name(dt), d.max().item<double>() / ref.abs().max().item<double>(),
                d.mean().item<double>(), l.argmax(-1).eq(ref_top).to(at::kDouble).mean().item<double>());
    // (b) the same rounded weights held as float32: identical logits when the upcast is exact.
    const std::string rdir = tmp.file(std::string("rounded_") + dt_name(dt));
    fs::create_directories(rdir);
    fs::copy_file(dir + "/config.json", rdir + "/config.json");
    {
      const auto ws = hf::WeightStore::open_dir(dir);
      std::vector<std::vector<float>> vals;
      std::vector<hf::TensorToWrite> out;
      vals.reserve(ws.names().size());
      for (const auto& n : ws.names()) {
        std::vector<float> v = hf::tensor_to_float(ws.at(n));
        if (ws.at(n).shape.size() == 2)
          for (float& x : v)
            x = dt == hf::DType::BF16 ? hf::bf16_to_float(hf::float_to_bf16(x)) : hf::f16_to_float(hf::float_to_f16(x));
        vals.push_back(std::move(v));
        out.push_back({n, hf::DType::F32, ws.at(n).shape, std::as_bytes(std::span<const float>(vals.back()))});
      }
      hf::write_safetensors(rdir + "/model.safetensors", out);
    }
    const at::Tensor lr = load_decoder(rdir, LoadOptions{"cpu", hf::DType::F32})->forward_tokens(prompt);
    std::printf("(b) %s storage vs float32 storage of the same %s-rounded weights: max |d| %.3e, "
                "bit-identical %s\n",
                dt_name(dt), dt_name(dt), (l - lr).abs().max().item<double>(), at::equal(l, lr) ? "yes" : "no");
    fs::remove_all(rdir);
  }
}

// Best-of process CPU time of f() (divide by the threads for a quiet machine's wall time).
double best_of(int repeat, const std::function<void()>& f) {
  double best = 1e30;
  f();  // warm-up
  for (int r = 0; r < repeat; ++r) {
    const double c0 = cpu_now();
    f();
    best = std::min(best, cpu_now() - c0);
  }
  return best;
}

void matmul(const Options& o) {
  const Shape s = preset(o.preset);
  c10::InferenceMode guard;
  at::manual_seed(0);
  std::printf("\nmatmul kernels, CPU ms (process CPU time, best of %d): x [M, K] @ w^T, w [N, K]\n", o.repeat + 2);
  std::printf("| threads | w [N, K] | M | f32 linear | native bf16 linear | upcast whole | upcast 4 MiB chunks "
              "| 1 MiB | 256 KiB | upcast f16 4 MiB |\n| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
  for (int th : o.threads) {
    at::set_num_threads(th);
    for (auto [N, K] : {std::pair{s.inter, s.hidden}, std::pair{s.vocab, s.hidden}}) {
      const at::Tensor w = at::randn({N, K}) * 0.02, wb = w.to(at::kBFloat16), wh = w.to(at::kHalf);
      for (std::int64_t M : {std::int64_t{1}, std::int64_t{o.prompt}}) {
        const at::Tensor x = at::randn({M, K}), xb = x.to(at::kBFloat16);
        const int rep = o.repeat + 2;
        auto ms = [&](const std::function<void()>& f) { return 1e3 * best_of(rep, f); };
        const double f32 = ms([&] { (void)at::linear(x, w); });
        const double nat = ms([&] { (void)at::linear(xb, wb); });
        const double whole = ms([&] { (void)layers::upcast_linear(x, wb, {}, N); });
        auto chunk = [&](std::int64_t bytes) {
          return ms([&] { (void)layers::upcast_linear(x, wb, {}, std::max<std::int64_t>(1, bytes / 4 / K)); });
        };
        const double c4 = chunk(4 << 20), c1 = chunk(1 << 20), c256 = chunk(256 << 10);
        const double h4 = ms([&] { (void)layers::upcast_linear(x, wh, {}, std::max<std::int64_t>(1, (4 << 20) / 4 / K)); });
        std::printf("| %d | [%ld, %ld] | %ld | %.3f | %.3f | %.3f | %.3f | %.3f | %.3f | %.3f |\n", th, N, K, M, f32, nat,
                    whole, c4, c1, c256, h4);
        std::fflush(stdout);
      }
    }
  }
}

void load(const Options& o) {
  const hf::DType dt = parse_dtype(o.dtype);
  if (o.threads.front() > 0) at::set_num_threads(o.threads.front());
  std::printf("before load: %s\n", rss_line().c_str());
  auto t0 = Clock::now();
  const auto m = load_decoder(o.dir, LoadOptions{"cpu", dt});
  const double load_s = since(t0);
  std::printf("loaded %s with %s storage in %.1f s: weights %.2f GiB; %s\n", o.dir.c_str(), dt_name(dt), load_s,
              static_cast<double>(m->weight_bytes()) / 1073741824.0, rss_line().c_str());
  std::fflush(stdout);
  const auto prompt = random_tokens(o.prompt, m->config().vocab_size, 3);
  const Timing t = prefill_decode(*m, prompt, o.decode);
  std::printf("threads %d: one forward over %d tokens %.2f s wall, %.2f s CPU (%.2f tok/s); %d greedy decode "
              "steps %.2f s wall, %.2f s CPU (%.3f tok/s); %s\n",
              at::get_num_threads(), o.prompt, t.prefill_s, t.prefill_cpu, o.prompt / t.prefill_s, o.decode,
              t.decode_s, t.decode_cpu, o.decode / t.decode_s, rss_line().c_str());
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  try {
    if (o.mode == "write") {
      const auto t0 = Clock::now();
      const std::size_t n = write_model(o.dir, preset(o.preset), parse_dtype(o.dtype), o.seed);
      std::printf("wrote %s (%s, %s): %.2f GiB of weights in %.1f s\n", o.dir.c_str(), o.preset.c_str(),
                  o.dtype.c_str(), static_cast<double>(n) / 1073741824.0, since(t0));
      return 0;
    }
#ifdef __GLIBC__
    if (o.mode == "speed" && o.tune_malloc) {  // as bench_kv_reuse: keep freed buffers
      mallopt(M_MMAP_THRESHOLD, 32 << 20);
      mallopt(M_TRIM_THRESHOLD, 1 << 30);
      mallopt(M_TOP_PAD, 64 << 20);
    }
#endif
    if (o.mode == "load") {
      load(o);
    } else {
      if (!o.only_matmul) speed(o);
      if (o.matmul) matmul(o);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
