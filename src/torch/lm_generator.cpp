// The language-model Generator backend. See include/qstar/torch/lm_generator.hpp for the
// contract; the pipeline is prefill (cache match + batched ragged forwards + insert),
// candidates, batched decode with CPU sampling, and cache inserts of finished steps.
#include "qstar/torch/lm_generator.hpp"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <mutex>
#include <numeric>
#include <optional>
#include <sstream>
#include <unordered_map>
#include <utility>

#include "qstar/core/json.hpp"
#include "qstar/core/rng.hpp"
#include "qstar/core/prompt.hpp"
#include "qstar/error.hpp"
#include "torch/kv_cache.hpp"
#include "torch/prefill.hpp"
#include "torch/sampler.hpp"
#include "torch/decoder.hpp"

namespace qstar::lm {

namespace {

using Clock = std::chrono::steady_clock;

double since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Padded new tokens per prefill forward at most (a single longer context goes alone).
constexpr std::int64_t kPrefillTokens = 8192;
// Contexts of one call share an uncached prefix of at least 16 tokens: it is computed once,
// first (each context's last token stays its own: it gives the next-token logits).
const PrefixSharing kSharing{16, true, PrefixSharing::Rule::EachPrefix};
// Prompts whose encodings are remembered (cleared when full).
constexpr std::size_t kPromptCache = 4096;


std::string basename_of(std::string dir) {
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  const std::string base = std::filesystem::path(dir).filename().string();
  return base.empty() ? dir : base;
}

// eos_token_id of a generation_config.json, when the file exists (an int or a list).
std::vector<std::int64_t> generation_config_eos(const std::string& dir) {
  const std::string path = dir + "/generation_config.json";
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) return {};
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(fmt::format("{}: cannot be read", path));
  std::stringstream ss;
  ss << in.rdbuf();
  const json::Value v = json::parse(ss.str(), path);
  std::vector<std::int64_t> out;
  if (!v.is_object()) throw ParseError(fmt::format("{}: expected a JSON object", path));
  const json::Value* e = v.find("eos_token_id");
  if (e == nullptr || e->is_null()) return out;
  if (e->is_integer()) {
    out.push_back(e->as_int());
  } else if (e->is_array()) {
    for (const auto& x : e->as_array()) {
      if (!x.is_integer())
        throw ParseError(fmt::format("{}: eos_token_id: expected integers", path));
      out.push_back(x.as_int());
    }
  } else {
    throw ParseError(fmt::format("{}: eos_token_id: expected an integer or a list", path));
  }
  return out;
}

}  // namespace

DelimiterCut find_delimiter(std::string_view text, std::string_view delimiter, std::size_t from) {
  if (delimiter.empty()) return {};
  const std::size_t start = from >= delimiter.size() - 1 ? from - (delimiter.size() - 1) : 0;
  if (start >= text.size()) return {};
  const std::size_t at = text.find(delimiter, start);
  if (at == std::string_view::npos) return {};
  return {true, at};
}

void LMGeneratorParams::validate() const {
  const auto fail = [](const std::string& msg) { throw InvalidArgument(msg); };
  if (device.empty()) fail("device: must not be empty (cpu, cuda or cuda:N)");
  bool int8 = false;
  parse_dtype(dtype, "dtype", &int8);
  if (step_delimiter.empty()) fail("step_delimiter: must not be empty");
  if (max_step_tokens < 1)
    fail(fmt::format("max_step_tokens: must be >= 1, got {}", max_step_tokens));
  if (!std::isfinite(temperature) || temperature < 0.0)
    fail(fmt::format("temperature: must be finite and >= 0, got {}", temperature));
  if (!(top_p > 0.0 && top_p <= 1.0)) fail(fmt::format("top_p: must be in (0, 1], got {}", top_p));
  if (top_k < 0) fail(fmt::format("top_k: must be >= 0, got {}", top_k));
  if (kv_cache_bytes < 0)
    fail(fmt::format("kv_cache_bytes: must be >= 0 (0 = unlimited), got {}", kv_cache_bytes));
  if (prompt_template.find("{prompt}") == std::string::npos)
    fail("prompt_template: must contain \"{prompt}\"");
}

