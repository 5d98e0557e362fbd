//! The devices a test body runs on: `test_device!` and the GPUs it finds.

// Each test crate compiles this module and uses a different part of it.
#![allow(dead_code)]

use candle_core::{DType, Device};

use super::DTYPES;

/// Runs a test body `fn(&Device) -> candle_core::Result<()>` once per device, as candle-core's
/// tests do: `test_device!(softmax)` (after `#[macro_use] mod common;`) makes `softmax::cpu` and,
/// with the `cuda` feature, `softmax::cuda`, which skips loudly where no GPU answers; likewise
/// `softmax::metal` with the `metal` feature.
macro_rules! test_device {
    ($name:ident) => {
        mod $name {
            #[test]
            fn cpu() -> candle_core::Result<()> {
                super::$name(&candle_core::Device::Cpu)
            }

            #[cfg(feature = "cuda")]
            #[test]
            fn cuda() -> candle_core::Result<()> {
                match crate::common::cuda_device() {
                    Some(device) => super::$name(&device),
                    None => Ok(()),
                }
            }

            #[cfg(feature = "metal")]
            #[test]
            fn metal() -> candle_core::Result<()> {
                match crate::common::metal_device() {
                    Some(device) => super::$name(&device),
                    None => Ok(()),
                }
            }
        }
    };
}

/// The Metal GPU (one device for the whole test binary), or `None` after a loud notice where
/// there is none (a `metal` build on a Mac without a usable GPU, such as a CI virtual machine).
pub fn metal_device() -> Option<Device> {
    static DEVICE: std::sync::OnceLock<std::result::Result<Device, String>> = std::sync::OnceLock::new();
    match DEVICE.get_or_init(|| Device::new_metal(0).map_err(|e| e.to_string())) {
        Ok(device) => Some(device.clone()),
        Err(why) => {
            eprintln!("\n**** SKIPPED on Metal: no usable GPU ({why}) ****\n");
            None
        }
    }
}

/// [`DTYPES`] that `device` stores and computes: all but f64 on Metal, which has no double (nor
/// Candle any f64 Metal kernels), with a loud notice.
pub fn dtypes(device: &Device) -> &'static [DType] {
    if device.is_metal() {
        eprintln!("**** SKIPPED on Metal: f64 (Metal has no double) ****");
        &DTYPES_BUT_F64
    } else {
        &DTYPES
    }
}

const DTYPES_BUT_F64: [DType; 3] = [DType::F32, DType::F16, DType::BF16];

/// GPU 0 (one device for the whole test binary), or `None` after a loud notice where there is
/// none: a CUDA build runs on machines whose driver reports no device, and their tests must skip,
/// not fail.
pub fn cuda_device() -> Option<Device> {
    static DEVICE: std::sync::OnceLock<Option<Device>> = std::sync::OnceLock::new();
    let device = DEVICE.get_or_init(|| Device::new_cuda(0).map_err(|e| e.to_string()).ok());
    if device.is_none() {
        let why = Device::new_cuda(0)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        eprintln!("\n**** SKIPPED on CUDA: no usable GPU ({why}) ****\n");
    }
    device.clone()
}
