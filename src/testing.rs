//! Helpers shared by the unit tests, the integration tests and the benches.

use burn::tensor::{Device, Tensor};

/// Every device compiled into this build: flex, ndarray and (when a wgpu adapter exists) wgpu.
///
/// The integration tests run the same numeric checks on each.
pub fn all_devices() -> Vec<(crate::BackendKind, Device)> {
    crate::backend::compiled_backends()
        .into_iter()
        .filter_map(|kind| crate::backend::device_of(kind).ok().map(|d| (kind, d)))
        .collect()
}

/// The device unit tests run on: the first compiled CPU backend (flex, else ndarray), else wgpu.
pub fn test_device() -> Device {
    use crate::BackendKind::*;
    [Flex, NdArray, Wgpu]
        .into_iter()
        .find_map(|k| crate::backend::device_of(k).ok())
        .expect("no backend available for tests")
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
