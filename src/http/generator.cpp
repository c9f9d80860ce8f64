// HttpGenerator: ExpandRequests -> POST /v1/completions -> Steps. See
// include/qstar/http/client.hpp for the request and reply mapping.
#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <optional>

#include "http/llamacpp.hpp"
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

using detail::Bad;

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

// One OpenAI-shape choice as a Step (before answer_marker). `at_delimiter`: it ended there.
Step openai_step(const json::Value& c, const HttpGeneratorParams& p, std::size_t idx, bool& at_delimiter,
                 const Bad& bad) {
  const json::Value* text = c.find("text");
  if (!text || !text->is_string()) bad(fmt::format("choice {}: no \"text\" string", idx));
  Step s;
  s.text = text->as_string();
  bool cut = false;
  if (const auto at = s.text.find(p.step_delimiter); at != std::string::npos) {
    s.text.resize(at);
    cut = true;
  }
  // Logprobs: the per-token list (either shape; null: none listed), and/or qstar's
  // extension fields.
  const Bad bad_choice = [&](const std::string& m) { bad(fmt::format("choice {}: {}", idx, m)); };
  bool have_lp = false;
  const json::Value* lp = c.find("logprobs");
  if (lp && lp->is_object()) {
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
    if (cl && cl->is_number() && nt && nt->is_integer()) {
      if (nt->as_int() < 0 || nt->as_int() > (1 << 30)) bad(fmt::format("choice {}: bad num_tokens", idx));
      s.num_tokens = static_cast<std::int32_t>(nt->as_int());
    } else if (lp && lp->is_null() && p.logprobs >= 1) {
      // "logprobs": null although asked for: the server listed no token (llama.cpp's
      // /v1/completions, when the stop string falls in the first token): 0 tokens, logprob 0.
    } else {
      bad(fmt::format("choice {}: no token logprobs (\"logprobs\".\"token_logprobs\" or \"content\")", idx));
    }
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
  at_delimiter = s.finish == FinishReason::StepEnd;
  return s;
}

std::uint64_t mix64(std::uint64_t z) {
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// One HTTP request: choices [first, first + count) of request `request`.
struct Unit {
  std::size_t request;
  int first;
  int count;
};

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
  if (!(min_p >= 0 && min_p < 1)) fail(fmt::format("min_p: must be in [0, 1), got {}", min_p));
  if (logprobs < 0 || logprobs > 20) fail(fmt::format("logprobs: must be in [0, 20], got {}", logprobs));
  if (server != "auto" && server != "openai" && server != "llama.cpp")
    fail(fmt::format("server: '{}' is not one of auto, openai, llama.cpp", server));
  if (max_n < 0) fail(fmt::format("max_n: must be >= 0, got {}", max_n));
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
  std::mutex mu;         // guards the two below
  std::string protocol;  // "openai" or "llama.cpp"; empty until known
  int n_limit = 0;       // choices per request at most (0: none)

  // The protocol, probing the servers when params.server is "auto" (once one answers: when
  // none does, this call goes on as "openai" and fails as the servers are down).
  std::string resolve_protocol() {
    std::lock_guard lk(mu);
    if (!protocol.empty()) return protocol;
    if (params.server != "auto") return protocol = params.server;
    const auto models = transport->get_any("/v1/models");
    if (!models) return "openai";
    return protocol = models->ok() && detail::is_llamacpp_models_reply(models->body) ? "llama.cpp" : "openai";
  }
  int limit() {
    std::lock_guard lk(mu);
    return n_limit;
  }
  void lower_limit(int n) {
    std::lock_guard lk(mu);
    if (n_limit == 0 || n < n_limit) n_limit = n;
  }
};

HttpGenerator::HttpGenerator(HttpGeneratorParams params) : impl_(std::make_shared<Impl>()) {
  params.validate();
  impl_->params = std::move(params);
  impl_->n_limit = impl_->params.max_n;
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
std::string HttpGenerator::protocol() const { return impl_->resolve_protocol(); }

std::string HttpGenerator::prompt_text(const ExpandRequest& r) const {
  const auto& p = impl_->params;
  std::string s = apply_prompt_template(p.prompt_template, r.prompt);
  for (std::size_t i = 0; i < r.prefix.size(); ++i) {
    s.append(r.prefix.text(i));
    s.append(p.step_delimiter);
  }
  return s;
}

namespace {

// The body of one unit's request. Choice k of a request is always sampled with the same
// seed, however the request is split: llama.cpp's server seeds choice j of a request with
// seed + j, so a unit starting at choice `first` sends seed + first; on the OpenAI protocol a
// unit with first > 0 (only when split) sends a seed derived from (seed, first).
std::string unit_body(const HttpGeneratorParams& p, bool llama, const std::string& prompt, const ExpandRequest& r,
                      const Unit& u, bool greedy) {
  int max_tokens = p.max_step_tokens;
  if (r.max_new_tokens > 0) max_tokens = std::min(max_tokens, r.max_new_tokens);
  if (llama) {
    const std::uint32_t seed = detail::llamacpp_seed(r.seed) + static_cast<std::uint32_t>(u.first);
    return json::dump(detail::llamacpp_body(p, prompt, u.count, max_tokens, greedy, seed));
  }
  json::Value b = json::Value::object();
  if (!p.client.model.empty()) b.set("model", p.client.model);
  b.set("prompt", prompt);
  b.set("n", static_cast<std::int64_t>(u.count));
  b.set("max_tokens", static_cast<std::int64_t>(max_tokens));
  b.set("temperature", greedy ? 0.0 : p.temperature);
  b.set("top_p", p.top_p);
  b.set("top_k", static_cast<std::int64_t>(p.top_k > 0 ? p.top_k : -1));
  b.set("min_p", p.min_p);
  const std::uint64_t seed = u.first == 0 ? r.seed : mix64(r.seed ^ static_cast<std::uint64_t>(u.first));
  b.set("seed", std::bit_cast<std::int64_t>(seed));
  json::Value stop = json::Value::array();
  stop.push_back(p.step_delimiter);
  b.set("stop", std::move(stop));
  b.set("logprobs", static_cast<std::int64_t>(p.logprobs));
  return json::dump(b);
}

// Units of `count` choices from `first` in pieces of at most `limit` (0: one piece).
void split_into(std::vector<Unit>& out, std::size_t request, int first, int count, int limit) {
  const int piece = limit > 0 ? limit : count;
  for (int k = 0; k < count; k += piece) out.push_back(Unit{request, first + k, std::min(piece, count - k)});
}

}  // namespace

std::vector<std::vector<Step>> HttpGenerator::expand(std::span<const ExpandRequest> batch) {
  const auto t0 = std::chrono::steady_clock::now();
  const auto& p = impl_->params;
  const std::string& who = impl_->name;
  std::vector<int> ns(batch.size());
  std::vector<bool> greedy(batch.size());
  for (std::size_t i = 0; i < batch.size(); ++i) {
    const ExpandRequest& r = batch[i];
    if (r.num_candidates < 1)
      throw InvalidArgument(fmt::format("{}: request {}: num_candidates must be >= 1, got {}", who, i, r.num_candidates));
    greedy[i] = r.greedy || p.temperature <= 0.0;
    ns[i] = greedy[i] ? 1 : r.num_candidates;
  }
  if (batch.empty()) return {};
  const bool llama = impl_->resolve_protocol() == "llama.cpp";
  const std::string path = llama ? std::string(detail::kLlamaCppPath) : p.path;
  std::vector<std::string> prompts(batch.size());
  for (std::size_t i = 0; i < batch.size(); ++i) prompts[i] = prompt_text(batch[i]);

  // Each request's choices, filled unit by unit; a unit dropped (a repeated HTTP 500) leaves
  // its choices empty.
  std::vector<std::vector<std::optional<Step>>> got(batch.size());
  for (std::size_t i = 0; i < batch.size(); ++i) got[i].resize(static_cast<std::size_t>(ns[i]));
  std::vector<Unit> units;
  for (std::size_t i = 0; i < batch.size(); ++i) split_into(units, i, 0, ns[i], impl_->limit());
  std::int64_t dropped = 0, splits = 0;
  std::size_t failed_500 = 0;
  detail::PostOptions opt;
  opt.soft_500 = true;
  opt.soft_4xx = true;
  for (int round = 0; !units.empty(); ++round) {
    std::vector<std::string> bodies;
    bodies.reserve(units.size());
    for (const Unit& u : units) bodies.push_back(unit_body(p, llama, prompts[u.request], batch[u.request], u, greedy[u.request]));
    const std::vector<detail::Reply> replies = impl_->transport->post_all(path, bodies, opt);
    std::vector<Unit> again;
    for (std::size_t j = 0; j < units.size(); ++j) {
      const Unit& u = units[j];
      const detail::Reply& rep = replies[j];
      const std::string url = rep.url + path;
      if (!rep.ok()) {
        const std::optional<int> lim = rep.status == 400 ? detail::n_limit_of(rep.error) : std::nullopt;
        if (lim && *lim < u.count && round < 8) {  // the server limits n: split, remember
          impl_->lower_limit(*lim);
          split_into(again, u.request, u.first, u.count, *lim);
          ++splits;
        } else if (rep.status == 500 && llama && u.count > 1) {  // find the choices that fail
          split_into(again, u.request, u.first, u.count, 1);
        } else if (rep.status == 500) {
          ++dropped;
          ++failed_500;
        } else {
          impl_->transport->count_generator(dropped, splits, 1);
          throw PluginError(fmt::format("{}: POST {} was refused: {}", who, url, rep.error));
        }
        continue;
      }
      const std::string where = fmt::format("{}: reply of {}", who, url);
      auto bad = [&](const std::string& m) { throw PluginError(fmt::format("{}: {}", where, m)); };
      std::vector<const json::Value*> choices;
      if (llama) {
        choices = detail::llamacpp_results(rep.body, u.count, bad);
      } else {
        const json::Value* arr = rep.body.find("choices");
        if (!arr || !arr->is_array()) bad("no \"choices\" array");
        if (arr->as_array().size() != static_cast<std::size_t>(u.count))
          bad(fmt::format("expected {} choices (n), got {}", u.count, arr->as_array().size()));
        choices.assign(static_cast<std::size_t>(u.count), nullptr);
        for (std::size_t k = 0; k < arr->as_array().size(); ++k) {
          const json::Value& c = arr->as_array()[k];
          if (!c.is_object()) bad(fmt::format("choice {} is not an object", k));
          std::size_t idx = k;
          if (const json::Value* x = c.find("index")) {
            if (!x->is_integer() || x->as_int() < 0 || x->as_int() >= u.count)
              bad(fmt::format("choice {}: bad \"index\"", k));
            idx = static_cast<std::size_t>(x->as_int());
          }
          if (choices[idx]) bad(fmt::format("choice index {} given twice", idx));
          choices[idx] = &c;
        }
      }
      for (std::size_t k = 0; k < choices.size(); ++k) {
        bool at_delimiter = false;
        Step s = llama ? detail::llamacpp_step(*choices[k], p, at_delimiter,
                                               [&](const std::string& m) { bad(fmt::format("result {}: {}", k, m)); })
                       : openai_step(*choices[k], p, k, at_delimiter, bad);
        if (!p.answer_marker.empty() && (s.finish == FinishReason::StepEnd || s.finish == FinishReason::Eos) &&
            s.text.find(p.answer_marker) != std::string::npos)
          s.finish = FinishReason::FinalAnswer;
        if (impl_->tokenizer && !llama)
          s.tokens = impl_->tokenizer->encode(at_delimiter ? s.text + p.step_delimiter : s.text);
        got[u.request][static_cast<std::size_t>(u.first) + k] = std::move(s);
      }
    }
    units = std::move(again);
  }
  const bool all_failed = failed_500 > 0 && std::all_of(got.begin(), got.end(), [](const auto& g) {
    return std::none_of(g.begin(), g.end(), [](const auto& s) { return s.has_value(); });
  });
  impl_->transport->count_generator(dropped, splits, all_failed ? 1 : 0);
  if (all_failed)
    throw PluginError(fmt::format("{}: every request of the call failed with HTTP 500 (twice each); the server "
                                  "at {} is failing, not one request's output",
                                  who, impl_->transport->urls()[0]));

  std::vector<std::vector<Step>> out(batch.size());
  for (std::size_t i = 0; i < batch.size(); ++i) {
    for (auto& s : got[i])
      if (s) out[i].push_back(std::move(*s));
    // A greedy request asked the server for one step: it is repeated, as the LibTorch backend does.
    if (greedy[i] && !out[i].empty()) out[i].resize(static_cast<std::size_t>(batch[i].num_candidates), out[i][0]);
  }
  impl_->transport->count_call(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  return out;
}

}  // namespace qstar::http
