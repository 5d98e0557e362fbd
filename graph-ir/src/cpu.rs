//! The CPU kernel ABI: what a macro-generated CPU kernel receives for one row, and the numeric
//! traits it computes with.
//!
//! A fused kernel is generated as a generic function over the storage type `T`; halves load into
//! f32, f32 stays f32 and f64 stays f64 ([`Elem::C`]). The runtime splits the work into rows (and,
//! for wide pointwise kernels, column ranges), finds each input's row, and calls the kernel with
//! safe slices.

use std::cell::Cell;
use std::mem::MaybeUninit;
use std::ops::{Add, Deref, DerefMut, Div, Mul, Neg, Range, Sub};
use std::sync::atomic::{AtomicU8, Ordering};

pub use half;
use half::{bf16, f16};

/// The type kernels compute in: f32 or f64.
pub trait Float:
    Copy
    + Default
    + PartialOrd
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + Send
    + Sync
    + 'static
{
    const ZERO: Self;
    const ONE: Self;
    const NEG_INFINITY: Self;
    const INFINITY: Self;
    fn from_f64(v: f64) -> Self;
    fn from_usize(v: usize) -> Self;
    fn to_f64(self) -> f64;
    fn exp(self) -> Self;
    fn ln(self) -> Self;
    fn sqrt(self) -> Self;
    fn abs(self) -> Self;
    fn sin(self) -> Self;
    fn cos(self) -> Self;
    fn tanh(self) -> Self;
    fn erf(self) -> Self;
    fn floor(self) -> Self;
    /// `ln(1 + x)`, accurate near 0.
    fn ln_1p(self) -> Self;
    /// `e^x - 1`, accurate near 0.
    fn exp_m1(self) -> Self;
    fn ceil(self) -> Self;
    /// Ties to even, as `torch.round`.
    fn round_ties_even(self) -> Self;
    fn powf(self, e: Self) -> Self;
    /// The larger value, NaN if either is: [`crate::math::maximum`] (not `f32::max`, which
    /// skips a NaN).
    fn max(self, other: Self) -> Self;
    /// The smaller value, NaN if either is: [`crate::math::minimum`].
    fn min(self, other: Self) -> Self;
    /// This thread's scratch row for kernels, with at least `len` values: see [`Scratch`].
    fn scratch(len: usize) -> Scratch<Self>;
    #[doc(hidden)]
    fn give_back(row: Vec<Self>);

    fn rsqrt(self) -> Self {
        Self::ONE / self.sqrt()
    }
    fn recip(self) -> Self {
        Self::ONE / self
    }
    fn sqr(self) -> Self {
        self * self
    }
    fn sigmoid(self) -> Self {
        self.sigmoid_with::<false>()
    }
    fn silu(self) -> Self {
        self.silu_with::<false>()
    }
    fn gelu(self) -> Self {
        self.gelu_with::<false>()
    }

    // The `_with::<FMA>` versions: in a kernel compiled for a CPU with fused multiply-add
    // (`FMA`), computed with it where that makes them faster. The same functions to within an
    // ulp or two.
    fn exp_with<const FMA: bool>(self) -> Self {
        self.exp()
    }
    fn tanh_with<const FMA: bool>(self) -> Self {
        self.tanh()
    }
    fn sigmoid_with<const FMA: bool>(self) -> Self {
        Self::ONE / (Self::ONE + (-self).exp_with::<FMA>())
    }
    fn silu_with<const FMA: bool>(self) -> Self {
        self / (Self::ONE + (-self).exp_with::<FMA>())
    }
    fn gelu_with<const FMA: bool>(self) -> Self {
        let k = Self::from_f64(crate::math::SQRT_2_OVER_PI);
        let c = Self::from_f64(0.044715);
        let half = Self::from_f64(0.5);
        half * self * (Self::ONE + (k * (self + c * self * self * self)).tanh_with::<FMA>())
    }
    fn gelu_erf(self) -> Self {
        let half = Self::from_f64(0.5);
        half * self * (Self::ONE + (self * Self::from_f64(std::f64::consts::FRAC_1_SQRT_2)).erf())
    }
    /// 0 for NaN and both zeros, as [`crate::math::sign`]; selects, which vectorise.
    fn sign(self) -> Self {
        Self::flag(self > Self::ZERO) - Self::flag(self < Self::ZERO)
    }
    /// NaN stays NaN, as [`crate::math::relu`].
    fn relu(self) -> Self {
        if self < Self::ZERO {
            Self::ZERO
        } else {
            self
        }
    }
    /// 1.0 where `c`, else 0.0: the value of a comparison.
    fn flag(c: bool) -> Self {
        if c {
            Self::ONE
        } else {
            Self::ZERO
        }
    }
    /// `a` where `cond != 0`, else `b`.
    fn select(cond: Self, a: Self, b: Self) -> Self {
        if cond != Self::ZERO {
            a
        } else {
            b
        }
    }
}

