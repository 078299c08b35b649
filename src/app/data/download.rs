//! Where MNIST comes from: a directory, the per-user cache, a verified download, or the bundled
//! sample.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use sha2::{Digest, Sha256};

use crate::app::fsio::write_atomic;
use crate::error::{Error, Result};

/// One file of a remote dataset: its name, SHA-256 and size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteFile {
    /// File name on the mirror and in the cache.
    pub name: String,
    /// Lower-case hex SHA-256 of the file's bytes.
    pub sha256: String,
}

/// The four files of full MNIST with their SHA-256 (as published by PyTorch's and
/// TensorFlow's dataset loaders).
pub fn full_mnist_files() -> Vec<RemoteFile> {
    [
        (
            "train-images-idx3-ubyte.gz",
            "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        ),
        (
            "train-labels-idx1-ubyte.gz",
            "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        ),
        (
            "t10k-images-idx3-ubyte.gz",
            "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        ),
        (
            "t10k-labels-idx1-ubyte.gz",
            "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
        ),
    ]
    .into_iter()
    .map(|(name, sha256)| RemoteFile {
        name: name.into(),
        sha256: sha256.into(),
    })
    .collect()
}

/// Public mirrors of full MNIST, tried in turn.
pub const MNIST_MIRRORS: &[&str] = &[
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "https://yann.lecun.com/exdb/mnist/",
];

/// Hex SHA-256 of a byte slice.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `dir` holds `file` with the expected SHA-256.
pub fn is_cached(dir: &Path, file: &RemoteFile) -> bool {
    std::fs::read(dir.join(&file.name))
        .map(|b| sha256_hex(&b) == file.sha256)
        .unwrap_or(false)
}

/// Downloads `files` from the first mirror that serves each of them into `cache_dir`,
/// verifying every file's SHA-256 before it is renamed into place: a failed, truncated or
/// corrupted download never lands in the cache. Shows a progress bar when `progress` is set.
pub fn download_files(
    mirrors: &[String],
    files: &[RemoteFile],
    cache_dir: &Path,
    connect_timeout: Duration,
    progress: bool,
) -> Result<()> {
    std::fs::create_dir_all(cache_dir).map_err(|e| Error::io(cache_dir, e))?;
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_connect(Some(connect_timeout))
        .timeout_recv_body(Some(Duration::from_secs(60)))
        .build()
        .into();
    for file in files {
        if is_cached(cache_dir, file) {
            continue;
        }
        let dest = cache_dir.join(&file.name);
        let mut failures = Vec::new();
        let mut done = false;
        for mirror in mirrors {
            let url = format!("{}/{}", mirror.trim_end_matches('/'), file.name);
            match fetch(&agent, &url, progress) {
                Ok(bytes) => {
                    let got = sha256_hex(&bytes);
                    if got != file.sha256 {
                        failures.push(format!(
                            "{url}: SHA-256 mismatch (got {got}, expected {})",
                            file.sha256
                        ));
                        continue;
                    }
                    write_atomic(&dest, &bytes)?;
                    done = true;
                    break;
                }
                Err(e) => failures.push(format!("{url}: {e}")),
            }
        }
        if !done {
            return Err(Error::Download {
                file: file.name.clone(),
                message: failures.join("; "),
            });
        }
    }
    Ok(())
}

fn fetch(agent: &ureq::Agent, url: &str, progress: bool) -> std::result::Result<Vec<u8>, String> {
    let response = agent.get(url).call().map_err(|e| e.to_string())?;
    let body = response.into_body();
    let len = body.content_length();
    let bar = if progress {
        let bar = ProgressBar::new(len.unwrap_or(0));
        bar.set_style(
            ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.set_message(url.rsplit('/').next().unwrap_or(url).to_string());
        bar
    } else {
        ProgressBar::hidden()
    };
    let mut reader = body.into_reader();
    let mut out = Vec::with_capacity(len.unwrap_or(0) as usize);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = reader
            .read(&mut buf)
            .map_err(|e| format!("connection broke after {} bytes: {e}", out.len()))?;
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
        bar.inc(n as u64);
    }
    bar.finish_and_clear();
    if let Some(len) = len
        && out.len() as u64 != len
    {
        return Err(format!("short body: {} of {len} bytes", out.len()));
    }
    Ok(out)
}

/// The per-user cache directory for MNIST (`~/.cache/netcalc/mnist` on Linux), overridable with
/// `NETCALC_CACHE_DIR`.
pub fn default_cache_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("NETCALC_CACHE_DIR")
        && !dir.is_empty()
    {
        return PathBuf::from(dir).join("mnist");
    }
    dirs::cache_dir()
        .unwrap_or_else(std::env::temp_dir)
        .join("netcalc")
        .join("mnist")
}
