// The small-M linear kernel's torch-free core: variants, driver and thread pool. See
// small_m_linear.hpp.
#include "torch/kernels/small_m_linear.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "torch/kernels/pool.hpp"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define QSTAR_KERNELS_X86 1
#endif

namespace qstar::lm::kernels {

namespace {

/// Elements of a K-chunk: 4 float32 rows of it (8 KiB) stay in L1 while all rows of x pass.
constexpr std::int64_t kChunk = 512;
/// Output rows per block (the micro-kernel's W rows) and per thread split unit.
constexpr std::int64_t kRows = 4;
constexpr std::int64_t kSplit = 16;
/// How far ahead of each weight row's stream the kernels prefetch (bytes). A single-row decode
/// is bound by how many cache misses a core keeps in flight: the hardware prefetcher alone
/// left the 0.5B shape's float32 decode at 10.5 tok/s (15 GB/s), 4 KiB ahead 16.3 tok/s
/// (benchmarks/README.md). QSTAR_SMALL_M_PREFETCH (bytes; 0: nothing ahead) overrides it for tuning.
std::int64_t initial_prefetch() {
  const char* v = std::getenv("QSTAR_SMALL_M_PREFETCH");
  if (!v || !*v) return 4096;
  char* end = nullptr;
  const long n = std::strtol(v, &end, 10);
  return (*end == '\0' && n >= 0 && n <= (1L << 20)) ? n : 4096;
}
const std::int64_t g_prefetch = initial_prefetch();


float bf16_to_f32(std::uint16_t v) {
  const std::uint32_t u = static_cast<std::uint32_t>(v) << 16;
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

// ---- scalar -------------------------------------------------------------------------------

void cvt_bf16_scalar(const std::uint16_t* s, float* d, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) d[i] = bf16_to_f32(s[i]);
}
void cvt_i8_scalar(const std::int8_t* s, float* d, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) d[i] = static_cast<float>(s[i]);
}
/// acc[m * 4 + r] += sum_k x[m][k] * w[r][k] for every row m < M of x and r < 4.
void block_scalar(const float* x, std::int64_t M, std::int64_t ldx, const float* const* w,
                  std::int64_t len, float* acc) {
  for (std::int64_t m = 0; m < M; ++m) {
    const float* xm = x + m * ldx;
    for (int r = 0; r < kRows; ++r) {
      float s = 0.f;
      for (std::int64_t k = 0; k < len; ++k) s += xm[k] * w[r][k];
      acc[m * kRows + r] += s;
    }
  }
}

#if QSTAR_KERNELS_X86
/// A prefetch hint for four addresses (one per weight row of a block); never faults, so
/// addresses past the end of the matrix are harmless.
template <class T>
inline void prefetch4(const T* a, const T* b, const T* c, const T* d) {
  _mm_prefetch(reinterpret_cast<const char*>(a), _MM_HINT_T0);
  _mm_prefetch(reinterpret_cast<const char*>(b), _MM_HINT_T0);
  _mm_prefetch(reinterpret_cast<const char*>(c), _MM_HINT_T0);
  _mm_prefetch(reinterpret_cast<const char*>(d), _MM_HINT_T0);
}

// ---- AVX2 + FMA ---------------------------------------------------------------------------

__attribute__((target("avx2,fma"))) void cvt_bf16_avx2(const std::uint16_t* s, float* d, std::int64_t n) {
  std::int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i)));
    _mm256_storeu_ps(d + i, _mm256_castsi256_ps(_mm256_slli_epi32(v, 16)));
  }
  for (; i < n; ++i) d[i] = bf16_to_f32(s[i]);
}
__attribute__((target("avx2,fma"))) void cvt_i8_avx2(const std::int8_t* s, float* d, std::int64_t n) {
  std::int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256i v = _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(s + i)));
    _mm256_storeu_ps(d + i, _mm256_cvtepi32_ps(v));
  }
  for (; i < n; ++i) d[i] = static_cast<float>(s[i]);
}
__attribute__((target("avx2,fma"))) inline float hsum256(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
/// MR rows of x against 4 rows of w: 4 * MR accumulators of 8 lanes, then the tail scalar.
template <int MR, bool Prefetch>
__attribute__((target("avx2,fma"))) void mk_avx2(const float* x, std::int64_t ldx, const float* const* w,
                                                 std::int64_t len, float* acc) {
  __m256 a[MR][kRows];
#pragma GCC unroll 4
  for (int m = 0; m < MR; ++m)
#pragma GCC unroll 4
    for (int r = 0; r < kRows; ++r) a[m][r] = _mm256_setzero_ps();
  const float *w0 = w[0], *w1 = w[1], *w2 = w[2], *w3 = w[3];
  const std::int64_t pf = g_prefetch / 4;
  std::int64_t k = 0;
  for (; k + 8 <= len; k += 8) {
    if (Prefetch && (k & 15) == 0) prefetch4(w0 + k + pf, w1 + k + pf, w2 + k + pf, w3 + k + pf);
    const __m256 v0 = _mm256_loadu_ps(w0 + k), v1 = _mm256_loadu_ps(w1 + k);
    const __m256 v2 = _mm256_loadu_ps(w2 + k), v3 = _mm256_loadu_ps(w3 + k);
#pragma GCC unroll 4
    for (int m = 0; m < MR; ++m) {
      const __m256 xv = _mm256_loadu_ps(x + m * ldx + k);
      a[m][0] = _mm256_fmadd_ps(xv, v0, a[m][0]);
      a[m][1] = _mm256_fmadd_ps(xv, v1, a[m][1]);
      a[m][2] = _mm256_fmadd_ps(xv, v2, a[m][2]);
      a[m][3] = _mm256_fmadd_ps(xv, v3, a[m][3]);
    }
  }
#pragma GCC unroll 4
  for (int m = 0; m < MR; ++m)
#pragma GCC unroll 4
    for (int r = 0; r < kRows; ++r) {
      float s = hsum256(a[m][r]);
      for (std::int64_t t = k; t < len; ++t) s += x[m * ldx + t] * w[r][t];
      acc[m * kRows + r] += s;
    }
}
__attribute__((target("avx2,fma"))) void block_avx2(const float* x, std::int64_t M, std::int64_t ldx,
                                                    const float* const* w, std::int64_t len, float* acc) {
  // The first pass over this chunk of w prefetches the next; later passes find it in L1.
  std::int64_t m = 0;
  if (M >= 2) {
    mk_avx2<2, true>(x, ldx, w, len, acc);
    m = 2;
  } else {
    mk_avx2<1, true>(x, ldx, w, len, acc);
    return;
  }
  for (; m + 2 <= M; m += 2) mk_avx2<2, false>(x + m * ldx, ldx, w, len, acc + m * kRows);
  if (m < M) mk_avx2<1, false>(x + m * ldx, ldx, w, len, acc + m * kRows);
}

// ---- AVX-512 ------------------------------------------------------------------------------

/// Sum of 16 lanes, through memory: GCC 12's 512-bit shuffles (and _mm512_reduce_add_ps)
/// expand to a deliberately undefined operand that -Wuninitialized reports in its own header.
/// Called once per output and K-chunk: its cost does not matter.
__attribute__((target("avx512f,avx512bw,avx2,fma"))) inline float hsum512(__m512 v) {
  alignas(64) float t[16];
  _mm512_store_ps(t, v);
  return hsum256(_mm256_add_ps(_mm256_load_ps(t), _mm256_load_ps(t + 8)));
}

__attribute__((target("avx512f,avx512bw,avx2,fma"))) void cvt_bf16_avx512(const std::uint16_t* s, float* d,
                                                                 std::int64_t n) {
  std::int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512i v = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(s + i)));
    _mm512_storeu_ps(d + i, _mm512_castsi512_ps(_mm512_slli_epi32(v, 16)));
  }
  for (; i < n; ++i) d[i] = bf16_to_f32(s[i]);
}
__attribute__((target("avx512f,avx512bw,avx2,fma"))) void cvt_i8_avx512(const std::int8_t* s, float* d,
                                                               std::int64_t n) {
  std::int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512i v = _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i)));
    _mm512_storeu_ps(d + i, _mm512_cvtepi32_ps(v));
  }
  for (; i < n; ++i) d[i] = static_cast<float>(s[i]);
}
/// MR rows of x against 4 rows of w: 4 * MR accumulators of 16 lanes; the tail is a masked
/// load (zeros beyond len).
template <int MR, bool Prefetch>
__attribute__((target("avx512f,avx512bw,avx2,fma"))) void mk_avx512(const float* x, std::int64_t ldx,
                                                           const float* const* w, std::int64_t len,
                                                           float* acc) {
  __m512 a[MR][kRows];
#pragma GCC unroll 4
  for (int m = 0; m < MR; ++m)
#pragma GCC unroll 4
    for (int r = 0; r < kRows; ++r) a[m][r] = _mm512_setzero_ps();
  const float *w0 = w[0], *w1 = w[1], *w2 = w[2], *w3 = w[3];
  const std::int64_t pf = g_prefetch / 4;
  std::int64_t k = 0;
  for (; k + 16 <= len; k += 16) {
    if (Prefetch) prefetch4(w0 + k + pf, w1 + k + pf, w2 + k + pf, w3 + k + pf);
    const __m512 v0 = _mm512_loadu_ps(w0 + k), v1 = _mm512_loadu_ps(w1 + k);
    const __m512 v2 = _mm512_loadu_ps(w2 + k), v3 = _mm512_loadu_ps(w3 + k);
#pragma GCC unroll 4
    for (int m = 0; m < MR; ++m) {
      const __m512 xv = _mm512_loadu_ps(x + m * ldx + k);
      a[m][0] = _mm512_fmadd_ps(xv, v0, a[m][0]);
      a[m][1] = _mm512_fmadd_ps(xv, v1, a[m][1]);
      a[m][2] = _mm512_fmadd_ps(xv, v2, a[m][2]);
      a[m][3] = _mm512_fmadd_ps(xv, v3, a[m][3]);
    }
  }
  if (k < len) {
    const __mmask16 mk = static_cast<__mmask16>((1u << (len - k)) - 1u);
    const __m512 v0 = _mm512_maskz_loadu_ps(mk, w0 + k), v1 = _mm512_maskz_loadu_ps(mk, w1 + k);
    const __m512 v2 = _mm512_maskz_loadu_ps(mk, w2 + k), v3 = _mm512_maskz_loadu_ps(mk, w3 + k);
#pragma GCC unroll 4
    for (int m = 0; m < MR; ++m) {
      const __m512 xv = _mm512_maskz_loadu_ps(mk, x + m * ldx + k);
      a[m][0] = _mm512_fmadd_ps(xv, v0, a[m][0]);
      a[m][1] = _mm512_fmadd_ps(xv, v1, a[m][1]);
      a[m][2] = _mm512_fmadd_ps(xv, v2, a[m][2]);
      a[m][3] = _mm512_fmadd_ps(xv, v3, a[m][3]);
    }
  }
#pragma GCC unroll 4
  for (int m = 0; m < MR; ++m)
#pragma GCC unroll 4
    for (int r = 0; r < kRows; ++r) acc[m * kRows + r] += hsum512(a[m][r]);
}
__attribute__((target("avx512f,avx512bw,avx2,fma"))) void block_avx512(const float* x, std::int64_t M,
                                                              std::int64_t ldx, const float* const* w,
                                                              std::int64_t len, float* acc) {
  // The first pass over this chunk of w prefetches the next; later passes find it in L1.
  if (M < 4) {
    if (M == 3) mk_avx512<3, true>(x, ldx, w, len, acc);
    else if (M == 2) mk_avx512<2, true>(x, ldx, w, len, acc);
    else mk_avx512<1, true>(x, ldx, w, len, acc);
    return;
  }
  mk_avx512<4, true>(x, ldx, w, len, acc);
  std::int64_t m = 4;
  for (; m + 4 <= M; m += 4) mk_avx512<4, false>(x + m * ldx, ldx, w, len, acc + m * kRows);
  if (M - m == 3) mk_avx512<3, false>(x + m * ldx, ldx, w, len, acc + m * kRows);
  else if (M - m == 2) mk_avx512<2, false>(x + m * ldx, ldx, w, len, acc + m * kRows);
  else if (M - m == 1) mk_avx512<1, false>(x + m * ldx, ldx, w, len, acc + m * kRows);
}

