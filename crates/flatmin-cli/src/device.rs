//! Where a command computes: the `--device` flag of `train`, `replay` and `bench`, and the one
//! place that turns it into a Burn device.
//!
//! `cpu` is Burn's flex backend, always built and the default. `wgpu` is Burn's wgpu backend
//! (a GPU through Vulkan, Metal or DX12; on a machine without one, Mesa's software Vulkan
//! driver, on which CI tests it). `cuda` is Burn's CUDA backend, GPU 0 (compiled, never run
//! here: this project has no GPU). `tch` is Burn's LibTorch backend on the CPU (PyTorch's own
//! kernels; needs PyTorch 2.9.0's libtorch to build and run). Each exists only in builds with its
//! feature, and a build without it refuses the name with how to get it. Burn's own default device is not used: with
//! a GPU feature compiled in it would move every run to the GPU, whatever the flag says.

use std::fmt;
use std::str::FromStr;

use burn::tensor::{DType, Device};

/// A device of the `--device` flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceChoice {
    /// Burn's CPU backend (flex).
    #[default]
    Cpu,
    /// Burn's wgpu backend (the `wgpu` feature).
    Wgpu,
    /// Burn's CUDA backend, GPU 0 (the `cuda` feature).
    Cuda,
    /// Burn's LibTorch backend on the CPU (the `tch` feature).
    Tch,
}

/// The names `--device` accepts, in every build.
pub const DEVICE_NAMES: [&str; 4] = ["cpu", "wgpu", "cuda", "tch"];

/// A device that cannot be used, with what to do instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DeviceError(pub String);

impl DeviceChoice {
    /// Whether the host only queues work that the device runs later (wgpu, CUDA): a step's
    /// clock then has to wait for the device to time its passes.
    pub fn queues_work(self) -> bool {
        matches!(self, Self::Wgpu | Self::Cuda)
    }

    /// The flag's value for this device.
    pub fn name(self) -> &'static str {
        match self {
            Self::Cpu => "cpu",
            Self::Wgpu => "wgpu",
            Self::Cuda => "cuda",
            Self::Tch => "tch",
        }
    }

    /// Whether this build has the device's backend.
    pub fn available(self) -> bool {
        match self {
            Self::Cpu => true,
            Self::Wgpu => cfg!(feature = "wgpu"),
            Self::Cuda => cfg!(feature = "cuda"),
            Self::Tch => cfg!(feature = "tch"),
        }
    }

    /// Refuses a device this build lacks, naming the flag, the value and how to build with it.
    pub fn check(self) -> Result<Self, DeviceError> {
        if self.available() {
            Ok(self)
        } else {
            let name = self.name();
            // LibTorch comes from an installed PyTorch, found through its python at build time.
            let needs = match self {
                Self::Tch => {
                    "; it needs PyTorch 2.9.0: build with `LIBTORCH_USE_PYTORCH=1` and that PyTorch's \
                     python first on PATH, run with its `torch/lib` folder in LD_LIBRARY_PATH (BENCHMARKS.md)"
                }
                _ => "",
            };
            Err(DeviceError(format!(
                "--device {name}: this flatmin was built without the {name} backend; build it with the \
                 {name} feature: `cargo build --release -p flatmin-cli --features {name}` \
                 (or `cargo install --path crates/flatmin-cli --features {name}`){needs}"
            )))
        }
    }

    /// The device, with autodiff (what training needs).
    pub fn autodiff(self) -> Result<Device, DeviceError> {
        self.check()?;
        Ok(match self {
            Self::Cpu => Device::flex().autodiff(),
            Self::Wgpu => gpu::wgpu().autodiff(),
            Self::Cuda => gpu::cuda().autodiff(),
            Self::Tch => gpu::libtorch_cpu().autodiff(),
        })
    }

    /// The float type a replay runs in: float64 on the CPU (flex, and LibTorch, whose CPU
    /// kernels have float64 like PyTorch's), float32 on a GPU (wgpu's WGSL shaders have no
    /// float64; the fixtures' FORMAT.md gives the float32 bar).
    pub fn replay_dtype(self) -> DType {
        match self {
            Self::Cpu | Self::Tch => DType::F64,
            Self::Wgpu | Self::Cuda => DType::F32,
        }
    }
}

/// The devices of the optional backends compiled in (the GPUs and LibTorch); the others are
/// never called (see [`DeviceChoice::check`]).
mod gpu {
    use burn::tensor::Device;

    #[cfg(feature = "wgpu")]
    pub fn wgpu() -> Device {
        Device::wgpu(burn::tensor::DeviceKind::DefaultDevice)
    }

    #[cfg(not(feature = "wgpu"))]
    pub fn wgpu() -> Device {
        unreachable!("--device wgpu is refused by DeviceChoice::check in this build")
    }

    #[cfg(feature = "cuda")]
    pub fn cuda() -> Device {
        Device::cuda(0)
    }

