// PRM verifiers: token-logit (Math-Shepherd), token-classification (TRL PRM head) and
// TorchScript, with incremental scoring over the shared-prefix KV cache. See
// include/qstar/torch/prm.hpp for the contract and the TorchScript calling convention.
#include "qstar/torch/prm.hpp"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <fmt/format.h>
#include <torch/script.h>

#include <algorithm>
#include <cmath>
#include <deque>
#include <filesystem>
#include <map>
#include <mutex>
#include <numeric>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "qstar/error.hpp"
#include "qstar/hf/chat_template.hpp"
#include "qstar/hf/config.hpp"
#include "qstar/hf/tokenizer.hpp"
#include "torch/kv_cache.hpp"
#include "torch/prefill.hpp"
#include "torch/decoder.hpp"

namespace qstar::lm {

namespace fs = std::filesystem;

namespace {

enum class Kind { TokenLogit, TokenClass, TorchScript };

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::TokenLogit: return "token-logit";
    case Kind::TokenClass: return "token-class";
    case Kind::TorchScript: return "torchscript";
  }
  return "token-logit";
}

// Shared prefixes are prefilled recursively; past this depth the rest is computed as is.
constexpr int kMaxShareDepth = 8;

double sigmoid(double x) {
  if (x >= 0) return 1.0 / (1.0 + std::exp(-x));
  const double e = std::exp(x);
  return e / (1.0 + e);
}

std::string escaped(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '\n') out += "\\n";
    else if (c == '\t') out += "\\t";
    else if (c == '"') out += "\\\"";
    else out += c;
  }
  return out;
}

// The KV of the first `len` tokens of a match (views; sliced parts kept in `storage`).
std::vector<const KVSegment*> past_prefix(const PrefixCache::Match& m, std::int64_t len,
                                          std::deque<KVSegment>& storage) {
  std::vector<const KVSegment*> out;
  std::int64_t acc = 0;
  for (const auto& seg : m.segments) {
    if (acc >= len) break;
    const std::int64_t n = seg->length();
    if (n == 0) continue;
    if (acc + n <= len) {
      out.push_back(seg.get());
      acc += n;
    } else {
      storage.push_back(seg->slice(0, len - acc));
      out.push_back(&storage.back());
      acc = len;
    }
  }
  return out;
}

// One scored (or prefilled) sequence.
struct Job {
  std::vector<std::int32_t> tokens;
  std::vector<std::int64_t> outs;  // absolute positions whose scores are wanted, ascending
};

// One request as the internal scorer sees it.
struct Req {
  std::string_view prompt;
  const Problem* problem = nullptr;  // its text is the user message of a chat layout
  const TrajectoryView* trajectory = nullptr;
  std::int32_t first_new = 0;
};

}  // namespace

// ---- params ------------------------------------------------------------------------------

void PrmParams::validate() const {
  if (kind != "auto" && kind != "token-logit" && kind != "token-class" && kind != "torchscript")
    throw InvalidArgument(fmt::format(
        "PrmParams.kind: '{}' is not a PRM kind (token-logit, token-class, torchscript, auto)",
        kind));
  if (device.empty()) throw InvalidArgument("PrmParams.device: empty (expected cpu, cuda or cuda:N)");
  (void)parse_dtype(dtype, "PrmParams.dtype");
  if (good_token.empty()) throw InvalidArgument("PrmParams.good_token: empty");
  if (bad_token.empty()) throw InvalidArgument("PrmParams.bad_token: empty");
  if (good_token == bad_token)
    throw InvalidArgument(
        fmt::format("PrmParams.bad_token: equal to good_token \"{}\"", escaped(good_token)));
  if (prompt_template.find("{prompt}") == std::string::npos)
    throw InvalidArgument(fmt::format("PrmParams.prompt_template: \"{}\" does not contain {{prompt}}",
                                      escaped(prompt_template)));
  if (!chat_system.empty() && chat_template.empty())
    throw InvalidArgument("PrmParams.chat_system: set, but chat_template is empty (no chat layout)");
  if (kv_cache_bytes < 0)
    throw InvalidArgument(
        fmt::format("PrmParams.kv_cache_bytes: must be >= 0 (0 disables the cache), got {}",
                    kv_cache_bytes));
  if (outcome_aggregation == Aggregation::Custom && !custom_aggregation)
    throw InvalidArgument(
        "PrmParams.outcome_aggregation: 'custom' needs PrmParams.custom_aggregation");
}

