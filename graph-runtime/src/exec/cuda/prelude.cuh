// lazy_graph CUDA prelude: the API that generated kernels (graph-macros/src/emit/cuda.rs and
// clike.rs) are written against. Self-contained: no CUDA headers, so NVRTC needs no include path
// on a user's machine.
//
// The runtime defines the configuration before this text:
//   LG_DTYPE   storage type: 0 f32, 1 f64, 2 f16, 3 bf16 (compute is f32, or f64 for f64)
//   LG_VEC     elements per chunk: 1, or a multiple of 16 bytes' worth read as 16-byte pieces
//              (inputs then have column stride 1, 16-byte aligned rows, and row lengths
//              divisible by LG_VEC); the runtime uses one piece
//   row kernels:       LG_GROUP threads per row (a power of two), LG_RPB rows per block (1 when
//                      LG_GROUP > 32), LG_CACHE chunks of LG_VEC columns each thread keeps in
//                      registers (0: re-read in every column loop)
//   pointwise kernels: LG_BLOCK threads per block
//   LG_WIDE    1 when flat or row indices may pass 2^31 - 1: 64-bit index arithmetic with
//              division; else 32-bit, dividing by multiply and shift (see lg_udiv)

#define LG_UNROLL _Pragma("unroll")

// All kernel arguments, as 64-bit words (see graph_ir::gpu::ArgLayout).
template <int N>
struct LgArgs {
  long long w[N];
};

struct lg_f16 {
  unsigned short b;
};
struct lg_bf16 {
  unsigned short b;
};

#if LG_DTYPE == 0
typedef float T;
typedef float C;
#elif LG_DTYPE == 1
typedef double T;
typedef double C;
#elif LG_DTYPE == 2
typedef lg_f16 T;
typedef float C;
#elif LG_DTYPE == 3
typedef lg_bf16 T;
typedef float C;
#else
#error "LG_DTYPE must be 0 (f32), 1 (f64), 2 (f16) or 3 (bf16)"
#endif

#define LG_INF __int_as_float(0x7f800000)
#define LG_NAN __int_as_float(0x7fffffff)

// Storage <-> compute.
__device__ __forceinline__ float lg_ld(float x) { return x; }
__device__ __forceinline__ double lg_ld(double x) { return x; }
__device__ __forceinline__ float lg_ld(lg_f16 x) {
  float f;
  asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(x.b));
  return f;
}
__device__ __forceinline__ float lg_ld(lg_bf16 x) { return __uint_as_float(((unsigned int)x.b) << 16); }

__device__ __forceinline__ lg_f16 lg_to_f16(float f) {
  lg_f16 h;
  asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h.b) : "f"(f));
  return h;
}
__device__ __forceinline__ lg_bf16 lg_to_bf16(float f) {
  lg_bf16 h;
  asm("cvt.rn.bf16.f32 %0, %1;" : "=h"(h.b) : "f"(f));
  return h;
}

__device__ __forceinline__ T lg_st(C v) {
#if LG_DTYPE == 2
  return lg_to_f16(v);
#elif LG_DTYPE == 3
  return lg_to_bf16(v);
#else
  return v;
#endif
}

#if LG_WIDE
typedef unsigned long long lg_idx;
#else
typedef unsigned int lg_idx;
#endif

// n / d for n < 2^31, where `magic` is graph_ir::gpu::magic(d): the multiplier in the low word,
// the shift in the high one.
__device__ __forceinline__ unsigned int lg_udiv(unsigned int n, long long magic) {
  return (__umulhi(n, (unsigned int)magic) + n) >> (unsigned int)(magic >> 32);
}

// A scalar argument: f64 bits.
__device__ __forceinline__ C lg_scalar(long long bits) { return (C)__longlong_as_double(bits); }

// `cast`: the value rounded through a storage type (halves through f32 first, as on the CPU).
__device__ __forceinline__ C lg_round_f16(C x) { return (C)lg_ld(lg_to_f16((float)x)); }
__device__ __forceinline__ C lg_round_bf16(C x) { return (C)lg_ld(lg_to_bf16((float)x)); }
__device__ __forceinline__ C lg_round_f32(C x) { return (C)(float)x; }
__device__ __forceinline__ C lg_round_f64(C x) { return x; }

// Vector loads and stores of LG_VEC elements starting at `p`.
struct alignas(16) lg_v16 {
  unsigned int w[4];
};

// LG_VEC elements as 16-byte pieces (one, or several for wide pointwise chunks).
#define LG_PIECE (16 / (int)sizeof(T))

__device__ __forceinline__ void lg_ldv(C* dst, const T* p) {
#if LG_VEC == 1
  dst[0] = lg_ld(p[0]);
#else
  static_assert(LG_VEC % LG_PIECE == 0, "vector accesses are whole 16-byte pieces");
  LG_UNROLL for (int k = 0; k < LG_VEC / LG_PIECE; ++k) {
    union {
      lg_v16 v;
      T e[LG_PIECE];
    } u;
    u.v = reinterpret_cast<const lg_v16*>(p)[k];
    LG_UNROLL for (int i = 0; i < LG_PIECE; ++i) dst[k * LG_PIECE + i] = lg_ld(u.e[i]);
  }
#endif
}

