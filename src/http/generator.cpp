// HttpGenerator: ExpandRequests -> POST /v1/completions -> Steps. See
// include/qstar/http/client.hpp for the request and reply mapping.
#include <fmt/format.h>

#include <bit>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>

#include "http/transport.hpp"
#include "qstar/core/prompt.hpp"
#include "qstar/error.hpp"
#include "qstar/http/client.hpp"

namespace qstar::http {

namespace {


std::string url_label(const std::vector<std::string>& urls, const char* kind) {
  std::string s = fmt::format("{}:{}", kind, urls.empty() ? "" : urls[0]);
  if (urls.size() > 1) s += fmt::format("+{}", urls.size() - 1);
  return s;
}

using Bad = std::function<void(const std::string&)>;

double finite_logprob(const json::Value& x, const Bad& bad, std::string_view what) {
  if (!x.is_number() || !std::isfinite(x.as_double())) bad(fmt::format("{} is not a finite number", what));
  return x.as_double();
}

// -sum p log p over one position's listed alternatives (the truncated entropy estimate).
float listed_entropy(const std::vector<double>& lps) {
  double h = 0.0;
  for (double lp : lps) h -= std::exp(lp) * lp;
  return static_cast<float>(h);
}

// The legacy completions shape {"tokens", "token_logprobs", "top_logprobs": [{tok: lp}],
// qstar's "token_entropies"}. False when there is no "token_logprobs" array.
bool parse_legacy_logprobs(const json::Value& lp, Step& s, const Bad& bad) {
  const json::Value* tl = lp.find("token_logprobs");
  if (!tl || !tl->is_array()) return false;
  const auto& arr = tl->as_array();
  s.token_logprobs.reserve(arr.size());
  for (std::size_t t = 0; t < arr.size(); ++t)
    s.token_logprobs.push_back(static_cast<float>(finite_logprob(arr[t], bad, fmt::format("token_logprobs[{}]", t))));
  if (const json::Value* te = lp.find("token_entropies"); te && te->is_array()) {
    if (te->as_array().size() != arr.size()) bad("token_entropies: not one per token logprob");
    for (const auto& x : te->as_array()) {
      if (!x.is_number() || !std::isfinite(x.as_double()) || x.as_double() < 0)
        bad("a token entropy is not a finite number >= 0");
      s.token_entropies.push_back(static_cast<float>(x.as_double()));
    }
  } else if (const json::Value* top = lp.find("top_logprobs"); top && top->is_array()) {
    if (top->as_array().size() != arr.size()) bad("top_logprobs: not one entry per token logprob");
    std::vector<double> alts;
    for (std::size_t t = 0; t < arr.size(); ++t) {
      const json::Value& m = top->as_array()[t];
      if (!m.is_object() || m.as_object().empty()) {  // null or {}: no estimate for any position
        s.token_entropies.clear();
        break;
      }
      alts.clear();
      for (const auto& [tok, x] : m.as_object())
        alts.push_back(finite_logprob(x, bad, fmt::format("top_logprobs[{}]", t)));
      s.token_entropies.push_back(listed_entropy(alts));
    }
  }
  return true;
}

// The chat / llama-server shape {"content": [{"token", "logprob", "top_logprobs": [{"token",
// "logprob"}]}]}. False when there is no "content" array.
bool parse_content_logprobs(const json::Value& lp, Step& s, const Bad& bad) {
  const json::Value* content = lp.find("content");
  if (!content || !content->is_array()) return false;
  const auto& arr = content->as_array();
  bool entropies = true;
  std::vector<double> alts;
  for (std::size_t t = 0; t < arr.size(); ++t) {
    const json::Value& e = arr[t];
    const json::Value* x = e.is_object() ? e.find("logprob") : nullptr;
    if (!x) bad(fmt::format("logprobs.content[{}]: no \"logprob\"", t));
    s.token_logprobs.push_back(static_cast<float>(finite_logprob(*x, bad, fmt::format("logprobs.content[{}].logprob", t))));
    const json::Value* top = e.find("top_logprobs");
    if (!top || !top->is_array() || top->as_array().empty()) {
      entropies = false;
      continue;
    }
    alts.clear();
    for (const auto& a : top->as_array()) {
      const json::Value* y = a.is_object() ? a.find("logprob") : nullptr;
      if (!y) bad(fmt::format("logprobs.content[{}].top_logprobs: an entry without \"logprob\"", t));
      alts.push_back(finite_logprob(*y, bad, fmt::format("logprobs.content[{}].top_logprobs", t)));
    }
    s.token_entropies.push_back(listed_entropy(alts));
  }
  if (!entropies) s.token_entropies.clear();
  return true;
}

}  // namespace

void HttpGeneratorParams::validate() const {
  auto fail = [](const std::string& m) { throw InvalidArgument("HttpGeneratorParams." + m); };
  client.validate();
  if (path.empty() || path[0] != '/') fail(fmt::format("path: must start with '/', got '{}'", path));
  if (step_delimiter.empty()) fail("step_delimiter: must not be empty");
  if (max_step_tokens < 1) fail(fmt::format("max_step_tokens: must be >= 1, got {}", max_step_tokens));
  if (!std::isfinite(temperature) || temperature < 0)
    fail(fmt::format("temperature: must be finite and >= 0, got {}", temperature));
  if (!(top_p > 0 && top_p <= 1)) fail(fmt::format("top_p: must be in (0, 1], got {}", top_p));
  if (top_k < 0) fail(fmt::format("top_k: must be >= 0, got {}", top_k));
  if (logprobs < 0 || logprobs > 20) fail(fmt::format("logprobs: must be in [0, 20], got {}", logprobs));
  if (prompt_template.find("{prompt}") == std::string::npos)
    fail("prompt_template: must contain \"{prompt}\"");
  if (!tokenizer_path.empty() && tokenizer)
    fail("tokenizer_path: set tokenizer_path or tokenizer, not both");
}

struct HttpGenerator::Impl {
  HttpGeneratorParams params;
  std::unique_ptr<detail::Transport> transport;
  std::string name;
  std::optional<hf::Tokenizer> tokenizer;
};

HttpGenerator::HttpGenerator(HttpGeneratorParams params) : impl_(std::make_shared<Impl>()) {
  params.validate();
  impl_->params = std::move(params);
  if (const std::string& tp = impl_->params.tokenizer_path; !tp.empty()) {
    impl_->tokenizer = hf::Tokenizer::from_path(tp);
  } else {
    impl_->tokenizer = impl_->params.tokenizer;
  }
  std::vector<std::string> urls;
  for (const auto& u : impl_->params.client.base_urls) urls.push_back(detail::normalize_base_url(u));
  impl_->name = url_label(urls, "http");
  impl_->transport = std::make_unique<detail::Transport>(impl_->params.client, impl_->name);
}

HttpGenerator::~HttpGenerator() = default;

std::string HttpGenerator::name() const { return impl_->name; }
std::size_t HttpGenerator::max_batch_size() const { return impl_->params.max_batch; }
const HttpGeneratorParams& HttpGenerator::params() const { return impl_->params; }
HttpStats HttpGenerator::stats() const { return impl_->transport->stats(); }
const hf::Tokenizer* HttpGenerator::tokenizer() const {
  return impl_->tokenizer ? &*impl_->tokenizer : nullptr;
}

std::string HttpGenerator::prompt_text(const ExpandRequest& r) const {
  const auto& p = impl_->params;
  std::string s = apply_prompt_template(p.prompt_template, r.prompt);
  for (std::size_t i = 0; i < r.prefix.size(); ++i) {
    s.append(r.prefix.text(i));
    s.append(p.step_delimiter);
  }
  return s;
}

std::vector<std::vector<Step>> HttpGenerator::expand(std::span<const ExpandRequest> batch) {
  const auto t0 = std::chrono::steady_clock::now();
  const auto& p = impl_->params;
  const std::string& who = impl_->name;
  std::vector<std::string> bodies;
  bodies.reserve(batch.size());
  std::vector<int> ns(batch.size());
  for (std::size_t i = 0; i < batch.size(); ++i) {
    const ExpandRequest& r = batch[i];
    if (r.num_candidates < 1)
      throw InvalidArgument(fmt::format("{}: request {}: num_candidates must be >= 1, got {}", who, i, r.num_candidates));
    const bool greedy = r.greedy || p.temperature <= 0.0;
    ns[i] = greedy ? 1 : r.num_candidates;
    json::Value b = json::Value::object();
    if (!p.client.model.empty()) b.set("model", p.client.model);
    b.set("prompt", prompt_text(r));
    b.set("n", static_cast<std::int64_t>(ns[i]));
    int max_tokens = p.max_step_tokens;
    if (r.max_new_tokens > 0) max_tokens = std::min(max_tokens, r.max_new_tokens);
    b.set("max_tokens", static_cast<std::int64_t>(max_tokens));
    b.set("temperature", greedy ? 0.0 : p.temperature);
    b.set("top_p", p.top_p);
    if (p.top_k > 0) b.set("top_k", static_cast<std::int64_t>(p.top_k));
    b.set("seed", std::bit_cast<std::int64_t>(r.seed));
    json::Value stop = json::Value::array();
    stop.push_back(p.step_delimiter);
    b.set("stop", std::move(stop));
    b.set("logprobs", static_cast<std::int64_t>(p.logprobs));
    bodies.push_back(json::dump(b));
  }
  const std::vector<detail::Reply> replies = impl_->transport->post_all(p.path, bodies);

  std::vector<std::vector<Step>> out(batch.size());
  for (std::size_t i = 0; i < batch.size(); ++i) {
    const detail::Reply& rep = replies[i];
    const std::string where = fmt::format("{}: reply of {}{}", who, rep.url, p.path);
    auto bad = [&](const std::string& m) { throw PluginError(fmt::format("{}: {}", where, m)); };
    const json::Value* choices = rep.body.find("choices");
    if (!choices || !choices->is_array()) bad("no \"choices\" array");
    const auto& arr = choices->as_array();
    if (arr.size() != static_cast<std::size_t>(ns[i]))
      bad(fmt::format("expected {} choices (n), got {}", ns[i], arr.size()));
    std::vector<Step> steps(static_cast<std::size_t>(ns[i]));
    std::vector<bool> seen(steps.size(), false);
    for (std::size_t k = 0; k < arr.size(); ++k) {
      const json::Value& c = arr[k];
      if (!c.is_object()) bad(fmt::format("choice {} is not an object", k));
      std::size_t idx = k;
      if (const json::Value* x = c.find("index")) {
        if (!x->is_integer() || x->as_int() < 0 || x->as_int() >= static_cast<std::int64_t>(steps.size()))
          bad(fmt::format("choice {}: bad \"index\"", k));
        idx = static_cast<std::size_t>(x->as_int());
      }
      if (seen[idx]) bad(fmt::format("choice index {} given twice", idx));
      seen[idx] = true;
      const json::Value* text = c.find("text");
      if (!text || !text->is_string()) bad(fmt::format("choice {}: no \"text\" string", idx));
      Step s;
      s.text = text->as_string();
      bool cut = false;
      if (const auto at = s.text.find(p.step_delimiter); at != std::string::npos) {
        s.text.resize(at);
        cut = true;
      }
      // Logprobs: the per-token list (either shape), and/or qstar's extension fields.
      const Bad bad_choice = [&](const std::string& m) { bad(fmt::format("choice {}: {}", idx, m)); };
      bool have_lp = false;
      if (const json::Value* lp = c.find("logprobs"); lp && lp->is_object()) {
        have_lp = parse_legacy_logprobs(*lp, s, bad_choice) || parse_content_logprobs(*lp, s, bad_choice);
        if (have_lp) {
          double sum = 0;
          for (float x : s.token_logprobs) sum += x;
          s.logprob = sum;
          s.num_tokens = static_cast<std::int32_t>(s.token_logprobs.size());
        }
      }
      const json::Value* cl = c.find("cumulative_logprob");
      const json::Value* nt = c.find("num_tokens");
      if (!have_lp) {
        if (!cl || !cl->is_number() || !nt || !nt->is_integer())
          bad(fmt::format("choice {}: no token logprobs (\"logprobs\".\"token_logprobs\" or \"content\")", idx));
        if (nt->as_int() < 0 || nt->as_int() > (1 << 30)) bad(fmt::format("choice {}: bad num_tokens", idx));
        s.num_tokens = static_cast<std::int32_t>(nt->as_int());
      }
      if (cl && cl->is_number()) {  // exact (unrounded) when the server gives it
        s.logprob = cl->as_double();
        if (!std::isfinite(s.logprob)) bad(fmt::format("choice {}: cumulative_logprob is not finite", idx));
      }
      const json::Value* fr = c.find("finish_reason");
      const std::string finish = fr && fr->is_string() ? fr->as_string() : "";
      if (finish == "length") {
        s.finish = cut ? FinishReason::StepEnd : FinishReason::Length;
      } else if (finish == "stop") {
        const json::Value* why = c.find("stop_reason");
        if (!why) why = c.find("matched_stop");
        if (cut || !why || why->is_string()) s.finish = FinishReason::StepEnd;
        else s.finish = FinishReason::Eos;  // null (EOS) or a stop token id
      } else {
        bad(fmt::format("choice {}: finish_reason '{}' is not one of stop, length", idx, finish));
      }
      const bool at_delimiter = s.finish == FinishReason::StepEnd;
      if (!p.answer_marker.empty() && (s.finish == FinishReason::StepEnd || s.finish == FinishReason::Eos) &&
          s.text.find(p.answer_marker) != std::string::npos)
        s.finish = FinishReason::FinalAnswer;
      if (impl_->tokenizer)
        s.tokens = impl_->tokenizer->encode(at_delimiter ? s.text + p.step_delimiter : s.text);
      steps[idx] = std::move(s);
    }
    if (ns[i] != batch[i].num_candidates) steps.resize(static_cast<std::size_t>(batch[i].num_candidates), steps[0]);
    out[i] = std::move(steps);
  }
  impl_->transport->count_call(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  return out;
}

}  // namespace qstar::http
