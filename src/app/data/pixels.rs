//! The bytes of a split's images: owned (decoded into memory) or a view of a memory-mapped
//! packed file ([`super::pack`]). Either way a [`Pixels`] reads as `&[u8]`, and cloning or
//! slicing it copies no pixels.

use std::fmt;
use std::ops::{Deref, Range};
use std::sync::Arc;

/// Where the bytes live.
enum Store {
    Owned(Vec<u8>),
    Mapped(Arc<memmap2::Mmap>),
}

impl Store {
    fn bytes(&self) -> &[u8] {
        match self {
            Store::Owned(v) => v,
            Store::Mapped(m) => m,
        }
    }
}

/// Image bytes, image after image: owned, or a range of a memory-mapped file. Cheap to clone
/// and to [`slice`](Pixels::slice); reads as `&[u8]`.
#[derive(Clone)]
pub struct Pixels {
    store: Arc<Store>,
    range: Range<usize>,
}

impl Pixels {
    /// The bytes `range` of a mapped file.
    ///
    /// # Panics
    /// If `range` is not within the map (the caller has checked the file's length).
    pub(crate) fn mapped(map: Arc<memmap2::Mmap>, range: Range<usize>) -> Self {
        assert!(range.start <= range.end && range.end <= map.len());
        Self {
            store: Arc::new(Store::Mapped(map)),
            range,
        }
    }

    /// The bytes `range` of these (relative to them), sharing the same storage.
    ///
    /// # Panics
    /// If `range` goes past the end.
    pub fn slice(&self, range: Range<usize>) -> Self {
        assert!(range.start <= range.end && range.end <= self.len());
        Self {
            store: Arc::clone(&self.store),
            range: self.range.start + range.start..self.range.start + range.end,
        }
    }

    /// Whether the bytes are a view of a memory-mapped file (not held by the process).
    pub fn is_mapped(&self) -> bool {
        matches!(*self.store, Store::Mapped(_))
    }
}

impl Deref for Pixels {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.store.bytes()[self.range.clone()]
    }
}

impl From<Vec<u8>> for Pixels {
    fn from(v: Vec<u8>) -> Self {
        let range = 0..v.len();
        Self {
            store: Arc::new(Store::Owned(v)),
            range,
        }
    }
}

impl PartialEq for Pixels {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl fmt::Debug for Pixels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Pixels({} bytes, {})",
            self.len(),
            if self.is_mapped() { "mapped" } else { "owned" }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_share_the_bytes_and_compare_by_content() {
        let owned = Pixels::from((0u8..10).collect::<Vec<u8>>());
        let mid = owned.slice(2..7);
        assert_eq!(&*mid, &[2, 3, 4, 5, 6]);
        assert_eq!(&*mid.slice(1..3), &[3, 4]);
        assert!(Arc::ptr_eq(&owned.store, &mid.store));
        assert_eq!(mid, Pixels::from(vec![2, 3, 4, 5, 6]));
        assert_ne!(mid, owned);
        assert!(!mid.is_mapped());
        assert_eq!(format!("{mid:?}"), "Pixels(5 bytes, owned)");

        let mut file = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut file, b"headerIMAGES").unwrap();
        // SAFETY: a private temporary file that nothing else writes while it is mapped
        let map = Arc::new(unsafe { memmap2::Mmap::map(file.as_file()) }.unwrap());
        let mapped = Pixels::mapped(map, 6..12);
        assert!(mapped.is_mapped());
        assert_eq!(&*mapped, b"IMAGES");
        assert_eq!(mapped.slice(1..3), Pixels::from(b"MA".to_vec()));
    }
}
