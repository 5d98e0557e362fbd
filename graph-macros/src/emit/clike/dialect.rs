//! What a C-family dialect is: the words in which the shared kernels of [`super`] are spelled.
//!
//! Everything else — the kernels' loops, their analyses, the math — is written once. A dialect
//! (`emit/cuda.rs`, `emit/metal.rs`) is one value of [`Dialect`]; the helpers its prelude must
//! define (`lg_ld`, `lg_udiv`, `LG_ROW_CHUNKS`, ...) are the other half of the contract.

use graph_ir::ArgLayout;

use crate::kernel::Kernel;

/// How one C-family language spells a kernel.
pub struct Dialect {
    /// The start of a kernel's signature up to its name, given its largest block size
    /// (`LG_BLOCK`, `LG_GROUP * LG_RPB`): qualifiers and the bound the compiler may assume.
    pub kernel: fn(bounds: &str) -> String,
    /// The kernel's parameters, in order. Thread indices that are not built-in names
    /// ([`Dialect::thread`], ...) are parameters too.
    pub params: fn(k: &Kernel, l: &ArgLayout) -> Vec<String>,
    /// The array of the argument words of [`ArgLayout`], as the kernel names it.
    pub words: &'static str,
    /// Whether tensors arrive as pointers among the argument words (`p{i}`, `q{o}`, read once at
    /// the kernel's start) rather than as parameters of their own.
    pub pointers_in_words: bool,
    /// The thread's index in its block, the block's index in the grid, and the number of blocks.
    pub thread: &'static str,
    pub block: &'static str,
    pub blocks: &'static str,
    /// The integer types: 64-bit signed, 64-bit unsigned and 32-bit unsigned.
    pub long: &'static str,
    pub ulong: &'static str,
    pub uint: &'static str,
    /// The types of pointers to input and to output elements, with their address space.
    pub in_ptr: &'static str,
    pub out_ptr: &'static str,
    /// A declaration that a kernel with reductions makes before its loops: scratch memory that
    /// only a kernel may declare and that it hands to the prelude's reductions.
    pub reduce_scratch: Option<&'static str>,
    /// The call reducing accumulator `acc` with `op` (`sum`, `max`, `min`) across a row's
    /// threads, barriers included.
    pub reduce: fn(op: &str, acc: &str) -> String,
}

impl Dialect {
    /// Argument word `i`.
    pub fn word(&self, i: usize) -> String {
        format!("{}[{i}]", self.words)
    }
}
