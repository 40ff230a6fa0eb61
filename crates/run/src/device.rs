//! The `run.device` setting.

use candle_core::Device;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceSpec {
    Cpu,
    Cuda(usize),
    /// CUDA when compiled in and a GPU is present, else CPU.
    Auto,
}

#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error("run.device: unknown device {0:?}; use \"cpu\", \"cuda\", \"cuda:N\" or \"auto\"")]
    Unknown(String),
    #[error(
        "run.device: {0:?} needs a build with CUDA support; this binary was built without it \
         (build with `cargo build --release --features cuda`, see docs/speed-and-cuda.md)"
    )]
    NotCompiled(String),
    #[error("run.device: cannot open {0:?}: {1}")]
    Open(String, String),
}

impl DeviceSpec {
    pub fn parse(text: &str) -> Result<Self, DeviceError> {
        let t = text.trim().to_ascii_lowercase();
        let spec = match t.as_str() {
            "cpu" => Self::Cpu,
            "auto" => Self::Auto,
            "cuda" | "gpu" => Self::Cuda(0),
            _ => match t.strip_prefix("cuda:").and_then(|n| n.parse().ok()) {
                Some(n) => Self::Cuda(n),
                None => return Err(DeviceError::Unknown(text.to_string())),
            },
        };
        if matches!(spec, Self::Cuda(_)) && !cfg!(feature = "cuda") {
            return Err(DeviceError::NotCompiled(text.to_string()));
        }
        Ok(spec)
    }

    /// Opens the device (`auto`: the first GPU if there is one, else the CPU).
    pub fn open(self, text: &str) -> Result<Device, DeviceError> {
        match self {
            Self::Cpu => Ok(Device::Cpu),
            Self::Cuda(n) => Device::new_cuda(n).map_err(|e| DeviceError::Open(text.to_string(), e.to_string())),
            Self::Auto => {
                // No GPU (or none usable) is what `auto` is for: the CPU then, as documented.
                Ok(if cfg!(feature = "cuda") { Device::new_cuda(0).unwrap_or(Device::Cpu) } else { Device::Cpu })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_refuses() {
        assert_eq!(DeviceSpec::parse("cpu").expect("cpu"), DeviceSpec::Cpu);
        assert_eq!(DeviceSpec::parse("auto").expect("auto"), DeviceSpec::Auto);
        assert!(DeviceSpec::parse("tpu").expect_err("tpu").to_string().contains("\"tpu\""));
        if !cfg!(feature = "cuda") {
            let e = DeviceSpec::parse("cuda").expect_err("no cuda").to_string();
            assert!(e.contains("--features cuda"), "{e}");
            assert!(DeviceSpec::parse("cuda:1").is_err());
        }
    }
}
