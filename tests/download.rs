//! The full-MNIST download path, against a local HTTP server on 127.0.0.1 started by the test
//! and serving the bundled sample files: success, checksum mismatch, and a server that closes
//! the connection mid-file. Never the internet.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::thread;
use std::time::Duration;

use netcalc::app::data::download::{RemoteFile, download_files, sha256_hex};
use netcalc::app::data::{DataOptions, DataSource, NamedDataset, load_idx};

#[derive(Clone, Copy)]
enum Mode {
    Good,
    Truncate,
}

/// Serves `data/mnist-sample/*` on 127.0.0.1 for up to `requests` requests; returns the base URL.
fn serve(mode: Mode, requests: usize) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/mnist-sample");
    thread::spawn(move || {
        for stream in listener.incoming().take(requests) {
            let Ok(mut stream) = stream else { continue };
            stream.set_read_timeout(Some(Duration::from_secs(5))).ok();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request = String::new();
            if reader.read_line(&mut request).is_err() {
                continue;
            }
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
            }
            let name = request
                .split_whitespace()
                .nth(1)
                .unwrap_or("/")
                .trim_start_matches('/')
                .to_string();
            match std::fs::read(root.join(&name)) {
                Ok(body) => {
                    let head = format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = stream.write_all(head.as_bytes());
                    let n = match mode {
                        Mode::Good => body.len(),
                        Mode::Truncate => body.len() / 2,
                    };
                    let _ = stream.write_all(&body[..n]);
                }
                Err(_) => {
                    let _ = stream.write_all(
                        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    );
                }
            }
        }
    });
    format!("http://{addr}/")
}

/// The sample's four files with the checksums from its README, under the names full MNIST uses
/// on the mirrors... except that the sample's test files are called test-*, so use those names.
fn sample_files() -> Vec<RemoteFile> {
    [
        (
            "train-images-idx3-ubyte.gz",
            "1eda15206e792ba885a21908f2dd5102fef6c437067853942f4a775320c0e553",
        ),
        (
            "train-labels-idx1-ubyte.gz",
            "305b815c18a51ea2d383104ca85d8f377e92fc41474b2c14ac3ee09eefd4eb0e",
        ),
        (
            "test-images-idx3-ubyte.gz",
            "fecd5156c3b4c6414c3c5ad9e1123d6b91e32c8c70771eae1592bd471518da10",
        ),
        (
            "test-labels-idx1-ubyte.gz",
            "940e94157a35fc56dcd5aad39de52cf9d34f0a4f91c940f0d6e6fda1e4fbcf8a",
        ),
    ]
    .into_iter()
    .map(|(n, s)| RemoteFile {
        name: n.into(),
        sha256: s.into(),
    })
    .collect()
}

fn options(cache: &Path, mirrors: Vec<String>) -> DataOptions {
    DataOptions {
        dataset: NamedDataset::Mnist,
        data_dir: None,
        offline: false,
        cache_dir: cache.to_path_buf(),
        mirrors,
        files: sample_files(),
        connect_timeout: Duration::from_secs(2),
        progress: false,
    }
}

fn cache_files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|r| {
            r.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn download_verifies_and_caches_then_loads_from_cache() {
    let cache = tempfile::tempdir().unwrap();
    // a dead mirror first (nothing listens on a port we bound and closed), then the good one
    let dead = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/", l.local_addr().unwrap())
    };
    let url = serve(Mode::Good, 4);
    let opts = options(cache.path(), vec![dead, url]);
    let m = load_idx(&opts, |w| panic!("unexpected warning {w}")).unwrap();
    assert_eq!(m.source, DataSource::Downloaded(cache.path().to_path_buf()));
    assert_eq!((m.train.len(), m.test.len()), (8000, 2000));
    for f in sample_files() {
        let bytes = std::fs::read(cache.path().join(&f.name)).unwrap();
        assert_eq!(sha256_hex(&bytes), f.sha256);
    }
    // second time: from the cache, no server needed
    let opts = options(cache.path(), vec!["http://127.0.0.1:9/".into()]);
    let m = load_idx(&opts, |w| panic!("unexpected warning {w}")).unwrap();
    assert_eq!(m.source, DataSource::Cache(cache.path().to_path_buf()));
}

#[test]
fn checksum_mismatch_is_an_error_and_leaves_nothing() {
    let cache = tempfile::tempdir().unwrap();
    let url = serve(Mode::Good, 2);
    let mut files = sample_files();
    files.truncate(1);
    files[0].sha256 = "0".repeat(64);
    let err = download_files(&[url], &files, cache.path(), Duration::from_secs(2), false)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("SHA-256 mismatch") && err.contains("train-images-idx3-ubyte.gz"),
        "{err}"
    );
    assert_eq!(
        cache_files(cache.path()),
        Vec::<String>::new(),
        "a bad download landed in the cache"
    );
}

#[test]
fn server_closing_mid_file_is_an_error_and_leaves_nothing() {
    let cache = tempfile::tempdir().unwrap();
    let url = serve(Mode::Truncate, 2);
    let files = sample_files()[..1].to_vec();
    let err = download_files(&[url], &files, cache.path(), Duration::from_secs(2), false)
        .unwrap_err()
        .to_string();
    assert!(err.contains("train-images-idx3-ubyte.gz"), "{err}");
    assert_eq!(cache_files(cache.path()), Vec::<String>::new());
}

#[test]
fn failed_download_falls_back_to_the_bundled_sample_and_offline_skips_it() {
    let cache = tempfile::tempdir().unwrap();
    let url = serve(Mode::Truncate, 8);
    let mut warnings = Vec::new();
    let m = load_idx(&options(cache.path(), vec![url]), |w| {
        warnings.push(w.to_string())
    })
    .unwrap();
    assert_eq!(m.source, DataSource::Bundled);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    let mut opts = options(cache.path(), vec!["http://127.0.0.1:9/".into()]);
    opts.offline = true;
    let m = load_idx(&opts, |w| panic!("offline must not try the network: {w}")).unwrap();
    assert_eq!(m.source, DataSource::Bundled);
}