    #[cfg(not(feature = "cuda"))]
    pub fn cuda() -> Device {
        unreachable!("--device cuda is refused by DeviceChoice::check in this build")
    }

    /// LibTorch on the CPU. Burn 0.22 marks burn-tch deprecated (to be removed upstream); it is
    /// kept here as an opt-in for users who already have PyTorch, measured in BENCHMARKS.md.
    #[cfg(feature = "tch")]
    #[allow(deprecated)]
    pub fn libtorch_cpu() -> Device {
        Device::libtorch()
    }

    #[cfg(not(feature = "tch"))]
    pub fn libtorch_cpu() -> Device {
        unreachable!("--device tch is refused by DeviceChoice::check in this build")
    }
}

impl fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for DeviceChoice {
    type Err = DeviceError;

    /// A name of [`DEVICE_NAMES`]; unknown names are refused with the list.
    fn from_str(s: &str) -> Result<Self, DeviceError> {
        match s {
            "cpu" => Ok(Self::Cpu),
            "wgpu" => Ok(Self::Wgpu),
            "cuda" => Ok(Self::Cuda),
            "tch" => Ok(Self::Tch),
            other => Err(DeviceError(format!(
                "--device {other}: unknown device (expected {})",
                DEVICE_NAMES.join(", ")
            ))),
        }
    }
}

/// The `--device` flag's parser: a known name whose backend this build has.
pub fn parse_flag(s: &str) -> Result<DeviceChoice, DeviceError> {
    s.parse::<DeviceChoice>()?.check()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_are_refused() {
        for name in DEVICE_NAMES {
            assert_eq!(name.parse::<DeviceChoice>().unwrap().name(), name);
        }
        let err = "gpu".parse::<DeviceChoice>().unwrap_err().to_string();
        assert!(
            err.contains("--device gpu") && err.contains("cpu, wgpu, cuda, tch"),
            "{err}"
        );
    }

    #[test]
    fn cpu_is_the_default_and_always_available() {
        assert_eq!(DeviceChoice::default(), DeviceChoice::Cpu);
        assert_eq!(parse_flag("cpu"), Ok(DeviceChoice::Cpu));
        assert!(DeviceChoice::Cpu.autodiff().is_ok());
    }

    #[cfg(not(feature = "wgpu"))]
    #[test]
    fn wgpu_without_the_feature_names_the_flag_and_the_build() {
        let err = parse_flag("wgpu").unwrap_err().to_string();
        assert!(err.starts_with("--device wgpu:"), "{err}");
        assert!(err.contains("--features wgpu"), "{err}");
        assert!(DeviceChoice::Wgpu.autodiff().is_err());
    }

    #[cfg(feature = "wgpu")]
    #[test]
    fn wgpu_with_the_feature_is_accepted() {
        assert_eq!(parse_flag("wgpu"), Ok(DeviceChoice::Wgpu));
    }
}

#[cfg(test)]
mod tch_tests {
    use super::*;

    #[test]
    fn tch_is_named_and_replays_in_float64() {
        assert_eq!("tch".parse::<DeviceChoice>(), Ok(DeviceChoice::Tch));
        assert_eq!(DeviceChoice::Tch.to_string(), "tch");
        assert_eq!(DeviceChoice::Tch.replay_dtype(), DType::F64);
        assert_eq!(DeviceChoice::Tch.available(), cfg!(feature = "tch"));
    }

    #[cfg(not(feature = "tch"))]
    #[test]
    fn tch_without_the_feature_names_the_flag_the_build_and_pytorch() {
        let err = parse_flag("tch").unwrap_err().to_string();
        assert!(err.starts_with("--device tch:"), "{err}");
        assert!(err.contains("--features tch"), "{err}");
        assert!(
            err.contains("LIBTORCH_USE_PYTORCH=1") && err.contains("LD_LIBRARY_PATH"),
            "{err}"
        );
        assert!(DeviceChoice::Tch.autodiff().is_err());
        // The other optional devices' messages do not carry LibTorch's instructions.
        if let Err(err) = DeviceChoice::Cuda.check() {
            assert!(
                err.0.starts_with("--device cuda:") && !err.0.contains("LIBTORCH"),
                "{err}"
            );
        }
    }

    #[cfg(feature = "tch")]
    #[test]
    fn tch_with_the_feature_is_accepted_and_computes_in_float64() {
        use burn::tensor::{Tensor, TensorData};
        assert_eq!(parse_flag("tch"), Ok(DeviceChoice::Tch));
        let device = DeviceChoice::Tch.autodiff().unwrap();
        let x = Tensor::<1>::from_data(TensorData::new(vec![1.0f64, 2.0, 3.0], [3]), (&device, DType::F64));
        let sum = x.clone().mul(x).sum().into_data();
        assert_eq!(sum.dtype(), DType::F64);
        assert_eq!(sum.try_to_vec::<f64>().unwrap(), vec![14.0]);
    }
}
