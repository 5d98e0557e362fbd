//! Turning a kernel's CUDA source into a loaded function: NVRTC compiles the prelude, the launch
//! configuration and the kernel to machine code (CUBIN) for the device's architecture, once per
//! kernel, configuration and device.
//!
//! Loaded functions are kept in memory in the GPU backends' kernel cache (see
//! [`crate::exec::gpu::cache`]); behind it, compiled images are kept on disk, one CUBIN file per
//! source, architecture and NVRTC version, written atomically, in the `cuda` folder of
//! [`crate::kernel_cache_dir`].

use std::ffi::{c_char, c_int, CStr, CString};
use std::path::PathBuf;
use std::thread::LocalKey;

use candle_core::cuda_backend::cudarc::driver::{sys, CudaFunction};
use candle_core::cuda_backend::cudarc::nvrtc::{result as nvrtc, sys as nvrtc_sys, Ptx};
use candle_core::CudaDevice;
use graph_ir::Kernel;
use sha2::{Digest, Sha256};

use super::DeviceState;
use crate::exec::gpu::cache::{Compiled, KernelCache, Key, Recent};
use crate::exec::gpu::Config;

/// The prelude every generated kernel is compiled with.
pub const PRELUDE: &str = include_str!("prelude.cuh");

/// What NVRTC produced: machine code for the architecture, or PTX for the driver to finish when
/// this NVRTC does not know the device's architecture.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Image {
    Cubin(Vec<u8>),
    Ptx(Vec<u8>),
}

/// The full text NVRTC compiles: configuration defines, prelude, kernel.
pub fn full_source(defines: &str, kernel: &str) -> String {
    format!("{defines}{PRELUDE}\n{kernel}")
}

/// The NVRTC version as `major.minor`.
pub fn nvrtc_version() -> Result<String, String> {
    let (mut major, mut minor) = (0 as c_int, 0 as c_int);
    // SAFETY: plain out-parameters.
    unsafe { nvrtc_sys::nvrtcVersion(&mut major, &mut minor) }
        .result()
        .map_err(|e| format!("NVRTC is not usable: {e:?}"))?;
    Ok(format!("{major}.{minor}"))
}

/// The architectures this NVRTC compiles for, as `sm_XY` numbers (`90` for sm_90).
fn supported_archs() -> Vec<i32> {
    let mut n: c_int = 0;
    // SAFETY: plain out-parameters, sized by the first call.
    unsafe {
        if nvrtc_sys::nvrtcGetNumSupportedArchs(&mut n).result().is_err() || n <= 0 {
            return Vec::new();
        }
        let mut archs = vec![0 as c_int; n as usize];
        if nvrtc_sys::nvrtcGetSupportedArchs(archs.as_mut_ptr())
            .result()
            .is_err()
        {
            return Vec::new();
        }
        archs
    }
}

/// Compiles `source` for compute capability `arch` (`90` for sm_90): CUBIN when this NVRTC knows
/// the architecture, else PTX for the newest one it knows below it. `name` labels the program in
/// NVRTC's messages. The error is NVRTC's log.
pub fn compile(source: &str, arch: i32, name: &str) -> Result<Image, String> {
    let supported = supported_archs();
    let (target, cubin) = if supported.is_empty() || supported.contains(&arch) {
        (format!("sm_{arch}"), true)
    } else {
        let below = supported.iter().copied().filter(|a| *a <= arch).max();
        let fallback = below.ok_or_else(|| {
            format!("this NVRTC compiles for {supported:?}, none at or below the device's sm_{arch}")
        })?;
        (format!("compute_{fallback}"), false)
    };
    let src = CString::new(source).map_err(|_| "the kernel source holds a NUL byte".to_string())?;
    let cname = CString::new(name).map_err(|_| "the kernel name holds a NUL byte".to_string())?;
    let prog = nvrtc::create_program(&src, Some(&cname)).map_err(|e| format!("{e:?}"))?;
    struct Program(nvrtc_sys::nvrtcProgram);
    impl Drop for Program {
        fn drop(&mut self) {
            // SAFETY: created above, destroyed once.
            let _ = unsafe { nvrtc::destroy_program(self.0) };
        }
    }
    let prog = Program(prog);
    let options = [
        format!("--gpu-architecture={target}"),
        "--std=c++17".to_string(),
        "--fmad=true".to_string(),
    ];
    // SAFETY: `prog` is a live program.
    if let Err(e) = unsafe { nvrtc::compile_program(prog.0, &options) } {
        // SAFETY: as above.
        let log = unsafe { nvrtc::get_program_log(prog.0) }.unwrap_or_default();
        // SAFETY: NVRTC's log is NUL-terminated.
        let log = unsafe { CStr::from_ptr(log.as_ptr()) }
            .to_string_lossy()
            .into_owned();
        return Err(format!("NVRTC {e:?} for {target}:\n{log}"));
    }
    if cubin {
        let mut size = 0usize;
        // SAFETY: out-parameters sized by NVRTC.
        unsafe {
            nvrtc_sys::nvrtcGetCUBINSize(prog.0, &mut size)
                .result()
                .map_err(|e| format!("{e:?}"))?;
            let mut data = vec![0u8; size];
            nvrtc_sys::nvrtcGetCUBIN(prog.0, data.as_mut_ptr() as *mut c_char)
                .result()
                .map_err(|e| format!("{e:?}"))?;
            Ok(Image::Cubin(data))
        }
    } else {
        // SAFETY: as above.
        let ptx = unsafe { nvrtc::get_ptx(prog.0) }.map_err(|e| format!("{e:?}"))?;
        Ok(Image::Ptx(
            ptx.iter().map(|c| *c as u8).take_while(|b| *b != 0).collect(),
        ))
    }
}