// ---- Impl ---------------------------------------------------------------------------------

struct LMGenerator::Impl {
  LanguageModel lm;
  std::shared_ptr<Decoder> model;
  hf::Tokenizer tok;
  LMGeneratorParams params;
  std::string name;
  std::unique_ptr<PrefixCache> cache;
  std::vector<std::string> token_bytes;  // per model vocab id
  std::vector<char> is_eos;              // per model vocab id
  std::vector<std::int32_t> eos;

  mutable std::mutex mu;  // expand, stats, log
  LMGeneratorStats st;
  std::vector<ForwardRecord> log;

  mutable std::mutex prompt_mu;
  mutable std::unordered_map<std::string, std::vector<std::int32_t>> prompts;

  Impl(LanguageModel m, hf::Tokenizer t, LMGeneratorParams p,
       const std::vector<std::int64_t>& extra_eos)
      : lm(std::move(m)), model(lm.impl()), tok(std::move(t)), params(std::move(p)) {
    params.validate();
    if (!model->has_lm_head())
      throw InvalidArgument(fmt::format("model: {} ({}) has no language-model head", model->dir(),
                                        model->config().architecture));
    name = "lm:" + basename_of(model->dir());
    cache = std::make_unique<PrefixCache>(params.kv_cache_bytes);
    const auto V = static_cast<std::size_t>(model->config().vocab_size);
    token_bytes.resize(V);
    for (std::size_t i = 0; i < V; ++i)
      token_bytes[i] = tok.token_bytes(static_cast<std::int32_t>(i));
    is_eos.assign(V, 0);
    std::vector<std::int64_t> cand;
    if (auto e = tok.eos_id()) cand.push_back(*e);
    for (int e : model->config().eos_token_ids) cand.push_back(e);
    cand.insert(cand.end(), extra_eos.begin(), extra_eos.end());
    for (std::int64_t e : cand)
      if (e >= 0 && static_cast<std::size_t>(e) < V && !is_eos[static_cast<std::size_t>(e)]) {
        is_eos[static_cast<std::size_t>(e)] = 1;
        eos.push_back(static_cast<std::int32_t>(e));
      }
    std::sort(eos.begin(), eos.end());
  }

  std::vector<std::int32_t> prompt_tokens(std::string_view prompt) const {
    std::string text = apply_prompt_template(params.prompt_template, prompt);
    {
      std::lock_guard<std::mutex> lock(prompt_mu);
      if (auto it = prompts.find(text); it != prompts.end()) return it->second;
    }
    std::vector<std::int32_t> ids = tok.encode(text, params.add_special_tokens);
    std::lock_guard<std::mutex> lock(prompt_mu);
    if (prompts.size() >= kPromptCache) prompts.clear();
    prompts.emplace(std::move(text), ids);
    return ids;
  }

  std::vector<std::int32_t> context(const ExpandRequest& r) const {
    std::vector<std::int32_t> ids = prompt_tokens(r.prompt);
    for (std::size_t i = 0; i < r.prefix.size(); ++i) {
      const auto t = r.prefix.tokens(i);
      if (!t.empty()) {
        ids.insert(ids.end(), t.begin(), t.end());
      } else {
        std::string text(r.prefix.text(i));
        text += params.step_delimiter;
        const auto e = tok.encode(text, false);
        ids.insert(ids.end(), e.begin(), e.end());
      }
    }
    return ids;
  }

  std::vector<std::vector<Step>> expand(std::span<const ExpandRequest> batch);
};

