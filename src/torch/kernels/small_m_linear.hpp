// Internal: y[M, N] = x[M, K] . W[N, K]^T (+ b) for few rows of x (decode: M = the number of
// sequences in the batch), x float32, W float32, bfloat16 or int8 with one float32 scale per
// output row (weight-only quantisation, symmetric: scale = max|row| / 127).
//
// What it does: W is streamed once. Each block of 4 rows of W is read (bf16 / int8 converted
// to float32 a K-chunk at a time into an L1-sized buffer: bf16 -> f32 is a 16-bit shift,
// exact; int8 by sign-extension + convert, the row's scale applied once per output) and
// multiplied against every row of x, which stays in cache. OpenBLAS's sgemm instead re-packs
// the whole weight into its panel layout at every call, which at M = 1 cost 41% of decode
// time (benchmarks/README.md, "Decode kernels").
// Cost per call: M * N * K multiply-adds and one pass over W (N * K * bytes per weight);
// the output rows are split over the compute threads (kernels::set_threads) in blocks of 16.
// Variants: AVX-512, AVX2+FMA, portable scalar, picked at run time (__builtin_cpu_supports).
// Summation is in float32 in a fixed order for a given (variant, K): deterministic.
// Papers: none (a GEMV-style streaming kernel, as llama.cpp's ggml_vec_dot / GEMV paths).
#pragma once

#include <cstdint>

namespace at {
class Tensor;
}

namespace qstar::lm::kernels {

/// Storage type of W.
enum class WeightType { F32, BF16, I8 };

/// Instruction set of a variant.
enum class Isa { Scalar, Avx2, Avx512 };

/// The default row threshold: layers::linear uses the kernel for M <= this (measured,
/// benchmarks/README.md "Decode kernels").
inline constexpr std::int64_t kDefaultMaxRows = 64;
/// The threshold in force (default kDefaultMaxRows, or the environment's QSTAR_SMALL_M_ROWS
/// when set; 0 turns the kernel off: benchmarks compare against the ATen path with it).
/// Process-wide.
void set_max_rows(std::int64_t rows);
std::int64_t max_rows();

/// The best variant this CPU runs.
Isa best_isa();
/// The variant the kernel uses: best_isa() unless overridden (tests).
Isa active_isa();
/// Forces a variant (tests / benchmarks); one the CPU lacks falls back to the best it has.
/// Not thread-safe against concurrent calls of the kernel.
void set_isa_override(Isa isa);
void clear_isa_override();
/// Whether `isa` runs on this CPU.
bool isa_supported(Isa isa);
const char* isa_name(Isa isa);

/// Threads that share one call's output rows (the caller plus n - 1 pooled workers that
/// block between calls). Set by qstar::lm::set_threads (the BLAS's thread count); default 1.
void set_threads(int n);
int threads();
/// Multiply-adds (M * N * K) per thread below which a call runs on fewer threads: waking a
/// pooled worker costs 3-130 us (bench_small_m's tiny call: 2.9 us at 1 thread, 133 us at
/// 2 on the loaded 2-core machine), about what 1 Mi multiply-adds take. Tests lower it.
inline constexpr std::int64_t kDefaultMinWorkPerThread = std::int64_t{1} << 20;
void set_min_work_per_thread(std::int64_t n);

/// The raw core. x: M rows of K float32, row stride ldx. w: N rows of K elements of `wt`
/// (contiguous, row stride K). scale: N float32 for I8 (else ignored, may be null).
/// bias: N float32 or null. y: M rows, row stride ldy. Runs on threads() threads.
void small_m_linear(const float* x, std::int64_t M, std::int64_t K, std::int64_t ldx, const void* w,
                    WeightType wt, const float* scale, const float* bias, std::int64_t N, float* y,
                    std::int64_t ldy);

/// Per-row symmetric int8 quantisation of a float32 [N, K] matrix: scale[n] = max|w[n,:]| / 127
/// (1 for an all-zero row), q = round(w / scale) clamped to [-127, 127].
void quantize_rows_int8(const float* w, std::int64_t N, std::int64_t K, std::int8_t* q, float* scale);

/// Tensor wrapper: true and `out` = x @ w^T (+ b) when the kernel applies: x float32 CPU
/// with rows = x.numel() / K <= max_rows (the process-wide max_rows() when negative),
/// w CPU contiguous [N, K]
/// float32 / bfloat16 / int8 (int8 needs `scale` float32 [N]), b undefined or float32 [N],
/// and no autograd needed. Otherwise false (the caller takes the ATen path).
bool try_linear(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b, const at::Tensor& scale,
                at::Tensor& out, std::int64_t max_rows = -1);

}  // namespace qstar::lm::kernels
