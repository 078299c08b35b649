//! Files written so that a crash never leaves a half-written one: atomic writes (temporary
//! file in the same directory, `fsync`, rename, `fsync` of the directory) and JSON reads whose
//! errors name the file and the field (`model.classifier.n_neurons[1]`).

use std::io::Write;
use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};

/// The directory `path` lives in (`.` for a bare file name).
fn parent_dir(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Flushes a directory's entries (a rename inside it) to disk. Not every filesystem lets a
/// directory be opened for this; those that do not are left as they are.
pub fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        let f = std::fs::File::open(dir).map_err(|e| Error::io(dir, e))?;
        f.sync_all().map_err(|e| Error::io(dir, e))?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Flushes a file's contents to disk.
pub fn sync_file(path: &Path) -> Result<()> {
    std::fs::File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(|e| Error::io(path, e))
}

/// Writes `bytes` to `path` atomically: a temporary file in the same directory, written and
/// synced, renamed over `path`, then the directory synced. A crash at any moment leaves either
/// the old file or the new one.
///
/// The file gets the permissions an ordinary new file would (0666 less the umask on Unix, so
/// usually 0644), not the private 0600 of a temporary file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = parent_dir(path);
    let mut builder = tempfile::Builder::new();
    builder.prefix(".netcalc-").suffix(".tmp");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    let mut tmp = builder.tempfile_in(dir).map_err(|e| Error::io(dir, e))?;
    tmp.write_all(bytes).map_err(|e| Error::io(tmp.path(), e))?;
    tmp.as_file()
        .sync_all()
        .map_err(|e| Error::io(tmp.path(), e))?;
    tmp.persist(path).map_err(|e| Error::io(path, e.error))?;
    sync_dir(dir)
}

/// Serializes `value` as pretty JSON into `path`, atomically.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let text = serde_json::to_string_pretty(value).map_err(|e| Error::Json {
        path: path.to_path_buf(),
        field: String::new(),
        source: e,
    })?;
    write_atomic(path, text.as_bytes())
}

/// Reads a JSON file into `T`; errors name the file, the field path, line and column.
pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    crate::error::parse_json(path, &text)
}

#[cfg(test)]
mod tests {
    #[cfg(unix)]
    #[test]
    fn atomic_writes_get_ordinary_file_permissions() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.json");
        super::write_atomic(&p, b"{}").unwrap();
        let ordinary = dir.path().join("ordinary");
        std::fs::write(&ordinary, b"{}").unwrap();
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        // what std::fs::write gives under this umask (0644 under the usual 022), not 0600
        assert_eq!(mode(&p), mode(&ordinary));
    }
}