namespace {

// A request's state during one expand().
struct ReqState {
  std::vector<std::int32_t> ctx;
  PrefixCache::Match full;                  // the whole context, pinned until the end of the call
  std::shared_ptr<const KVSegment> ctx_kv;  // the whole context's KV as one segment
  at::Tensor row;       // the next-token logits after the context (float32, host)
  std::size_t rep = 0;  // the request whose identical context was computed
  int cap = 0;
  int ncand = 0;
  bool greedy = false;
};

// A candidate's state during one expand().
struct Cand {
  std::size_t req = 0;
  Rng rng;
  int cap = 0;
  std::vector<std::int32_t> tokens;
  std::string acc;  // decoded bytes
  double logprob = 0.0;
  std::vector<float> lps, ents;  // per token (params.token_stats)
  std::int64_t fed = 0;  // generated tokens whose KV is in the buffer
  bool done = false;
  Step step;
  KVSegment own;                           // views of the buffer: the fed tokens' KV
  std::vector<at::Tensor> base_k, base_v;  // per layer: the candidate's whole buffer slice
};

}  // namespace

std::vector<std::vector<Step>> LMGenerator::Impl::expand(std::span<const ExpandRequest> batch) {
  std::lock_guard<std::mutex> lock(mu);
  c10::InferenceMode guard;
  std::vector<std::vector<Step>> result(batch.size());
  if (batch.empty()) return result;
  ++st.expand_calls;
  st.requests += static_cast<std::int64_t>(batch.size());

  const Decoder& M = *model;
  const std::int64_t V = M.config().vocab_size;
  const std::int64_t n_layers = M.num_layers(), KVH = M.num_kv_heads(), hd = M.head_dim();
  const bool use_cache = params.use_cache;
  const at::Device dev = M.device();
  const auto cpu_long = at::TensorOptions().dtype(at::kLong);

  // ---- 1. contexts ------------------------------------------------------------------------
  const auto t_prefill = Clock::now();
  std::vector<ReqState> rs(batch.size());
  std::int64_t context_total = 0;
  for (std::size_t r = 0; r < batch.size(); ++r) {
    const ExpandRequest& q = batch[r];
    ReqState& s = rs[r];
    if (q.num_candidates < 1)
      throw InvalidArgument(fmt::format("expand: request {}: num_candidates must be >= 1, got {}",
                                        r, q.num_candidates));
    s.ctx = context(q);
    if (s.ctx.empty())
      throw InvalidArgument(fmt::format(
          "expand: request {}: the context is empty (empty prompt, no prefix and no BOS token)",
          r));
    for (std::int32_t id : s.ctx)
      if (id < 0 || id >= V)
        throw InvalidArgument(fmt::format(
            "expand: request {}: context token id {} is outside the model's vocabulary [0, {})", r,
            id, V));
    s.cap = params.max_step_tokens;
    if (q.max_new_tokens > 0) s.cap = std::min(s.cap, q.max_new_tokens);
    s.greedy = q.greedy || params.temperature <= 0.0;
    s.ncand = s.greedy ? 1 : q.num_candidates;
    s.rep = r;
    context_total += static_cast<std::int64_t>(s.ctx.size());
  }
  std::int64_t computed = 0;  // prefill tokens run through the model in this call

  // Requests with identical contexts share one prefill (with the cache on): the
  // representative is the first of them. Contexts sorted lexicographically put the longest
  // shared prefixes next to each other.
  std::vector<std::size_t> reps;  // distinct contexts, sorted
  {
    std::vector<std::size_t> order(batch.size());
    std::iota(order.begin(), order.end(), 0);
    if (use_cache) {
      std::stable_sort(order.begin(), order.end(),
                       [&](std::size_t a, std::size_t b) { return rs[a].ctx < rs[b].ctx; });
      for (std::size_t i = 0; i < order.size(); ++i) {
        if (i > 0 && rs[order[i]].ctx == rs[reps.back()].ctx) {
          rs[order[i]].rep = reps.back();
        } else {
          reps.push_back(order[i]);
        }
      }
    } else {
      reps = order;
    }
  }

  // Runs batched ragged prefill forwards over `jobs` (tokens[hit.matched, upto) of each on
  // top of its cached past), grouped by length so that padding at most about doubles the
  // work; returns each job's new KV and, when asked, its last logits row (on the host).
  struct Job {
    const std::vector<std::int32_t>* tokens = nullptr;
    std::int64_t upto = 0;
    PrefixCache::Match hit;
    KVSegment kv;
    at::Tensor row;
  };
  const auto run_prefill = [&](std::vector<Job>& jobs, bool want_logits) {
    std::vector<std::size_t> order(jobs.size());
    std::iota(order.begin(), order.end(), 0);
    const auto len = [&](std::size_t j) { return jobs[j].upto - jobs[j].hit.matched; };
    std::stable_sort(order.begin(), order.end(),
                     [&](std::size_t a, std::size_t b) { return len(a) > len(b); });
    std::vector<std::vector<std::size_t>> groups;
    std::int64_t max_t = 0, real = 0;  // the open group's longest run and real tokens
    for (std::size_t j : order) {
      const std::int64_t t = len(j);
      bool open_new = groups.empty();
      if (!open_new) {
        const auto n = static_cast<std::int64_t>(groups.back().size()) + 1;
        const std::int64_t padded = n * max_t, real2 = real + t;
        open_new = padded > kPrefillTokens || (padded > 2 * real2 && padded - real2 > 64);
      }
      if (open_new) {
        groups.emplace_back();
        max_t = t;
        real = 0;
      }
      groups.back().push_back(j);
      real += t;
    }
    for (const auto& g : groups) {
      std::vector<SequenceInput> in(g.size());
      for (std::size_t i = 0; i < g.size(); ++i) {
        const Job& jb = jobs[g[i]];
        in[i].past = jb.hit.past();
        in[i].tokens.assign(jb.tokens->begin() + jb.hit.matched, jb.tokens->begin() + jb.upto);
        computed += jb.upto - jb.hit.matched;
      }
      const auto t0 = Clock::now();
      ForwardOptions fo;
      fo.logits = want_logits ? LogitsMode::Last : LogitsMode::None;
      fo.copy_kv = true;
      std::vector<SequenceOutput> out = M.forward(in, fo);
      at::Tensor logits;
      if (want_logits) {
        std::vector<at::Tensor> rows;
        rows.reserve(out.size());
        for (auto& o : out) rows.push_back(o.logits);
        logits = at::cat(rows, 0).to(at::kCPU).contiguous();
      }
      const double dt = since(t0);
      ++st.forward_calls;
      st.forward_seconds += dt;
      if (params.record_forwards) {
        ForwardRecord rec;
        rec.decode = false;
        rec.seconds = dt;
        for (std::size_t i = 0; i < g.size(); ++i) {
          rec.past_lens.push_back(jobs[g[i]].hit.matched);
          rec.new_lens.push_back(static_cast<std::int64_t>(in[i].tokens.size()));
        }
        log.push_back(std::move(rec));
      }
      for (std::size_t i = 0; i < g.size(); ++i) {
        jobs[g[i]].kv = std::move(out[i].kv);
        if (want_logits) jobs[g[i]].row = logits.select(0, static_cast<std::int64_t>(i));
      }
    }
  };

  // Shared-prefix pre-pass (torch/prefill.hpp): a span of at least 16 uncached tokens that several
  // distinct contexts start with (e.g. a few-shot preamble common to every problem) is
  // computed once and cached first; rounds go from the shortest shared prefixes to longer
  // ones. The pins are held until the main prefill has matched.
  std::vector<PrefixCache::Match> pre_pins;
  if (use_cache && reps.size() > 1) {
    for (int round = 0; round < 8; ++round) {
      std::vector<const std::vector<std::int32_t>*> ctxs;
      for (std::size_t r : reps) ctxs.push_back(&rs[r].ctx);
      auto shared = plan_shared_prefixes(ctxs, {}, *cache, kSharing);
      if (shared.empty()) break;
      std::vector<Job> jobs;
      for (auto& pfx : shared) {
        Job jb;
        jb.tokens = &pfx;
        jb.upto = static_cast<std::int64_t>(pfx.size());
        jb.hit = cache->match(pfx);
        jobs.push_back(std::move(jb));
      }
      run_prefill(jobs, false);
      for (Job& jb : jobs) {
        pre_pins.push_back(cache->insert(*jb.tokens, jb.hit.matched, std::move(jb.kv)));
        jb.hit = PrefixCache::Match{};
      }
    }
  }

  // ---- main prefill: every distinct context minus its cached part, last token included ----
  {
    std::vector<Job> jobs(reps.size());
    for (std::size_t i = 0; i < reps.size(); ++i) {
      ReqState& s = rs[reps[i]];
      jobs[i].tokens = &s.ctx;
      jobs[i].upto = static_cast<std::int64_t>(s.ctx.size());
      if (use_cache)
        jobs[i].hit = cache->match(std::span<const std::int32_t>(s.ctx.data(), s.ctx.size() - 1));
    }
    pre_pins.clear();
    run_prefill(jobs, true);
    for (std::size_t i = 0; i < reps.size(); ++i) {
      ReqState& s = rs[reps[i]];
      Job& jb = jobs[i];
      s.row = jb.row;
      if (use_cache) {
        s.full = cache->insert(s.ctx, jb.hit.matched, std::move(jb.kv));
        jb.hit = PrefixCache::Match{};
        if (s.full.segments.size() == 1) {
          s.ctx_kv = s.full.segments.front();
        } else {
          std::vector<const KVSegment*> parts;
          for (const auto& p : s.full.segments) parts.push_back(p.get());
          s.ctx_kv = std::make_shared<const KVSegment>(KVSegment::concat(parts));
        }
      } else {
        s.ctx_kv = std::make_shared<const KVSegment>(std::move(jb.kv));
      }
    }
    for (ReqState& s : rs)
      if (s.rep != static_cast<std::size_t>(&s - rs.data())) {
        s.row = rs[s.rep].row;
        s.ctx_kv = rs[s.rep].ctx_kv;
      }
  }
  st.prefill_tokens_computed += computed;
  st.cached_tokens_reused += context_total - computed;
  st.prefill_seconds += since(t_prefill);

  // ---- 2. candidates ----------------------------------------------------------------------
  const auto t_decode = Clock::now();
  std::vector<Cand> cands;
  std::int64_t buf_len = 0;
  for (std::size_t r = 0; r < batch.size(); ++r)
    for (int j = 0; j < rs[r].ncand; ++j) {
      Cand c;
      c.req = r;
      c.rng.reseed(derive_seed(batch[r].seed, static_cast<std::uint64_t>(j)));
      c.cap = rs[r].cap;
      buf_len = std::max<std::int64_t>(buf_len, c.cap - 1);
      cands.push_back(std::move(c));
    }
  const auto C = static_cast<std::int64_t>(cands.size());
  st.sequences += C;

  // Own-KV buffers: per layer [C, KVH, buf_len, hd]; candidate c's fed tokens' KV is
  // buf[c].narrow(1, 0, fed).
  std::vector<at::Tensor> buf_k, buf_v, flat_k, flat_v;
  if (buf_len > 0) {
    const auto opts = at::TensorOptions().dtype(M.dtype()).device(dev);
    for (std::int64_t l = 0; l < n_layers; ++l) {
      buf_k.push_back(at::empty({C, KVH, buf_len, hd}, opts));
      buf_v.push_back(at::empty({C, KVH, buf_len, hd}, opts));
      flat_k.push_back(buf_k.back().view({C * KVH * buf_len, hd}));
      flat_v.push_back(buf_v.back().view({C * KVH * buf_len, hd}));
    }
  }

  const std::string& delim = params.step_delimiter;
  const std::string& marker = params.answer_marker;
  const auto has_marker = [&](std::string_view text) {
    return !marker.empty() && text.find(marker) != std::string_view::npos;
  };
  const auto finish = [&](Cand& c, FinishReason why, std::string text) {
    c.done = true;
    c.step.text = std::move(text);
    c.step.tokens = c.tokens;
    c.step.num_tokens = static_cast<std::int32_t>(c.tokens.size());
    c.step.logprob = c.logprob;
    c.step.token_logprobs = std::move(c.lps);
    c.step.token_entropies = std::move(c.ents);
    c.step.finish = why;
    if (use_cache && c.fed > 0) {
      // Context + the generated tokens whose KV exists; the context is still pinned.
      const ReqState& s = rs[c.req];
      std::vector<std::int32_t> toks = s.ctx;
      toks.insert(toks.end(), c.tokens.begin(), c.tokens.begin() + c.fed);
      KVSegment kv;
      for (std::int64_t l = 0; l < n_layers; ++l) {
        kv.k.push_back(c.own.k[static_cast<std::size_t>(l)].clone(at::MemoryFormat::Contiguous));
        kv.v.push_back(c.own.v[static_cast<std::size_t>(l)].clone(at::MemoryFormat::Contiguous));
      }
      cache->insert(toks, static_cast<std::int64_t>(s.ctx.size()), std::move(kv));
    }
  };
  // Appends a sampled token; returns true when the candidate goes on.
  const auto push = [&](Cand& c, const Sampled& smp) {
    ++st.generated_tokens;
    if (is_eos[static_cast<std::size_t>(smp.id)]) {
      finish(c, has_marker(c.acc) ? FinishReason::FinalAnswer : FinishReason::Eos, c.acc);
      return false;
    }
    c.tokens.push_back(smp.id);
    c.logprob += smp.logprob;
    if (params.token_stats) {
      c.lps.push_back(static_cast<float>(smp.logprob));
      c.ents.push_back(static_cast<float>(smp.entropy));
    }
    const std::size_t old = c.acc.size();
    c.acc += token_bytes[static_cast<std::size_t>(smp.id)];
    if (const DelimiterCut cut = find_delimiter(c.acc, delim, old); cut.found) {
      std::string text = c.acc.substr(0, cut.pos);
      const bool answer = has_marker(text);
      finish(c, answer ? FinishReason::FinalAnswer : FinishReason::StepEnd, std::move(text));
      return false;
    }
    if (static_cast<int>(c.tokens.size()) >= c.cap) {
      finish(c, FinishReason::Length, c.acc);
      return false;
    }
    return true;
  };
  // Samples rows[b] for candidates active[b] (in parallel; each has its own rng).
  const auto sample_all = [&](const std::vector<std::int64_t>& active,
                              const std::vector<const float*>& rows) {
    std::vector<Sampled> got(active.size());
    const auto n = static_cast<std::int64_t>(active.size());
    const std::int64_t grain = std::max<std::int64_t>(1, 65536 / std::max<std::int64_t>(V, 1));
    at::parallel_for(0, n, grain, [&](std::int64_t b0, std::int64_t b1) {
      Scratch scratch;
      for (std::int64_t b = b0; b < b1; ++b) {
        Cand& c = cands[static_cast<std::size_t>(active[static_cast<std::size_t>(b)])];
        got[static_cast<std::size_t>(b)] =
            sample_row(rows[static_cast<std::size_t>(b)], V, rs[c.req].greedy, params.temperature,
                       params.top_k, params.top_p, c.rng, scratch, params.token_stats);
      }
    });
    return got;
  };

  // First tokens: from the prefill logits.
  std::vector<std::int64_t> active;
  {
    const auto t0 = Clock::now();
    std::vector<std::int64_t> all(cands.size());
    std::iota(all.begin(), all.end(), 0);
    std::vector<const float*> rows;
    for (const Cand& c : cands) rows.push_back(rs[c.req].row.data_ptr<float>());
    const auto got = sample_all(all, rows);
    for (std::size_t i = 0; i < cands.size(); ++i)
      if (push(cands[i], got[i])) active.push_back(static_cast<std::int64_t>(i));
    st.sample_seconds += since(t0);
  }

  // ---- 3. batched decode ------------------------------------------------------------------
  std::vector<std::int64_t> idx_host;
  while (!active.empty()) {
    const auto B = static_cast<std::int64_t>(active.size());
    std::vector<SequenceInput> in(static_cast<std::size_t>(B));
    for (std::int64_t b = 0; b < B; ++b) {
      Cand& c = cands[static_cast<std::size_t>(active[static_cast<std::size_t>(b)])];
      auto& x = in[static_cast<std::size_t>(b)];
      x.past = {rs[c.req].ctx_kv.get(), &c.own};
      x.tokens = {c.tokens.back()};
    }
    const auto t0 = Clock::now();
    ForwardOptions fo;
    fo.logits = LogitsMode::Last;
    fo.copy_kv = false;
    std::vector<SequenceOutput> out = M.forward(in, fo);
    std::vector<at::Tensor> rows;
    rows.reserve(out.size());
    for (auto& o : out) rows.push_back(o.logits);
    const at::Tensor logits = at::cat(rows, 0).to(at::kCPU).contiguous();
    const double dt = since(t0);
    ++st.forward_calls;
    st.forward_seconds += dt;
    st.decode_tokens += B;
    if (params.record_forwards) {
      ForwardRecord rec;
      rec.decode = true;
      rec.seconds = dt;
      for (std::int64_t b = 0; b < B; ++b) {
        const Cand& c = cands[static_cast<std::size_t>(active[static_cast<std::size_t>(b)])];
        rec.past_lens.push_back(rs[c.req].ctx_kv->length() + c.fed);
        rec.new_lens.push_back(1);
      }
      log.push_back(std::move(rec));
    }

    // Store the new tokens' KV in the buffers (one index_copy_ per layer and side).
    idx_host.resize(static_cast<std::size_t>(B * KVH));
    for (std::int64_t b = 0; b < B; ++b) {
      const Cand& c = cands[static_cast<std::size_t>(active[static_cast<std::size_t>(b)])];
      const std::int64_t ci = active[static_cast<std::size_t>(b)];
      for (std::int64_t h = 0; h < KVH; ++h)
        idx_host[static_cast<std::size_t>(b * KVH + h)] = (ci * KVH + h) * buf_len + c.fed;
    }
    const at::Tensor idx = at::tensor(idx_host, cpu_long).to(dev);
    for (std::int64_t l = 0; l < n_layers; ++l) {
      const auto ul = static_cast<std::size_t>(l);
      for (int side = 0; side < 2; ++side) {
        std::vector<at::Tensor> parts;
        parts.reserve(out.size());
        for (const auto& o : out) parts.push_back(side == 0 ? o.kv.k[ul] : o.kv.v[ul]);
        const at::Tensor src = at::cat(parts, 0).view({B * KVH, hd});
        (side == 0 ? flat_k : flat_v)[ul].index_copy_(0, idx, src);
      }
    }
    for (std::int64_t b = 0; b < B; ++b) {
      const std::int64_t ci = active[static_cast<std::size_t>(b)];
      Cand& c = cands[static_cast<std::size_t>(ci)];
      ++c.fed;
      if (c.base_k.empty()) {  // the candidate's [KVH, buf_len, hd] slices, made once
        for (std::int64_t l = 0; l < n_layers; ++l) {
          c.base_k.push_back(buf_k[static_cast<std::size_t>(l)].select(0, ci));
          c.base_v.push_back(buf_v[static_cast<std::size_t>(l)].select(0, ci));
        }
        c.own.k.resize(static_cast<std::size_t>(n_layers));
        c.own.v.resize(static_cast<std::size_t>(n_layers));
      }
      for (std::size_t l = 0; l < static_cast<std::size_t>(n_layers); ++l) {
        c.own.k[l] = c.base_k[l].narrow(1, 0, c.fed);
        c.own.v[l] = c.base_v[l].narrow(1, 0, c.fed);
      }
    }
    out.clear();

    const auto t1 = Clock::now();
    std::vector<const float*> lrows(static_cast<std::size_t>(B));
    const float* base = logits.data_ptr<float>();
    for (std::int64_t b = 0; b < B; ++b) lrows[static_cast<std::size_t>(b)] = base + b * V;
    const auto got = sample_all(active, lrows);
    std::vector<std::int64_t> next;
    next.reserve(active.size());
    for (std::int64_t b = 0; b < B; ++b) {
      const std::int64_t ci = active[static_cast<std::size_t>(b)];
      if (push(cands[static_cast<std::size_t>(ci)], got[static_cast<std::size_t>(b)]))
        next.push_back(ci);
    }
    active = std::move(next);
    st.sample_seconds += since(t1);
  }

  // ---- results ----------------------------------------------------------------------------
  for (Cand& c : cands) {
    const ExpandRequest& q = batch[c.req];
    auto& out = result[c.req];
    if (rs[c.req].greedy) {
      for (int j = 0; j < q.num_candidates; ++j) out.push_back(c.step);
    } else {
      out.push_back(std::move(c.step));
    }
  }
  for (const auto& v : result) st.steps += static_cast<std::int64_t>(v.size());
  cands.clear();
  rs.clear();  // releases the context pins (the cache evicts down to its cap)
  st.decode_seconds += since(t_decode);
  return result;
}