macro_rules! float_impl {
    ($t:ty, $erf:path, $exp:path, $tanh:path, $exp_with:path, $tanh_with:path, $pool:ident) => {
        impl Float for $t {
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            const NEG_INFINITY: Self = <$t>::NEG_INFINITY;
            const INFINITY: Self = <$t>::INFINITY;
            #[inline(always)]
            fn from_f64(v: f64) -> Self {
                v as $t
            }
            #[inline(always)]
            fn from_usize(v: usize) -> Self {
                v as $t
            }
            #[inline(always)]
            fn to_f64(self) -> f64 {
                self as f64
            }
            #[inline(always)]
            fn exp(self) -> Self {
                $exp(self)
            }
            #[inline(always)]
            fn ln(self) -> Self {
                <$t>::ln(self)
            }
            #[inline(always)]
            fn sqrt(self) -> Self {
                <$t>::sqrt(self)
            }
            #[inline(always)]
            fn abs(self) -> Self {
                <$t>::abs(self)
            }
            #[inline(always)]
            fn sin(self) -> Self {
                <$t>::sin(self)
            }
            #[inline(always)]
            fn cos(self) -> Self {
                <$t>::cos(self)
            }
            #[inline(always)]
            fn tanh(self) -> Self {
                $tanh(self)
            }
            #[inline(always)]
            fn exp_with<const FMA: bool>(self) -> Self {
                $exp_with(self)
            }
            #[inline(always)]
            fn tanh_with<const FMA: bool>(self) -> Self {
                $tanh_with(self)
            }
            #[inline(always)]
            fn erf(self) -> Self {
                $erf(self)
            }
            #[inline(always)]
            fn floor(self) -> Self {
                <$t>::floor(self)
            }
            #[inline(always)]
            fn ln_1p(self) -> Self {
                <$t>::ln_1p(self)
            }
            #[inline(always)]
            fn exp_m1(self) -> Self {
                <$t>::exp_m1(self)
            }
            #[inline(always)]
            fn ceil(self) -> Self {
                <$t>::ceil(self)
            }
            #[inline(always)]
            fn round_ties_even(self) -> Self {
                <$t>::round_ties_even(self)
            }
            #[inline(always)]
            fn powf(self, e: Self) -> Self {
                <$t>::powf(self, e)
            }
            // Selects without branches (a compare each for order and NaN), which vectorise.
            #[inline(always)]
            #[allow(clippy::eq_op)]
            fn max(self, other: Self) -> Self {
                if self > other || self != self {
                    self
                } else {
                    other
                }
            }
            #[inline(always)]
            #[allow(clippy::eq_op)]
            fn min(self, other: Self) -> Self {
                if self < other || self != self {
                    self
                } else {
                    other
                }
            }
            #[inline]
            fn scratch(len: usize) -> Scratch<Self> {
                let mut row = $pool.with(|p| p.take());
                if row.len() < len {
                    row.resize(len, 0.0);
                }
                Scratch { row }
            }
            fn give_back(row: Vec<Self>) {
                $pool.with(|p| p.set(row));
            }
        }
    };
}

thread_local! {
    static POOL_F32: Cell<Vec<f32>> = const { Cell::new(Vec::new()) };
    static POOL_F64: Cell<Vec<f64>> = const { Cell::new(Vec::new()) };
}

/// A row of compute values a kernel keeps between two passes over its columns (softmax's
/// `exp(x - max)`, computed for the sum and read back for the output). Lent by the thread's
/// pool and given back on drop, so only a thread's first, or longest yet, such row allocates.
#[derive(Debug)]
pub struct Scratch<C: Float> {
    row: Vec<C>,
}

impl<C: Float> Deref for Scratch<C> {
    type Target = [C];
    fn deref(&self) -> &[C] {
        &self.row
    }
}

impl<C: Float> DerefMut for Scratch<C> {
    fn deref_mut(&mut self) -> &mut [C] {
        &mut self.row
    }
}

impl<C: Float> Drop for Scratch<C> {
    fn drop(&mut self) {
        C::give_back(std::mem::take(&mut self.row));
    }
}

float_impl!(
    f32,
    libm::erff,
    crate::fast::exp_f32,
    crate::fast::tanh_f32,
    crate::fast::exp_f32_with::<FMA>,
    crate::fast::tanh_f32_with::<FMA>,
    POOL_F32
);
float_impl!(f64, libm::erf, f64::exp, f64::tanh, f64::exp, f64::tanh, POOL_F64);

