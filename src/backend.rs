//! Backends chosen by Cargo feature, devices chosen at run time.
//!
//! burn 0.22 has no backend type parameter: a tensor's backend is its [`Device`]. The Cargo
//! features `ndarray`, `flex` and `wgpu` decide which backends are compiled in; [`select_device`]
//! picks one by name, from the `NETCALC_DEVICE` environment variable, or automatically (a real
//! GPU through wgpu when one is present, else flex, else ndarray).

use std::fmt;

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Environment variable that overrides the automatic device choice (`ndarray`, `flex`, `wgpu`).
pub const DEVICE_ENV: &str = "NETCALC_DEVICE";

/// One of the backends netcalc knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// burn-ndarray: the classic pure-Rust CPU backend (deprecated upstream, still supported).
    #[serde(rename = "ndarray")]
    NdArray,
    /// burn-flex: burn 0.22's pure-Rust CPU backend; the fastest CPU trainer here.
    Flex,
    /// burn-wgpu: GPUs through Vulkan/Metal/DX12, or lavapipe (software Vulkan) on a CPU.
    Wgpu,
}

impl BackendKind {
    /// Every backend netcalc knows, compiled in or not.
    pub const ALL: [BackendKind; 3] = [BackendKind::NdArray, BackendKind::Flex, BackendKind::Wgpu];

    /// The canonical name (also the Cargo feature's name).
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::NdArray => "ndarray",
            BackendKind::Flex => "flex",
            BackendKind::Wgpu => "wgpu",
        }
    }

    /// Whether this build has the backend's Cargo feature on.
    pub fn is_compiled(self) -> bool {
        match self {
            BackendKind::NdArray => cfg!(feature = "ndarray"),
            BackendKind::Flex => cfg!(feature = "flex"),
            BackendKind::Wgpu => cfg!(feature = "wgpu"),
        }
    }

    /// Parses a backend name; `nd` is accepted for ndarray, `gpu` and `vulkan` for wgpu (on
    /// Linux wgpu runs on Vulkan).
    pub fn parse(name: &str) -> Result<Self> {
        match name.trim().to_ascii_lowercase().as_str() {
            "ndarray" | "nd" => Ok(BackendKind::NdArray),
            "flex" => Ok(BackendKind::Flex),
            "wgpu" | "gpu" | "vulkan" => Ok(BackendKind::Wgpu),
            _ => Err(Error::UnknownBackend {
                name: name.to_string(),
                compiled: compiled_list(),
            }),
        }
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for BackendKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

/// The backends compiled into this build, in the order [`BackendKind::ALL`] lists them.
pub fn compiled_backends() -> Vec<BackendKind> {
    BackendKind::ALL
        .into_iter()
        .filter(|b| b.is_compiled())
        .collect()
}

fn compiled_list() -> String {
    let names: Vec<&str> = compiled_backends().iter().map(|b| b.name()).collect();
    if names.is_empty() {
        "none (enable one of the features ndarray, flex, wgpu)".into()
    } else {
        names.join(", ")
    }
}

/// The device of `kind`, without autodiff.
///
/// For wgpu this checks that an adapter exists first, so a machine without any Vulkan/GL driver
/// gets [`Error::NoGpuAdapter`] instead of a panic from inside wgpu.
pub fn device_of(kind: BackendKind) -> Result<Device> {
    if !kind.is_compiled() {
        return Err(Error::BackendNotCompiled {
            name: kind.name().into(),
            compiled: compiled_list(),
        });
    }
    match kind {
        #[cfg(feature = "ndarray")]
        #[allow(deprecated)]
        BackendKind::NdArray => Ok(Device::ndarray()),
        #[cfg(feature = "flex")]
        BackendKind::Flex => Ok(Device::flex()),
        #[cfg(feature = "wgpu")]
        BackendKind::Wgpu => {
            if wgpu_adapters().is_empty() {
                let cpu: Vec<&str> = compiled_backends()
                    .iter()
                    .filter(|b| **b != BackendKind::Wgpu)
                    .map(|b| b.name())
                    .collect();
                let alt = if cpu.is_empty() {
                    ", after rebuilding with `--features flex`".to_string()
                } else {
                    format!(" (CPU backends in this build: {})", cpu.join(", "))
                };
                return Err(Error::NoGpuAdapter { alt });
            }
            Ok(Device::wgpu(burn::tensor::DeviceKind::DefaultDevice))
        }
        #[allow(unreachable_patterns)]
        _ => unreachable!("is_compiled() was checked above"),
    }
}

/// The backend a device belongs to (autodiff or not), if it is one netcalc knows.
#[cfg_attr(
    not(any(feature = "flex", feature = "ndarray", feature = "wgpu")),
    allow(unused_variables)
)]
pub fn backend_of(device: &Device) -> Option<BackendKind> {
    let inner = device.clone().inner();
    match () {
        #[cfg(feature = "flex")]
        _ if inner == Device::flex() => Some(BackendKind::Flex),
        #[cfg(feature = "ndarray")]
        #[allow(deprecated)]
        _ if inner == Device::ndarray() => Some(BackendKind::NdArray),
        #[cfg(feature = "wgpu")]
        _ if format!("{inner:?}").contains("Wgpu") => Some(BackendKind::Wgpu),
        _ => None,
    }
}