// ---- impl --------------------------------------------------------------------------------

struct PrmVerifier::Impl {
  PrmParams params;
  Kind kind = Kind::TokenLogit;
  std::string path;         // the model directory or TorchScript file
  std::string script_file;  // torchscript: the module file
  std::string name;
  std::optional<hf::Tokenizer> tok;
  std::optional<hf::ChatTemplate> chat;  // the PRM's own chat layout (PrmParams::chat_template)
  std::int32_t tag_id = -1, good_id = -1, bad_id = -1;
  std::vector<std::int32_t> sep_tokens;
  std::shared_ptr<Decoder> model;
  std::unique_ptr<PrefixCache> cache;
  int num_labels = 0;
  std::optional<torch::jit::Module> module;
  at::Device device{at::kCPU};

  mutable std::mutex mu;
  PrmStats st;
  std::int64_t evicted_base = 0;

  // ---- the sequence layout ----

  std::vector<std::int32_t> encode_prompt(std::string_view prompt) const {
    std::string text;
    const std::string& t = params.prompt_template;
    std::size_t pos = 0;
    while (true) {
      const std::size_t at = t.find("{prompt}", pos);
      if (at == std::string::npos) {
        text.append(t, pos, std::string::npos);
        break;
      }
      text.append(t, pos, at - pos);
      text.append(prompt);
      pos = at + 8;
    }
    return tok->encode(text, /*add_special_tokens=*/!chat);
  }

  // The prompt text of a request: the request's prompt, or the chat layout of its problem.
  std::string prompt_of(const Req& r) const {
    if (!chat) return std::string(r.prompt);
    if (r.problem == nullptr)
      throw InvalidArgument(fmt::format("{}: a chat layout needs the request's problem (it is null)", name));
    std::vector<hf::ChatMessage> messages;
    if (!params.chat_system.empty()) messages.push_back({"system", params.chat_system});
    messages.push_back({"user", r.problem->text});
    return chat->render(messages, /*add_generation_prompt=*/true);
  }

  // The sequence of `prompt` + `tv`, the prompt's tokens given (memoised by the caller).
  PrmSequence build(const std::vector<std::int32_t>& prompt_tokens,
                    const TrajectoryView& tv) const {
    PrmSequence s;
    s.tokens = prompt_tokens;
    s.step_ends.reserve(tv.size());
    for (std::size_t i = 0; i < tv.size(); ++i) {
      if (i > 0) s.tokens.insert(s.tokens.end(), sep_tokens.begin(), sep_tokens.end());
      const auto step = tok->encode(tv.text(i));
      s.tokens.insert(s.tokens.end(), step.begin(), step.end());
      s.tokens.push_back(tag_id);
      s.step_ends.push_back(static_cast<std::int64_t>(s.tokens.size()) - 1);
    }
    return s;
  }

  std::vector<PrmSequence> build_all(std::span<const Req> reqs) const {
    std::unordered_map<std::string, std::vector<std::int32_t>> prompts;
    std::vector<PrmSequence> out;
    out.reserve(reqs.size());
    for (const Req& r : reqs) {
      // Memoised by what the prompt is made of (the problem's text for a chat layout), so a
      // call renders and encodes each distinct prompt once.
      std::string key = chat && r.problem ? r.problem->text : std::string(r.prompt);
      auto it = prompts.find(key);
      if (it == prompts.end()) it = prompts.emplace(std::move(key), encode_prompt(prompt_of(r))).first;
      out.push_back(build(it->second, *r.trajectory));
    }
    return out;
  }

  // ---- heads ----

