// Type-erased plug-ins for the boundaries (CLI, Python bindings, compiled backends):
// AnyGenerator, AnyStepVerifier, AnyOutcomeVerifier. Inside C++ code prefer the concrete
// types: the searches are templates and inline zero-cost plug-ins.
//
// Each wraps any type satisfying its concept, either owning a copy (`AnyGenerator(g)`) or
// referring to one that outlives it (`AnyGenerator::ref(g)`). Copies share the plug-in.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "qstar/core/concepts.hpp"

namespace qstar {

namespace detail {
template <class P>
struct Holder {
  // Owns the plug-in (value) or points at it (reference).
  std::conditional_t<std::is_reference_v<P>, std::remove_reference_t<P>*, P> p;
  auto& get() {
    if constexpr (std::is_reference_v<P>) return *p;
    else return p;
  }
  const auto& get() const {
    if constexpr (std::is_reference_v<P>) return *p;
    else return p;
  }
};
}  // namespace detail

class AnyGenerator {
  struct Iface {
    virtual ~Iface() = default;
    virtual std::vector<std::vector<Step>> expand(std::span<const ExpandRequest>) = 0;
    virtual std::string name() const = 0;
    virtual std::size_t max_batch_size() const = 0;
  };
  template <class P>
  struct Impl final : Iface {
    detail::Holder<P> h;
    explicit Impl(detail::Holder<P> x) : h(std::move(x)) {}
    std::vector<std::vector<Step>> expand(std::span<const ExpandRequest> b) override { return h.get().expand(b); }
    std::string name() const override { return plugin_name(h.get(), "generator"); }
    std::size_t max_batch_size() const override { return plugin_max_batch(h.get()); }
  };

 public:
  template <Generator G>
    requires(!std::is_same_v<std::remove_cvref_t<G>, AnyGenerator>)
  AnyGenerator(G g)  // NOLINT(google-explicit-constructor): erasure is the point
      : impl_(std::make_shared<Impl<G>>(detail::Holder<G>{std::move(g)})) {}
  template <Generator G>
  static AnyGenerator ref(G& g) {
    AnyGenerator a;
    a.impl_ = std::make_shared<Impl<G&>>(detail::Holder<G&>{&g});
    return a;
  }
  std::vector<std::vector<Step>> expand(std::span<const ExpandRequest> b) { return impl_->expand(b); }
  std::string name() const { return impl_->name(); }
  std::size_t max_batch_size() const { return impl_->max_batch_size(); }

 private:
  AnyGenerator() = default;
  std::shared_ptr<Iface> impl_;
};

class AnyStepVerifier {
  struct Iface {
    virtual ~Iface() = default;
    virtual std::vector<std::vector<double>> score_steps(std::span<const StepScoreRequest>) = 0;
    virtual std::string name() const = 0;
    virtual std::size_t max_batch_size() const = 0;
  };
  template <class P>
  struct Impl final : Iface {
    detail::Holder<P> h;
    explicit Impl(detail::Holder<P> x) : h(std::move(x)) {}
    std::vector<std::vector<double>> score_steps(std::span<const StepScoreRequest> b) override {
      return h.get().score_steps(b);
    }
    std::string name() const override { return plugin_name(h.get(), "verifier"); }
    std::size_t max_batch_size() const override { return plugin_max_batch(h.get()); }
  };

 public:
  template <StepVerifier V>
    requires(!std::is_same_v<std::remove_cvref_t<V>, AnyStepVerifier>)
  AnyStepVerifier(V v) : impl_(std::make_shared<Impl<V>>(detail::Holder<V>{std::move(v)})) {}
  template <StepVerifier V>
  static AnyStepVerifier ref(V& v) {
    AnyStepVerifier a;
    a.impl_ = std::make_shared<Impl<V&>>(detail::Holder<V&>{&v});
    return a;
  }
  std::vector<std::vector<double>> score_steps(std::span<const StepScoreRequest> b) {
    return impl_->score_steps(b);
  }
  std::string name() const { return impl_->name(); }
  std::size_t max_batch_size() const { return impl_->max_batch_size(); }

 private:
  AnyStepVerifier() = default;
  std::shared_ptr<Iface> impl_;
};

class AnyOutcomeVerifier {
  struct Iface {
    virtual ~Iface() = default;
    virtual std::vector<double> score_outcomes(std::span<const OutcomeRequest>) = 0;
    virtual std::string name() const = 0;
    virtual std::size_t max_batch_size() const = 0;
  };
  template <class P>
  struct Impl final : Iface {
    detail::Holder<P> h;
    explicit Impl(detail::Holder<P> x) : h(std::move(x)) {}
    std::vector<double> score_outcomes(std::span<const OutcomeRequest> b) override {
      return h.get().score_outcomes(b);
    }
    std::string name() const override { return plugin_name(h.get(), "verifier"); }
    std::size_t max_batch_size() const override { return plugin_max_batch(h.get()); }
  };

 public:
  template <OutcomeVerifier V>
    requires(!std::is_same_v<std::remove_cvref_t<V>, AnyOutcomeVerifier>)
  AnyOutcomeVerifier(V v) : impl_(std::make_shared<Impl<V>>(detail::Holder<V>{std::move(v)})) {}
  template <OutcomeVerifier V>
  static AnyOutcomeVerifier ref(V& v) {
    AnyOutcomeVerifier a;
    a.impl_ = std::make_shared<Impl<V&>>(detail::Holder<V&>{&v});
    return a;
  }
  std::vector<double> score_outcomes(std::span<const OutcomeRequest> b) { return impl_->score_outcomes(b); }
  std::string name() const { return impl_->name(); }
  std::size_t max_batch_size() const { return impl_->max_batch_size(); }

 private:
  AnyOutcomeVerifier() = default;
  std::shared_ptr<Iface> impl_;
};

static_assert(Generator<AnyGenerator>);
static_assert(StepVerifier<AnyStepVerifier>);
static_assert(OutcomeVerifier<AnyOutcomeVerifier>);

}  // namespace qstar
