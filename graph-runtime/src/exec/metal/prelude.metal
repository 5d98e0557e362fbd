// lazy_graph Metal prelude: the API that generated kernels (graph-macros/src/emit/metal.rs and
// clike.rs) are written against; the Metal twin of exec/cuda/prelude.cuh, with the same names.
// Metal Shading Language is C++14-based: no C++17 here.
//
// The runtime defines the configuration before this text:
//   LG_DTYPE   storage type: 0 f32, 2 f16, 3 bf16; compute is f32 (Metal has no double, so f64
//              graphs never come here)
//   LG_VEC     elements per memory access: 1, or 16 bytes' worth (inputs then have column stride
//              1, 16-byte aligned rows, and row lengths divisible by LG_VEC)
//   row kernels:       LG_GROUP threads per row (a power of two), LG_RPB rows per threadgroup (1
//                      when LG_GROUP > 32), LG_CACHE chunks of LG_VEC columns each thread keeps in
//                      registers (0: re-read in every column loop)
//   pointwise kernels: LG_BLOCK threads per threadgroup
//   LG_WIDE    1 when flat or row indices may pass 2^31 - 1: 64-bit index arithmetic with
//              division; else 32-bit, dividing by multiply and shift (see lg_udiv)
//
// Arguments: the words of graph_ir::gpu::ArgLayout in `constant long* a` at buffer 0, except that
// the pointer words are unused (tensors are bound as buffers: input k at buffer 1 + k, output k
// at buffer 1 + inputs + k) and scalar words hold f32 bits in their low half (Metal has no
// double to convert f64 bits with). Reductions past a simdgroup assume 32-wide simdgroups; the
// runtime checks the pipeline's thread execution width.

#include <metal_stdlib>
using namespace metal;

#define LG_UNROLL _Pragma("clang loop unroll(full)")

// bf16 as its bits (a scalar type of its own, so that it neither mixes with integers nor needs a
// copy constructor across address spaces): conversions are integer operations, so bf16 kernels
// need neither Metal 3.1's `bfloat` nor its rounding, and round to nearest even exactly as the
// CPU and CUDA kernels do.
enum class lg_bf16 : ushort {};

#if LG_DTYPE == 0
typedef float T;
#elif LG_DTYPE == 2
typedef half T;
#elif LG_DTYPE == 3
typedef lg_bf16 T;
#else
#error "LG_DTYPE must be 0 (f32), 2 (f16) or 3 (bf16) on Metal"
#endif
typedef float C;

#define LG_INF INFINITY
#define LG_NAN NAN

// Storage <-> compute.
inline float lg_ld(float x) { return x; }
inline float lg_ld(half x) { return float(x); }
inline float lg_ld(lg_bf16 x) { return as_type<float>(uint(x) << 16); }