  // Scores of hidden rows [N, D] (model device, compute dtype).
  std::vector<double> head(const at::Tensor& rows) const {
    std::vector<double> out(static_cast<std::size_t>(rows.size(0)));
    if (out.empty()) return out;
    if (kind == Kind::TokenLogit) {
      const at::Tensor idx =
          at::tensor(std::vector<std::int64_t>{good_id, bad_id}, at::kLong).to(rows.device());
      const at::Tensor two =
          model->lm_logits(rows).index_select(1, idx).to(at::kCPU).to(at::kDouble).contiguous();
      const double* p = two.data_ptr<double>();
      for (std::size_t i = 0; i < out.size(); ++i) out[i] = sigmoid(p[2 * i] - p[2 * i + 1]);
    } else {
      const at::Tensor s = model->score(rows).to(at::kCPU).to(at::kDouble).contiguous();
      const double* p = s.data_ptr<double>();
      for (std::size_t i = 0; i < out.size(); ++i)
        out[i] = num_labels == 1 ? sigmoid(p[i]) : sigmoid(p[2 * i + 1] - p[2 * i]);
    }
    return out;
  }

  // ---- the cached, batched forward ----

  // Runs `jobs` (their uncached tokens, plus one-token probes for wanted positions that are
  // already cached) and returns each job's scores at its `outs`. With `outputs` false the
  // jobs are prefills: only their KV is computed and stored, and the stored paths stay
  // pinned in `pins` until the caller drops them.
  std::vector<std::vector<double>> run(const std::vector<Job>& jobs, bool outputs,
                                       std::vector<PrefixCache::Match>& pins, int depth) {
    const std::size_t J = jobs.size();
    std::vector<PrefixCache::Match> hits(J);
    if (cache) {
      for (std::size_t j = 0; j < J; ++j) hits[j] = cache->match(jobs[j].tokens);
      // Uncached prefixes that several jobs share are computed once, first.
      if (depth < kMaxShareDepth && J > 1 && params.share_min_tokens >= 0) {
        std::vector<const std::vector<std::int32_t>*> seqs(J);
        std::vector<std::int64_t> cached(J);
        for (std::size_t j = 0; j < J; ++j) {
          seqs[j] = &jobs[j].tokens;
          cached[j] = hits[j].matched;
        }
        const PrefixSharing sharing{params.share_min_tokens, false,
                                    PrefixSharing::Rule::TotalSaving};
        auto prefixes = plan_shared_prefixes(seqs, cached, *cache, sharing);
        if (!prefixes.empty()) {
          std::vector<Job> pre;
          pre.reserve(prefixes.size());
          for (auto& pfx : prefixes) pre.push_back(Job{std::move(pfx), {}});
          for (auto& h : hits) h = PrefixCache::Match{};
          run(pre, false, pins, depth + 1);
          for (std::size_t j = 0; j < J; ++j) hits[j] = cache->match(jobs[j].tokens);
        }
      }
    }

    // Forward inputs: each job's uncached run, and a probe per cached wanted position.
    std::deque<KVSegment> sliced;
    std::vector<SequenceInput> inputs;
    std::vector<std::size_t> input_job;       // job of each input
    std::vector<bool> input_run;              // true: the job's uncached run (KV stored)
    std::vector<std::int64_t> input_from;     // its first token's position
    std::vector<std::vector<std::int64_t>> input_rows;  // rows wanted from each input
    std::vector<std::vector<std::pair<std::size_t, std::size_t>>> where(J);  // (input, k)
    for (std::size_t j = 0; j < J; ++j) {
      const Job& job = jobs[j];
      const auto size = static_cast<std::int64_t>(job.tokens.size());
      const std::int64_t m = cache ? hits[j].matched : 0;
      where[j].resize(job.outs.size());
      for (std::size_t o = 0; o < job.outs.size(); ++o) {
        const std::int64_t p = job.outs[o];
        if (p >= m) continue;
        SequenceInput in;
        in.past = past_prefix(hits[j], p, sliced);
        in.tokens = {job.tokens[static_cast<std::size_t>(p)]};
        where[j][o] = {inputs.size(), 0};
        inputs.push_back(std::move(in));
        input_job.push_back(j);
        input_run.push_back(false);
        input_from.push_back(p);
        input_rows.push_back({0});
        st.probe_tokens += 1;
      }
      if (m < size) {
        SequenceInput in;
        in.past = cache ? hits[j].past() : std::vector<const KVSegment*>{};
        in.tokens.assign(job.tokens.begin() + m, job.tokens.end());
        std::vector<std::int64_t> rows;
        for (std::size_t o = 0; o < job.outs.size(); ++o) {
          const std::int64_t p = job.outs[o];
          if (p < m) continue;
          where[j][o] = {inputs.size(), rows.size()};
          rows.push_back(p - m);
        }
        inputs.push_back(std::move(in));
        input_job.push_back(j);
        input_run.push_back(true);
        input_from.push_back(m);
        input_rows.push_back(std::move(rows));
        st.tokens_reused += m;
        if (depth > 0) st.prefill_tokens += size - m;
      } else {
        st.tokens_reused += size;
      }
    }

    // Batched forwards (chunks of max_batch), then the head over every wanted row at once.
    const std::size_t chunk = params.max_batch > 0 ? params.max_batch : inputs.size();
    std::vector<at::Tensor> selected(inputs.size());
    for (std::size_t lo = 0; lo < inputs.size(); lo += chunk) {
      const std::size_t hi = std::min(inputs.size(), lo + chunk);
      ForwardOptions fo;
      fo.logits = LogitsMode::None;
      fo.hidden = outputs;
      fo.copy_kv = true;
      auto res = model->forward(
          std::span<const SequenceInput>(inputs.data() + lo, hi - lo), fo);
      ++st.forwards;
      for (std::size_t i = lo; i < hi; ++i) {
        auto& r = res[i - lo];
        st.tokens_computed += static_cast<std::int64_t>(inputs[i].tokens.size());
        if (outputs && !input_rows[i].empty()) {
          const at::Tensor idx = at::tensor(input_rows[i], at::kLong).to(r.hidden.device());
          selected[i] = r.hidden.index_select(0, idx);
        }
        if (cache && input_run[i]) {
          const std::size_t j = input_job[i];
          auto stored = cache->insert(jobs[j].tokens, input_from[i], std::move(r.kv));
          if (!outputs) pins.push_back(std::move(stored));
        }
      }
    }

    std::vector<std::vector<double>> scores(J);
    if (!outputs) return scores;
    std::vector<at::Tensor> parts;
    std::vector<std::int64_t> offset(inputs.size(), 0);
    std::int64_t total = 0;
    for (std::size_t i = 0; i < inputs.size(); ++i) {
      offset[i] = total;
      if (selected[i].defined()) {
        parts.push_back(selected[i]);
        total += selected[i].size(0);
      }
    }
    const std::vector<double> flat = parts.empty() ? std::vector<double>{} : head(at::cat(parts, 0));
    for (std::size_t j = 0; j < J; ++j) {
      scores[j].resize(jobs[j].outs.size());
      for (std::size_t o = 0; o < jobs[j].outs.size(); ++o) {
        const auto [i, k] = where[j][o];
        scores[j][o] = flat[static_cast<std::size_t>(offset[i]) + k];
      }
    }
    return scores;
  }