/// A storage type: how a kernel loads it into its compute type and stores results back.
pub trait Elem: Copy + Send + Sync + 'static {
    type C: Float;
    fn load(self) -> Self::C;
    fn store(v: Self::C) -> Self;
}

impl Elem for f32 {
    type C = f32;
    #[inline(always)]
    fn load(self) -> f32 {
        self
    }
    #[inline(always)]
    fn store(v: f32) -> f32 {
        v
    }
}

impl Elem for f64 {
    type C = f64;
    #[inline(always)]
    fn load(self) -> f64 {
        self
    }
    #[inline(always)]
    fn store(v: f64) -> f64 {
        v
    }
}

impl Elem for f16 {
    type C = f32;
    #[inline(always)]
    fn load(self) -> f32 {
        self.to_f32()
    }
    #[inline(always)]
    fn store(v: f32) -> f16 {
        f16::from_f32(v)
    }
}

/// bf16 conversions without branches, so kernel loops over bf16 vectorise (`half`'s test for NaN
/// is a branch). The same values as `half` (`tests` below compares them): the high half of the
/// f32 on load; on store, rounding to nearest even, and NaN kept NaN.
impl Elem for bf16 {
    type C = f32;
    #[inline(always)]
    fn load(self) -> f32 {
        f32::from_bits(u32::from(self.to_bits()) << 16)
    }
    #[inline(always)]
    fn store(v: f32) -> bf16 {
        let x = v.to_bits();
        let rounded = x.wrapping_add(0x7FFF + ((x >> 16) & 1)) >> 16;
        // A NaN whose payload sits in the low half would round to infinity: set a high bit.
        let nan = (x >> 16) | 0x40;
        let bits = if x & 0x7FFF_FFFF > 0x7F80_0000 {
            nan
        } else {
            rounded
        };
        bf16::from_bits(bits as u16)
    }
}

/// Row reductions accumulate in this many independent lanes: enough additions in flight to hide
/// their latency (four 8-wide AVX2 registers of f32).
pub const LANES: usize = 32;
/// The lanes of a reduction's second, narrower pass over the columns the wide pass leaves.
pub const NARROW_LANES: usize = 8;
/// Where a row kernel's last write runs with the next row's first reduction, they alternate
/// in blocks of this many columns (a multiple of [`LANES`]).
pub const PIPELINE_BLOCK: usize = 256;

/// Runs a kernel body on `(a, outs)`: `fused`, compiled for AVX2 and FMA, where the CPU has
/// both; `baseline` otherwise.
///
/// Generated code is compiled for the target's baseline (SSE2 on x86-64), where a vectorised
/// loop handles 4 f32 at a time; most x86-64 CPUs in use run 8 with AVX2, and fuse multiplies
/// and adds. `fused` is an `#[inline(always)]` kernel body with fused multiply-adds in its `exp`
/// and `tanh`, inlined into the copy below and compiled with AVX2 and FMA enabled, chosen per
/// call by a cached CPU feature test. On x86 the macro passes the kernel's strided variant as
/// `baseline` (one optimised copy of each kernel instead of two); elsewhere the same body
/// without fused multiply-adds. Off x86, `fused` is never called, so never compiled.
#[inline(always)]
pub fn dispatch<A, O>(a: A, outs: O, baseline: impl FnOnce(A, O), fused: impl FnOnce(A, O)) {
    #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
    {
        #[target_feature(enable = "avx2,fma")]
        unsafe fn avx2_fma<A, O>(a: A, outs: O, body: impl FnOnce(A, O)) {
            body(a, outs)
        }
        if simd() {
            // SAFETY: `simd` is true only where the CPU has AVX2 and FMA.
            return unsafe { avx2_fma(a, outs, fused) };
        }
    }
    let _ = fused;
    baseline(a, outs)
}

/// 0 while unknown, then 1 (baseline code) or 2 (AVX2 and FMA code).
static SIMD: AtomicU8 = AtomicU8::new(0);

/// Whether [`dispatch`] runs the AVX2 and FMA copy.
#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
#[inline(always)]
fn simd() -> bool {
    match SIMD.load(Ordering::Relaxed) {
        0 => {
            set_simd(true);
            SIMD.load(Ordering::Relaxed) == 2
        }
        s => s == 2,
    }
}

/// Lets [`dispatch`] use AVX2 and FMA where the CPU has them (the default), or makes it run the
/// baseline code everywhere: for tests that compare the two, and for measuring what they bring.
pub fn set_simd(enabled: bool) {
    #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
    let enabled = enabled && std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma");
    #[cfg(not(any(target_arch = "x86", target_arch = "x86_64")))]
    let enabled = {
        let _ = enabled;
        false
    };
    SIMD.store(if enabled { 2 } else { 1 }, Ordering::Relaxed);
}

