//! Where a call's host time goes, by phase: compiled in with the `profile-host` feature (for
//! benchmarks chasing per-call latency), a no-op otherwise.
//!
//! ```
//! graph_runtime::profile::reset();
//! // ... calls of generated functions ...
//! if let Some(report) = graph_runtime::profile::report() {
//!     print!("{report}"); // one line per phase: mean µs and count
//! }
//! ```

/// The phases of a call that are timed.
#[derive(Clone, Copy, Debug)]
#[allow(dead_code)]
pub(crate) enum Phase {
    Bind = 0,
    Plan,
    CudaPrepare,
    CudaFunction,
    CudaAlloc,
    CudaLaunch,
    CudaWrap,
}

const NAMES: [&str; 7] = [
    "bind inputs",
    "plan steps (all but kernels)",
    "cuda: shapes, inputs, launch shape",
    "cuda: function lookup",
    "cuda: output allocation",
    "cuda: argument words and launch",
    "cuda: output tensors",
];

#[cfg(feature = "profile-host")]
mod imp {
    use std::sync::atomic::{AtomicU64, Ordering};

    pub static NANOS: [AtomicU64; 7] = [const { AtomicU64::new(0) }; 7];
    pub static CALLS: [AtomicU64; 7] = [const { AtomicU64::new(0) }; 7];

    pub fn add(phase: usize, nanos: u64) {
        NANOS[phase].fetch_add(nanos, Ordering::Relaxed);
        CALLS[phase].fetch_add(1, Ordering::Relaxed);
    }
}

/// Runs `f`, adding its time to `phase` with the `profile-host` feature.
#[inline(always)]
pub(crate) fn timed<R>(phase: Phase, f: impl FnOnce() -> R) -> R {
    #[cfg(feature = "profile-host")]
    {
        let start = std::time::Instant::now();
        let r = f();
        imp::add(phase as usize, start.elapsed().as_nanos() as u64);
        r
    }
    #[cfg(not(feature = "profile-host"))]
    {
        let _ = phase;
        f()
    }
}

/// The mean host time per occurrence of each phase since the last [`reset`], one line each;
/// `None` without the `profile-host` feature.
pub fn report() -> Option<String> {
    #[cfg(feature = "profile-host")]
    {
        use std::sync::atomic::Ordering;
        let mut out = String::new();
        for (i, name) in NAMES.iter().enumerate() {
            let calls = imp::CALLS[i].load(Ordering::Relaxed);
            if calls > 0 {
                let mean = imp::NANOS[i].load(Ordering::Relaxed) as f64 / calls as f64 / 1e3;
                out += &format!("{name:<40} {mean:>8.2} µs  ({calls} times)\n");
            }
        }
        Some(out)
    }
    #[cfg(not(feature = "profile-host"))]
    {
        let _ = NAMES;
        None
    }
}

/// Clears what [`report`] reports.
pub fn reset() {
    #[cfg(feature = "profile-host")]
    for i in 0..NAMES.len() {
        imp::NANOS[i].store(0, std::sync::atomic::Ordering::Relaxed);
        imp::CALLS[i].store(0, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Laps of one call: each [`Clock::lap`] adds the time since the previous lap to a phase.
pub(crate) struct Clock {
    #[cfg(feature = "profile-host")]
    last: std::time::Instant,
}

impl Clock {
    #[inline(always)]
    pub(crate) fn start() -> Clock {
        Clock {
            #[cfg(feature = "profile-host")]
            last: std::time::Instant::now(),
        }
    }

    /// Adds the time since the last lap (or the start) to `phase`.
    #[inline(always)]
    pub(crate) fn lap(&mut self, phase: Phase) {
        #[cfg(feature = "profile-host")]
        {
            let now = std::time::Instant::now();
            imp::add(phase as usize, (now - self.last).as_nanos() as u64);
            self.last = now;
        }
        #[cfg(not(feature = "profile-host"))]
        let _ = phase;
    }

    /// Restarts the lap without counting the time since the last one.
    #[inline(always)]
    pub(crate) fn skip(&mut self) {
        #[cfg(feature = "profile-host")]
        {
            self.last = std::time::Instant::now();
        }
    }
}
