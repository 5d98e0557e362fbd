//! What GPU kernels share between the macro that writes them and the runtime that launches them:
//! the generated sources of one kernel, and the layout of the single argument every generated GPU
//! kernel takes.
//!
//! A kernel's arguments travel as one flat array of 64-bit words (pointers, strides, sizes, and
//! scalars as `f64` bits), passed by value: one launch argument, nothing uploaded per launch, and
//! a layout that the emitters and the runtime both compute from [`ArgLayout`], so they cannot
//! drift apart.

/// The generated GPU sources of one kernel, written by the macro at build time.
///
/// # Contract
///
/// A launch writes every element of each output. The runtime allocates outputs uninitialised
/// (`CudaDevice::alloc`, a fresh Metal buffer) and returns them as tensors once the launch is
/// queued, so an element a kernel skipped would hold whatever the memory held before: the
/// `unsafe` allocation in the CUDA launcher relies on this. The emitters keep it with
/// grid-stride loops over every row and column (and CUDA launches nothing for empty outputs,
/// which the runtime computes through Candle instead).
#[derive(Debug)]
pub struct GpuKernel {
    /// CUDA C++: the kernel body, without the runtime's prelude and configuration defines.
    pub cuda: &'static str,
    /// Metal Shading Language: the kernel body, without the runtime's prelude and configuration.
    pub metal: &'static str,
    /// Whether the kernel reads inputs at remapped columns (`narrow`, `cat`). Such kernels read
    /// each column from memory where it is needed; the others may keep a row in registers.
    pub remaps: bool,
    /// How many column inputs a row kernel keeps in registers (those several loops read); the
    /// runtime budgets registers with it.
    pub cached_inputs: usize,
}

/// Word offsets in a kernel's argument array, for `inputs` inputs, `outputs` outputs, a row prefix
/// of rank `rank` and `sizes` run-time sizes.
///
/// In order: input pointers, output pointers, each input's column stride, each input's row
/// strides (one per prefix dim, outermost first), the prefix dims, each prefix dim's division
/// magic (see [`magic`]), each input's scalar value (as `f64` bits; unused for tensor inputs), the
/// sizes, each output's row length, the row count, and the division magic of the row length of
/// a pointwise kernel. A column kernel ([`crate::KernelKind::Column`]) has more after those: a
/// pointer to each output's partial results (in the compute type), the stage of the launch (0:
/// partials, 1: their combination), the rows of a chunk of the reduced axis, the number of
/// chunks, and the number of output rows. Strides and sizes count elements; pointers are device
/// addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArgLayout {
    pub inputs: usize,
    pub outputs: usize,
    pub rank: usize,
    pub sizes: usize,
    /// Whether the kernel is a column kernel, with the words only those have.
    pub columns: bool,
}

impl ArgLayout {
    pub fn in_ptr(&self, k: usize) -> usize {
        k
    }

    pub fn out_ptr(&self, k: usize) -> usize {
        self.inputs + k
    }

    pub fn col_stride(&self, k: usize) -> usize {
        self.inputs + self.outputs + k
    }

    pub fn row_stride(&self, k: usize, dim: usize) -> usize {
        2 * self.inputs + self.outputs + k * self.rank + dim
    }

    pub fn prefix(&self, dim: usize) -> usize {
        2 * self.inputs + self.outputs + self.inputs * self.rank + dim
    }

    pub fn prefix_magic(&self, dim: usize) -> usize {
        self.prefix(self.rank) + dim
    }

    pub fn scalar(&self, k: usize) -> usize {
        self.prefix_magic(self.rank) + k
    }

    pub fn size(&self, s: usize) -> usize {
        self.scalar(self.inputs) + s
    }

    pub fn out_len(&self, k: usize) -> usize {
        self.size(self.sizes) + k
    }

    pub fn rows(&self) -> usize {
        self.out_len(self.outputs)
    }

    pub fn width_magic(&self) -> usize {
        self.rows() + 1
    }

    /// A column kernel's pointer to the partial results of output `k`.
    pub fn partials(&self, k: usize) -> usize {
        self.width_magic() + 1 + k
    }

    /// A column kernel's stage: 0 computes the partial results, 1 combines them.
    pub fn stage(&self) -> usize {
        self.partials(self.outputs)
    }

    /// A column kernel's rows per chunk of the reduced axis.
    pub fn chunk(&self) -> usize {
        self.stage() + 1
    }