__device__ __forceinline__ void lg_stv(T* p, const C* src) {
#if LG_VEC == 1
  p[0] = lg_st(src[0]);
#else
  LG_UNROLL for (int k = 0; k < LG_VEC / LG_PIECE; ++k) {
    union {
      lg_v16 v;
      T e[LG_PIECE];
    } u;
    LG_UNROLL for (int i = 0; i < LG_PIECE; ++i) u.e[i] = lg_st(src[k * LG_PIECE + i]);
    reinterpret_cast<lg_v16*>(p)[k] = u.v;
  }
#endif
}

// Math, in the compute type. Same formulas as the CPU kernels (graph_ir::cpu::Float).
__device__ __forceinline__ float lg_abs(float x) { return fabsf(x); }
__device__ __forceinline__ double lg_abs(double x) { return fabs(x); }
#if LG_DTYPE >= 2
// Halves: the hardware exponential (2 ulp plus 2^-21 relative per unit of |x|), far below the
// storage type's rounding, and twice as cheap: row kernels such as softmax are otherwise bound by
// exp, not by memory, at two elements per four bytes.
__device__ __forceinline__ float lg_exp(float x) { return __expf(x); }
#else
__device__ __forceinline__ float lg_exp(float x) { return expf(x); }
#endif
__device__ __forceinline__ double lg_exp(double x) { return exp(x); }
__device__ __forceinline__ float lg_log(float x) { return logf(x); }
__device__ __forceinline__ double lg_log(double x) { return log(x); }
__device__ __forceinline__ float lg_sqrt(float x) { return sqrtf(x); }
__device__ __forceinline__ double lg_sqrt(double x) { return sqrt(x); }
__device__ __forceinline__ float lg_rsqrt(float x) { return rsqrtf(x); }
__device__ __forceinline__ double lg_rsqrt(double x) { return 1.0 / sqrt(x); }
__device__ __forceinline__ float lg_sin(float x) { return sinf(x); }
__device__ __forceinline__ double lg_sin(double x) { return sin(x); }
__device__ __forceinline__ float lg_cos(float x) { return cosf(x); }
__device__ __forceinline__ double lg_cos(double x) { return cos(x); }
__device__ __forceinline__ float lg_tanh(float x) { return tanhf(x); }
__device__ __forceinline__ double lg_tanh(double x) { return tanh(x); }
__device__ __forceinline__ float lg_erf(float x) { return erff(x); }
__device__ __forceinline__ double lg_erf(double x) { return erf(x); }
__device__ __forceinline__ float lg_pow(float x, float y) { return powf(x, y); }
__device__ __forceinline__ double lg_pow(double x, double y) { return pow(x, y); }
// As torch.maximum/minimum: a NaN on either side is the result (fmaxf would return the other
// value). Selects, not branches; the max/min reductions use them too, so a NaN anywhere in a row
// reaches every thread's result.
__device__ __forceinline__ C lg_maximum(C x, C y) { return (x > y || x != x) ? x : y; }
__device__ __forceinline__ C lg_minimum(C x, C y) { return (x < y || x != x) ? x : y; }

__device__ __forceinline__ C lg_recip(C x) { return (C)1 / x; }
__device__ __forceinline__ C lg_sigmoid(C x) { return (C)1 / ((C)1 + lg_exp(-x)); }
__device__ __forceinline__ C lg_silu(C x) { return x / ((C)1 + lg_exp(-x)); }
__device__ __forceinline__ C lg_gelu(C x) {
  return (C)0.5 * x * ((C)1 + lg_tanh((C)0.7978845608028654 * (x + (C)0.044715 * x * x * x)));
}
__device__ __forceinline__ C lg_gelu_erf(C x) {
  return (C)0.5 * x * ((C)1 + lg_erf(x * (C)0.7071067811865476));
}
// NaN stays NaN (torch.relu).
__device__ __forceinline__ C lg_relu(C x) { return x < (C)0 ? (C)0 : x; }
__device__ __forceinline__ float lg_floor(float x) { return floorf(x); }
__device__ __forceinline__ double lg_floor(double x) { return floor(x); }
__device__ __forceinline__ float lg_ceil(float x) { return ceilf(x); }
__device__ __forceinline__ double lg_ceil(double x) { return ceil(x); }
// Ties to even (torch.round): rint, in the default rounding mode.
__device__ __forceinline__ float lg_round(float x) { return rintf(x); }
__device__ __forceinline__ double lg_round(double x) { return rint(x); }
// 0 for NaN and both zeros (torch.sign).
__device__ __forceinline__ C lg_sign(C x) { return (C)(x > (C)0) - (C)(x < (C)0); }
__device__ __forceinline__ float lg_log1p(float x) { return log1pf(x); }
__device__ __forceinline__ double lg_log1p(double x) { return log1p(x); }
__device__ __forceinline__ float lg_expm1(float x) { return expm1f(x); }
__device__ __forceinline__ double lg_expm1(double x) { return expm1(x); }

