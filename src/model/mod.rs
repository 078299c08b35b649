//! The CNN: a feature extractor (convolution blocks → feature vector) and a classifier (dense
//! layers → class scores), its MNIST presets, its Keras-like summary and its stages (every
//! intermediate result of a forward pass).
pub mod cnn;
pub mod feature_extractor;
pub mod presets;
pub mod stages;
pub mod summary;

pub use cnn::{Cnn, CnnConfig};
pub use feature_extractor::{FeatureExtractor, FeatureExtractorConfig};
pub use presets::ModelPreset;
pub use stages::{Stage, StageKind};
pub use summary::{Summary, SummaryRow};