    /// A column kernel's number of chunks (partial results per output element).
    pub fn parts(&self) -> usize {
        self.stage() + 2
    }

    /// A column kernel's number of output rows.
    pub fn out_rows(&self) -> usize {
        self.stage() + 3
    }

    /// The number of words.
    pub fn words(&self) -> usize {
        match self.columns {
            true => self.out_rows() + 1,
            false => self.width_magic() + 1,
        }
    }
}

/// Metal binds each tensor as a buffer of its own (Candle orders work by buffer), beside the
/// argument words at buffer 0: input `k` at buffer `1 + k` (scalar inputs have none), output `k`
/// at buffer `1 + inputs + k`, a column kernel's partial results of output `k` at buffer
/// `1 + inputs + outputs + k`. The pointer words of [`ArgLayout`] go unused there.
pub mod metal {
    /// The buffer index of input `k`'s tensor.
    pub fn input_buffer(k: usize) -> usize {
        1 + k
    }

    /// The buffer index of output `k` of a kernel with `inputs` inputs.
    pub fn output_buffer(inputs: usize, k: usize) -> usize {
        1 + inputs + k
    }

    /// The buffer index of a column kernel's partial results of output `k`.
    pub fn partials_buffer(inputs: usize, outputs: usize, k: usize) -> usize {
        1 + inputs + outputs + k
    }
}

/// Division by the invariant `divisor` (1 ..= 2^31 - 1) as a multiply and a shift: the word
/// `m | shift << 32`, with which `n / divisor == (umulhi(n, m) + n) >> shift` for every
/// `n < 2^31` (Granlund and Montgomery; PyTorch's `IntegerDivider`). Kernels divide row indices
/// by dims with it, a few instructions instead of a few dozen.
pub fn magic(divisor: u32) -> u64 {
    assert!(
        (1..1 << 31).contains(&divisor),
        "magic division needs 1 <= d < 2^31"
    );
    let shift = (0..32).find(|s| (1u64 << s) >= u64::from(divisor)).unwrap_or(31);
    let m = ((1u64 << 32) * ((1u64 << shift) - u64::from(divisor))) / u64::from(divisor) + 1;
    (m & 0xffff_ffff) | (shift << 32)
}

#[cfg(test)]
mod tests {
    use super::{magic, ArgLayout};

    /// What the kernels compute with a magic word.
    fn divide(n: u32, word: u64) -> u32 {
        let (m, shift) = (word as u32, (word >> 32) as u32);
        let hi = ((u64::from(n) * u64::from(m)) >> 32) as u32;
        (hi + n) >> shift
    }

    #[test]
    fn magic_division_is_exact_below_two_to_the_31() {
        let divisors = (1..2000).chain([4095, 4096, 4097, 65535, 65536, 1 << 20, (1 << 31) - 1]);
        for d in divisors {
            let w = magic(d);
            let ns = (0..3000).chain([d - 1, d, d + 1, 2 * d, (1 << 31) - 2, (1 << 31) - 1]);
            for n in ns.filter(|n| *n < 1 << 31) {
                assert_eq!(divide(n, w), n / d, "{n} / {d}");
            }
        }
    }

    #[test]
    fn every_word_has_one_owner() {
        for columns in [false, true] {
            every_word_has_one_owner_in(columns);
        }
    }

    fn every_word_has_one_owner_in(columns: bool) {
        let l = ArgLayout {
            inputs: 3,
            outputs: 2,
            rank: 2,
            sizes: 4,
            columns,
        };
        let mut owners = vec![0; l.words()];
        let mut own = |w: usize| owners[w] += 1;
        for k in 0..l.inputs {
            own(l.in_ptr(k));
            own(l.col_stride(k));
            own(l.scalar(k));
            for d in 0..l.rank {
                own(l.row_stride(k, d));
            }
        }
        for k in 0..l.outputs {
            own(l.out_ptr(k));
            own(l.out_len(k));
        }
        for d in 0..l.rank {
            own(l.prefix(d));
            own(l.prefix_magic(d));
        }
        for s in 0..l.sizes {
            own(l.size(s));
        }
        own(l.rows());
        own(l.width_magic());
        if columns {
            (0..l.outputs).for_each(|k| own(l.partials(k)));
            [l.stage(), l.chunk(), l.parts(), l.out_rows()]
                .into_iter()
                .for_each(&mut own);
        }
        assert!(owners.iter().all(|&n| n == 1), "{owners:?}");
    }
}
