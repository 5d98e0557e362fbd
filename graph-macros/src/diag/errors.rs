//! The collector that gathers every phase's diagnostics and reports them together.

use proc_macro2::Span;
use quote::ToTokens;

use super::Diag;

/// Collects every error of every phase; `propagate` turns them into one `syn::Error`.
///
/// Like serde's `Ctxt`, it panics when dropped with errors never propagated, so no phase can lose
/// a diagnostic by accident.
pub struct Errors {
    errors: Vec<syn::Error>,
    checked: bool,
}

impl Errors {
    pub fn new() -> Errors {
        Errors {
            errors: Vec::new(),
            checked: false,
        }
    }

    /// An error spanning the given tokens (first to last).
    pub fn at<T: ToTokens>(&mut self, tokens: T, diag: Diag) {
        self.errors.push(syn::Error::new_spanned(tokens, diag));
    }

    /// An error at one span, for places whose tokens are gone (IR nodes keep spans only).
    pub fn at_span(&mut self, span: Span, diag: Diag) {
        self.errors.push(syn::Error::new(span, diag));
    }

    /// All errors so far as one combined error, or `Ok` when there are none.
    pub fn propagate(&mut self) -> syn::Result<()> {
        self.checked = true;
        let mut errors = std::mem::take(&mut self.errors).into_iter();
        let Some(mut first) = errors.next() else {
            return Ok(());
        };
        first.extend(errors);
        Err(first)
    }
}

impl Drop for Errors {
    fn drop(&mut self) {
        if !self.checked && !self.errors.is_empty() && !std::thread::panicking() {
            panic!(
                "lazy_graph: {} diagnostics were dropped without being reported",
                self.errors.len()
            );
        }
    }
}
