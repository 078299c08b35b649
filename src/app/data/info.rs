//! What a model knows of its data ([`DataInfo`]: classes, input shape, normalisation) and how
//! a new image becomes its input ([`Preprocess`]).

use serde::{Deserialize, Serialize};

use super::{CLASSES, IMAGE_SHAPE, Normalization};
use crate::error::{Error, Result};

/// How a new image (a file, an upload) becomes a model's input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Preprocess {
    /// As an MNIST digit ([`crate::app::predict::load_digit`]): a 28×28 image as it is (inverted
    /// when its border is light), a photo or scan of any size cleaned, cropped to its ink and
    /// centred.
    Digit,
    /// Converted to the model's channels and resized to its input, as the image folders it
    /// was trained on ([`crate::app::data::folder::read_image`]).
    Resize,
}

/// What a model knows of its data: the class names, the input shape, the normalisation and
/// how new images are read. Stored in the run directory (`data.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataInfo {
    /// The class names, in the model's output order.
    pub classes: Vec<String>,
    /// The input `[C, H, W]`.
    pub shape: [usize; 3],
    /// The normalisation of the pixels.
    pub normalization: Normalization,
    /// How new images are read.
    pub preprocess: Preprocess,
}

impl DataInfo {
    /// MNIST: the digits 0–9, 1×28×28, MNIST's constants, read as digits. What a run directory
    /// without `data.json` (an earlier version's) is taken to hold.
    pub fn mnist() -> Self {
        Self {
            classes: (0..CLASSES).map(|d| d.to_string()).collect(),
            shape: IMAGE_SHAPE,
            normalization: Normalization::mnist(1),
            preprocess: Preprocess::Digit,
        }
    }

    /// The name of class `i` (its number when there is no name for it).
    pub fn class_name(&self, i: usize) -> String {
        self.classes
            .get(i)
            .cloned()
            .unwrap_or_else(|| i.to_string())
    }

    /// An error unless the names are unique and non-empty, and the shape and normalisation fit.
    pub fn check(&self) -> Result<()> {
        if let Some(name) = self.classes.iter().find(|c| c.trim().is_empty()) {
            return Err(Error::setting(
                "classes",
                format!("a class name is empty: {name:?}"),
            ));
        }
        let mut sorted: Vec<&String> = self.classes.iter().collect();
        sorted.sort();
        if let Some(w) = sorted.windows(2).find(|w| w[0] == w[1]) {
            return Err(Error::setting(
                "classes",
                format!("`{}` is named twice", w[0]),
            ));
        }
        self.normalization.check("normalization", self.shape[0])
    }
}
