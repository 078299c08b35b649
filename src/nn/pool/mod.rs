//! Pooling layers, 1D and 2D, max and average: no parameters, channels kept, and the output
//! length `floor((L + 2P − K) / S) + 1` along each axis.
pub mod pool1d;
pub mod pool2d;

pub use pool1d::{Pool1d, Pool1dConfig};
pub use pool2d::{Pool2d, Pool2dConfig};
