//! The language's size limits, checked so that no input makes the macro (or rustc, on what the
//! macro writes) overflow a stack, wrap an integer or run for minutes. Each limit is far above
//! what a real graph needs and is documented in the language reference ("Limits").
//!
//! Nesting is checked on the tokens, before `syn` parses them: `syn`, the checker and the
//! emitters recurse on nested expressions, so the tree they see must be bounded first. The rest
//! are checked by `check`, at the token that crosses them.

use proc_macro2::{Delimiter, TokenStream, TokenTree};

use crate::diag::Diag;

/// The highest rank a tensor may have. The runtime runs any rank (eager mode folds or flattens
/// dims where Candle's strided CPU iteration, `candle_core::nditer`, stops at 8; `tests/ranks.rs`
/// checks ranks 0 to 12): the limit keeps axes and ranks far inside the IR's `u8`, at a rank
/// no model needs.
pub const MAX_RANK: usize = 16;

/// The most parameters one function may declare.
pub const MAX_PARAMS: usize = 1024;

/// The most distinct shape symbols one function may declare (symbol ids are `u16`, with
/// `u16::MAX` reserved).
pub const MAX_SYMBOLS: usize = 1024;

/// How deeply an expression may nest: brackets, and operators or method calls chained at one
/// level (`a + b + c` nests two deep, `-(-x)` two, `x.exp().abs()` two).
pub const MAX_NESTING: usize = 256;

/// The most parts one `cat` may join: its parts are chosen per column by a chain of comparisons.
pub const MAX_CAT_PARTS: usize = 64;

/// Rejects tokens that nest deeper than [`MAX_NESTING`], at the bracket or operator that does.
///
/// The measure bounds the depth of the expression tree `syn` builds: inside a bracket, a
/// comma- or semicolon-separated item nests one level per operator or `.` it holds, and a
/// bracket nests one level below the operators before it in its item. Items at the top level
/// (function signatures and bodies) start again from zero.
pub fn check_nesting(tokens: &TokenStream) -> syn::Result<()> {
    // Walked with an explicit stack: the input itself may be arbitrarily deep.
    let mut stack: Vec<(std::vec::IntoIter<TokenTree>, usize, usize)> =
        vec![(tokens.clone().into_iter().collect::<Vec<_>>().into_iter(), 0, 0)];
    while let Some((mut iter, base, mut ops)) = stack.pop() {
        let Some(tt) = iter.next() else { continue };
        let top = stack.is_empty();
        match tt {
            TokenTree::Punct(p) if matches!(p.as_char(), ',' | ';') => {
                stack.push((iter, base, 0));
            }
            TokenTree::Punct(p) => {
                // Operators between top-level items (`->`, `#`) nest nothing.
                if !top {
                    ops += 1;
                    if base + ops > MAX_NESTING {
                        return Err(syn::Error::new(p.span(), Diag::TooDeep { limit: MAX_NESTING }));
                    }
                }
                stack.push((iter, base, ops));
            }
            TokenTree::Group(g) => {
                // A brace at the top level is a function body: its statements start from zero.
                let inner = if top && g.delimiter() == Delimiter::Brace {
                    0
                } else {
                    base + ops + 1
                };
                if inner > MAX_NESTING {
                    return Err(syn::Error::new(
                        g.span_open(),
                        Diag::TooDeep { limit: MAX_NESTING },
                    ));
                }
                stack.push((iter, base, ops));
                let items: Vec<TokenTree> = g.stream().into_iter().collect();
                stack.push((items.into_iter(), inner, 0));
            }
            _ => stack.push((iter, base, ops)),
        }
    }
    Ok(())
}