// ---- fused conversion (few rows of x): bf16 / int8 widened in registers, no buffer ------

#define QSTAR_AVX512 __attribute__((target("avx512f,avx512bw,avx2,fma")))
#define QSTAR_AVX2 __attribute__((target("avx2,fma")))
inline float widen(float v) { return v; }
inline float widen(std::uint16_t v) { return bf16_to_f32(v); }
inline float widen(std::int8_t v) { return static_cast<float>(v); }
QSTAR_AVX512 inline __m512 ld16(const std::uint16_t* p) {
  return _mm512_castsi512_ps(
      _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))), 16));
}
QSTAR_AVX512 inline __m512 ld16(const std::int8_t* p) {
  return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))));
}
QSTAR_AVX2 inline __m256 ld8(const std::uint16_t* p) {
  return _mm256_castsi256_ps(
      _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))), 16));
}
QSTAR_AVX2 inline __m256 ld8(const std::int8_t* p) {
  return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
}
/// As mk_avx512 / mk_avx2 with W rows of T (bf16 bits / int8) widened as loaded; the tail
/// (len % lanes) in scalar code.
template <int MR, class T>
QSTAR_AVX512 void mkw_avx512(const float* x, std::int64_t ldx, const T* const* w, std::int64_t len, float* acc) {
  __m512 a[MR][kRows];
#pragma GCC unroll 4
  for (int m = 0; m < MR; ++m)
#pragma GCC unroll 4
    for (int r = 0; r < kRows; ++r) a[m][r] = _mm512_setzero_ps();
  const std::int64_t pf = g_prefetch / static_cast<std::int64_t>(sizeof(T));
  constexpr std::int64_t line = 64 / sizeof(T) - 1;  // one prefetch per cache line of a row
  std::int64_t k = 0;
  for (; k + 16 <= len; k += 16) {
    if ((k & line) == 0) prefetch4(w[0] + k + pf, w[1] + k + pf, w[2] + k + pf, w[3] + k + pf);
    const __m512 v0 = ld16(w[0] + k), v1 = ld16(w[1] + k), v2 = ld16(w[2] + k), v3 = ld16(w[3] + k);
#pragma GCC unroll 4
    for (int m = 0; m < MR; ++m) {
      const __m512 xv = _mm512_loadu_ps(x + m * ldx + k);
      a[m][0] = _mm512_fmadd_ps(xv, v0, a[m][0]);
      a[m][1] = _mm512_fmadd_ps(xv, v1, a[m][1]);
      a[m][2] = _mm512_fmadd_ps(xv, v2, a[m][2]);
      a[m][3] = _mm512_fmadd_ps(xv, v3, a[m][3]);
    }
  }
#pragma GCC unroll 4
  for (int m = 0; m < MR; ++m)
#pragma GCC unroll 4
    for (int r = 0; r < kRows; ++r) {
      float s = hsum512(a[m][r]);
      for (std::int64_t t = k; t < len; ++t) s += x[m * ldx + t] * widen(w[r][t]);
      acc[m * kRows + r] += s;
    }
}
template <int MR, class T>
QSTAR_AVX2 void mkw_avx2(const float* x, std::int64_t ldx, const T* const* w, std::int64_t len, float* acc) {
  __m256 a[MR][kRows];
#pragma GCC unroll 4
  for (int m = 0; m < MR; ++m)
#pragma GCC unroll 4
    for (int r = 0; r < kRows; ++r) a[m][r] = _mm256_setzero_ps();
  const std::int64_t pf = g_prefetch / static_cast<std::int64_t>(sizeof(T));
  constexpr std::int64_t line = 64 / sizeof(T) - 1;
  std::int64_t k = 0;
  for (; k + 8 <= len; k += 8) {
    if ((k & line) == 0) prefetch4(w[0] + k + pf, w[1] + k + pf, w[2] + k + pf, w[3] + k + pf);
    const __m256 v0 = ld8(w[0] + k), v1 = ld8(w[1] + k), v2 = ld8(w[2] + k), v3 = ld8(w[3] + k);
#pragma GCC unroll 4
    for (int m = 0; m < MR; ++m) {
      const __m256 xv = _mm256_loadu_ps(x + m * ldx + k);
      a[m][0] = _mm256_fmadd_ps(xv, v0, a[m][0]);
      a[m][1] = _mm256_fmadd_ps(xv, v1, a[m][1]);
      a[m][2] = _mm256_fmadd_ps(xv, v2, a[m][2]);
      a[m][3] = _mm256_fmadd_ps(xv, v3, a[m][3]);
    }
  }
#pragma GCC unroll 4
  for (int m = 0; m < MR; ++m)
#pragma GCC unroll 4
    for (int r = 0; r < kRows; ++r) {
      float s = hsum256(a[m][r]);
      for (std::int64_t t = k; t < len; ++t) s += x[m * ldx + t] * widen(w[r][t]);
      acc[m * kRows + r] += s;
    }
}
/// All M (<= 4) rows of x against 4 W rows of T; `w` points at T rows.
template <class T>
QSTAR_AVX512 void fused_avx512(const float* x, std::int64_t M, std::int64_t ldx, const void* const* w,
                               std::int64_t len, float* acc) {
  const T* const* t = reinterpret_cast<const T* const*>(w);
  if (M == 4) mkw_avx512<4>(x, ldx, t, len, acc);
  else if (M == 3) mkw_avx512<3>(x, ldx, t, len, acc);
  else if (M == 2) mkw_avx512<2>(x, ldx, t, len, acc);
  else mkw_avx512<1>(x, ldx, t, len, acc);
}
template <class T>
QSTAR_AVX2 void fused_avx2(const float* x, std::int64_t M, std::int64_t ldx, const void* const* w,
                           std::int64_t len, float* acc) {
  const T* const* t = reinterpret_cast<const T* const*>(w);
  if (M == 2) mkw_avx2<2>(x, ldx, t, len, acc);
  else mkw_avx2<1>(x, ldx, t, len, acc);
}
#undef QSTAR_AVX512
#undef QSTAR_AVX2
#endif

