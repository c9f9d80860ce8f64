// The LibTorch backends from Python: qstar.LMGenerator(path, **params) and
// qstar.PRM(path, kind=..., **params). Keyword parameters are the fields of
// lm::LMGeneratorParams / lm::PrmParams (same names and defaults, validated by their
// validate()). No tensor crosses the boundary, so libtorch_python is not needed.
#include "common.hpp"

#ifdef QSTAR_HAS_TORCH
#include <string>

#include <fmt/format.h>

#include "kwargs.hpp"
#include "qstar/torch/lm_generator.hpp"
#include "qstar/torch/prm.hpp"
#include "qstar/torch/threads.hpp"
#endif

namespace qstar::python {

#ifdef QSTAR_HAS_TORCH
namespace {

using namespace pybind11::literals;

template <class P, class F>
void for_each_lm_field(P& p, F&& f) {
  f("device", p.device);
  f("dtype", p.dtype);
  f("step_delimiter", p.step_delimiter);
  f("answer_marker", p.answer_marker);
  f("max_step_tokens", p.max_step_tokens);
  f("temperature", p.temperature);
  f("top_p", p.top_p);
  f("top_k", p.top_k);
  f("kv_cache_bytes", p.kv_cache_bytes);
  f("use_cache", p.use_cache);
  f("max_batch", p.max_batch);
  f("prompt_template", p.prompt_template);
  f("add_special_tokens", p.add_special_tokens);
  f("record_forwards", p.record_forwards);
  f("token_stats", p.token_stats);
}

template <class P, class F>
void for_each_prm_field(P& p, F&& f) {
  f("kind", p.kind);
  f("device", p.device);
  f("dtype", p.dtype);
  f("step_tag", p.step_tag);
  f("good_token", p.good_token);
  f("bad_token", p.bad_token);
  f("step_separator", p.step_separator);
  f("prompt_template", p.prompt_template);
  f("chat_template", p.chat_template);
  f("chat_system", p.chat_system);
  f("outcome_aggregation", p.outcome_aggregation);
  f("kv_cache_bytes", p.kv_cache_bytes);
  f("share_min_tokens", p.share_min_tokens);
  f("max_batch", p.max_batch);
  f("tokenizer", p.tokenizer);
}

struct LMGeneratorPy : GeneratorHandle {
  std::optional<lm::LMGenerator> lm;
};
struct PrmPy : VerifierHandle {
  std::optional<lm::PrmVerifier> prm;
};

}  // namespace

void bind_torch(py::module_& m) {
  py::class_<LMGeneratorPy, GeneratorHandle>(
      m, "LMGenerator",
      "The LibTorch language-model generator (Llama/Qwen2/Qwen3/Mistral Hugging Face folder: config.json, model.safetensors, "
      "tokenizer.json). Keyword parameters: the fields of qstar::lm::LMGeneratorParams.")
      .def(py::init([](const std::string& path, const py::kwargs& kw) {
             auto params = params_from_kwargs<lm::LMGeneratorParams>(
                 "LMGeneratorParams", kw, [](auto& p, auto&& f) { for_each_lm_field(p, f); });
             auto g = std::make_unique<LMGeneratorPy>();
             {
               py::gil_scoped_release release;
               lm::apply_default_threads();  // unless qstar.set_threads was called
               g->lm.emplace(lm::LMGenerator::load(path, params));
             }
             g->gen.emplace(*g->lm);  // copies share the model, cache and stats
             g->label = fmt::format("LMGenerator('{}')", path);
             return g;
           }),
           "path"_a)
      .def_property_readonly("params",
                             [](const LMGeneratorPy& g) {
                               return params_dict(g.lm->params(), [](auto& p, auto&& f) { for_each_lm_field(p, f); });
                             })
      .def(
          "stats",
          [](const LMGeneratorPy& g) {
            const auto s = g.lm->stats();
            py::dict d;
            d["expand_calls"] = s.expand_calls;
            d["requests"] = s.requests;
            d["prefill_tokens_computed"] = s.prefill_tokens_computed;
            d["cached_tokens_reused"] = s.cached_tokens_reused;
            d["decode_tokens"] = s.decode_tokens;
            d["generated_tokens"] = s.generated_tokens;
            d["forward_calls"] = s.forward_calls;
            d["sequences"] = s.sequences;
            d["steps"] = s.steps;
            d["prefill_seconds"] = s.prefill_seconds;
            d["decode_seconds"] = s.decode_seconds;
            d["forward_seconds"] = s.forward_seconds;
            d["sample_seconds"] = s.sample_seconds;
            d["cache_bytes"] = s.cache_bytes;
            d["cache_tokens"] = s.cache_tokens;
            d["cache_evictions"] = s.cache_evictions;
            return d;
          },
          "Compute counters since load or reset_stats().")
      .def("reset_stats", [](LMGeneratorPy& g) { g.lm->reset_stats(); })
      .def("clear_cache", [](LMGeneratorPy& g) { g.lm->clear_cache(); })
      .def(
          "tokenize", [](const LMGeneratorPy& g, const std::string& text) { return g.lm->tokenizer().encode(text); },
          "text"_a)
      .def_property_readonly(
          "tokenizer", [](const LMGeneratorPy& g) { return g.lm->tokenizer(); },
          "The model's tokenizer (a qstar.Tokenizer sharing the loaded tokenizer.json).");

  py::class_<PrmPy, VerifierHandle>(
      m, "PRM",
      "A LibTorch process (or outcome) reward model from a model folder or TorchScript file; kind "
      "'token-logit', 'chat-logit', 'token-class', 'process-reward', 'value-head', 'reward-model', "
      "'seq-class' (the last two score outcomes only), 'torchscript' or 'auto' (from config.json's "
      "architecture). Keyword parameters: the fields of qstar::lm::PrmParams.")
      .def(py::init([](const std::string& path, const std::string& kind, const py::kwargs& kw) {
             auto params = params_from_kwargs<lm::PrmParams>("PrmParams", kw,
                                                             [](auto& p, auto&& f) { for_each_prm_field(p, f); });
             params.kind = kind;
             auto v = std::make_unique<PrmPy>();
             {
               py::gil_scoped_release release;
               lm::apply_default_threads();
               v->prm.emplace(lm::PrmVerifier::load(path, params));
             }
             if (!v->prm->outcome_only()) v->step.emplace(*v->prm);  // reward models: outcomes only
             v->outcome.emplace(*v->prm);
             v->label = v->prm->name();
             return v;
           }),
           "path"_a, "kind"_a = "auto")
      .def_property_readonly("kind", [](const PrmPy& v) { return v.prm->kind(); })
      .def_property_readonly("params",
                             [](const PrmPy& v) {
                               return params_dict(v.prm->params(), [](auto& p, auto&& f) { for_each_prm_field(p, f); });
                             })
      .def("stats",
           [](const PrmPy& v) {
             const auto s = v.prm->stats();
             py::dict d;
             d["calls"] = s.calls;
             d["requests"] = s.requests;
             d["steps_scored"] = s.steps_scored;
             d["forwards"] = s.forwards;
             d["tokens_computed"] = s.tokens_computed;
             d["tokens_reused"] = s.tokens_reused;
             d["cache_bytes"] = s.cache_bytes;
             d["cache_tokens"] = s.cache_tokens;
             return d;
           })
      .def("reset_stats", [](PrmPy& v) { v.prm->reset_stats(); })
      .def("clear_cache", [](PrmPy& v) { v.prm->clear_cache(); });

  m.def(
      "set_threads",
      [](int n) {
        const auto s = lm::set_threads(n);
        py::dict d;
        d["aten"] = s.aten;
        d["blas"] = s.blas;
        d["blas_library"] = s.blas_library;
        return d;
      },
      "n"_a,
      "Sets the compute threads of the LibTorch models (ATen's intra-op pool and the BLAS's, "
      "together; process-wide) to n >= 1 and returns {'aten', 'blas', 'blas_library'} as set.");
}
#else
void bind_torch(py::module_&) {}
#endif

}  // namespace qstar::python