  // ---- TorchScript ----

  // Every step's score of each sequence (one module call).
  std::vector<std::vector<double>> run_script(const std::vector<PrmSequence>& seqs) {
    const auto B = static_cast<std::int64_t>(seqs.size());
    std::int64_t T = 0, S = 0;
    for (const auto& s : seqs) {
      T = std::max(T, static_cast<std::int64_t>(s.tokens.size()));
      S = std::max(S, static_cast<std::int64_t>(s.step_ends.size()));
    }
    std::vector<std::vector<double>> out(seqs.size());
    if (B == 0 || S == 0) return out;
    at::Tensor ids = at::zeros({B, T}, at::kLong), mask = at::zeros({B, T}, at::kLong);
    at::Tensor ends = at::full({B, S}, -1, at::kLong);
    {
      auto* pi = ids.data_ptr<std::int64_t>();
      auto* pm = mask.data_ptr<std::int64_t>();
      auto* pe = ends.data_ptr<std::int64_t>();
      for (std::int64_t b = 0; b < B; ++b) {
        const auto& s = seqs[static_cast<std::size_t>(b)];
        for (std::size_t t = 0; t < s.tokens.size(); ++t) {
          pi[b * T + static_cast<std::int64_t>(t)] = s.tokens[t];
          pm[b * T + static_cast<std::int64_t>(t)] = 1;
        }
        for (std::size_t i = 0; i < s.step_ends.size(); ++i)
          pe[b * S + static_cast<std::int64_t>(i)] = s.step_ends[i];
        st.tokens_computed += static_cast<std::int64_t>(s.tokens.size());
      }
    }
    at::Tensor res;
    try {
      std::vector<c10::IValue> args{ids.to(device), mask.to(device), ends.to(device)};
      c10::IValue r = module->forward(std::move(args));
      ++st.forwards;
      if (!r.isTensor())
        throw PluginError(fmt::format(
            "{}: TorchScript module {}: forward returned a {}, expected a floating tensor [B, S] "
            "= [{}, {}]",
            name, script_file, r.tagKind(), B, S));
      res = r.toTensor();
    } catch (const qstar::Error&) {
      throw;
    } catch (const c10::Error& e) {
      throw PluginError(fmt::format("{}: TorchScript module {}: forward failed: {}", name,
                                    script_file, e.what_without_backtrace()));
    } catch (const std::exception& e) {
      throw PluginError(fmt::format("{}: TorchScript module {}: forward failed: {}", name,
                                    script_file, e.what()));
    }
    if (res.dim() != 2 || res.size(0) != B || res.size(1) != S || !res.is_floating_point()) {
      std::string shape = "[";
      for (std::int64_t d = 0; d < res.dim(); ++d)
        shape += (d ? ", " : "") + std::to_string(res.size(d));
      shape += "]";
      throw PluginError(fmt::format(
          "{}: TorchScript module {}: forward returned a {} tensor of shape {}, expected a "
          "floating tensor [B, S] = [{}, {}] (batch, steps; see qstar/torch/prm.hpp)",
          name, script_file, c10::toString(res.scalar_type()), shape, B, S));
    }
    const at::Tensor c = res.to(at::kCPU).to(at::kDouble).contiguous();
    const double* p = c.data_ptr<double>();
    for (std::int64_t b = 0; b < B; ++b) {
      const auto n = seqs[static_cast<std::size_t>(b)].step_ends.size();
      auto& o = out[static_cast<std::size_t>(b)];
      o.resize(n);
      for (std::size_t i = 0; i < n; ++i) {
        const double v = p[b * S + static_cast<std::int64_t>(i)];
        if (!std::isfinite(v) || v < 0.0 || v > 1.0)
          throw PluginError(fmt::format(
              "{}: TorchScript module {}: score [{}, {}] = {} is not in [0, 1]", name,
              script_file, b, i, v));
        o[i] = v;
      }
    }
    return out;
  }

