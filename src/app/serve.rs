//! A local web server for a trained model: a draw-a-digit page (or, for a model of other
//! images, an upload page) and the JSON API behind it.
//!
//! - `GET /` — the page (embedded in the binary, no CDN): a canvas to draw a digit on (a model
//!   of 1×28×28 digits) or a file to upload (any other model), the top-3 classes by name, the
//!   picture of every stage ([`crate::app::explain`]), the run's curves and confusion matrix.
//! - `POST /api/predict` — an image as the bytes of a PNG/JPEG (`Content-Type: image/png`;
//!   `?stages=1` for the stages), or as JSON `{"pixels": [...], "stages": false}`: for a digit
//!   model 784 grey values 0–255 row by row, for any other its `C·H·W` input values. Answer:
//!   `{"predicted", "name", "probabilities", "top", "digit", "stages"?}` (`digit`: the input
//!   the network saw). Preprocessed exactly as `predict` does
//!   ([`crate::app::predict::decode_upload`]).
//! - `POST /api/explain` — the same input; answer: the PNG of
//!   [`crate::app::explain::explain_png`].
//! - `GET /api/info` — model name, summary, class names, input shape, limits, the run's name.
//! - `GET /run/loss.png`, `/run/accuracy.png`, `/run/confusion.png` — the run's plots.
//!
//! A bad request (malformed JSON, wrong pixel count, a body above [`MAX_BODY_BYTES`], not an
//! image, unknown path or method) gets a 4xx answer `{"error": "<one line>"}`; the server keeps
//! serving. It binds where it is told; the example binds to loopback unless asked otherwise.

use std::io::Read;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use burn::tensor::Device;
use image::GrayImage;
use serde::{Deserialize, Serialize};
use tiny_http::{Header, Method, Request, Response};

use crate::app::data::SIDE;
use crate::app::data::{DataInfo, IMAGE_SHAPE, Preprocess};
use crate::app::predict::{
    class_probabilities, decode_upload, digit_from_gray, images_tensor, top_k,
};
use crate::app::train::RunDir;
use crate::error::{Error, Result};
use crate::model::{Cnn, CnnConfig, StageKind};

/// The largest request body accepted: 4 MiB (a 28×28 JSON digit is ~3 KB, a canvas PNG
/// ~10–30 KB). Larger bodies get `413` without being read.
pub const MAX_BODY_BYTES: usize = 4 << 20;

const PAGE: &str = include_str!("../../assets/serve.html");

/// What the server serves: a model, its config and data, and optionally the run directory it
/// came from.
pub struct App {
    model: Mutex<Cnn>,
    config: CnnConfig,
    info: DataInfo,
    device: Device,
    run_dir: Option<PathBuf>,
}

impl App {
    /// A model to serve on `device`, reading images as `info` says; `run_dir` (the model's run
    /// directory) adds its plots to the page.
    pub fn new(
        model: Cnn,
        config: CnnConfig,
        info: DataInfo,
        device: Device,
        run_dir: Option<PathBuf>,
    ) -> Self {
        Self {
            model: Mutex::new(model),
            config,
            info,
            device,
            run_dir,
        }
    }

    /// The model of a trained run, with its run directory's plots.
    pub fn of(m: crate::app::session::TrainedModel) -> Self {
        Self::new(m.model, m.config, m.info, m.device, Some(m.run_dir))
    }

    /// Whether the model reads drawn digits (1×28×28, MNIST's preprocessing).
    fn draws_digits(&self) -> bool {
        self.info.preprocess == Preprocess::Digit && self.info.shape == IMAGE_SHAPE
    }
}

/// A JSON digit: 784 grey values, row by row (either polarity: a light background is inverted
/// as for image files).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DigitRequest {
    pixels: Vec<u8>,
    #[serde(default)]
    stages: bool,
}

#[derive(Debug, Serialize)]
struct TopClass {
    class: usize,
    name: String,
    probability: f32,
}

#[derive(Debug, Serialize)]
struct StageOut {
    name: String,
    kind: StageKind,
    shape: Vec<usize>,
    values: Vec<f32>,
}

#[derive(Debug, Serialize)]
struct Prediction {
    predicted: usize,
    /// The predicted class's name.
    name: String,
    probabilities: Vec<f32>,
    top: Vec<TopClass>,
    /// The image the network saw, `C·H·W` values (a digit: 28×28, white ink on black).
    digit: Vec<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stages: Option<Vec<StageOut>>,
}

/// Whether the query string of `url` sets `name` to a true value (`1`, `true`, `yes`, `on`,
/// in any case), parsed as `application/x-www-form-urlencoded` (percent-escapes and `+`
/// decoded; the last occurrence wins).
fn query_flag(url: &str, name: &str) -> bool {
    let query = url.split_once('?').map_or("", |(_, q)| q);
    form_urlencoded::parse(query.as_bytes())
        .filter(|(k, _)| k == name)
        .last()
        .is_some_and(|(_, v)| {
            matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on")
        })
}

/// A request that gets a 4xx answer.
struct Reject(u16, String);