struct Variant {
  void (*cvt_bf16)(const std::uint16_t*, float*, std::int64_t);
  void (*cvt_i8)(const std::int8_t*, float*, std::int64_t);
  void (*block)(const float*, std::int64_t, std::int64_t, const float* const*, std::int64_t, float*);
  /// Fused bf16 / int8 blocks for M <= fused_rows (null: none; the buffer path instead).
  using Fused = void (*)(const float*, std::int64_t, std::int64_t, const void* const*, std::int64_t, float*);
  Fused fused_bf16 = nullptr, fused_i8 = nullptr;
  std::int64_t fused_rows = 0;
};

Variant variant(Isa isa) {
#if QSTAR_KERNELS_X86
  if (isa == Isa::Avx512)
    return {cvt_bf16_avx512, cvt_i8_avx512, block_avx512, fused_avx512<std::uint16_t>,
            fused_avx512<std::int8_t>, 4};
  if (isa == Isa::Avx2)
    return {cvt_bf16_avx2, cvt_i8_avx2, block_avx2, fused_avx2<std::uint16_t>, fused_avx2<std::int8_t>, 2};
#endif
  (void)isa;
  return {cvt_bf16_scalar, cvt_i8_scalar, block_scalar};
}

std::atomic<int> g_override{-1};
std::atomic<int> g_threads{1};
/// QSTAR_SMALL_M_ROWS (a non-negative integer) overrides the default threshold, for
/// benchmarks (0: the kernel off, the ATen / BLAS path as before it).
std::int64_t initial_max_rows() {
  const char* v = std::getenv("QSTAR_SMALL_M_ROWS");
  if (!v || !*v) return kDefaultMaxRows;
  char* end = nullptr;
  const long n = std::strtol(v, &end, 10);
  return (*end == '\0' && n >= 0 && n <= (1L << 30)) ? n : kDefaultMaxRows;
}
std::atomic<std::int64_t> g_max_rows{initial_max_rows()};
std::atomic<std::int64_t> g_min_work{kDefaultMinWorkPerThread};