  // ---- the common scoring path ----

  // Scores of steps [first_new, size) of every request.
  std::vector<std::vector<double>> score(std::span<const Req> reqs) {
    for (std::size_t r = 0; r < reqs.size(); ++r) {
      const auto n = static_cast<std::int64_t>(reqs[r].trajectory->size());
      if (reqs[r].first_new < 0 || reqs[r].first_new > n)
        throw InvalidArgument(fmt::format("{}: request {}: first_new {} is outside [0, {}]", name,
                                          r, reqs[r].first_new, n));
    }
    ++st.calls;
    st.requests += static_cast<std::int64_t>(reqs.size());
    std::vector<std::vector<double>> out(reqs.size());
    if (kind == Kind::TorchScript) {
      const std::size_t chunk = params.max_batch > 0 ? params.max_batch : reqs.size();
      for (std::size_t lo = 0; lo < reqs.size(); lo += chunk) {
        const std::size_t hi = std::min(reqs.size(), lo + chunk);
        const auto seqs = build_all(reqs.subspan(lo, hi - lo));
        auto all = run_script(seqs);
        for (std::size_t r = lo; r < hi; ++r) {
          auto& a = all[r - lo];
          out[r].assign(a.begin() + reqs[r].first_new, a.end());
          st.steps_scored += static_cast<std::int64_t>(out[r].size());
        }
      }
      return out;
    }
    const auto seqs = build_all(reqs);
    std::vector<Job> jobs;
    std::vector<std::size_t> job_req;
    for (std::size_t r = 0; r < reqs.size(); ++r) {
      const auto& s = seqs[r];
      if (static_cast<std::size_t>(reqs[r].first_new) >= s.step_ends.size()) continue;
      Job job;
      job.tokens = s.tokens;
      job.outs.assign(s.step_ends.begin() + reqs[r].first_new, s.step_ends.end());
      jobs.push_back(std::move(job));
      job_req.push_back(r);
    }
    if (jobs.empty()) return out;
    std::vector<PrefixCache::Match> pins;
    auto scores = run(jobs, true, pins, 0);
    pins.clear();
    for (std::size_t j = 0; j < jobs.size(); ++j) {
      st.steps_scored += static_cast<std::int64_t>(scores[j].size());
      out[job_req[j]] = std::move(scores[j]);
    }
    return out;
  }
};

