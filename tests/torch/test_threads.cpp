// qstar::lm::set_threads (qstar/torch/threads.hpp) against what ATen and OpenBLAS themselves
// report, its default under the usual environment variables, and the CLI's --threads.
#include <ATen/Parallel.h>
#include <dlfcn.h>
#include <sched.h>

#include <cstdlib>
#include <optional>
#include <string>
#include <utility>

#include "../cli_run.hpp"
#include "qstar/error.hpp"
#include "qstar/torch/threads.hpp"
#include "support/tiny_model.hpp"

#include <doctest/doctest.h>

namespace {

/// OpenBLAS's own report of its threads, looked up here (not through qstar); nullopt when
/// the process has no OpenBLAS (e.g. an MKL LibTorch).
std::optional<int> openblas_threads() {
  using GetFn = int (*)();
  void* s = ::dlsym(RTLD_DEFAULT, "openblas_get_num_threads");
  if (!s) return std::nullopt;
  return reinterpret_cast<GetFn>(s)();
}

int cores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  REQUIRE(::sched_getaffinity(0, sizeof set, &set) == 0);
  return CPU_COUNT(&set);
}

/// Sets (or unsets, value nullptr) an environment variable for the scope.
struct EnvScope {
  std::string name;
  std::optional<std::string> old;
  EnvScope(const char* n, const char* value) : name(n) {
    if (const char* v = std::getenv(n)) old = v;
    if (value) ::setenv(n, value, 1); else ::unsetenv(n);
  }
  ~EnvScope() {
    if (old) ::setenv(name.c_str(), old->c_str(), 1); else ::unsetenv(name.c_str());
  }
};

/// Restores ATen's and the BLAS's threads after a test case.
struct Restore {
  int aten = at::get_num_threads();
  std::optional<int> blas = openblas_threads();
  ~Restore() {
    at::set_num_threads(aten);
    using SetFn = void (*)(int);
    if (auto f = reinterpret_cast<SetFn>(::dlsym(RTLD_DEFAULT, "openblas_set_num_threads")); f && blas) f(*blas);
  }
};

}  // namespace

TEST_CASE("set_threads: n BLAS threads; ATen 1 beside OpenBLAS's own pool, else n") {
  Restore restore;
  for (int n : {1, 3, 2}) {
    const auto s = qstar::lm::set_threads(n);
    if (const auto b = openblas_threads()) {
      CHECK(*b == n);
      CHECK(at::get_num_threads() == 1);
      CHECK(s.blas == n);
      CHECK(s.blas_library == "openblas");
    } else {
      MESSAGE("no OpenBLAS in this process: only ATen's threads checked");
      CHECK(at::get_num_threads() == n);
    }
    CHECK(s.aten == at::get_num_threads());
    CHECK(qstar::lm::thread_settings().aten == at::get_num_threads());
  }
  CHECK_THROWS_AS(qstar::lm::set_threads(0), qstar::InvalidArgument);
  CHECK_THROWS_AS(qstar::lm::set_threads(-2), qstar::InvalidArgument);
}

TEST_CASE("set_threads(aten, blas) sets the two pools apart") {
  Restore restore;
  for (auto [a, b] : {std::pair{2, 1}, std::pair{1, 2}, std::pair{3, 3}}) {
    const auto s = qstar::lm::set_threads(a, b);
    CHECK(at::get_num_threads() == a);
    CHECK(s.aten == a);
    if (const auto ob = openblas_threads()) CHECK(*ob == b);
  }
  CHECK_THROWS_AS(qstar::lm::set_threads(0, 1), qstar::InvalidArgument);
  CHECK_THROWS_AS(qstar::lm::set_threads(1, 0), qstar::InvalidArgument);
}

TEST_CASE("default_threads: the cores, lowered by OMP_NUM_THREADS / OPENBLAS_NUM_THREADS") {
  EnvScope omp("OMP_NUM_THREADS", nullptr), ob("OPENBLAS_NUM_THREADS", nullptr), mkl("MKL_NUM_THREADS", nullptr);
  CHECK(qstar::lm::default_threads() == cores());
  {
    EnvScope e("OMP_NUM_THREADS", "1");
    CHECK(qstar::lm::default_threads() == 1);
  }
  {
    EnvScope e("OPENBLAS_NUM_THREADS", "1");
    CHECK(qstar::lm::default_threads() == 1);
  }
  {  // more than the cores: the cores
    EnvScope e("OMP_NUM_THREADS", "4096"), f("OPENBLAS_NUM_THREADS", "512");
    CHECK(qstar::lm::default_threads() == cores());
  }
  {  // not a positive integer: ignored
    EnvScope e("OMP_NUM_THREADS", "two"), f("OPENBLAS_NUM_THREADS", "0");
    CHECK(qstar::lm::default_threads() == cores());
  }
}

TEST_CASE("cli --threads: sets the compute threads; a bad value is a usage error naming it") {
  Restore restore;
  tiny::TempDir dir;
  tiny::write_model(dir.str(), tiny::causal_llama(), 7);
  auto r = cli_test::run({"lm", "logits", "--model", dir.str(), "--text", "3+4", "--threads", "3"});
  CHECK(r.code == 0);
  if (const auto b = openblas_threads()) {
    CHECK(*b == 3);
    CHECK(at::get_num_threads() == 1);
  } else {
    CHECK(at::get_num_threads() == 3);
  }
  r = cli_test::run({"lm", "logits", "--model", dir.str(), "--text", "3+4", "--threads", "0"});
  CHECK(r.code == 2);
  CHECK(r.err.find("--threads") != std::string::npos);
  r = cli_test::run({"solve", "4 5 6 10", "--generator", "programmatic", "--verifier", "oracle", "--threads", "x"});
  CHECK(r.code == 2);
  CHECK(r.err.find("--threads") != std::string::npos);
}

#if defined(__GLIBC__)
#include <malloc.h>

// keep_freed_memory against glibc's own accounting (mallinfo2): after it, a 24 MiB block
// comes from the heap (no new mmap'ed bytes) and freeing it does not shrink the heap.
TEST_CASE("keep_freed_memory: 24 MiB comes from the heap and stays there after free") {
  for (const char* var : {"MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "GLIBC_TUNABLES"})
    if (std::getenv(var) != nullptr) return;  // the environment tunes malloc itself: not applied
  (void)qstar::lm::keep_freed_memory();  // this call or an earlier model load applied it
  CHECK_FALSE(qstar::lm::keep_freed_memory());  // once per process
  const std::size_t n = std::size_t{24} << 20;
  const auto before = ::mallinfo2();
  void* p = std::malloc(n);
  REQUIRE(p != nullptr);
  static_cast<volatile char*>(p)[n - 1] = 1;
  const auto during = ::mallinfo2();
  CHECK(during.hblkhd == before.hblkhd);  // not mmap'ed
  CHECK(during.arena >= before.arena);
  std::free(p);
  const auto after = ::mallinfo2();
  CHECK(after.arena == during.arena);  // not trimmed back to the kernel
  CHECK(after.fordblks >= n);          // kept for the next forward
}
#endif
