//! HTTP helpers for the server tests (`tests/serve.rs`, `tests/faults.rs`).
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use netcalc::app::serve::{App, ServeConfig, Server};
use serde_json::Value;

/// A server of `app` with `config`, on 2 runtime threads, until stopped (or dropped).
pub struct Running {
    pub server: Arc<Server>,
    thread: Option<std::thread::JoinHandle<netcalc::Result<()>>>,
}

impl Running {
    /// Binds any free loopback port, runs, and waits until `/readyz` says ready.
    pub fn start(app: App, config: ServeConfig) -> Self {
        let server = Server::bind_with(app, "127.0.0.1:0".parse().unwrap(), config).unwrap();
        let s = server.clone();
        let thread = Some(std::thread::spawn(move || s.run(2)));
        let r = Self { server, thread };
        r.wait_ready();
        r
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    pub fn wait_ready(&self) {
        let start = Instant::now();
        while get(self.addr(), "/readyz").0 != 200 {
            assert!(start.elapsed() < Duration::from_secs(30), "never ready");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the server and waits for `run`: its result, and how long the stop took.
    pub fn stop(mut self) -> (netcalc::Result<()>, Duration) {
        let start = Instant::now();
        self.server.stop();
        let r = self.thread.take().unwrap().join().unwrap();
        (r, start.elapsed())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(t) = self.thread.take() {
            self.server.stop();
            let _ = t.join();
        }
    }
}

/// A client that reports every status as an answer, not an error.
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

pub fn url(addr: SocketAddr, path: &str) -> String {
    format!("http://{addr}{path}")
}

/// POST `body` with `content_type`; (status, body as JSON or `null`).
pub fn post(addr: SocketAddr, path: &str, content_type: &str, body: &[u8]) -> (u16, Value) {
    let mut res = agent()
        .post(url(addr, path))
        .header("Content-Type", content_type)
        .send(body)
        .expect("the server answers");
    let status = res.status().as_u16();
    let bytes = res.body_mut().read_to_vec().unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// GET `path`; (status, body as text).
pub fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut res = agent()
        .get(url(addr, path))
        .call()
        .expect("the server answers");
    let status = res.status().as_u16();
    (status, res.body_mut().read_to_string().unwrap_or_default())
}

/// The value of the metric line that starts with `name` (labels included), if any.
pub fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// Sends `request` on a new connection and reads until the server closes it (or `limit`):
/// the whole answer as text, and how long it took.
pub fn raw(addr: SocketAddr, request: &[u8], limit: Duration) -> (String, Duration) {
    let start = Instant::now();
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(limit)).unwrap();
    s.write_all(request).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    (String::from_utf8_lossy(&out).into_owned(), start.elapsed())
}

/// The status code of a raw HTTP answer (0 when there is none).
pub fn status_of(answer: &str) -> u16 {
    answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// A PNG of `width`×`height` whose header is rewritten to declare `declared`: the bytes stay
/// those of the small image (an "image bomb" when `declared` is large). `rgba`: colour type 6.
pub fn png_declaring(declared: (u32, u32), rgba: bool) -> Vec<u8> {
    let mut bytes = Vec::new();
    let img = if rgba {
        image::DynamicImage::ImageRgba8(image::RgbaImage::new(1, 1))
    } else {
        image::DynamicImage::ImageLuma8(image::GrayImage::new(1, 1))
    };
    img.write_to(
        &mut std::io::Cursor::new(&mut bytes),
        image::ImageFormat::Png,
    )
    .unwrap();
    bytes[16..20].copy_from_slice(&declared.0.to_be_bytes());
    bytes[20..24].copy_from_slice(&declared.1.to_be_bytes());
    let mut crc = flate2::Crc::new();
    crc.update(&bytes[12..29]);
    bytes[29..33].copy_from_slice(&crc.sum().to_be_bytes());
    // padded to 8 KB of zlib-compressed zeros, as a real bomb is
    let zeros = vec![0u8; 8 << 20];
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    z.write_all(
        &zeros[..zeros
            .len()
            .min(declared.0 as usize * declared.1 as usize / 8)],
    )
    .unwrap();
    let data = z.finish().unwrap();
    let end = bytes.len() - 12; // before IEND
    let mut chunk = Vec::new();
    chunk.extend_from_slice(&(data.len() as u32).to_be_bytes());
    chunk.extend_from_slice(b"IDAT");
    chunk.extend_from_slice(&data);
    let mut crc = flate2::Crc::new();
    crc.update(&chunk[4..]);
    chunk.extend_from_slice(&crc.sum().to_be_bytes());
    bytes.splice(end..end, chunk);
    bytes
}

/// The process's peak resident memory (`VmHWM`) and its resident memory now (`VmRSS`), in
/// bytes.
pub fn memory_of(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .map_or(0, |kb| kb << 10)
    };
    (field("VmHWM:"), field("VmRSS:"))
}
