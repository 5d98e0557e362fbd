//! The CPU kernel ABI: what a macro-generated CPU kernel receives for one row, and the numeric
//! traits it computes with.
//!
//! A fused kernel is generated as a generic function over the storage type `T`; halves load into
//! f32, f32 stays f32 and f64 stays f64 ([`Elem::C`]). The runtime splits the work into rows (and,
//! for wide pointwise kernels, column ranges), finds each input's row, and calls the kernel with
//! safe slices.

use std::mem::MaybeUninit;
use std::ops::{Add, Div, Mul, Neg, Range, Sub};

pub use half;
use half::{bf16, f16};

/// The type kernels compute in: f32 or f64.
pub trait Float:
    Copy
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
    fn powf(self, e: Self) -> Self;
    /// IEEE maxNum, as [`crate::math::maximum`].
    fn max(self, other: Self) -> Self;
    fn min(self, other: Self) -> Self;

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
        Self::ONE / (Self::ONE + (-self).exp())
    }
    fn silu(self) -> Self {
        self / (Self::ONE + (-self).exp())
    }
    fn gelu(self) -> Self {
        let k = Self::from_f64(crate::math::SQRT_2_OVER_PI);
        let c = Self::from_f64(0.044715);
        let half = Self::from_f64(0.5);
        half * self * (Self::ONE + (k * (self + c * self * self * self)).tanh())
    }
    fn gelu_erf(self) -> Self {
        let half = Self::from_f64(0.5);
        half * self * (Self::ONE + (self * Self::from_f64(std::f64::consts::FRAC_1_SQRT_2)).erf())
    }
    fn relu(self) -> Self {
        if self > Self::ZERO {
            self
        } else {
            Self::ZERO
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
    ($t:ty, $erf:path, $exp:path, $tanh:path) => {
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
            fn erf(self) -> Self {
                $erf(self)
            }
            #[inline(always)]
            fn powf(self, e: Self) -> Self {
                <$t>::powf(self, e)
            }
            #[inline(always)]
            fn max(self, other: Self) -> Self {
                <$t>::max(self, other)
            }
            #[inline(always)]
            fn min(self, other: Self) -> Self {
                <$t>::min(self, other)
            }
        }
    };
}

float_impl!(f32, libm::erff, crate::fast::exp_f32, crate::fast::tanh_f32);
float_impl!(f64, libm::erf, f64::exp, f64::tanh);

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

impl Elem for bf16 {
    type C = f32;
    #[inline(always)]
    fn load(self) -> f32 {
        self.to_f32()
    }
    #[inline(always)]
    fn store(v: f32) -> bf16 {
        bf16::from_f32(v)
    }
}

/// `v` rounded to the storage type `E` and back: the value of a `cast`.
pub fn round_through<E: Elem>(v: f64) -> f64 {
    E::store(E::C::from_f64(v)).load().to_f64()
}

/// One row of work for a generated kernel.
#[derive(Debug)]
pub struct RowArgs<'a, T: Elem> {
    /// Each tensor input from its element at this row and column 0 to the end of its storage.
    /// Scalar inputs have an empty slice here and their value in `scalars`.
    pub ins: &'a [&'a [T]],
    /// The column stride of each input (0 where it broadcasts along the row).
    pub strides: &'a [usize],
    /// Each input's value when it is a scalar, in the compute type.
    pub scalars: &'a [T::C],
    /// The kernel's run-time sizes ([`crate::plan::Kernel::sizes`] evaluated).
    pub sizes: &'a [usize],
    /// The columns to write: the whole row for row kernels, a chunk for wide pointwise kernels.
    pub cols: Range<usize>,
}

/// A generated kernel for one storage type: writes every element of each output's row (or
/// column chunk); `outs[i]` starts at the first element to write. Outputs start uninitialised.
pub type RowFn<T> = fn(&RowArgs<'_, T>, &mut [&mut [MaybeUninit<T>]]);

/// A generated kernel for every storage type, in two variants: `[contiguous, strided]`. The
/// contiguous variant may assume every column-indexed input has column stride 1.
#[derive(Debug)]
pub struct CpuKernel {
    pub f32: [RowFn<f32>; 2],
    pub f64: [RowFn<f64>; 2],
    pub f16: [RowFn<f16>; 2],
    pub bf16: [RowFn<bf16>; 2],
}
