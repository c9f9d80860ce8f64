// The HTTP plug-ins from Python: qstar.HttpGenerator(urls, **params) (an OpenAI-compatible
// /v1/completions server: vLLM, SGLang, llama.cpp, `qstar serve`) and
// qstar.HttpVerifier(urls, **params) (a reward model behind /pooling or /classify). Keyword
// parameters are the fields of http::HttpGeneratorParams / HttpVerifierParams and of their
// ClientParams, flat (same names and defaults, validated by their validate()).
#include "common.hpp"

#ifdef QSTAR_HAS_HTTP
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "kwargs.hpp"
#include "qstar/http/client.hpp"
#endif

namespace qstar::python {

#ifdef QSTAR_HAS_HTTP
namespace {

using namespace pybind11::literals;

template <class P, class F>
void for_each_client_field(P& c, F&& f) {
  f("balance", c.balance);
  f("max_in_flight", c.max_in_flight);
  f("connect_timeout_s", c.connect_timeout_s);
  f("request_timeout_s", c.request_timeout_s);
  f("max_retries", c.max_retries);
  f("backoff_initial_s", c.backoff_initial_s);
  f("backoff_max_s", c.backoff_max_s);
  f("url_cooldown_s", c.url_cooldown_s);
  f("api_key_env", c.api_key_env);
  f("model", c.model);
  f("verify_tls", c.verify_tls);
}

template <class P, class F>
void for_each_generator_field(P& p, F&& f) {
  f("path", p.path);
  f("step_delimiter", p.step_delimiter);
  f("answer_marker", p.answer_marker);
  f("max_step_tokens", p.max_step_tokens);
  f("temperature", p.temperature);
  f("top_p", p.top_p);
  f("top_k", p.top_k);
  f("logprobs", p.logprobs);
  f("prompt_template", p.prompt_template);
  f("max_batch", p.max_batch);
  for_each_client_field(p.client, f);
}

template <class P, class F>
void for_each_verifier_field(P& p, F&& f) {
  f("api", p.api);
  f("path", p.path);
  f("step_tag", p.step_tag);
  f("step_separator", p.step_separator);
  f("prompt_template", p.prompt_template);
  f("score_index", p.score_index);
  f("outcome_aggregation", p.outcome_aggregation);
  f("max_batch", p.max_batch);
  for_each_client_field(p.client, f);
}

/// Base URLs from "http://a:1,http://b:2" or a list of str.
std::vector<std::string> urls_from(py::handle urls) {
  if (PyUnicode_Check(urls.ptr())) return http::split_urls(urls.cast<std::string>());
  std::vector<std::string> out;
  assign_py("ClientParams", "base_urls", out, urls);
  return out;
}

py::dict stats_dict(const http::HttpStats& s) {
  py::dict d;
  d["calls"] = s.calls;
  d["requests"] = s.requests;
  d["attempts"] = s.attempts;
  d["retries"] = s.retries;
  d["failures"] = s.failures;
  d["bytes_sent"] = s.bytes_sent;
  d["bytes_received"] = s.bytes_received;
  d["seconds"] = s.seconds;
  d["per_url"] = s.per_url;
  return d;
}

struct HttpGeneratorPy : GeneratorHandle {
  std::optional<http::HttpGenerator> client;
};
struct HttpVerifierPy : VerifierHandle {
  std::optional<http::HttpVerifier> client;
};

}  // namespace

void bind_http(py::module_& m) {
  py::class_<HttpGeneratorPy, GeneratorHandle>(
      m, "HttpGenerator",
      "A generator over an OpenAI-compatible POST /v1/completions server (vLLM, SGLang, llama.cpp, qstar serve). "
      "urls: a base URL, a comma-separated list or a list. Keyword parameters: the fields of "
      "qstar::http::HttpGeneratorParams and its ClientParams.")
      .def(py::init([](py::handle urls, const py::kwargs& kw) {
             auto params = params_from_kwargs<http::HttpGeneratorParams>(
                 "HttpGeneratorParams", kw, [](auto& p, auto&& f) { for_each_generator_field(p, f); });
             params.client.base_urls = urls_from(urls);
             auto g = std::make_unique<HttpGeneratorPy>();
             g->client.emplace(std::move(params));
             g->gen.emplace(*g->client);  // copies share the transport and the stats
             g->label = g->client->name();
             return g;
           }),
           "urls"_a)
      .def_property_readonly("params",
                             [](const HttpGeneratorPy& g) {
                               py::dict d = params_dict(g.client->params(),
                                                        [](auto& p, auto&& f) { for_each_generator_field(p, f); });
                               d["base_urls"] = g.client->params().client.base_urls;
                               return d;
                             })
      .def("stats", [](const HttpGeneratorPy& g) { return stats_dict(g.client->stats()); },
           "Request counters since construction.");

  py::class_<HttpVerifierPy, VerifierHandle>(
      m, "HttpVerifier",
      "A process (and outcome) reward model behind vLLM's POST /pooling or a /classify endpoint. urls: a base "
      "URL, a comma-separated list or a list. Keyword parameters: the fields of "
      "qstar::http::HttpVerifierParams and its ClientParams.")
      .def(py::init([](py::handle urls, const py::kwargs& kw) {
             auto params = params_from_kwargs<http::HttpVerifierParams>(
                 "HttpVerifierParams", kw, [](auto& p, auto&& f) { for_each_verifier_field(p, f); });
             params.client.base_urls = urls_from(urls);
             auto v = std::make_unique<HttpVerifierPy>();
             v->client.emplace(std::move(params));
             v->step.emplace(*v->client);
             v->outcome.emplace(*v->client);
             v->label = v->client->name();
             return v;
           }),
           "urls"_a)
      .def_property_readonly("params",
                             [](const HttpVerifierPy& v) {
                               py::dict d = params_dict(v.client->params(),
                                                        [](auto& p, auto&& f) { for_each_verifier_field(p, f); });
                               d["base_urls"] = v.client->params().client.base_urls;
                               return d;
                             })
      .def("stats", [](const HttpVerifierPy& v) { return stats_dict(v.client->stats()); },
           "Request counters since construction.");
}
#else
void bind_http(py::module_&) {}
#endif

}  // namespace qstar::python
