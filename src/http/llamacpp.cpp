// llama.cpp's server, native protocol: request body and reply parsing for HttpGenerator.
#include "http/llamacpp.hpp"

#include <fmt/format.h>

#include <cmath>

namespace qstar::http::detail {

namespace {

double finite(const json::Value& x, const Bad& bad, std::string_view what) {
  if (!x.is_number() || !std::isfinite(x.as_double())) bad(fmt::format("{} is not a finite number", what));
  return x.as_double();
}

const json::Value& member(const json::Value& o, std::string_view key, const Bad& bad) {
  const json::Value* v = o.find(key);
  if (!v) bad(fmt::format("no \"{}\"", key));
  return *v;
}

}  // namespace

std::uint32_t llamacpp_seed(std::uint64_t seed) {
  std::uint64_t z = seed + 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  z ^= z >> 31;
  return static_cast<std::uint32_t>(z >> 33);  // 31 bits
}

json::Value llamacpp_body(const HttpGeneratorParams& p, const std::string& prompt, int n, int max_tokens,
                          bool greedy, std::uint32_t seed) {
  json::Value b = json::Value::object();
  if (!p.client.model.empty()) b.set("model", p.client.model);
  b.set("prompt", prompt);
  b.set("n", static_cast<std::int64_t>(n));
  b.set("n_predict", static_cast<std::int64_t>(max_tokens));
  b.set("temperature", greedy ? 0.0 : p.temperature);
  b.set("top_k", static_cast<std::int64_t>(p.top_k > 0 ? p.top_k : 0));  // <= 0: off
  b.set("top_p", p.top_p);
  b.set("min_p", p.min_p);
  // The other samplers of llama.cpp's chain, neutral (a server started with other defaults
  // would apply them silently).
  b.set("typical_p", 1.0);
  b.set("top_n_sigma", -1.0);
  b.set("xtc_probability", 0.0);
  b.set("dynatemp_range", 0.0);
  b.set("repeat_penalty", 1.0);
  b.set("presence_penalty", 0.0);
  b.set("frequency_penalty", 0.0);
  b.set("dry_multiplier", 0.0);
  b.set("mirostat", static_cast<std::int64_t>(0));
  b.set("seed", static_cast<std::int64_t>(seed));
  json::Value stop = json::Value::array();
  stop.push_back(p.step_delimiter);
  b.set("stop", std::move(stop));
  // At least the sampled token's probability: the step logprob needs it.
  b.set("n_probs", static_cast<std::int64_t>(std::max(1, p.logprobs)));
  b.set("return_tokens", true);
  // Off: a cached prefix is computed with other batch shapes than a fresh prompt, which
  // llama.cpp documents can change the logits, and so the sampled step, for the same seed.
  b.set("cache_prompt", false);
  json::Value fields = json::Value::array();
  for (const char* f : {"index", "content", "tokens", "tokens_predicted", "stop_type", "completion_probabilities"})
    fields.push_back(std::string(f));
  b.set("response_fields", std::move(fields));
  return b;
}

std::vector<const json::Value*> llamacpp_results(const json::Value& body, int n, const Bad& bad) {
  std::vector<const json::Value*> out(static_cast<std::size_t>(n), nullptr);
  std::vector<const json::Value*> all;
  if (body.is_object()) {
    all.push_back(&body);
  } else if (body.is_array()) {
    for (const auto& r : body.as_array()) all.push_back(&r);
  } else {
    bad("not a result object or an array of them");
  }
  if (all.size() != out.size()) bad(fmt::format("expected {} results (n), got {}", n, all.size()));
  for (std::size_t k = 0; k < all.size(); ++k) {
    const json::Value& r = *all[k];
    if (!r.is_object()) bad(fmt::format("result {} is not an object", k));
    std::size_t idx = k;
    if (const json::Value* x = r.find("index")) {
      if (!x->is_integer() || x->as_int() < 0 || x->as_int() >= n) bad(fmt::format("result {}: bad \"index\"", k));
      idx = static_cast<std::size_t>(x->as_int());
    }
    if (out[idx]) bad(fmt::format("result index {} given twice", idx));
    out[idx] = &r;
  }
  return out;
}

Step llamacpp_step(const json::Value& r, const HttpGeneratorParams& p, bool& at_delimiter, const Bad& bad) {
  Step s;
  const json::Value& content = member(r, "content", bad);
  if (!content.is_string()) bad("\"content\" is not a string");
  s.text = content.as_string();
  bool cut = false;
  if (const auto at = s.text.find(p.step_delimiter); at != std::string::npos) {
    s.text.resize(at);
    cut = true;
  }
  const json::Value& why = member(r, "stop_type", bad);
  const std::string stop = why.is_string() ? why.as_string() : "";
  if (stop == "eos") {
    s.finish = FinishReason::Eos;
  } else if (stop == "word" || cut) {
    s.finish = FinishReason::StepEnd;
  } else if (stop == "limit") {
    s.finish = FinishReason::Length;
  } else {
    bad(fmt::format("stop_type '{}' is not one of eos, word, limit", stop));
  }
  at_delimiter = s.finish == FinishReason::StepEnd;

  // Every generated id (return_tokens), the EOS token last when stop_type is "eos": the step's
  // tokens are those without EOS, as the LibTorch backend counts them.
  const json::Value& toks = member(r, "tokens", bad);
  if (!toks.is_array()) bad("\"tokens\" is not an array (the server must honour return_tokens)");
  for (const auto& t : toks.as_array()) {
    if (!t.is_integer() || t.as_int() < 0 || t.as_int() > INT32_MAX) bad("\"tokens\": not a token id");
    s.tokens.push_back(static_cast<std::int32_t>(t.as_int()));
  }
  if (const json::Value* tp = r.find("tokens_predicted"); tp && tp->is_integer() && tp->as_int() != static_cast<std::int64_t>(s.tokens.size()))
    bad(fmt::format("tokens_predicted = {} but {} token ids", tp->as_int(), s.tokens.size()));
  const bool eos = s.finish == FinishReason::Eos;
  if (eos && !s.tokens.empty()) s.tokens.pop_back();
  s.num_tokens = static_cast<std::int32_t>(s.tokens.size());

  // Log-probabilities: the server lists a subsequence of the tokens (it leaves out a token
  // that ends inside a UTF-8 character, and the last tokens of a stop-string stop).
  const json::Value* probs = r.find("completion_probabilities");
  std::vector<float> lps;
  std::vector<float> ents;
  bool entropies = true;
  double sum = 0.0;
  std::size_t pos = 0;
  if (probs && !probs->is_null()) {
    if (!probs->is_array()) bad("\"completion_probabilities\" is not an array");
    const auto& arr = probs->as_array();
    for (std::size_t j = 0; j < arr.size(); ++j) {
      const json::Value& e = arr[j];
      const std::string what = fmt::format("completion_probabilities[{}]", j);
      if (!e.is_object()) bad(what + " is not an object");
      const json::Value& id = member(e, "id", [&](const std::string& m) { bad(what + ": " + m); });
      const double lp = finite(member(e, "logprob", [&](const std::string& m) { bad(what + ": " + m); }), bad,
                               what + ".logprob");
      if (!id.is_integer()) bad(what + ".id is not an integer");
      while (pos < s.tokens.size() && s.tokens[pos] != id.as_int()) ++pos;
      if (pos == s.tokens.size()) {
        if (eos && j + 1 == arr.size()) break;  // the EOS token's own entry
        bad(what + ": a token id that is not among the generated tokens, in order");
      }
      ++pos;
      sum += lp;
      lps.push_back(static_cast<float>(lp));
      double h = 0.0;
      const json::Value* top = e.find("top_logprobs");
      if (!top || !top->is_array() || top->as_array().empty()) {
        entropies = false;
      } else {
        for (const auto& a : top->as_array()) {
          const json::Value* y = a.is_object() ? a.find("logprob") : nullptr;
          if (!y) bad(what + ".top_logprobs: an entry without \"logprob\"");
          const double x = finite(*y, bad, what + ".top_logprobs");
          h -= std::exp(x) * x;
        }
        ents.push_back(static_cast<float>(h));
      }
    }
  }
  s.logprob = std::min(sum, 0.0);
  if (lps.size() == s.tokens.size()) {  // every token listed: exact per-token statistics
    s.token_logprobs = std::move(lps);
    if (entropies) s.token_entropies = std::move(ents);
  }
  return s;
}

std::optional<int> n_limit_of(std::string_view m) {
  if (m.find("'n'") == std::string_view::npos && m.find("'n_cmpl'") == std::string_view::npos) return std::nullopt;
  const std::string_view key = "<= value <= ";
  const auto at = m.find(key);
  if (at == std::string_view::npos) return std::nullopt;
  std::int64_t v = 0;
  std::size_t i = at + key.size(), digits = 0;
  for (; i < m.size() && m[i] >= '0' && m[i] <= '9' && digits < 9; ++i, ++digits) v = v * 10 + (m[i] - '0');
  if (digits == 0 || v < 1) return std::nullopt;
  return static_cast<int>(v);
}

bool is_llamacpp_models_reply(const json::Value& models) {
  const json::Value* data = models.find("data");
  if (!data || !data->is_array()) return false;
  for (const auto& m : data->as_array()) {
    const json::Value* o = m.find("owned_by");
    if (o && o->is_string() && o->as_string() == "llamacpp") return true;
  }
  return false;
}

}  // namespace qstar::http::detail
