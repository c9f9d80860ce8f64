// PRM verifiers: token-logit (Math-Shepherd), chat-logit (RLHFlow), the score heads
// (token-class, process-reward, value-head; reward-model and seq-class as outcome
// verifiers) and TorchScript, with incremental scoring over the shared-prefix KV cache. See
// include/qstar/torch/prm.hpp for the contract; the layouts are in prm_layout.cpp, the
// TorchScript backend in prm_script.cpp.
#include "qstar/torch/prm.hpp"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <fmt/format.h>
#include <torch/script.h>

#include <algorithm>
#include <cmath>
#include <deque>
#include <filesystem>
#include <fstream>
#include <sstream>
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
#include "qstar/core/json.hpp"
#include "torch/decoder.hpp"
#include "torch/kv_cache.hpp"
#include "torch/prefill.hpp"
#include "torch/prm_layout.hpp"
#include "torch/prm_script.hpp"

namespace qstar::lm {

namespace fs = std::filesystem;

namespace {

using detail::escaped;
using detail::PrmLayout;
using Req = detail::PrmReq;
using Head = hf::ModelConfig::Head;

enum class Kind { TokenLogit, TokenClass, TorchScript, ChatLogit, ProcessReward, RewardModel, ValueHead, SeqClass };

constexpr std::pair<Kind, const char*> kKinds[] = {
    {Kind::TokenLogit, "token-logit"},       {Kind::TokenClass, "token-class"},
    {Kind::TorchScript, "torchscript"},      {Kind::ChatLogit, "chat-logit"},
    {Kind::ProcessReward, "process-reward"}, {Kind::RewardModel, "reward-model"},
    {Kind::ValueHead, "value-head"},         {Kind::SeqClass, "seq-class"}};
constexpr const char* kKindList =
    "token-logit, chat-logit, token-class, process-reward, value-head, reward-model, seq-class, torchscript, auto";

const char* kind_name(Kind k) {
  for (const auto& [kk, n] : kKinds)
    if (kk == k) return n;
  return "token-logit";
}

std::optional<Kind> kind_of(std::string_view name) {
  for (const auto& [kk, n] : kKinds)
    if (name == n) return kk;
  return std::nullopt;
}

// The head a kind reads (CausalLM: the language-model head), for kind/architecture checks.
Head head_of(Kind k) {
  switch (k) {
    case Kind::TokenClass: return Head::TokenClassification;
    case Kind::ProcessReward: return Head::ProcessReward;
    case Kind::RewardModel: return Head::Reward;
    case Kind::ValueHead: return Head::ValueHead;
    case Kind::SeqClass: return Head::SequenceClassification;
    default: return Head::CausalLM;
  }
}

// The kind config.json's architecture implies (causal LM: token-logit, Math-Shepherd's).
Kind kind_of_head(Head h) {
  switch (h) {
    case Head::TokenClassification: return Kind::TokenClass;
    case Head::ProcessReward: return Kind::ProcessReward;
    case Head::Reward: return Kind::RewardModel;
    case Head::ValueHead: return Kind::ValueHead;
    case Head::SequenceClassification: return Kind::SeqClass;
    case Head::CausalLM: break;
  }
  return Kind::TokenLogit;
}

bool is_outcome(Kind k) { return k == Kind::RewardModel || k == Kind::SeqClass; }
bool is_logit(Kind k) { return k == Kind::TokenLogit || k == Kind::ChatLogit; }
// Kinds whose layout is a chat (chat_template "" means "auto").
bool is_chat(Kind k) {
  return k == Kind::ChatLogit || k == Kind::ProcessReward || k == Kind::RewardModel || k == Kind::SeqClass;
}

// Qwen2.5-Math-PRM's and -RM's system message.
constexpr const char* kQwenMathSystem = "Please reason step by step, and put your final answer within \\boxed{}.";

// Shared prefixes are prefilled recursively; past this depth the rest is computed as is.
constexpr int kMaxShareDepth = 8;

double sigmoid(double x) {
  if (x >= 0) return 1.0 / (1.0 + std::exp(-x));
  const double e = std::exp(x);
  return e / (1.0 + e);
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

}  // namespace

// ---- params ------------------------------------------------------------------------------

void PrmParams::validate() const {
  if (kind != "auto" && !kind_of(kind))
    throw InvalidArgument(fmt::format("PrmParams.kind: '{}' is not a PRM kind ({})", kind, kKindList));
  if (device.empty()) throw InvalidArgument("PrmParams.device: empty (expected cpu, cuda or cuda:N)");
  bool int8 = false;
  (void)parse_dtype(dtype, "PrmParams.dtype", &int8);
  if (good_token.empty()) throw InvalidArgument("PrmParams.good_token: empty");
  if (bad_token.empty()) throw InvalidArgument("PrmParams.bad_token: empty");
  if (good_token == bad_token)
    throw InvalidArgument(
        fmt::format("PrmParams.bad_token: equal to good_token \"{}\"", escaped(good_token)));
  if (prompt_template.find("{prompt}") == std::string::npos && prompt_template.find("{problem}") == std::string::npos)
    throw InvalidArgument(fmt::format(
        "PrmParams.prompt_template: \"{}\" contains neither {{prompt}} nor {{problem}}", escaped(prompt_template)));
  // The chat kinds (and auto, which may resolve to one) lay out a chat without chat_template.
  const auto k = kind_of(kind);
  if (!chat_system.empty() && (chat_template.empty() || chat_template == "none") && (!k || !is_chat(*k)))
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
  PrmLayout layout;  // the scored sequences (prm_layout.hpp); layout.tok points at *tok
  std::int32_t good_id = -1, bad_id = -1;
  std::shared_ptr<Decoder> model;
  std::unique_ptr<PrefixCache> cache;
  int num_labels = 0;
  std::optional<torch::jit::Module> module;
  at::Device device{at::kCPU};

  mutable std::mutex mu;
  PrmStats st;
  std::int64_t evicted_base = 0;

  // ---- heads ----

  // Scores of hidden rows [N, D] (model device, compute dtype).
  std::vector<double> head(const at::Tensor& rows) const {
    std::vector<double> out(static_cast<std::size_t>(rows.size(0)));
    if (out.empty()) return out;
    if (is_logit(kind)) {
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

  // ---- the common scoring path ----

  // Scores of steps [first_new, size) of every request (an outcome kind: one score, the
  // whole response's).
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
        const auto seqs = layout.build_all(reqs.subspan(lo, hi - lo));
        auto all = detail::run_torchscript(*module, device, name, script_file, seqs, st);
        for (std::size_t r = lo; r < hi; ++r) {
          auto& a = all[r - lo];
          out[r].assign(a.begin() + reqs[r].first_new, a.end());
          st.steps_scored += static_cast<std::int64_t>(out[r].size());
        }
      }
      return out;
    }
    const auto seqs = layout.build_all(reqs);
    std::vector<Job> jobs;
    std::vector<std::size_t> job_req;
    for (std::size_t r = 0; r < reqs.size(); ++r) {
      const auto& s = seqs[r];
      if (layout.mode == PrmLayout::Mode::Steps &&
          static_cast<std::size_t>(reqs[r].first_new) >= s.step_ends.size())
        continue;
      Job job;
      job.tokens = s.tokens;
      if (layout.mode == PrmLayout::Mode::Outcome) job.outs = s.step_ends;
      else job.outs.assign(s.step_ends.begin() + reqs[r].first_new, s.step_ends.end());
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

namespace {

// What a path holds, and so which kind reads it.
struct Resolved {
  Kind kind = Kind::TokenLogit;
  std::optional<hf::ModelConfig> cfg;
  std::string script_file;  // torchscript
  std::string model_dir;    // where tokenizer.json (and tokenizer_config.json) are looked for
};

Resolved resolve_kind(const std::string& path, const PrmParams& params) {
  std::error_code ec;
  if (path.empty() || !fs::exists(path, ec))
    throw IoError(fmt::format("prm: model path '{}' does not exist", path));
  Resolved r;
  const std::optional<Kind> asked = kind_of(params.kind);  // nullopt: auto
  if (!fs::is_directory(path, ec)) {
    if (asked && *asked != Kind::TorchScript)
      throw InvalidArgument(fmt::format(
          "PrmParams.kind: '{}' needs a model directory (config.json, model.safetensors, "
          "tokenizer.json), but '{}' is a file",
          params.kind, path));
    r.kind = Kind::TorchScript;
    r.script_file = path;
    r.model_dir = fs::path(path).parent_path().string();
    if (r.model_dir.empty()) r.model_dir = ".";
    return r;
  }
  r.model_dir = path;
  const std::string config_path = (fs::path(path) / "config.json").string();
  const std::string pt_path = (fs::path(path) / "model.pt").string();
  const bool has_config = fs::exists(config_path, ec), has_pt = fs::exists(pt_path, ec);
  if (asked == Kind::TorchScript || (!asked && !has_config && has_pt)) {
    if (!has_pt)
      throw IoError(fmt::format(
          "prm: '{}' is a directory without model.pt (PrmParams.kind torchscript wants a "
          "TorchScript file, or a directory holding model.pt)",
          path));
    r.kind = Kind::TorchScript;
    r.script_file = pt_path;
    return r;
  }
  if (!has_config)
    throw IoError(fmt::format("prm: directory '{}' holds neither config.json nor model.pt", path));
  r.cfg = hf::ModelConfig::from_file(config_path);
  const Head head = r.cfg->head();
  r.kind = asked.value_or(kind_of_head(head));
  if (head_of(r.kind) != head) {
    const char* wants = "a *ForCausalLM model";
    switch (head_of(r.kind)) {
      case Head::TokenClassification: wants = "a *ForTokenClassification model"; break;
      case Head::SequenceClassification: wants = "a *ForSequenceClassification model"; break;
      case Head::ProcessReward: wants = "a Qwen2ForProcessRewardModel"; break;
      case Head::Reward: wants = "a Qwen2ForRewardModel"; break;
      case Head::ValueHead: wants = "a Qwen2ForPrmModel (value head)"; break;
      case Head::CausalLM: break;
    }
    throw InvalidArgument(fmt::format("PrmParams.kind: '{}' needs {}, but {} has architecture {}", params.kind,
                                      wants, config_path, r.cfg->architecture));
  }
  return r;
}

// What {bos} becomes: tokenizer_config.json's bos_token, else config.json's bos_token_id's
// token, else the tokenizer's own BOS, else "".
std::string bos_text(const std::string& model_dir, const hf::Tokenizer& tok, const hf::ModelConfig* cfg) {
  std::error_code ec;
  const fs::path tc = fs::path(model_dir) / "tokenizer_config.json";
  if (fs::is_regular_file(tc, ec) && fs::file_size(tc, ec) < (std::uintmax_t{64} << 20)) {
    std::ifstream in(tc, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    const json::Value v = json::parse(ss.str(), tc.string());
    if (v.is_object() && v.contains("bos_token")) {
      const json::Value& b = v.at("bos_token");
      if (b.is_string()) return b.as_string();
      if (b.is_object() && b.contains("content") && b.at("content").is_string()) return b.at("content").as_string();
    }
  }
  std::optional<std::int32_t> id = cfg ? cfg->bos_token_id : std::nullopt;
  if (!id) id = tok.bos_id();
  return id && tok.has_id(*id) ? tok.decode(std::vector<std::int32_t>{*id}) : std::string();
}

// The tokens of `text` (at least one); InvalidArgument naming `field` otherwise.
std::vector<std::int32_t> some_tokens(const hf::Tokenizer& tok, const std::string& text, const char* field) {
  auto ids = tok.encode(text);
  if (ids.empty())
    throw InvalidArgument(fmt::format("PrmParams.{}: \"{}\" encodes to no token of the tokenizer {}", field,
                                      escaped(text), tok.source()));
  return ids;
}

// The kind's defaults filled into `params` (step_tag, chat_template, chat_system,
// step_separator) and the layout built from them.
void setup_layout(PrmVerifier::Impl& im, const Resolved& r) {
  PrmParams& P = im.params;
  const Kind k = im.kind;
  const int vocab = r.cfg ? r.cfg->vocab_size : 0;
  if (P.chat_template.empty() && is_chat(k)) P.chat_template = "auto";
  if (P.chat_template == "none") P.chat_template.clear();
  if (P.chat_system.empty() && (k == Kind::ProcessReward || k == Kind::RewardModel) && !P.chat_template.empty())
    P.chat_system = kQwenMathSystem;
  if (P.step_tag.empty())
    P.step_tag = k == Kind::TokenLogit ? " ки" : k == Kind::ProcessReward ? "<extra_0>" : "\n";
  PrmLayout& L = im.layout;
  L.tok = &*im.tok;
  L.name = im.name;
  L.prompt_template = P.prompt_template;
  L.chat_system = P.chat_system;
  if (!P.chat_template.empty())
    L.chat.emplace(hf::ChatTemplate::from_path(P.chat_template == "auto" ? r.model_dir : P.chat_template));
  if (k == Kind::ValueHead && L.prompt_template == "{prompt}") L.prompt_template = "{bos}{problem}\n";
  if (L.prompt_template.find("{bos}") != std::string::npos)
    L.bos_text = bos_text(r.model_dir, *im.tok, r.cfg ? &*r.cfg : nullptr);
  if (is_logit(k)) {
    im.good_id = single_token(*im.tok, P.good_token, "good_token", vocab);
    im.bad_id = single_token(*im.tok, P.bad_token, "bad_token", vocab);
    if (im.good_id == im.bad_id)
      throw InvalidArgument(fmt::format("PrmParams.bad_token: \"{}\" and good_token \"{}\" are the same token {}",
                                        escaped(P.bad_token), escaped(P.good_token), im.good_id));
  }
  if (is_outcome(k)) {
    L.mode = PrmLayout::Mode::Outcome;
    if (!P.step_separator.empty()) L.outcome_join = P.step_separator;
    return;
  }
  if (k == Kind::ChatLogit) {
    if (!L.chat)
      throw InvalidArgument("PrmParams.chat_template: kind 'chat-logit' needs a chat template (\"auto\": the "
                            "PRM folder's tokenizer_config.json)");
    const auto t = PrmLayout::derive_turns(*L.chat, P.chat_system, P.good_token);
    L.turns_prefix = t.prefix;
    L.first_lead = t.first_lead;
    L.tag_tokens = some_tokens(*im.tok, t.tag, "chat_template (the step turn's end)");
    L.sep_tokens = im.tok->encode(t.separator);
    return;
  }
  L.tag_tokens = {single_token(*im.tok, P.step_tag, "step_tag", vocab)};
  L.sep_tokens = im.tok->encode(P.step_separator);
}

}  // namespace

PrmVerifier PrmVerifier::load(const std::string& path, PrmParams params) {
  params.validate();
  auto im = std::make_shared<Impl>();
  im->path = path;
  im->name = "prm:" + base_name(path);
  const Resolved r = resolve_kind(path, params);
  im->kind = r.kind;
  im->script_file = r.script_file;

  // Tokenizer.
  std::error_code ec;
  std::string tok_path = params.tokenizer;
  if (tok_path.empty()) tok_path = r.model_dir;  // its tokenizer.json, else tokenizer.model
  if (fs::is_directory(tok_path, ec) ? !fs::exists(fs::path(tok_path) / "tokenizer.json", ec) &&
                                           !fs::exists(fs::path(tok_path) / "tokenizer.model", ec)
                                     : !fs::exists(tok_path, ec))
    throw IoError(fmt::format(
        "{}: no tokenizer at '{}' (a tokenizer.json or tokenizer.model file, or a folder "
        "holding one){}",
        im->name, tok_path, params.tokenizer.empty() ? " (set PrmParams.tokenizer)" : ""));
  im->tok.emplace(hf::Tokenizer::from_path(tok_path));
  im->params = std::move(params);
  setup_layout(*im, r);
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
    im->module.emplace(detail::load_torchscript(im->script_file, im->device));
    return PrmVerifier(std::move(im));
  }
  LoadOptions lo;
  lo.device = P.device;
  lo.dtype = parse_dtype(P.dtype, "PrmParams.dtype", &lo.int8);
  im->model = load_decoder(path, lo);
  im->device = im->model->device();
  if (is_logit(im->kind) && !im->model->has_lm_head())
    throw InvalidArgument(fmt::format("PrmParams.kind: '{}' needs a language-model head, but {} has none",
                                      kind_name(im->kind), path));
  if (!is_logit(im->kind)) {
    im->num_labels = im->model->config().num_labels;
    if (im->num_labels != 1 && im->num_labels != 2)
      throw ParseError(fmt::format(
          "{}/config.json: num_labels: a {} verifier needs 1 label (sigmoid) or 2 (softmax, class 1), got {}",
          path, kind_name(im->kind), im->num_labels));
  }
  if (P.kv_cache_bytes > 0) im->cache = std::make_unique<PrefixCache>(P.kv_cache_bytes);
  return PrmVerifier(std::move(im));
}

// ---- calls -------------------------------------------------------------------------------

std::vector<std::vector<double>> PrmVerifier::score_steps(std::span<const StepScoreRequest> batch) {
  if (is_outcome(impl_->kind))
    throw InvalidArgument(fmt::format(
        "{}: kind '{}' is an outcome verifier: it scores whole responses (score_outcomes, --orm), not steps",
        impl_->name, kind_name(impl_->kind)));
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
  if (is_outcome(impl_->kind)) {  // one score per response, read at its last token
    for (std::size_t r = 0; r < batch.size(); ++r) out[r] = steps[r].at(0);
    return out;
  }
  for (std::size_t r = 0; r < batch.size(); ++r)
    out[r] = aggregate(steps[r], impl_->params.outcome_aggregation,
                       impl_->params.custom_aggregation);
  return out;
}

std::string PrmVerifier::name() const { return impl_->name; }
std::size_t PrmVerifier::max_batch_size() const { return impl_->params.max_batch; }
std::string PrmVerifier::kind() const { return kind_name(impl_->kind); }
const PrmParams& PrmVerifier::params() const { return impl_->params; }
std::int32_t PrmVerifier::step_tag_id() const {
  return impl_->layout.tag_tokens.empty() ? -1 : impl_->layout.tag_tokens.back();
}
const std::vector<std::int32_t>& PrmVerifier::step_tag_tokens() const { return impl_->layout.tag_tokens; }
std::vector<std::int32_t> PrmVerifier::step_separator_tokens() const { return impl_->layout.sep_tokens; }
bool PrmVerifier::outcome_only() const { return is_outcome(impl_->kind); }
std::int32_t PrmVerifier::good_token_id() const { return impl_->good_id; }
std::int32_t PrmVerifier::bad_token_id() const { return impl_->bad_id; }

PrmSequence PrmVerifier::sequence(std::string_view prompt, const TrajectoryView& trajectory) const {
  const Req r{prompt, nullptr, &trajectory, 0};
  return impl_->layout.build_all({&r, 1}).at(0);
}

PrmSequence PrmVerifier::sequence(const StepScoreRequest& request) const {
  const Req r{request.prompt, request.problem, &request.trajectory, 0};
  return impl_->layout.build_all({&r, 1}).at(0);
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