/// Output rows [n0, n1) of one call, on this thread.
struct Call {
  const float* x;
  std::int64_t M, K, ldx;
  const void* w;
  WeightType wt;
  const float *scale, *bias;
  float* y;
  std::int64_t ldy;
  Variant v;
};

void run_rows(const Call& c, std::int64_t n0, std::int64_t n1) {
  alignas(64) float buf[kRows][kChunk];
  thread_local std::vector<float> acc_store;
  acc_store.assign(static_cast<std::size_t>(c.M * kRows), 0.f);
  float* acc = acc_store.data();
  const std::int64_t K = c.K;
  const Variant::Fused fused = c.wt == WeightType::BF16 ? c.v.fused_bf16
                               : c.wt == WeightType::I8 ? c.v.fused_i8
                                                        : nullptr;
  const bool use_fused = fused && c.M <= c.v.fused_rows;
  const std::size_t esize = c.wt == WeightType::BF16 ? 2 : 1;
  for (std::int64_t n = n0; n < n1; n += kRows) {
    const std::int64_t nb = std::min(kRows, n1 - n);
    std::fill(acc, acc + c.M * kRows, 0.f);
    for (std::int64_t k0 = 0; k0 < K; k0 += kChunk) {
      const std::int64_t len = std::min(kChunk, K - k0);
      if (use_fused) {  // the whole row in one pass: x's few rows stay in L1 anyway
        const void* raw[kRows];
        for (std::int64_t r = 0; r < kRows; ++r)
          raw[r] = static_cast<const char*>(c.w) + static_cast<std::size_t>((n + std::min(r, nb - 1)) * K) * esize;
        fused(c.x, c.M, c.ldx, raw, K, acc);
        break;
      }
      const float* rows[kRows];
      for (std::int64_t r = 0; r < kRows; ++r) {
        const std::int64_t row = n + std::min(r, nb - 1);  // a short block repeats its last row
        const std::int64_t off = row * K + k0;
        if (c.wt == WeightType::F32) {
          rows[r] = static_cast<const float*>(c.w) + off;
        } else if (r < nb) {
          if (c.wt == WeightType::BF16)
            c.v.cvt_bf16(static_cast<const std::uint16_t*>(c.w) + off, buf[r], len);
          else
            c.v.cvt_i8(static_cast<const std::int8_t*>(c.w) + off, buf[r], len);
          rows[r] = buf[r];
        } else {
          rows[r] = buf[nb - 1];
        }
      }
      c.v.block(c.x + k0, c.M, c.ldx, rows, len, acc);
    }
    for (std::int64_t r = 0; r < nb; ++r) {
      const float s = c.wt == WeightType::I8 ? c.scale[n + r] : 1.f;
      const float b = c.bias ? c.bias[n + r] : 0.f;
      for (std::int64_t m = 0; m < c.M; ++m) c.y[m * c.ldy + n + r] = acc[m * kRows + r] * s + b;
    }
  }
}

}  // namespace

