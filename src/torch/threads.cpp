// qstar/torch/threads.hpp: ATen's and the BLAS library's compute threads, set together.
#include "qstar/torch/threads.hpp"

#include <ATen/Parallel.h>
#include <dlfcn.h>
#include <sched.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>

#include <fmt/format.h>

#include "qstar/error.hpp"
#include "torch/kernels/small_m_linear.hpp"

namespace qstar::lm {

namespace {

using SetFn = void (*)(int);
using GetFn = int (*)();

/// The BLAS thread control found in the process: OpenBLAS's, else MKL's, else none.
struct Blas {
  SetFn set = nullptr;
  GetFn get = nullptr;
  std::string name;
};

/// A symbol of the loaded libraries: the global scope first (an executable linked to
/// LibTorch), then the BLAS libraries already loaded privately (a Python extension module is
/// dlopen'ed RTLD_LOCAL, so its LibTorch's BLAS is not in the global scope). RTLD_NOLOAD:
/// nothing is loaded that was not.
void* find_symbol(const char* sym, std::initializer_list<const char*> libs) {
  if (void* p = ::dlsym(RTLD_DEFAULT, sym)) return p;
  for (const char* lib : libs) {
    if (void* h = ::dlopen(lib, RTLD_LAZY | RTLD_NOLOAD)) {
      void* p = ::dlsym(h, sym);
      ::dlclose(h);  // drops only the reference RTLD_NOLOAD added
      if (p) return p;
    }
  }
  return nullptr;
}

const Blas& blas() {
  static const Blas b = [] {
    Blas r;
    const auto openblas = {"libopenblas.so.0", "libopenblas.so", "libblas.so.3", "libopenblasp-r0.3.so"};
    if (void* s = find_symbol("openblas_set_num_threads", openblas)) {
      r.set = reinterpret_cast<SetFn>(s);
      r.get = reinterpret_cast<GetFn>(find_symbol("openblas_get_num_threads", openblas));
      r.name = "openblas";
      return r;
    }
    const auto mkl = {"libmkl_rt.so", "libmkl_rt.so.2", "libmkl_rt.so.1"};
    // MKL's C API: mkl_set_num_threads(int) is a macro over MKL_Set_Num_Threads.
    void* s = find_symbol("MKL_Set_Num_Threads", mkl);
    if (!s) s = find_symbol("mkl_set_num_threads", mkl);
    if (s) {
      r.set = reinterpret_cast<SetFn>(s);
      void* g = find_symbol("MKL_Get_Max_Threads", mkl);
      if (!g) g = find_symbol("mkl_get_max_threads", mkl);
      r.get = reinterpret_cast<GetFn>(g);
      r.name = "mkl";
    }
    return r;
  }();
  return b;
}

/// A positive integer environment variable, or 0 (unset, empty or not a positive integer).
int env_threads(const char* name) {
  const char* v = std::getenv(name);
  if (!v || !*v) return 0;
  char* end = nullptr;
  const long n = std::strtol(v, &end, 10);
  if (*end != '\0' || n < 1 || n > 4096) return 0;
  return static_cast<int>(n);
}

/// The CPUs this process may run on (its affinity mask: a container's or taskset's limit).
int usable_cores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof set, &set) == 0) {
    const int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
  return std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
}

std::atomic<bool> g_explicit{false};
std::once_flag g_default_once;

}  // namespace

ThreadSettings set_threads(int aten_threads, int blas_threads) {
  if (aten_threads < 1) throw InvalidArgument(fmt::format("aten_threads: must be >= 1, got {}", aten_threads));
  if (blas_threads < 1) throw InvalidArgument(fmt::format("blas_threads: must be >= 1, got {}", blas_threads));
  g_explicit.store(true);
  const Blas& b = blas();
  at::set_num_threads(aten_threads);  // with MKL this sets MKL's threads too
  if (b.set) b.set(blas_threads);
  kernels::set_threads(blas_threads);  // the decode kernels split rows like the BLAS
  return thread_settings();
}

ThreadSettings set_threads(int n) {
  if (n < 1) throw InvalidArgument(fmt::format("threads: must be >= 1, got {}", n));
  // OpenBLAS (pthread build) has its own pool: the matmuls use it, ATen stays on the calling
  // thread (see the header). MKL runs in ATen's OpenMP pool: one pool, n threads.
  return set_threads(blas().name == "openblas" ? 1 : n, n);
}

ThreadSettings thread_settings() {
  ThreadSettings s;
  s.aten = at::get_num_threads();
  const Blas& b = blas();
  s.blas_library = b.name;
  if (b.get) s.blas = b.get();
  return s;
}

int default_threads() {
  int n = usable_cores();
  for (const char* var : {"OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"})
    if (const int v = env_threads(var); v > 0) n = std::min(n, v);
  return n;
}

void apply_default_threads() {
  std::call_once(g_default_once, [] {
    if (!g_explicit.load()) set_threads(default_threads());
  });
}

bool keep_freed_memory() {
#if defined(__GLIBC__)
  static std::once_flag once;
  bool applied = false;
  std::call_once(once, [&] {
    for (const char* var : {"MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_"})
      if (std::getenv(var) != nullptr) return;
    if (const char* t = std::getenv("GLIBC_TUNABLES"); t != nullptr && std::strstr(t, "glibc.malloc"))
      return;
    ::mallopt(M_MMAP_THRESHOLD, 32 << 20);  // glibc's maximum on 64-bit
    ::mallopt(M_TRIM_THRESHOLD, 1 << 30);
    ::mallopt(M_TOP_PAD, 64 << 20);
    applied = true;
  });
  return applied;
#else
  return false;
#endif
}

}  // namespace qstar::lm
