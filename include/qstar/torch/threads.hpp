// Compute threads of the LibTorch backends: one setting for ATen's intra-op pool (OpenMP,
// libgomp in Debian's LibTorch) and the BLAS library's own pool (Debian's OpenBLAS is the
// pthread build; pip's LibTorch uses MKL), so that the two never add up to more threads
// than the machine has cores. No LibTorch in this header.
//
// Why both: a float32 matmul on CPU runs in the BLAS's threads, everything else (attention,
// norms, softmax, sampling's copies) in ATen's OpenMP threads. Each pool spins a while after
// its work before sleeping, so with OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2 on 2 cores the
// two pools' spinning threads take the cores from each other (benchmarks/README.md, "Compute
// threads", has the measurements that chose the default below).
#pragma once

#include <string>

namespace qstar::lm {

/// The compute threads in effect.
struct ThreadSettings {
  int aten = 0;  ///< ATen intra-op threads (at::get_num_threads())
  /// The BLAS library's threads; 0 when no BLAS thread control was found (then the BLAS
  /// keeps its own setting, e.g. from OPENBLAS_NUM_THREADS).
  int blas = 0;
  /// "openblas", "mkl" or "" (none found in the process).
  std::string blas_library;
};

/// Sets the compute threads to `n` (>= 1; qstar::InvalidArgument naming `threads`
/// otherwise): the BLAS library's threads to n, and ATen's intra-op threads to 1 when the BLAS
/// keeps its own pool (OpenBLAS: Debian's pthread build) or to n when it shares ATen's OpenMP
/// pool (MKL) or no BLAS control was found. Measured on 2 cores (benchmarks/README.md,
/// "Compute threads"): ATen 1 + OpenBLAS 2 gave the best prefill at 2 threads (1.5x one
/// thread, when it got both cores) at one thread's CPU time; ATen 2 + OpenBLAS 2 (what
/// OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2 gives) was 2-5x slower than it and burned 4x the
/// CPU: the float32 matmuls run in the BLAS's threads while ATen's OpenMP threads spin on the
/// same cores. The BLAS is found at run time
/// (openblas_set_num_threads, else MKL's, among the loaded libraries), so the same code serves
/// Debian's OpenBLAS LibTorch and pip's MKL one. Process-wide: affects every model.
ThreadSettings set_threads(int n);

/// The two pools set apart (each >= 1; InvalidArgument naming `aten_threads` /
/// `blas_threads`): for measuring; set_threads(n) is the setting to use.
ThreadSettings set_threads(int aten_threads, int blas_threads);

/// The threads set now (ATen's and the BLAS's).
ThreadSettings thread_settings();

/// The default compute threads: the machine's usable cores (std::thread::hardware_concurrency,
/// at least 1), lowered to the smaller positive value of OMP_NUM_THREADS,
/// OPENBLAS_NUM_THREADS and MKL_NUM_THREADS when the user exported any (so that exporting
/// them keeps their meaning, but the two pools together never exceed the cores).
int default_threads();

/// set_threads(default_threads()) once per process unless set_threads() was called before
/// (later calls do nothing). The CLI (without --threads) and the Python LMGenerator / PRM
/// call it before loading a model; the C++ library itself never changes the threads unasked
/// (a program that sets at::set_num_threads keeps its setting).
void apply_default_threads();

/// Makes glibc's malloc keep freed memory for reuse, once per process (later calls do
/// nothing; returns whether this call applied it): mallopt M_MMAP_THRESHOLD 32 MiB (glibc's maximum; buffers
/// below it come from the heap, not from fresh mmap's), M_TRIM_THRESHOLD 1 GiB and
/// M_TOP_PAD 64 MiB (freed heap is kept, not returned to the kernel after every forward).
/// Why: a CPU forward allocates multi-megabyte activations and frees them at its end; with
/// glibc's defaults many of them were mmap'ed fresh and unmapped every forward, and their
/// page faults and zeroing were the largest cost of a prefill (benchmarks/README.md, "Where
/// the time goes"). Cost: the process keeps up to about one forward's activations (plus
/// 1 GiB of trim slack) resident after a forward. Process-wide (it changes malloc for the
/// whole program): the CPU models' loader applies it unless
/// lm::LoadOptions::keep_freed_memory is false; it does nothing when the program set glibc's malloc tunables
/// itself (MALLOC_MMAP_THRESHOLD_, MALLOC_TRIM_THRESHOLD_, MALLOC_TOP_PAD_ or a
/// GLIBC_TUNABLES naming glibc.malloc), and nothing on other C libraries.
bool keep_freed_memory();

}  // namespace qstar::lm