/// The wgpu adapters this machine offers (GPUs and software devices such as lavapipe).
#[cfg(feature = "wgpu")]
pub fn wgpu_adapters() -> Vec<Device> {
    Device::enumerate(burn::tensor::DeviceType::Wgpu)
        .into_iter()
        .collect()
}

/// Whether wgpu sees a real GPU (not a software rasterizer such as lavapipe).
pub fn has_real_gpu() -> bool {
    #[cfg(feature = "wgpu")]
    {
        wgpu_adapters()
            .iter()
            .any(|d| d.identity().is_some_and(|id| id.physical.is_some()))
    }
    #[cfg(not(feature = "wgpu"))]
    {
        false
    }
}

/// Which backend to run on, as a user asks for it (`--device`, `$NETCALC_DEVICE`): one by
/// name, `auto` (the fastest compiled in), or `all` (every one compiled in, for commands that
/// compare them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "app", derive(clap::ValueEnum))]
pub enum DeviceChoice {
    /// wgpu on a real GPU, else flex, else ndarray, else wgpu on whatever adapter exists.
    Auto,
    /// Every backend compiled in (only where a command runs several).
    #[cfg_attr(feature = "app", value(hide = true))]
    All,
    /// burn-ndarray.
    #[cfg_attr(feature = "app", value(name = "ndarray", alias = "nd"))]
    NdArray,
    /// burn-flex.
    Flex,
    /// burn-wgpu (also `gpu`, `vulkan`).
    #[cfg_attr(feature = "app", value(alias = "gpu", alias = "vulkan"))]
    Wgpu,
}

impl DeviceChoice {
    /// The backend named, if one is.
    pub fn backend(self) -> Option<BackendKind> {
        match self {
            DeviceChoice::NdArray => Some(BackendKind::NdArray),
            DeviceChoice::Flex => Some(BackendKind::Flex),
            DeviceChoice::Wgpu => Some(BackendKind::Wgpu),
            DeviceChoice::Auto | DeviceChoice::All => None,
        }
    }
}

impl std::str::FromStr for DeviceChoice {
    type Err = Error;
    /// `auto`, `all`, or a backend name with its aliases ([`BackendKind::parse`]).
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(DeviceChoice::Auto),
            "all" => Ok(DeviceChoice::All),
            _ => Ok(match BackendKind::parse(s)? {
                BackendKind::NdArray => DeviceChoice::NdArray,
                BackendKind::Flex => DeviceChoice::Flex,
                BackendKind::Wgpu => DeviceChoice::Wgpu,
            }),
        }
    }
}

/// The backend for `choice`; without one, `$NETCALC_DEVICE` decides, and without that, `auto`.
/// A backend that is not compiled in is an error that lists those that are; so is `all`, which
/// names several (see [`selected_backends`]).
pub fn select_backend(choice: Option<DeviceChoice>) -> Result<BackendKind> {
    let env = std::env::var(DEVICE_ENV).ok();
    resolve(choice, env.as_deref(), || {
        BackendKind::Wgpu.is_compiled() && has_real_gpu()
    })
}