inline half lg_to_f16(float f) { return half(f); }
// Round to nearest even; NaNs stay NaN (quiet) rather than rounding into infinity.
inline lg_bf16 lg_to_bf16(float f) {
  const uint u = as_type<uint>(f);
  const uint b = isnan(f) ? (u >> 16) | 0x40u : (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
  return lg_bf16(ushort(b));
}

inline T lg_st(C v) {
#if LG_DTYPE == 2
  return lg_to_f16(v);
#elif LG_DTYPE == 3
  return lg_to_bf16(v);
#else
  return v;
#endif
}

#if LG_WIDE
typedef ulong lg_idx;
#else
typedef uint lg_idx;
#endif

// n / d for n < 2^31, where `magic` is graph_ir::gpu::magic(d): the multiplier in the low word,
// the shift in the high one.
inline uint lg_udiv(uint n, long magic) {
  return (mulhi(n, uint(magic)) + n) >> uint(magic >> 32);
}

// A scalar argument: f32 bits in the low half of its word.
inline C lg_scalar(long bits) { return as_type<float>(uint(bits)); }

// `cast`: the value rounded through a storage type (as on the CPU; f64 is exact for an f32).
inline C lg_round_f16(C x) { return lg_ld(lg_to_f16(x)); }
inline C lg_round_bf16(C x) { return lg_ld(lg_to_bf16(x)); }
inline C lg_round_f32(C x) { return x; }
inline C lg_round_f64(C x) { return x; }

// An element as the 16 or 32 bits it is stored in, and back: vector accesses move 16 bytes as a
// uint4 (LG_VEC elements) and split them into elements with these.
inline uint lg_bits(float x) { return as_type<uint>(x); }
inline uint lg_bits(half x) { return uint(as_type<ushort>(x)); }
inline uint lg_bits(lg_bf16 x) { return uint(x); }
inline T lg_unbits(uint b) {
#if LG_DTYPE == 0
  return as_type<float>(b);
#elif LG_DTYPE == 2
  return as_type<half>(ushort(b));
#else
  return lg_bf16(ushort(b));
#endif
}
// Element i of a 16-byte chunk.
inline T lg_elem(uint4 v, int i) {
#if LG_DTYPE == 0
  return lg_unbits(v[i]);
#else
  return lg_unbits((v[i / 2] >> (16 * (i % 2))) & 0xffffu);
#endif
}

// Vector loads and stores of LG_VEC elements starting at `p`.
inline void lg_ldv(thread C* dst, device const T* p) {
#if LG_VEC == 1
  dst[0] = lg_ld(p[0]);
#else
  static_assert(LG_VEC * sizeof(T) == 16, "vector accesses are 16 bytes");
  const uint4 v = *reinterpret_cast<device const uint4*>(p);
  LG_UNROLL for (int i = 0; i < LG_VEC; ++i) dst[i] = lg_ld(lg_elem(v, i));
#endif
}

inline void lg_stv(device T* p, thread const C* src) {
#if LG_VEC == 1
  p[0] = lg_st(src[0]);
#else
  uint4 v = uint4(0u);
#if LG_DTYPE == 0
  LG_UNROLL for (int i = 0; i < LG_VEC; ++i) v[i] = lg_bits(lg_st(src[i]));
#else
  LG_UNROLL for (int i = 0; i < LG_VEC; ++i) v[i / 2] |= lg_bits(lg_st(src[i])) << (16 * (i % 2));
#endif
  *reinterpret_cast<device uint4*>(p) = v;
#endif
}

// Math, in f32. Same formulas as the CPU kernels (graph_ir::cpu::Float). The runtime compiles
// with relaxed math (infinities and NaNs are kept) and precise library functions.
inline float lg_abs(float x) { return fabs(x); }
#if LG_DTYPE >= 2
// Halves: the fast exponential, far below the storage type's rounding (as CUDA's __expf).
inline float lg_exp(float x) { return fast::exp(x); }
#else
inline float lg_exp(float x) { return exp(x); }
#endif
inline float lg_log(float x) { return log(x); }
inline float lg_sqrt(float x) { return sqrt(x); }
inline float lg_rsqrt(float x) { return rsqrt(x); }
inline float lg_sin(float x) { return sin(x); }
inline float lg_cos(float x) { return cos(x); }
inline float lg_tanh(float x) { return tanh(x); }
inline float lg_pow(float x, float y) { return pow(x, y); }
// As torch.maximum/minimum: a NaN on either side is the result (fmax would return the other
// value). The max/min reductions use them too.
inline float lg_maximum(float x, float y) { return (x > y || isnan(x)) ? x : y; }
inline float lg_minimum(float x, float y) { return (x < y || isnan(x)) ? x : y; }

// The error function (Metal has none), within a few f32 ulp: x P(x^2) below 0.9, and
// 1 - exp(-x^2) Q(1 / (1 + |x| / 2)) above, where erf rounds to 1 from 4 on. P and Q were
// fitted for lazy_graph by weighted least squares at Chebyshev nodes (relative error 1.5e-8 and
// 3e-10 in exact arithmetic); tests/msl.rs checks this function against erf on the host.
inline float lg_erf(float x) {
  const float a = fabs(x);
  if (a < 0.9f) {
    const float s = x * x;
    float p = -6.144192367e-4f;
    p = fma(p, s, 5.023307411e-3f);
    p = fma(p, s, -2.678741434e-2f);
    p = fma(p, s, 1.128240908e-1f);
    p = fma(p, s, -3.761255504e-1f);
    p = fma(p, s, 1.128379162e+0f);
    return x * p;
  }
  if (a >= 4.0f) {
    return copysign(1.0f, x);
  }
  const float t = 1.0f / fma(0.5f, a, 1.0f);
  float q = 1.035011752e-2f;
  q = fma(q, t, 7.816720913e-2f);
  q = fma(q, t, -4.001973383e-1f);
  q = fma(q, t, 4.939885133e-1f);
  q = fma(q, t, -6.176851597e-2f);
  q = fma(q, t, 3.317830058e-1f);
  q = fma(q, t, 2.634849921e-1f);
  q = fma(q, t, 2.844028790e-1f);
  q = fma(q, t, -1.245237630e-4f);
  return copysign(1.0f - exp(-a * a) * q, x);
}

inline C lg_recip(C x) { return (C)1 / x; }
inline C lg_sigmoid(C x) { return (C)1 / ((C)1 + lg_exp(-x)); }
inline C lg_silu(C x) { return x / ((C)1 + lg_exp(-x)); }
inline C lg_gelu(C x) {
  return (C)0.5 * x * ((C)1 + lg_tanh((C)0.7978845608028654 * (x + (C)0.044715 * x * x * x)));
}
inline C lg_gelu_erf(C x) {
  return (C)0.5 * x * ((C)1 + lg_erf(x * (C)0.7071067811865476));
}
// NaN stays NaN (torch.relu).
inline C lg_relu(C x) { return x < (C)0 ? (C)0 : x; }
inline float lg_floor(float x) { return floor(x); }
inline float lg_ceil(float x) { return ceil(x); }
// Ties to even (torch.round): rint, in the default rounding mode (Metal's round goes away from 0).
inline float lg_round(float x) { return rint(x); }
// 0 for NaN and both zeros (torch.sign; Metal's sign keeps a zero's sign).
inline C lg_sign(C x) { return (C)(x > (C)0) - (C)(x < (C)0); }

// Metal has no log1p or expm1. Near 0 (1 + x within [1/sqrt2, sqrt2]) they are series without
// cancellation, as relaxed math may reassociate `(1 + x) - 1` into `x`, which would defeat the
// classic corrections; elsewhere the library function loses at most an ulp or two to the
// rounding of `1 + x` or `e^x - 1`. tests/msl.rs checks both on the host, relative to the value.
inline float lg_log1p(float x) {
  if (x > -0.29289323f && x < 0.41421357f) {
    // 2 atanh(s) for s = x / (2 + x), |s| <= 0.1716: the odd series to s^11 (truncated 5e-11).
    const float s = x / (2.0f + x), t = s * s;
    float p = 1.0f / 11.0f;
    p = fma(p, t, 1.0f / 9.0f);
    p = fma(p, t, 1.0f / 7.0f);
    p = fma(p, t, 1.0f / 5.0f);
    p = fma(p, t, 1.0f / 3.0f);
    p = fma(p, t, 1.0f);
    return 2.0f * s * p;
  }
  return log(1.0f + x);
}
inline float lg_expm1(float x) {
  if (fabs(x) < 0.34657359f) {
    // The Taylor series to x^9 / 9!, |x| < ln(sqrt2) (truncated 6e-10).
    float p = 1.0f / 362880.0f;
    p = fma(p, x, 1.0f / 40320.0f);
    p = fma(p, x, 1.0f / 5040.0f);
    p = fma(p, x, 1.0f / 720.0f);
    p = fma(p, x, 1.0f / 120.0f);
    p = fma(p, x, 1.0f / 24.0f);
    p = fma(p, x, 1.0f / 6.0f);
    p = fma(p, x, 0.5f);
    p = fma(p, x, 1.0f);
    return x * p;
  }
  return exp(x) - 1.0f;
}

// Reductions across the LG_GROUP threads of a row; every thread of the group gets the result.
// Past a simdgroup, partial results meet in `part`, the kernel's threadgroup array of 32 (Metal
// declares threadgroup memory in the kernel only); LG_RPB is then 1.
struct LgSum {
  static C apply(C a, C b) { return a + b; }
  static C identity() { return (C)0; }
  static C across(C v) { return simd_sum(v); }
};
// Across a simdgroup by shuffles with lg_maximum/lg_minimum, not simd_max/simd_min, which
// need not propagate NaN.
struct LgMax {
  static C apply(C a, C b) { return lg_maximum(a, b); }
  static C identity() { return (C)(-LG_INF); }
  static C across(C v) {
    LG_UNROLL for (ushort o = 16; o > 0; o /= 2) v = lg_maximum(v, simd_shuffle_xor(v, o));
    return v;
  }
};
struct LgMin {
  static C apply(C a, C b) { return lg_minimum(a, b); }
  static C identity() { return (C)LG_INF; }
  static C across(C v) {
    LG_UNROLL for (ushort o = 16; o > 0; o /= 2) v = lg_minimum(v, simd_shuffle_xor(v, o));
    return v;
  }
};

template <int GROUP, class Op>
inline C lg_reduce(C v, threadgroup C* part, uint tid) {
  if (GROUP <= 32) {
    LG_UNROLL for (ushort o = GROUP / 2; o > 0; o /= 2) v = Op::apply(v, simd_shuffle_xor(v, o));
    return v;
  }
  v = Op::across(v);
  const uint sg = tid / 32, lane = tid % 32;
  if (lane == 0) part[sg] = v;
  threadgroup_barrier(mem_flags::mem_threadgroup);
  v = lane < GROUP / 32 ? part[lane] : Op::identity();
  v = Op::across(v);
  // The next reduction may reuse `part` only once every thread has read it.
  threadgroup_barrier(mem_flags::mem_threadgroup);
  return v;
}
template <int GROUP>
inline C lg_reduce_sum(C v, threadgroup C* part, uint tid) { return lg_reduce<GROUP, LgSum>(v, part, tid); }
template <int GROUP>
inline C lg_reduce_max(C v, threadgroup C* part, uint tid) { return lg_reduce<GROUP, LgMax>(v, part, tid); }
template <int GROUP>
inline C lg_reduce_min(C v, threadgroup C* part, uint tid) { return lg_reduce<GROUP, LgMin>(v, part, tid); }

// Row kernels: the chunks of LG_VEC columns a thread owns in a row of `len` columns, as `lg_q`
// (chunk index); with LG_CACHE, each column input read by several loops has its chunks in
// registers (raw, as stored), loaded once per row by LG_CACHE_ROW and read back by LG_FETCH.
// The register form of a chunk: its raw 16 bytes, or one element.
#if LG_VEC == 1
typedef T lg_raw;
inline void lg_ldraw(thread lg_raw& r, device const T* p) { r = p[0]; }
inline void lg_unraw(thread C* dst, thread const lg_raw& r) { dst[0] = lg_ld(r); }
#else
typedef uint4 lg_raw;
inline void lg_ldraw(thread lg_raw& r, device const T* p) { r = *reinterpret_cast<device const uint4*>(p); }
inline void lg_unraw(thread C* dst, thread const lg_raw& r) {
  LG_UNROLL for (int i = 0; i < LG_VEC; ++i) dst[i] = lg_ld(lg_elem(r, i));
}
#endif

#if LG_CACHE > 0
// The inner loop runs at most once: C++14 has no `if` with an initializer to bind lg_q.
#define LG_ROW_CHUNKS(len)                                                                  \
  LG_UNROLL for (int lg_i = 0; lg_i < LG_CACHE; ++lg_i)                                     \
    for (long lg_q = (long)lg_i * LG_GROUP + lg_lane, lg_once = 1; lg_once && lg_q * LG_VEC < (len); lg_once = 0)
#define LG_FETCH(dst, cache, x, cs) lg_unraw(dst, cache[lg_i])
#define LG_CACHE_ROW(cache, x, cs, len)                                        \
  lg_raw cache[LG_CACHE];                                                      \
  LG_UNROLL for (int lg_i = 0; lg_i < LG_CACHE; ++lg_i) {                      \
    const long lg_q = (long)lg_i * LG_GROUP + lg_lane;                         \
    if (lg_q * LG_VEC < (len)) lg_ldraw(cache[lg_i], x + lg_q * LG_VEC * (cs)); \
  }
#else
#define LG_ROW_CHUNKS(len) for (long lg_q = lg_lane; lg_q * LG_VEC < (len); lg_q += LG_GROUP)
#define LG_FETCH(dst, cache, x, cs) lg_ldv(dst, x + lg_q * LG_VEC * (cs))
#define LG_CACHE_ROW(cache, x, cs, len)
#endif
// A column input read in a single loop: loaded where it is used, never cached.
#define LG_LOAD(dst, x, cs) lg_ldv(dst, x + lg_q * LG_VEC * (cs))
// Kernels that remap columns visit LG_UNROLL_COLS chunks a group apart per step (the launch
// configuration defines it), so that each thread has several independent loads in flight.
