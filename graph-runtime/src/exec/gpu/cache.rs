//! The compiled kernels of a GPU backend (CUDA functions, Metal pipelines), by device, kernel and
//! configuration, compiled once per process on first use.
//!
//! Two levels:
//! - each thread's last few kernels, found without a lock or an allocation: a launch on a small
//!   input is latency-bound, and most programs call a few kernels over and over;
//! - behind them one map of once-cells, so that many threads making the same first call compile
//!   once while the others wait, and different kernels compile in parallel (the map's lock is
//!   held only to find the cell). A failure is kept too, so a kernel the compiler rejects is not
//!   recompiled on every call.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt::Display;
use std::hash::{BuildHasherDefault, DefaultHasher};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::thread::LocalKey;

use graph_ir::Kernel;
use smallvec::SmallVec;

use super::Config;

/// What identifies a compiled kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Key {
    /// The GPU, as its backend identifies one (CUDA: its ordinal; Metal: its registry id).
    pub device: u64,
    /// The kernel (its static address).
    pub kernel: usize,
    pub config: Config,
}

impl Key {
    /// Kernel `k` in `config` on the GPU its backend identifies as `device`.
    pub fn new(device: u64, k: &'static Kernel, config: Config) -> Key {
        Key {
            device,
            kernel: k as *const Kernel as usize,
            config,
        }
    }
}

/// A thread's latest kernels of one backend, newest last.
pub type Recent<T> = RefCell<SmallVec<[(Key, T); 4]>>;

/// What a backend compiles a kernel to: what a launch needs, cheap to clone (a reference count).
pub trait Compiled: Clone + 'static {
    /// This thread's latest kernels of this kind: a `thread_local!` of the backend's (one cannot
    /// be generic), reached through a function so that a lookup inlines it like any other.
    fn recent() -> &'static LocalKey<Recent<Self>>;
}

/// A compiled kernel, or the compiler's message.
type Slot<T> = Arc<OnceLock<Result<T, String>>>;

/// One backend's compiled kernels, for the life of the process, like the modules and pipelines
/// they hold.
pub struct KernelCache<T> {
    slots: Mutex<HashMap<Key, Slot<T>, BuildHasherDefault<DefaultHasher>>>,
}

impl<T: Compiled> KernelCache<T> {
    /// An empty cache, for a `static`.
    pub const fn new() -> Self {
        KernelCache {
            slots: Mutex::new(HashMap::with_hasher(BuildHasherDefault::new())),
        }
    }

    /// The kernel `name` under `key`, which `compile` builds from the configuration's `#define`
    /// lines at first use. `target` says what it is compiled for in the line that
    /// `LAZY_GRAPH_LOG_KERNELS` prints for each compile. The error is the compiler's message, or
    /// `refuse`'s: called before a first compile, it may forbid compiling now (a CUDA graph
    /// capture is under way), and its error is not kept, so a later call compiles as usual.
    pub fn get(
        &self,
        key: Key,
        name: &str,
        target: impl Display,
        refuse: impl FnOnce() -> Result<(), String>,
        compile: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<T, String> {
        let hit =
            T::recent().with_borrow(|recent| recent.iter().find(|(k, _)| *k == key).map(|(_, t)| t.clone()));
        if let Some(t) = hit {
            return Ok(t);
        }
        let t = self.load(key, name, target, refuse, compile)?;
        T::recent().with_borrow_mut(|recent| {
            if recent.len() == recent.inline_size() {
                recent.remove(0);
            }
            recent.push((key, t.clone()));
        });
        Ok(t)
    }

    /// [`Self::get`] through the shared map of once-cells.
    fn load(
        &self,
        key: Key,
        name: &str,
        target: impl Display,
        refuse: impl FnOnce() -> Result<(), String>,
        compile: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<T, String> {
        let slot = self
            .slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(key)
            .or_default()
            .clone();
        if slot.get().is_none() {
            refuse()?;
        }
        slot.get_or_init(|| {
            let defines = key.config.defines();
            if std::env::var_os("LAZY_GRAPH_LOG_KERNELS").is_some() {
                eprintln!(
                    "lazy_graph: compiling {name} for {target} with {}",
                    defines.replace('\n', "; ")
                );
            }
            compile(&defines)
        })
        .clone()
    }
}
