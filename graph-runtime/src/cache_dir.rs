//! Where GPU backends keep compiled kernels between processes.

use std::path::PathBuf;
use std::sync::{PoisonError, RwLock};

/// `None`: not set, use the environment; `Some(None)`: no disk cache.
static CACHE_DIR: RwLock<Option<Option<PathBuf>>> = RwLock::new(None);

/// Sets the folder where GPU backends keep compiled kernels between processes; `None` turns the
/// disk cache off. Without a call, the folder is `$LAZY_GRAPH_CACHE_DIR`, else
/// `$XDG_CACHE_HOME/lazy_graph`, else `~/.cache/lazy_graph`. Kernels compiled before the call stay
/// cached in memory.
///
/// ```
/// graph_runtime::set_kernel_cache_dir(Some(std::env::temp_dir().join("my-kernels")));
/// assert_eq!(graph_runtime::kernel_cache_dir(), Some(std::env::temp_dir().join("my-kernels")));
/// ```
pub fn set_kernel_cache_dir(dir: Option<PathBuf>) {
    *CACHE_DIR.write().unwrap_or_else(PoisonError::into_inner) = Some(dir);
}

/// The folder of compiled kernels now in effect (see [`set_kernel_cache_dir`]); `None` when there
/// is no disk cache.
pub fn kernel_cache_dir() -> Option<PathBuf> {
    if let Some(dir) = CACHE_DIR.read().unwrap_or_else(PoisonError::into_inner).clone() {
        return dir;
    }
    let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    env("LAZY_GRAPH_CACHE_DIR")
        .or_else(|| env("XDG_CACHE_HOME").map(|d| d.join("lazy_graph")))
        .or_else(|| env("HOME").map(|d| d.join(".cache").join("lazy_graph")))
}
