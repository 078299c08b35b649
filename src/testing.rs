//! Helpers shared by the unit tests, the integration tests and the benches. Not public API
//! (hidden from the docs, may change in any release).

use burn::tensor::{Device, Tensor};

use crate::BackendKind;

/// The device of `kind`, for a test that must run there. A backend that is compiled in but
/// cannot start (wgpu without any adapter) fails the test with the reason; it is never
/// skipped silently.
#[track_caller]
pub fn device(kind: BackendKind) -> Device {
    match crate::backend::device_of(kind) {
        Ok(d) => {
            #[cfg(feature = "wgpu")]
            if kind == BackendKind::Wgpu {
                static SHOWN: std::sync::Once = std::sync::Once::new();
                SHOWN.call_once(|| eprintln!("wgpu adapter: {:?}", d.identity().map(|i| i.name)));
            }
            d
        }
        Err(e) => panic!("backend {kind} is compiled in but cannot run this test: {e}"),
    }
}

/// Every backend compiled into this build, each with its device (see [`device`]).
pub fn all_devices() -> Vec<(BackendKind, Device)> {
    let devices: Vec<_> = crate::backend::compiled_backends()
        .into_iter()
        .map(|kind| (kind, device(kind)))
        .collect();
    assert!(!devices.is_empty(), "no backend compiled in");
    devices
}

/// The CPU backends compiled in (flex, ndarray), each with its device: where netcalc's own
/// kernels run.
pub fn cpu_devices() -> Vec<(BackendKind, Device)> {
    all_devices()
        .into_iter()
        .filter(|(k, _)| *k != BackendKind::Wgpu)
        .collect()
}

/// A device for tests whose result does not depend on the backend (config checks): the first
/// compiled CPU backend (flex, else ndarray), else wgpu.
pub fn test_device() -> Device {
    use BackendKind::*;
    let kind = [Flex, NdArray, Wgpu]
        .into_iter()
        .find(|k| k.is_compiled())
        .expect("no backend compiled in");
    device(kind)
}

/// Runs each named function `fn name(device: Device)` on every backend compiled in: one
/// `#[test]` per backend, named `name::flex`, `name::ndarray` and `name::wgpu`, so a failure
/// names its backend and `cargo test name` runs them all.
#[macro_export]
#[doc(hidden)]
macro_rules! test_on_backends {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[cfg(feature = "flex")]
            #[test]
            fn flex() {
                super::$name($crate::testing::device($crate::BackendKind::Flex))
            }
            #[cfg(feature = "ndarray")]
            #[test]
            fn ndarray() {
                super::$name($crate::testing::device($crate::BackendKind::NdArray))
            }
            #[cfg(feature = "wgpu")]
            #[test]
            fn wgpu() {
                super::$name($crate::testing::device($crate::BackendKind::Wgpu))
            }
        }
    )+};
}

/// The values of a float tensor, in row-major order.
pub fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .expect("float tensor data")
}

/// Asserts `actual` and `expected` have the same length and agree within `tol` (absolute).
#[track_caller]
pub fn assert_close(actual: &[f32], expected: &[f32], tol: f32) {
    assert_eq!(
        actual.len(),
        expected.len(),
        "length differs: {actual:?} vs {expected:?}"
    );
    for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
        assert!(
            (a - e).abs() <= tol || (a.is_infinite() && a == e),
            "element {i}: got {a}, expected {e} (tol {tol})\n  actual   {actual:?}\n  expected {expected:?}"
        );
    }
}

/// The largest absolute difference between two equally long slices.
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "length differs");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}
