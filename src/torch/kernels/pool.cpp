// The kernels' thread pool (pool.hpp).
#include "torch/kernels/pool.hpp"

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define QSTAR_PAUSE() _mm_pause()
#else
#define QSTAR_PAUSE() ((void)0)
#endif

namespace qstar::lm::kernels {

namespace {

/// Iterations a worker spins (pause) for the next job before blocking: about 20-50 us.
constexpr int kSpin = 2000;

class Pool {
 public:
  ~Pool() {
    {
      std::lock_guard<std::mutex> lk(mu_);
      stop_.store(true);
      gen_.fetch_add(1);
    }
    cv_.notify_all();
    for (auto& t : workers_) t.join();
  }

  /// False when another thread holds the pool, or in a child forked after the workers
  /// started (it has none of them): the caller then runs everything itself.
  bool run(int parts, void (*fn)(void*, int), void* ctx) {
    if (::getpid() != owner_) return false;
    std::unique_lock<std::mutex> busy(busy_, std::try_to_lock);
    if (!busy.owns_lock()) return false;
    while (static_cast<int>(workers_.size()) < parts - 1) {
      const int id = static_cast<int>(workers_.size()) + 1;
      const std::uint64_t g = gen_.load();  // the new worker waits for the next job
      workers_.emplace_back([this, id, g] { loop(id, g); });
    }
    fn_ = fn;
    ctx_ = ctx;
    parts_ = parts;
    remaining_.store(static_cast<int>(workers_.size()));  // every worker acknowledges
    gen_.fetch_add(1);  // seq_cst: pairs with the sleepers_ check in loop()
    if (sleepers_.load() > 0) {
      std::lock_guard<std::mutex> lk(mu_);
      cv_.notify_all();
    }
    fn(ctx, 0);
    for (int i = 0; remaining_.load(std::memory_order_acquire) > 0; ++i) {
      if (i < kSpin) QSTAR_PAUSE();
      else std::this_thread::yield();
    }
    return true;
  }

 private:
  void loop(int id, std::uint64_t seen) {
    for (;;) {
      std::uint64_t g = gen_.load(std::memory_order_acquire);
      for (int i = 0; g == seen && i < kSpin; ++i) {
        QSTAR_PAUSE();
        g = gen_.load(std::memory_order_acquire);
      }
      if (g == seen) {
        std::unique_lock<std::mutex> lk(mu_);
        sleepers_.fetch_add(1);
        cv_.wait(lk, [&] { return gen_.load() != seen; });
        sleepers_.fetch_sub(1);
        g = gen_.load();
      }
      seen = g;
      if (stop_.load()) return;
      if (id < parts_) fn_(ctx_, id);
      remaining_.fetch_sub(1, std::memory_order_acq_rel);
    }
  }

  std::mutex busy_, mu_;
  std::condition_variable cv_;
  std::vector<std::thread> workers_;
  std::atomic<std::uint64_t> gen_{0};
  std::atomic<int> remaining_{0}, sleepers_{0};
  void (*fn_)(void*, int) = nullptr;
  void* ctx_ = nullptr;
  int parts_ = 0;
  std::atomic<bool> stop_{false};
  const pid_t owner_ = ::getpid();
};

/// Never destroyed: the workers end with the process (no join at exit, nothing to join in
/// a forked child).
Pool& pool() {
  static Pool* p = new Pool;
  return *p;
}

}  // namespace

void parallel_for_raw(int parts, void (*fn)(void*, int), void* ctx) {
  if (parts <= 1 || !pool().run(parts, fn, ctx)) {
    for (int p = 0; p < parts; ++p) fn(ctx, p);
  }
}

}  // namespace qstar::lm::kernels