// ---- LMGenerator --------------------------------------------------------------------------

LMGenerator LMGenerator::load(const std::string& model_dir, LMGeneratorParams params) {
  params.validate();
  LanguageModel lm = LanguageModel::load(model_dir, params.device, params.dtype);
  hf::Tokenizer tok = hf::Tokenizer::from_dir(model_dir);
  const auto extra = generation_config_eos(model_dir);
  LMGenerator g(std::move(lm), std::move(tok), std::move(params));
  if (!extra.empty()) {
    auto& impl = *g.impl_;
    for (std::int64_t e : extra)
      if (e >= 0 && static_cast<std::size_t>(e) < impl.is_eos.size() &&
          !impl.is_eos[static_cast<std::size_t>(e)]) {
        impl.is_eos[static_cast<std::size_t>(e)] = 1;
        impl.eos.push_back(static_cast<std::int32_t>(e));
      }
    std::sort(impl.eos.begin(), impl.eos.end());
  }
  return g;
}

LMGenerator::LMGenerator(LanguageModel model, hf::Tokenizer tokenizer, LMGeneratorParams params)
    : impl_(std::make_shared<Impl>(std::move(model), std::move(tokenizer), std::move(params),
                                   std::vector<std::int64_t>{})) {}

LMGenerator::~LMGenerator() = default;