fn json_response(status: u16, body: &impl Serialize) -> Response<std::io::Cursor<Vec<u8>>> {
    let bytes = serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec());
    Response::from_data(bytes)
        .with_status_code(status)
        .with_header(header("Content-Type", "application/json"))
}

fn header(name: &str, value: &str) -> Header {
    // Both are ASCII constants of this module, so this cannot fail.
    Header::from_bytes(name.as_bytes(), value.as_bytes()).expect("ASCII header")
}

fn content_type(req: &Request) -> String {
    req.headers()
        .iter()
        .find(|h| h.field.equiv("Content-Type"))
        .map(|h| h.value.as_str().to_ascii_lowercase())
        .unwrap_or_default()
}

fn read_body(req: &mut Request) -> std::result::Result<Vec<u8>, Reject> {
    let too_big = || {
        Reject(
            413,
            format!("the request body is larger than {MAX_BODY_BYTES} bytes"),
        )
    };
    if req.body_length().is_some_and(|n| n > MAX_BODY_BYTES) {
        return Err(too_big());
    }
    let mut body = Vec::new();
    req.as_reader()
        .take(MAX_BODY_BYTES as u64 + 1)
        .read_to_end(&mut body)
        .map_err(|e| Reject(400, format!("cannot read the request body: {e}")))?;
    if body.len() > MAX_BODY_BYTES {
        return Err(too_big());
    }
    Ok(body)
}

impl App {
    /// Turns a request body into the image the network sees, and whether stages were asked
    /// for.
    fn digit(&self, req: &mut Request) -> std::result::Result<(Vec<u8>, bool), Reject> {
        let query_stages = query_flag(req.url(), "stages");
        let ctype = content_type(req);
        let body = read_body(req)?;
        if ctype.starts_with("application/json") || body.first() == Some(&b'{') {
            let d: DigitRequest = serde_json::from_slice(&body)
                .map_err(|e| Reject(400, format!("malformed JSON: {e}")))?;
            let [c, h, w] = self.info.shape;
            let wanted = c * h * w;
            if d.pixels.len() != wanted {
                let what = if self.draws_digits() {
                    "a 28×28 grey image".to_string()
                } else {
                    format!("this model's {c}×{h}×{w} input")
                };
                return Err(Reject(
                    400,
                    format!(
                        "`pixels` has {} values; {what} has {wanted}",
                        d.pixels.len()
                    ),
                ));
            }
            let image = if self.draws_digits() {
                let g = GrayImage::from_raw(SIDE as u32, SIDE as u32, d.pixels)
                    .ok_or_else(|| Reject(400, "`pixels` is not 28×28".into()))?;
                digit_from_gray(g).ok_or_else(|| Reject(400, "the image is empty".into()))?
            } else {
                d.pixels
            };
            Ok((image, d.stages || query_stages))
        } else {
            if body.is_empty() {
                return Err(Reject(
                    400,
                    "empty body: send JSON {\"pixels\": [...]} or a PNG/JPEG".into(),
                ));
            }
            let digit = decode_upload(&body, Path::new("request body"), &self.info)
                .map_err(|e| Reject(400, format!("not an image: {e}")))?;
            Ok((digit, query_stages))
        }
    }

