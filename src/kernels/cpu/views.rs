//! The views of slices that the fused block's kernels pass each other: columns of a block of
//! unfolded images ([`Cols`], [`ColsMut`]), what routes one image's gradient back through
//! pooling and ReLU ([`Routing`]), and what the backward reads ([`Saved`]).

/// Columns `col0..` of the rows of a block of images side by side (`stride` columns a row):
/// one image's columns in the pooled order, of the unfolded images (`[C·KH·KW, stride]`) or of
/// their convolution output (`[O, stride]`).
#[derive(Clone, Copy)]
pub(super) struct Cols<'a> {
    pub data: &'a [f32],
    pub stride: usize,
    pub col0: usize,
}

/// [`Cols`] to write: `O` rows of one image's convolution-output gradient in a block.
pub(super) struct ColsMut<'a> {
    pub data: &'a mut [f32],
    pub stride: usize,
    pub col0: usize,
}

/// What routes the output gradient back through pooling and ReLU, for one image: the output
/// gradient `g`, each window's winner `idx`, and the output `y` when the block ends in ReLU
/// (empty otherwise), all `[O, Q]`.
#[derive(Clone, Copy)]
pub(super) struct Routing<'a> {
    pub g: &'a [f32],
    pub idx: &'a [u32],
    pub y: &'a [f32],
}

/// What the fused block's backward reads: its input `x` and filters `w`, the winners `idx` its
/// forward returned and its output `y` when the block ends in ReLU (`None` otherwise), and the
/// output gradient `g`; `idx`, `y` and `g` are `[N, O, Q]`.
pub(crate) struct Saved<'a> {
    pub x: &'a [f32],
    pub w: &'a [f32],
    pub y: Option<&'a [f32]>,
    pub idx: &'a [u32],
    pub g: &'a [f32],
}