bool isa_supported(Isa isa) {
  if (isa == Isa::Scalar) return true;
#if QSTAR_KERNELS_X86
  if (isa == Isa::Avx2) return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if (isa == Isa::Avx512) return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
#endif
  return false;
}

Isa best_isa() {
  static const Isa best = isa_supported(Isa::Avx512) ? Isa::Avx512
                          : isa_supported(Isa::Avx2) ? Isa::Avx2
                                                     : Isa::Scalar;
  return best;
}

Isa active_isa() {
  const int o = g_override.load(std::memory_order_relaxed);
  if (o < 0) return best_isa();
  const Isa want = static_cast<Isa>(o);
  return isa_supported(want) ? want : best_isa();
}

void set_isa_override(Isa isa) { g_override.store(static_cast<int>(isa)); }
void clear_isa_override() { g_override.store(-1); }

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::Avx512:
      return "avx512";
    case Isa::Avx2:
      return "avx2";
    default:
      return "scalar";
  }
}

void set_threads(int n) { g_threads.store(std::max(1, n)); }
int threads() { return g_threads.load(std::memory_order_relaxed); }
void set_min_work_per_thread(std::int64_t n) { g_min_work.store(std::max<std::int64_t>(1, n)); }
void set_max_rows(std::int64_t rows) { g_max_rows.store(std::max<std::int64_t>(0, rows)); }
std::int64_t max_rows() { return g_max_rows.load(std::memory_order_relaxed); }