    /// The prediction for one digit; the stages (a longer forward pass) only when asked.
    fn predict(&self, digit: Vec<u8>, stages: bool) -> Result<Prediction> {
        let model = self.model.lock().unwrap_or_else(|p| p.into_inner());
        let (probabilities, stages) = if stages {
            let x = images_tensor(&self.info, std::slice::from_ref(&digit), &self.device)?;
            let all = model.forward_stages(x)?;
            drop(model);
            let out = all
                .iter()
                .map(|s| {
                    Ok(StageOut {
                        name: s.name.clone(),
                        kind: s.kind,
                        shape: s.shape.clone(),
                        values: s.row(0)?,
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            let probabilities = out.last().map(|s| s.values.clone()).unwrap_or_default();
            (probabilities, Some(out))
        } else {
            let one = std::slice::from_ref(&digit);
            let mut p = class_probabilities(&model, &self.info, one, &self.device)?;
            drop(model);
            (p.pop().unwrap_or_default(), None)
        };
        let top: Vec<TopClass> = top_k(&probabilities, 3)
            .into_iter()
            .map(|(class, probability)| TopClass {
                class,
                name: self.info.class_name(class),
                probability,
            })
            .collect();
        let predicted = top.first().map_or(0, |t| t.class);
        Ok(Prediction {
            predicted,
            name: self.info.class_name(predicted),
            probabilities,
            top,
            digit,
            stages,
        })
    }

    fn explain(&self, digit: &[u8]) -> Result<Vec<u8>> {
        let model = self.model.lock().unwrap_or_else(|p| p.into_inner());
        crate::app::explain::explain_image(&model, &self.info, digit, &self.device)
    }

    fn info(&self) -> serde_json::Value {
        serde_json::json!({
            "model": self.config.name,
            "summary": self.config.summary().map(|s| s.to_string()).unwrap_or_default(),
            "classes": self.info.classes,
            "num_classes": self.config.num_classes(),
            "input": self.config.features.input,
            "draw": self.draws_digits(),
            "max_body_bytes": MAX_BODY_BYTES,
            // the run's name, not where it lies on this machine
            "run": self
                .run_dir
                .as_ref()
                .and_then(|d| d.canonicalize().ok())
                .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned())),
        })
    }

    /// Answers one request; never panics on its content.
    fn handle(&self, mut req: Request) {
        let url = req.url().to_string();
        let path = url.split('?').next().unwrap_or("").to_string();
        let method = req.method().clone();
        let reject = |req: Request, Reject(status, message): Reject| {
            // one line, whatever the decoder said
            let message = message.split_whitespace().collect::<Vec<_>>().join(" ");
            let _ = req.respond(json_response(
                status,
                &serde_json::json!({ "error": message }),
            ));
        };
        match (&method, path.as_str()) {
            (Method::Get, "/") | (Method::Get, "/index.html") => {
                let _ = req.respond(
                    Response::from_data(PAGE.as_bytes().to_vec())
                        .with_header(header("Content-Type", "text/html; charset=utf-8")),
                );
            }
            (Method::Get, "/api/info") => {
                let _ = req.respond(json_response(200, &self.info()));
            }
            (Method::Post, "/api/predict") => match self.digit(&mut req) {
                Ok((digit, stages)) => match self.predict(digit, stages) {
                    Ok(p) => {
                        let _ = req.respond(json_response(200, &p));
                    }
                    Err(e) => reject(req, Reject(500, e.to_string())),
                },
                Err(r) => reject(req, r),
            },
            (Method::Post, "/api/explain") => match self.digit(&mut req) {
                Ok((digit, _)) => match self.explain(&digit) {
                    Ok(png) => {
                        let _ = req.respond(
                            Response::from_data(png)
                                .with_header(header("Content-Type", "image/png")),
                        );
                    }
                    Err(e) => reject(req, Reject(500, e.to_string())),
                },
                Err(r) => reject(req, r),
            },
            (Method::Get, p) if p.starts_with("/run/") => {
                let name = &p["/run/".len()..];
                let allowed = [
                    RunDir::LOSS_PNG,
                    RunDir::ACCURACY_PNG,
                    RunDir::CONFUSION_PNG,
                ];
                let file = self
                    .run_dir
                    .as_ref()
                    .filter(|_| allowed.contains(&name))
                    .map(|d| d.join(name));
                match file.map(std::fs::read) {
                    Some(Ok(bytes)) => {
                        let _ = req.respond(
                            Response::from_data(bytes)
                                .with_header(header("Content-Type", "image/png")),
                        );
                    }
                    _ => reject(req, Reject(404, format!("no {name} for this model"))),
                }
            }
            (_, "/" | "/index.html" | "/api/info" | "/api/predict" | "/api/explain") => reject(
                req,
                Reject(405, format!("{method} is not allowed on {path}")),
            ),
            _ => reject(req, Reject(404, format!("nothing at {path}"))),
        }
    }
}

/// A listening server; [`Server::run`] answers requests until [`Server::stop`].
pub struct Server {
    http: tiny_http::Server,
    app: App,
    addr: SocketAddr,
    stop: AtomicBool,
}

impl Server {
    /// Listens on `addr` (port 0: any free port; see [`Server::addr`]).
    pub fn bind(app: App, addr: SocketAddr) -> Result<Arc<Self>> {
        let http = tiny_http::Server::http(addr).map_err(|source| Error::Serve {
            addr: addr.to_string(),
            source,
        })?;
        let addr = http.server_addr().to_ip().unwrap_or(addr);
        Ok(Arc::new(Self {
            http,
            app,
            addr,
            stop: AtomicBool::new(false),
        }))
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Answers requests on `threads` threads until [`Server::stop`] is called.
    pub fn run(&self, threads: usize) {
        std::thread::scope(|s| {
            for _ in 0..threads.max(1) {
                s.spawn(|| {
                    while !self.stop.load(Ordering::Relaxed) {
                        match self.http.recv_timeout(Duration::from_millis(100)) {
                            Ok(Some(req)) => self.app.handle(req),
                            Ok(None) => {}
                            Err(_) => std::thread::sleep(Duration::from_millis(10)),
                        }
                    }
                });
            }
        });
    }

    /// Makes [`Server::run`] return (within 0.1 s).
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::query_flag;

    #[test]
    fn query_flags_are_parsed_not_searched_for() {
        assert!(query_flag("/api/predict?stages=1", "stages"));
        assert!(query_flag("/api/predict?x=2&stages=TRUE", "stages"));
        assert!(query_flag("/api/predict?st%61ges=on", "stages"));
        assert!(!query_flag("/api/predict", "stages"));
        assert!(!query_flag("/api/predict?stages=0", "stages"));
        assert!(!query_flag("/api/predict?nostages=1", "stages"));
        assert!(!query_flag("/api/predict?x=stages=1", "stages"));
        // the last occurrence wins
        assert!(!query_flag("/api/predict?stages=1&stages=0", "stages"));
    }
}