/// Every backend `choice` names: all compiled in for `all`, else the one of
/// [`select_backend`].
pub fn selected_backends(choice: Option<DeviceChoice>) -> Result<Vec<BackendKind>> {
    match choice {
        Some(DeviceChoice::All) => Ok(compiled_backends()),
        other => Ok(vec![select_backend(other)?]),
    }
}

/// Makes `kind` burn's default device too (`BURN_DEVICE`), unless `BURN_DEVICE` is set already.
///
/// Why: burn 0.22's `ModuleOptimizer::load` puts a checkpoint's optimizer state on
/// `Device::default()` and takes no device. With wgpu compiled in that default is wgpu (see
/// this module's test `default_device_prefers_wgpu_when_compiled_in`), so resuming a run on a
/// CPU backend would start a GPU backend just to read its checkpoint, or fail on a machine
/// without one. burn offers no other way to choose that device, so a program that resumes
/// training calls this once, before any thread starts (the `netcalc` command does it first
/// thing, only for `train --resume`).
///
/// # Safety
/// It changes the process environment (`std::env::set_var`): no other thread may read or
/// write the environment while it runs — call it from `main` before spawning any thread.
pub unsafe fn pin_burn_default_device(kind: BackendKind) {
    if std::env::var_os("BURN_DEVICE").is_none() {
        // SAFETY: the caller guarantees that no other thread touches the environment.
        unsafe { std::env::set_var("BURN_DEVICE", kind.name()) };
    }
}

/// [`select_backend`] with the environment variable's value and the GPU probe given, so that
/// every rule can be tested on any machine.
fn resolve(
    choice: Option<DeviceChoice>,
    env: Option<&str>,
    real_gpu: impl FnOnce() -> bool,
) -> Result<BackendKind> {
    let choice = match (choice, env.filter(|s| !s.trim().is_empty())) {
        (Some(c), _) => c,
        (None, Some(name)) => name.parse()?,
        (None, None) => DeviceChoice::Auto,
    };
    match choice {
        DeviceChoice::All => Err(Error::setting(
            "device",
            "`all` names every backend; this command runs on one (ndarray, flex, wgpu or auto)",
        )),
        DeviceChoice::Auto => {
            if real_gpu() {
                return Ok(BackendKind::Wgpu);
            }
            [BackendKind::Flex, BackendKind::NdArray, BackendKind::Wgpu]
                .into_iter()
                .find(|b| b.is_compiled())
                .ok_or_else(|| Error::BackendNotCompiled {
                    name: "any".into(),
                    compiled: compiled_list(),
                })
        }
        named => {
            let kind = named.backend().expect("a named backend");
            if kind.is_compiled() {
                Ok(kind)
            } else {
                Err(Error::BackendNotCompiled {
                    name: kind.name().into(),
                    compiled: compiled_list(),
                })
            }
        }
    }
}