// ---- loading -----------------------------------------------------------------------------

namespace {

std::string base_name(const std::string& path) {
  fs::path p = fs::path(path).lexically_normal();
  std::string n = p.filename().string();
  if (n.empty() || n == ".") n = p.parent_path().filename().string();
  if (n.empty()) n = path;
  return n;
}

// The single token `text` encodes to; InvalidArgument naming `field` otherwise.
std::int32_t single_token(const hf::Tokenizer& tok, const std::string& text, const char* field,
                          int vocab_limit) {
  const auto ids = tok.encode(text);
  if (ids.size() != 1) {
    std::string list;
    for (std::size_t i = 0; i < ids.size(); ++i) list += (i ? ", " : "") + std::to_string(ids[i]);
    throw InvalidArgument(fmt::format(
        "PrmParams.{}: \"{}\" is {} tokens [{}] of the tokenizer {}; it must be exactly one "
        "token",
        field, escaped(text), ids.size(), list, tok.source()));
  }
  if (vocab_limit > 0 && ids[0] >= vocab_limit)
    throw InvalidArgument(fmt::format(
        "PrmParams.{}: \"{}\" is token {} of the tokenizer {}, outside the model's vocabulary "
        "of {}",
        field, escaped(text), ids[0], tok.source(), vocab_limit));
  return ids[0];
}

}  // namespace

