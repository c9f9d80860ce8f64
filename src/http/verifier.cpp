// HttpVerifier: StepScoreRequests -> POST /pooling (per-step rows) or /classify (one input
// per new step). See include/qstar/http/client.hpp.
#include <fmt/format.h>

#include <chrono>
#include <cmath>

#include "http/transport.hpp"
#include "qstar/core/prompt.hpp"
#include "qstar/error.hpp"
#include "qstar/http/client.hpp"

namespace qstar::http {

namespace {


}  // namespace

void HttpVerifierParams::validate() const {
  auto fail = [](const std::string& m) { throw InvalidArgument("HttpVerifierParams." + m); };
  client.validate();
  if (api != "pooling" && api != "classify") fail(fmt::format("api: '{}' is not one of pooling, classify", api));
  if (!path.empty() && path[0] != '/') fail(fmt::format("path: must start with '/', got '{}'", path));
  if (step_tag.empty()) fail("step_tag: must not be empty");
  if (prompt_template.find("{prompt}") == std::string::npos) fail("prompt_template: must contain \"{prompt}\"");
  if (score_index < 0) fail(fmt::format("score_index: must be >= 0, got {}", score_index));
  if (outcome_aggregation == Aggregation::Custom) fail("outcome_aggregation: custom is not supported here");
}

struct HttpVerifier::Impl {
  HttpVerifierParams params;
  std::string path;
  std::unique_ptr<detail::Transport> transport;
  std::string name;
};

HttpVerifier::HttpVerifier(HttpVerifierParams params) : impl_(std::make_shared<Impl>()) {
  params.validate();
  impl_->params = std::move(params);
  impl_->path = impl_->params.path.empty() ? "/" + impl_->params.api : impl_->params.path;
  std::vector<std::string> urls;
  for (const auto& u : impl_->params.client.base_urls) urls.push_back(detail::normalize_base_url(u));
  impl_->name = fmt::format("http-prm:{}", urls[0]);
  if (urls.size() > 1) impl_->name += fmt::format("+{}", urls.size() - 1);
  impl_->transport = std::make_unique<detail::Transport>(impl_->params.client, impl_->name);
}

HttpVerifier::~HttpVerifier() = default;

std::string HttpVerifier::name() const { return impl_->name; }
std::size_t HttpVerifier::max_batch_size() const { return impl_->params.max_batch; }
const HttpVerifierParams& HttpVerifier::params() const { return impl_->params; }
HttpStats HttpVerifier::stats() const { return impl_->transport->stats(); }

std::string HttpVerifier::text(std::string_view prompt, const TrajectoryView& t, std::size_t num_steps) const {
  const auto& p = impl_->params;
  std::string s = apply_prompt_template(p.prompt_template, prompt);
  for (std::size_t i = 0; i < num_steps && i < t.size(); ++i) {
    if (i > 0) s.append(p.step_separator);
    s.append(t.text(i));
    s.append(p.step_tag);
  }
  return s;
}

std::vector<std::vector<double>> HttpVerifier::score_steps(std::span<const StepScoreRequest> batch) {
  const auto t0 = std::chrono::steady_clock::now();
  const auto& p = impl_->params;
  const bool pooling = p.api == "pooling";
  std::vector<std::string> bodies;
  bodies.reserve(batch.size());
  for (std::size_t i = 0; i < batch.size(); ++i) {
    const StepScoreRequest& r = batch[i];
    const std::size_t n = r.trajectory.size();
    if (r.first_new < 0 || static_cast<std::size_t>(r.first_new) > n)
      throw InvalidArgument(fmt::format("{}: request {}: first_new {} is outside [0, {}]", impl_->name, i,
                                        r.first_new, n));
    for (std::size_t k = 0; k < n; ++k)
      if (r.trajectory.text(k).find(p.step_tag) != std::string_view::npos)
        throw PluginError(fmt::format("{}: request {}: step {} contains the step tag {}, which the server would "
                                      "read as a step boundary",
                                      impl_->name, i, k, json::dump(json::Value(p.step_tag))));
    json::Value b = json::Value::object();
    if (!p.client.model.empty()) b.set("model", p.client.model);
    if (pooling) {
      b.set("input", text(r.prompt, r.trajectory, n));
    } else {
      json::Value inputs = json::Value::array();
      for (std::size_t k = static_cast<std::size_t>(r.first_new); k < n; ++k)
        inputs.push_back(text(r.prompt, r.trajectory, k + 1));
      b.set("input", std::move(inputs));
    }
    bodies.push_back(json::dump(b));
  }
  // Requests with nothing to score still go out for pooling only when they have steps.
  std::vector<std::string> sent;
  std::vector<std::size_t> which;
  for (std::size_t i = 0; i < batch.size(); ++i) {
    if (static_cast<std::size_t>(batch[i].first_new) == batch[i].trajectory.size()) continue;
    sent.push_back(std::move(bodies[i]));
    which.push_back(i);
  }
  const std::vector<detail::Reply> replies = impl_->transport->post_all(impl_->path, sent);

  std::vector<std::vector<double>> out(batch.size());
  auto score_of = [&](const json::Value& row, const std::string& where) {
    if (!row.is_array() || row.as_array().empty()) throw PluginError(fmt::format("{}: a score row is not a non-empty array", where));
    const auto& a = row.as_array();
    const std::size_t col = a.size() == 1 ? 0 : static_cast<std::size_t>(p.score_index);
    if (col >= a.size())
      throw PluginError(fmt::format("{}: score_index {} is outside a row of {} values", where, p.score_index, a.size()));
    if (!a[col].is_number()) throw PluginError(fmt::format("{}: a score is not a number", where));
    const double s = a[col].as_double();
    if (!std::isfinite(s) || s < 0.0 || s > 1.0)
      throw PluginError(fmt::format("{}: score {} is not a finite number in [0, 1]", where, s));
    return s;
  };
  for (std::size_t j = 0; j < which.size(); ++j) {
    const std::size_t i = which[j];
    const StepScoreRequest& r = batch[i];
    const std::size_t n = r.trajectory.size();
    const std::string where = fmt::format("{}: reply of {}{}", impl_->name, replies[j].url, impl_->path);
    const json::Value* data = replies[j].body.find("data");
    if (!data || !data->is_array()) throw PluginError(fmt::format("{}: no \"data\" array", where));
    const auto& d = data->as_array();
    std::vector<double> scores;
    if (pooling) {
      if (d.size() != 1 || !d[0].is_object() || !d[0].contains("data") || !d[0].at("data").is_array())
        throw PluginError(fmt::format("{}: expected one \"data\" item holding a \"data\" array", where));
      const auto& rows = d[0].at("data").as_array();
      if (rows.size() != n)
        throw PluginError(fmt::format(
            "{}: {} score rows for {} steps (the server must pool at the step tag {}, one row per step; "
            "does a step text contain the tag?)",
            where, rows.size(), n, json::dump(json::Value(p.step_tag))));
      for (std::size_t k = static_cast<std::size_t>(r.first_new); k < n; ++k) scores.push_back(score_of(rows[k], where));
    } else {
      const std::size_t want = n - static_cast<std::size_t>(r.first_new);
      if (d.size() != want) throw PluginError(fmt::format("{}: {} results for {} inputs", where, d.size(), want));
      scores.assign(want, 0.0);
      std::vector<bool> seen(want, false);
      for (std::size_t k = 0; k < want; ++k) {
        if (!d[k].is_object()) throw PluginError(fmt::format("{}: result {} is not an object", where, k));
        std::size_t idx = k;
        if (const json::Value* x = d[k].find("index")) {
          if (!x->is_integer() || x->as_int() < 0 || x->as_int() >= static_cast<std::int64_t>(want) ||
              seen[static_cast<std::size_t>(x->as_int())])
            throw PluginError(fmt::format("{}: result {} has a bad \"index\"", where, k));
          idx = static_cast<std::size_t>(x->as_int());
        }
        seen[idx] = true;
        const json::Value* probs = d[k].find("probs");
        if (!probs) throw PluginError(fmt::format("{}: result {} has no \"probs\"", where, k));
        scores[idx] = score_of(*probs, where);
      }
    }
    out[i] = std::move(scores);
  }
  impl_->transport->count_call(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  return out;
}

std::vector<double> HttpVerifier::score_outcomes(std::span<const OutcomeRequest> batch) {
  std::vector<StepScoreRequest> reqs;
  reqs.reserve(batch.size());
  for (const auto& o : batch) {
    StepScoreRequest r;
    r.problem_index = o.problem_index;
    r.problem = o.problem;
    r.prompt = o.prompt;
    r.trajectory = o.trajectory;
    r.first_new = 0;
    reqs.push_back(r);
  }
  const auto scores = score_steps(reqs);
  std::vector<double> out;
  out.reserve(batch.size());
  for (const auto& s : scores) out.push_back(aggregate(s, impl_->params.outcome_aggregation));
  return out;
}

}  // namespace qstar::http