/// [`select_backend`] followed by [`device_of`]: the device to compute on (no autodiff; call
/// `.autodiff()` on it to train).
///
/// # Examples
/// ```
/// // the fastest backend compiled in (or the one `$NETCALC_DEVICE` names)
/// let (kind, device) = netcalc::select_device(None)?;
/// println!("computing on {kind}");
/// // one by name
/// use netcalc::backend::DeviceChoice;
/// if netcalc::BackendKind::Flex.is_compiled() {
///     let (kind, _) = netcalc::select_device(Some(DeviceChoice::Flex))?;
///     assert_eq!(kind.name(), "flex");
/// }
/// # let _ = device;
/// # Ok::<(), netcalc::Error>(())
/// ```
pub fn select_device(choice: Option<DeviceChoice>) -> Result<(BackendKind, Device)> {
    let kind = select_backend(choice)?;
    Ok((kind, device_of(kind)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_names_and_aliases() {
        assert_eq!(BackendKind::parse("ndarray").unwrap(), BackendKind::NdArray);
        assert_eq!(BackendKind::parse("FLEX").unwrap(), BackendKind::Flex);
        assert_eq!(BackendKind::parse("vulkan").unwrap(), BackendKind::Wgpu);
        let err = BackendKind::parse("cuda").unwrap_err().to_string();
        assert!(err.contains("unknown backend `cuda`"), "{err}");
    }

    #[test]
    fn compiled_features_are_listed() {
        let compiled = compiled_backends();
        assert_eq!(
            compiled.contains(&BackendKind::Flex),
            cfg!(feature = "flex")
        );
        assert_eq!(
            compiled.contains(&BackendKind::NdArray),
            cfg!(feature = "ndarray")
        );
        assert_eq!(
            compiled.contains(&BackendKind::Wgpu),
            cfg!(feature = "wgpu")
        );
    }

    #[test]
    fn explicit_choice_is_honoured_or_refused() {
        for kind in BackendKind::ALL {
            let choice: DeviceChoice = kind.name().parse().unwrap();
            // the choice wins over the environment variable
            let got = resolve(Some(choice), Some("nonsense"), || false);
            if kind.is_compiled() {
                assert_eq!(got.unwrap(), kind);
            } else {
                let msg = got.unwrap_err().to_string();
                assert!(msg.contains("not compiled"), "{msg}");
                assert!(msg.contains(&compiled_list()), "{msg}");
            }
        }
        let err = resolve(Some(DeviceChoice::All), None, || false).unwrap_err();
        assert!(
            err.to_string().contains("`all` names every backend"),
            "{err}"
        );
        assert_eq!(
            selected_backends(Some(DeviceChoice::All)).unwrap(),
            compiled_backends()
        );
    }

    /// Without a choice: the environment variable, else wgpu on a real GPU, else flex, else
    /// ndarray; an explicit `auto` ignores the variable.
    #[test]
    fn auto_prefers_a_real_gpu_then_flex_then_ndarray() {
        let cpu = if cfg!(feature = "flex") {
            BackendKind::Flex
        } else if cfg!(feature = "ndarray") {
            BackendKind::NdArray
        } else {
            BackendKind::Wgpu
        };
        assert_eq!(resolve(None, None, || false).unwrap(), cpu);
        assert_eq!(resolve(None, Some("  "), || false).unwrap(), cpu);
        assert_eq!(
            resolve(Some(DeviceChoice::Auto), None, || false).unwrap(),
            cpu
        );
        assert_eq!(resolve(None, None, || true).unwrap(), BackendKind::Wgpu);
        assert_eq!(
            resolve(Some(DeviceChoice::Auto), Some("ndarray"), || false).unwrap(),
            cpu
        );
        for kind in compiled_backends() {
            assert_eq!(resolve(None, Some(kind.name()), || true).unwrap(), kind);
        }
        let err = resolve(None, Some("cuda"), || false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown backend `cuda`"), "{err}");
        assert_eq!("AUTO".parse::<DeviceChoice>().unwrap(), DeviceChoice::Auto);
        assert_eq!("nd".parse::<DeviceChoice>().unwrap(), DeviceChoice::NdArray);
        assert_eq!(
            "vulkan".parse::<DeviceChoice>().unwrap(),
            DeviceChoice::Wgpu
        );
    }

    /// burn's `Device::default()` (where `ModuleOptimizer::load` puts optimizer state) is wgpu
    /// whenever wgpu is compiled in, unless `BURN_DEVICE` names another backend: why
    /// [`pin_burn_default_device`] exists.
    #[test]
    fn default_device_prefers_wgpu_when_compiled_in() {
        let default = backend_of(&Device::default());
        match std::env::var("BURN_DEVICE") {
            Ok(name) => assert_eq!(default, BackendKind::parse(&name).ok()),
            Err(_) if cfg!(feature = "wgpu") => assert_eq!(default, Some(BackendKind::Wgpu)),
            Err(_) if cfg!(feature = "flex") => assert_eq!(default, Some(BackendKind::Flex)),
            Err(_) => assert_eq!(default, Some(BackendKind::NdArray)),
        }
    }
}