fn cache_dir() -> Option<PathBuf> {
    crate::kernel_cache_dir().map(|d| d.join("cuda"))
}

/// Compiles through the disk cache.
fn image(source: &str, arch: i32, name: &str) -> Result<Image, String> {
    let version = nvrtc_version()?;
    let key = {
        let mut h = Sha256::new();
        for part in [source, &arch.to_string(), &version] {
            h.update(part.as_bytes());
            h.update([0]);
        }
        h.finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    let dir = cache_dir();
    let path = |ext: &str| {
        dir.as_ref()
            .map(|d| d.join(format!("{name}-{}.{ext}", &key[..32])))
    };
    for (ext, wrap) in [("cubin", Image::Cubin as fn(_) -> _), ("ptx", Image::Ptx)] {
        if let Some(data) = path(ext).and_then(|p| std::fs::read(p).ok()) {
            return Ok(wrap(data));
        }
    }
    let image = compile(source, arch, name)?;
    let (ext, data) = match &image {
        Image::Cubin(d) => ("cubin", d),
        Image::Ptx(d) => ("ptx", d),
    };
    // A failed write only costs the next process a compile.
    if let (Some(dir), Some(file)) = (&dir, path(ext)) {
        let tmp = dir.join(format!(".{}.{}.tmp", &key[..32], std::process::id()));
        let written = std::fs::create_dir_all(dir)
            .and_then(|()| std::fs::write(&tmp, data))
            .and_then(|()| std::fs::rename(&tmp, &file));
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
    }
    Ok(image)
}

/// The function of kernel `k` in `config`, compiled and loaded on `device` (of `state`) at first
/// use.
pub fn function(
    device: &CudaDevice,
    state: &DeviceState,
    k: &'static Kernel,
    config: &Config,
) -> Result<CudaFunction, String> {
    static FUNCTIONS: KernelCache<CudaFunction> = KernelCache::new();
    let key = Key::new(state.ordinal as u64, k, *config);
    let name = k.name;
    let stream = device.cuda_stream();
    // Compiling and loading a module are not stream work: a capture cannot record them.
    let refuse = || match stream.capture_status() {
        Ok(sys::CUstreamCaptureStatus::CU_STREAM_CAPTURE_STATUS_NONE) => Ok(()),
        _ => Err(format!(
            "{name} would compile and load at its first use, during a CUDA graph capture, which \
             cannot record that: the capture's warm-up run did not call it with these shapes \
             (call it once with inputs of the same shapes before capturing)"
        )),
    };
    FUNCTIONS.get(key, name, format_args!("sm_{}", state.arch), refuse, |defines| {
        let text = full_source(defines, k.gpu.cuda);
        let image = image(&text, state.arch, name)?;
        let ptx = match image {
            Image::Cubin(d) => Ptx::from_binary(d),
            Image::Ptx(d) => Ptx::from_src(String::from_utf8_lossy(&d).into_owned()),
        };
        let module = stream
            .context()
            .load_module(ptx)
            .map_err(|e| format!("loading {name}: {e:?}"))?;
        module
            .load_function(name)
            .map_err(|e| format!("finding {name}: {e:?}"))
    })
}

impl Compiled for CudaFunction {
    fn recent() -> &'static LocalKey<Recent<Self>> {
        thread_local! {
            static RECENT: Recent<CudaFunction> = Recent::default();
        }
        &RECENT
    }
}