void small_m_linear(const float* x, std::int64_t M, std::int64_t K, std::int64_t ldx, const void* w,
                    WeightType wt, const float* scale, const float* bias, std::int64_t N, float* y,
                    std::int64_t ldy) {
  if (M <= 0 || N <= 0) return;
  const Call c{x, M, K, ldx, w, wt, scale, bias, y, ldy, variant(active_isa())};
  // Split N in units of kSplit rows; no more parts than units.
  const std::int64_t units = (N + kSplit - 1) / kSplit;
  const std::int64_t by_work = std::max<std::int64_t>(1, M * N * K / g_min_work.load(std::memory_order_relaxed));
  const int parts = static_cast<int>(std::min({static_cast<std::int64_t>(threads()), units, by_work}));
  if (parts <= 1) return run_rows(c, 0, N);
  const std::int64_t per = (units + parts - 1) / parts * kSplit;
  parallel_for(parts, [&](int p) {
    const std::int64_t n0 = std::min(N, p * per), n1 = std::min(N, n0 + per);
    if (n0 < n1) run_rows(c, n0, n1);
  });
}

void quantize_rows_int8(const float* w, std::int64_t N, std::int64_t K, std::int8_t* q, float* scale) {
  for (std::int64_t n = 0; n < N; ++n) {
    const float* row = w + n * K;
    float mx = 0.f;
    for (std::int64_t k = 0; k < K; ++k) mx = std::max(mx, std::fabs(row[k]));
    const float s = mx > 0.f ? mx / 127.f : 1.f;
    scale[n] = s;
    for (std::int64_t k = 0; k < K; ++k) {
      const float v = std::nearbyint(row[k] / s);
      q[n * K + k] = static_cast<std::int8_t>(std::clamp(v, -127.f, 127.f));
    }
  }
}

}  // namespace qstar::lm::kernels