// Reductions across the LG_GROUP threads of a row; every thread of the group gets the result.
// Past a warp, partial results meet in shared memory (LG_RPB is then 1).
struct LgSum {
  __device__ static C apply(C a, C b) { return a + b; }
  __device__ static C identity() { return (C)0; }
};
struct LgMax {
  __device__ static C apply(C a, C b) { return lg_maximum(a, b); }
  __device__ static C identity() { return (C)(-LG_INF); }
};
struct LgMin {
  __device__ static C apply(C a, C b) { return lg_minimum(a, b); }
  __device__ static C identity() { return (C)LG_INF; }
};

template <int GROUP, int RPB, class Op>
__device__ __forceinline__ C lg_reduce(C v) {
  __shared__ C lg_part[32];
  LG_UNROLL for (int o = (GROUP < 32 ? GROUP : 32) / 2; o > 0; o /= 2) {
    v = Op::apply(v, __shfl_xor_sync(0xffffffffu, v, o));
  }
  if (GROUP > 32) {
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    if (lane == 0) lg_part[warp] = v;
    __syncthreads();
    v = lane < GROUP / 32 ? lg_part[lane] : Op::identity();
    LG_UNROLL for (int o = 16; o > 0; o /= 2) v = Op::apply(v, __shfl_xor_sync(0xffffffffu, v, o));
    // The next reduction may reuse lg_part only once every thread has read it.
    __syncthreads();
  }
  return v;
}
template <int GROUP, int RPB>
__device__ __forceinline__ C lg_reduce_sum(C v) { return lg_reduce<GROUP, RPB, LgSum>(v); }
template <int GROUP, int RPB>
__device__ __forceinline__ C lg_reduce_max(C v) { return lg_reduce<GROUP, RPB, LgMax>(v); }
template <int GROUP, int RPB>
__device__ __forceinline__ C lg_reduce_min(C v) { return lg_reduce<GROUP, RPB, LgMin>(v); }

// Row kernels: the chunks of LG_VEC columns a thread owns in a row of `len` columns, as
// `lg_q` (chunk index); with LG_CACHE, each column input read by several loops has its chunks in
// registers (raw, as stored), loaded once per row by LG_CACHE_ROW and read back by LG_FETCH.
// The register form of a chunk: its raw 16 bytes (8 halves in 4 registers, not 8 floats), or
// one element.
#if LG_VEC == 1
typedef T lg_raw;
__device__ __forceinline__ void lg_ldraw(lg_raw& r, const T* p) { r = p[0]; }
__device__ __forceinline__ void lg_unraw(C* dst, const lg_raw& r) { dst[0] = lg_ld(r); }
#else
typedef lg_v16 lg_raw;
__device__ __forceinline__ void lg_ldraw(lg_raw& r, const T* p) { r = *reinterpret_cast<const lg_v16*>(p); }
__device__ __forceinline__ void lg_unraw(C* dst, const lg_raw& r) {
  union {
    lg_v16 v;
    T e[LG_VEC];
  } u;
  u.v = r;
  LG_UNROLL for (int i = 0; i < LG_VEC; ++i) dst[i] = lg_ld(u.e[i]);
}
#endif

#if LG_CACHE > 0
#define LG_ROW_CHUNKS(len)                                   \
  LG_UNROLL for (int lg_i = 0; lg_i < LG_CACHE; ++lg_i)      \
    if (const long long lg_q = (long long)lg_i * LG_GROUP + lg_lane; lg_q * LG_VEC < (len))
#define LG_FETCH(dst, cache, x, cs) lg_unraw(dst, cache[lg_i])
#define LG_CACHE_ROW(cache, x, cs, len)                                      \
  lg_raw cache[LG_CACHE];                                                    \
  LG_UNROLL for (int lg_i = 0; lg_i < LG_CACHE; ++lg_i) {                    \
    const long long lg_q = (long long)lg_i * LG_GROUP + lg_lane;             \
    if (lg_q * LG_VEC < (len)) lg_ldraw(cache[lg_i], x + lg_q * LG_VEC * (cs)); \
  }
#else
#define LG_ROW_CHUNKS(len) for (long long lg_q = lg_lane; lg_q * LG_VEC < (len); lg_q += LG_GROUP)
#define LG_FETCH(dst, cache, x, cs) lg_ldv(dst, x + lg_q * LG_VEC * (cs))
#define LG_CACHE_ROW(cache, x, cs, len)
#endif
// A column input read in a single loop: loaded where it is used, never cached.
#define LG_LOAD(dst, x, cs) lg_ldv(dst, x + lg_q * LG_VEC * (cs))
// Kernels that remap columns visit LG_UNROLL_COLS chunks a group apart per step (the launch
// configuration defines it), so that each thread has several independent loads in flight.
