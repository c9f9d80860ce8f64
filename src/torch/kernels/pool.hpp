// Internal: the kernels' thread pool. parallel_for(parts, f) runs f(0) on the caller and
// f(1) .. f(parts - 1) on pooled workers, and returns when all are done. Workers spin
// briefly after a job (a decode step calls the kernels back to back), then block on a
// condition variable: no OpenMP region, nothing spins between forwards. A call made while
// another thread's call is using the pool runs all parts on the caller (still correct).
#pragma once

#include <utility>

namespace qstar::lm::kernels {

/// Runs fn(ctx, p) for p in [0, parts): p = 0 on the calling thread, the others on the pool
/// (grown to parts - 1 workers on first use).
void parallel_for_raw(int parts, void (*fn)(void*, int), void* ctx);

template <class F>
void parallel_for(int parts, F&& f) {
  parallel_for_raw(
      parts, [](void* c, int p) { (*static_cast<std::remove_reference_t<F>*>(c))(p); },
      const_cast<void*>(static_cast<const void*>(&f)));
}

}  // namespace qstar::lm::kernels
