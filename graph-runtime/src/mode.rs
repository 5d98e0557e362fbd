//! Which executor runs a graph: the fused plan (default) or the eager node-by-node path.
//!
//! Precedence: [`with_mode`] on the calling thread, then [`set_mode`], then the `LAZY_GRAPH_MODE`
//! environment variable (`eager` or `fused`, read once), then fused.

use std::cell::Cell;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::OnceLock;

/// How generated functions execute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// The fused plan: generated kernels plus library steps.
    Fused,
    /// Node by node as plain Candle ops: the reference, and a debugging aid.
    Eager,
}

const UNSET: u8 = 0;
static GLOBAL: AtomicU8 = AtomicU8::new(UNSET);

thread_local! {
    static OVERRIDE: Cell<Option<Mode>> = const { Cell::new(None) };
}

impl Mode {
    fn code(self) -> u8 {
        match self {
            Mode::Fused => 1,
            Mode::Eager => 2,
        }
    }
}

/// Sets the mode for every thread (unless a [`with_mode`] scope overrides it).
pub fn set_mode(mode: Mode) {
    GLOBAL.store(mode.code(), Ordering::Relaxed);
}

/// Runs `f` with `mode` on this thread only. Async twins run on worker threads, so they follow
/// [`set_mode`] and `LAZY_GRAPH_MODE`, not this scope.
///
/// ```
/// use graph_runtime::{mode, with_mode, Mode};
/// assert_eq!(with_mode(Mode::Eager, mode), Mode::Eager);
/// ```
pub fn with_mode<R>(mode: Mode, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<Mode>);
    impl Drop for Restore {
        fn drop(&mut self) {
            OVERRIDE.with(|o| o.set(self.0));
        }
    }
    let _restore = Restore(OVERRIDE.with(|o| o.replace(Some(mode))));
    f()
}

/// The mode a call on this thread uses now.
pub fn mode() -> Mode {
    if let Some(m) = OVERRIDE.with(Cell::get) {
        return m;
    }
    match GLOBAL.load(Ordering::Relaxed) {
        1 => Mode::Fused,
        2 => Mode::Eager,
        _ => *from_env(),
    }
}

fn from_env() -> &'static Mode {
    static ENV: OnceLock<Mode> = OnceLock::new();
    ENV.get_or_init(|| match std::env::var("LAZY_GRAPH_MODE").as_deref() {
        Ok("eager") => Mode::Eager,
        Ok("fused") | Err(_) => Mode::Fused,
        Ok(other) => {
            eprintln!("lazy_graph: LAZY_GRAPH_MODE={other:?} is not `eager` or `fused`; using fused");
            Mode::Fused
        }
    })
}