std::vector<std::vector<Step>> LMGenerator::expand(std::span<const ExpandRequest> batch) {
  try {
    return impl_->expand(batch);
  } catch (const c10::Error& e) {
    throw Error(fmt::format("{}: expand failed: {}", impl_->name, e.what_without_backtrace()));
  }
}

std::string LMGenerator::name() const { return impl_->name; }
std::size_t LMGenerator::max_batch_size() const { return impl_->params.max_batch; }
const LMGeneratorParams& LMGenerator::params() const { return impl_->params; }

LMGeneratorStats LMGenerator::stats() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  LMGeneratorStats s = impl_->st;
  const PrefixCache& c = *impl_->cache;
  const auto cs = c.stats();
  s.cache_bytes = c.bytes();
  s.cache_max_bytes = c.max_bytes();
  s.cache_peak_bytes = cs.peak_bytes;
  s.cache_tokens = c.tokens();
  s.cache_nodes = c.nodes();
  s.cache_evictions = cs.evictions;
  s.cache_evicted_tokens = cs.evicted_tokens;
  return s;
}

void LMGenerator::reset_stats() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->st = {};
  impl_->log.clear();
}

void LMGenerator::clear_cache() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  c10::InferenceMode guard;
  impl_->cache->clear();
}

std::vector<ForwardRecord> LMGenerator::forward_log() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->log;
}

const hf::Tokenizer& LMGenerator::tokenizer() const { return impl_->tok; }
const LanguageModel& LMGenerator::model() const { return impl_->lm; }
std::vector<std::int32_t> LMGenerator::eos_ids() const { return impl_->eos; }

std::vector<std::int32_t> LMGenerator::context_tokens(const ExpandRequest& request) const {
  return impl_->context(request);
}

}  // namespace qstar::lm