PrmVerifier::PrmVerifier(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
PrmVerifier::~PrmVerifier() = default;

PrmVerifier PrmVerifier::load(const std::string& path, PrmParams params) {
  params.validate();
  auto im = std::make_shared<Impl>();
  im->path = path;
  im->name = "prm:" + base_name(path);

  std::error_code ec;
  if (path.empty() || !fs::exists(path, ec))
    throw IoError(fmt::format("prm: model path '{}' does not exist", path));
  const bool is_dir = fs::is_directory(path, ec);
  std::optional<hf::ModelConfig> cfg;
  std::string model_dir;  // where tokenizer.json is looked for by default
  if (!is_dir) {
    if (params.kind == "token-logit" || params.kind == "token-class")
      throw InvalidArgument(fmt::format(
          "PrmParams.kind: '{}' needs a model directory (config.json, model.safetensors, "
          "tokenizer.json), but '{}' is a file",
          params.kind, path));
    im->kind = Kind::TorchScript;
    im->script_file = path;
    model_dir = fs::path(path).parent_path().string();
    if (model_dir.empty()) model_dir = ".";
  } else {
    model_dir = path;
    const std::string config_path = (fs::path(path) / "config.json").string();
    const std::string pt_path = (fs::path(path) / "model.pt").string();
    const bool has_config = fs::exists(config_path, ec), has_pt = fs::exists(pt_path, ec);
    if (params.kind == "torchscript") {
      if (!has_pt)
        throw IoError(fmt::format(
            "prm: '{}' is a directory without model.pt (PrmParams.kind torchscript wants a "
            "TorchScript file, or a directory holding model.pt)",
            path));
      im->kind = Kind::TorchScript;
      im->script_file = pt_path;
    } else if (has_config) {
      cfg = hf::ModelConfig::from_file(config_path);
      const bool tc = cfg->is_token_classification();
      if (params.kind == "auto") {
        im->kind = tc ? Kind::TokenClass : Kind::TokenLogit;
      } else if (params.kind == "token-class") {
        if (!tc)
          throw InvalidArgument(fmt::format(
              "PrmParams.kind: 'token-class' needs a *ForTokenClassification model, but {} "
              "has architecture {}",
              config_path, cfg->architecture));
        im->kind = Kind::TokenClass;
      } else {
        if (!cfg->is_causal_lm())
          throw InvalidArgument(fmt::format(
              "PrmParams.kind: 'token-logit' needs a *ForCausalLM model, but {} has "
              "architecture {}",
              config_path, cfg->architecture));
        im->kind = Kind::TokenLogit;
      }
    } else if (has_pt) {
      im->kind = Kind::TorchScript;
      im->script_file = pt_path;
    } else {
      throw IoError(fmt::format("prm: directory '{}' holds neither config.json nor model.pt",
                                path));
    }
  }

  // Tokenizer.
  std::string tok_path = params.tokenizer;
  if (tok_path.empty()) tok_path = model_dir;  // its tokenizer.json, else tokenizer.model
  if (fs::is_directory(tok_path, ec) ? !fs::exists(fs::path(tok_path) / "tokenizer.json", ec) &&
                                           !fs::exists(fs::path(tok_path) / "tokenizer.model", ec)
                                     : !fs::exists(tok_path, ec))
    throw IoError(fmt::format(
        "{}: no tokenizer at '{}' (a tokenizer.json or tokenizer.model file, or a folder "
        "holding one){}",
        im->name, tok_path, params.tokenizer.empty() ? " (set PrmParams.tokenizer)" : ""));
  im->tok.emplace(hf::Tokenizer::from_path(tok_path));
  if (!params.chat_template.empty())
    im->chat.emplace(hf::ChatTemplate::from_path(params.chat_template == "auto" ? model_dir : params.chat_template));

  if (params.step_tag.empty()) params.step_tag = im->kind == Kind::TokenLogit ? " ки" : "\n";
  const int vocab = cfg ? cfg->vocab_size : 0;
  im->tag_id = single_token(*im->tok, params.step_tag, "step_tag", vocab);
  if (im->kind == Kind::TokenLogit) {
    im->good_id = single_token(*im->tok, params.good_token, "good_token", vocab);
    im->bad_id = single_token(*im->tok, params.bad_token, "bad_token", vocab);
    if (im->good_id == im->bad_id)
      throw InvalidArgument(fmt::format(
          "PrmParams.bad_token: \"{}\" and good_token \"{}\" are the same token {}",
          escaped(params.bad_token), escaped(params.good_token), im->good_id));
  }
  im->sep_tokens = im->tok->encode(params.step_separator);
  im->params = std::move(params);
  const PrmParams& P = im->params;

  c10::InferenceMode guard;
  if (im->kind == Kind::TorchScript) {
    try {
      im->device = at::Device(P.device);
    } catch (const c10::Error&) {
      throw InvalidArgument(fmt::format(
          "PrmParams.device: '{}' is not a device (expected cpu, cuda or cuda:N)", P.device));
    }
    if (im->device.is_cuda() && !at::hasCUDA())
      throw Error(fmt::format("PrmParams.device: '{}' requested but CUDA is not available",
                              P.device));
    if (!fs::is_regular_file(im->script_file, ec))
      throw IoError(fmt::format("prm: TorchScript module '{}' is not a file", im->script_file));
    try {
      im->module.emplace(::torch::jit::load(im->script_file, im->device));
    } catch (const c10::Error& e) {
      throw Error(fmt::format("prm: cannot load the TorchScript module '{}': {}", im->script_file,
                              e.what_without_backtrace()));
    } catch (const std::exception& e) {
      throw Error(fmt::format("prm: cannot load the TorchScript module '{}': {}", im->script_file,
                              e.what()));
    }
    im->module->eval();
    if (!im->module->find_method("forward"))
      throw ParseError(fmt::format("prm: TorchScript module '{}' has no forward method",
                                   im->script_file));
  } else {
    LoadOptions lo;
    lo.device = P.device;
    lo.dtype = parse_dtype(P.dtype, "PrmParams.dtype");
    im->model = load_decoder(path, lo);
    im->device = im->model->device();
    if (im->kind == Kind::TokenLogit && !im->model->has_lm_head())
      throw InvalidArgument(fmt::format("PrmParams.kind: 'token-logit' needs a language-model head, "
                                        "but {} has none",
                                        path));
    if (im->kind == Kind::TokenClass) {
      im->num_labels = im->model->config().num_labels;
      if (im->num_labels != 1 && im->num_labels != 2)
        throw ParseError(fmt::format(
            "{}/config.json: num_labels: a token-class PRM needs 1 label (sigmoid) or 2 "
            "(softmax, class 1), got {}",
            path, im->num_labels));
    }
    if (P.kv_cache_bytes > 0) im->cache = std::make_unique<PrefixCache>(P.kv_cache_bytes);
  }
  return PrmVerifier(std::move(im));
}

// ---- calls -------------------------------------------------------------------------------

std::vector<std::vector<double>> PrmVerifier::score_steps(std::span<const StepScoreRequest> batch) {
  std::lock_guard lock(impl_->mu);
  c10::InferenceMode guard;
  std::vector<Req> reqs(batch.size());
  for (std::size_t r = 0; r < batch.size(); ++r)
    reqs[r] = Req{batch[r].prompt, batch[r].problem, &batch[r].trajectory, batch[r].first_new};
  return impl_->score(reqs);
}

std::vector<double> PrmVerifier::score_outcomes(std::span<const OutcomeRequest> batch) {
  std::lock_guard lock(impl_->mu);
  c10::InferenceMode guard;
  std::vector<Req> reqs(batch.size());
  for (std::size_t r = 0; r < batch.size(); ++r)
    reqs[r] = Req{batch[r].prompt, batch[r].problem, &batch[r].trajectory, 0};
  const auto steps = impl_->score(reqs);
  std::vector<double> out(batch.size());
  for (std::size_t r = 0; r < batch.size(); ++r)
    out[r] = aggregate(steps[r], impl_->params.outcome_aggregation,
                       impl_->params.custom_aggregation);
  return out;
}

std::string PrmVerifier::name() const { return impl_->name; }
std::size_t PrmVerifier::max_batch_size() const { return impl_->params.max_batch; }
std::string PrmVerifier::kind() const { return kind_name(impl_->kind); }
const PrmParams& PrmVerifier::params() const { return impl_->params; }
std::int32_t PrmVerifier::step_tag_id() const { return impl_->tag_id; }
std::int32_t PrmVerifier::good_token_id() const { return impl_->good_id; }
std::int32_t PrmVerifier::bad_token_id() const { return impl_->bad_id; }

PrmSequence PrmVerifier::sequence(std::string_view prompt, const TrajectoryView& trajectory) const {
  return impl_->build(impl_->encode_prompt(prompt), trajectory);
}

PrmStats PrmVerifier::stats() const {
  std::lock_guard lock(impl_->mu);
  PrmStats s = impl_->st;
  if (impl_->cache) {
    const auto cs = impl_->cache->stats();
    s.cache_bytes = impl_->cache->bytes();
    s.cache_peak_bytes = cs.peak_bytes;
    s.cache_tokens = impl_->cache->tokens();
    s.cache_evicted_tokens = cs.evicted_tokens - impl_->evicted_base;
  }
  return s;
}

void PrmVerifier::reset_stats() {
  std::lock_guard lock(impl_->mu);
  impl_->st = PrmStats{};
  if (impl_->cache) impl_->evicted_base = impl_->cache->stats().evicted_tokens;
}

void PrmVerifier::clear_cache() {
  std::lock_guard lock(impl_->mu);
  if (impl_->cache) impl_->cache->clear();
}

}  // namespace qstar::lm