/// `v` rounded to the storage type `E` and back: the value of a `cast`.
pub fn round_through<E: Elem>(v: f64) -> f64 {
    E::store(E::C::from_f64(v)).load().to_f64()
}

/// One call's work for a generated kernel: `rows` consecutive rows, or a column chunk of one.
#[derive(Debug)]
pub struct RowArgs<'a, T: Elem> {
    /// Each tensor input from its element at the first row and column 0 to the end of its
    /// storage. Scalar inputs have an empty slice here and their value in `scalars`.
    pub ins: &'a [&'a [T]],
    /// The column stride of each input (0 where it broadcasts along the row).
    pub strides: &'a [usize],
    /// How far each input moves from one row to the next (0 where it broadcasts over rows).
    pub row_steps: &'a [usize],
    /// How many rows to compute, at least 1: each output holds them one after another.
    pub rows: usize,
    /// Each input's value when it is a scalar, in the compute type.
    pub scalars: &'a [T::C],
    /// The kernel's run-time sizes ([`crate::plan::Kernel::sizes`] evaluated).
    pub sizes: &'a [usize],
    /// The columns to write: the whole row for row kernels, a chunk of one row (`rows` is 1)
    /// for wide pointwise kernels.
    pub cols: Range<usize>,
}

/// A generated kernel for one storage type: writes every element of each output's rows (or
/// column chunk); `outs[i]` holds exactly those elements, rows back to back. Outputs start
/// uninitialised.
///
/// # Safety contract
///
/// Writing *every* element of every `outs[i]` is what makes the runtime's `unsafe` sound: it
/// allocates the outputs without initialising them (`Vec::set_len` over `MaybeUninit<T>`),
/// hands each call disjoint parts, and once the calls covering all rows return, treats the
/// buffers as initialised (`Vec::from_raw_parts` as `Vec<T>`). A kernel that skipped an element
/// would make reading the output undefined behaviour. The macro's CPU emitter writes each
/// output element once per row in every code path (empty rows have no elements); only generated
/// code builds these kernels.
pub type RowFn<T> = fn(&RowArgs<'_, T>, &mut [&mut [MaybeUninit<T>]]);

/// A generated column kernel for one storage type: for each of the call's `rows` rows of its
/// domain (one after another along the reduced axis, `row_steps` apart), takes every column's
/// value into `accs[i]`, the accumulator row (in the compute type, `cols.len()` long) of output
/// `i`, by its reduction's combine. The runtime starts the accumulators at the reductions'
/// identity, and combines and finishes them ([`crate::plan::KernelKind::Column`]).
pub type ColFn<T> = fn(&RowArgs<'_, T>, &mut [&mut [<T as Elem>::C]]);

/// The functions of a kernel for one storage type, in two variants: `[contiguous, strided]`.
#[derive(Debug)]
pub enum CpuFns<T: Elem> {
    /// A row or pointwise kernel.
    Rows([RowFn<T>; 2]),
    /// A column kernel.
    Columns([ColFn<T>; 2]),
}

/// A generated kernel for every storage type, in two variants: `[contiguous, strided]`. The
/// contiguous variant may assume every column-indexed input has column stride 1; the strided one
/// takes any strides, and stands in both places for the storage types the macro generates no
/// contiguous variant for (f64 and f16: see the macro's `emit::cpu::table`). Each row variant
/// keeps the [`RowFn`] contract: it writes every element of its outputs.
#[derive(Debug)]
pub struct CpuKernel {
    pub f32: CpuFns<f32>,
    pub f64: CpuFns<f64>,
    pub f16: CpuFns<f16>,
    pub bf16: CpuFns<bf16>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bf16_loads_like_half() {
        for bits in 0..=u16::MAX {
            let b = bf16::from_bits(bits);
            let (ours, theirs) = (b.load(), b.to_f32());
            if theirs.is_nan() {
                assert!(ours.is_nan(), "{bits:#06x}");
            } else {
                assert_eq!(ours.to_bits(), theirs.to_bits(), "{bits:#06x}");
            }
        }
    }

    #[test]
    fn bf16_stores_like_half() {
        let edges = [
            0,
            0x7F7F_FFFF,
            0x7F80_0000,
            0x7F80_0001,
            0x7FC0_0000,
            0x0000_8000,
            0x0001_8000,
            0x3F80_8000,
            0x3F81_8000,
        ];
        let sweep = (0..=u32::MAX).step_by(997);
        for bits in edges.into_iter().flat_map(|e| [e, e | 0x8000_0000]).chain(sweep) {
            let v = f32::from_bits(bits);
            let (ours, theirs) = (<bf16 as Elem>::store(v), bf16::from_f32(v));
            assert_eq!(ours.to_bits(), theirs.to_bits(), "{bits:#010x}");
        }
    }
}
