//! The routes: today's page and JSON API, `/healthz`, `/readyz`, `/metrics`, and the
//! middleware that counts, times and logs every request.
//!
//! A handler takes a decode permit (at most `threads` requests read and decode at once; the
//! wait counts against the request timeout), reads the body, decodes it on the decoder threads
//! (never on the runtime's threads) within the image limits ([`crate::app::images`]), hands
//! the image to the inference worker ([`super::batcher`]) and builds the answer from what it
//! returns: the JSON of a prediction, or the picture of an explanation, drawn by the painter
//! ([`super::painter`]).

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{MatchedPath, Path as UrlPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use image::GrayImage;
use serde::{Deserialize, Serialize};

use crate::app::data::SIDE;
use crate::app::images::{self, digit_from_gray};
use crate::app::predict::top_k;
use crate::app::train::RunDir;
use crate::error::Error;
use crate::model::StageKind;

use super::batcher::{Answer, Done, Refused, Work};
use super::painter::{MAX_PICTURES, Painted};
use super::{MAX_BODY_BYTES, PAGE, Shared};

/// A JSON digit: 784 grey values, row by row (either polarity: a light background is inverted
/// as for image files).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DigitRequest {
    pixels: Vec<u8>,
    #[serde(default)]
    stages: bool,
    #[serde(default)]
    digit: bool,
}

/// What a request asks for besides the classes.
#[derive(Clone, Copy, Debug, Default)]
struct Wants {
    /// Every stage's values (`?stages=1`, or `"stages": true`).
    stages: bool,
    /// The image the network saw (`?digit=1`, or `"digit": true`).
    digit: bool,
}

#[derive(Debug, Serialize)]
struct TopClass {
    class: usize,
    name: String,
    probability: f32,
}

/// One stage of the network for one image, as the API returns it.
#[derive(Debug, Serialize)]
pub(crate) struct StageOut {
    pub name: String,
    pub kind: StageKind,
    pub shape: Vec<usize>,
    pub values: Vec<f32>,
}

#[derive(Debug, Serialize)]
struct Prediction {
    predicted: usize,
    /// The predicted class's name.
    name: String,
    probabilities: Vec<f32>,
    top: Vec<TopClass>,
    /// The image the network saw, `C·H·W` values (a digit: 28×28, white ink on black), when
    /// asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    digit: Option<Vec<u8>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stages: Option<Vec<StageOut>>,
}

/// The size of the forward pass that answered a request, for the log line.
#[derive(Clone, Copy, Debug)]
struct BatchSize(usize);

/// Whether the query string `query` sets `name` to a true value (`1`, `true`, `yes`, `on`, in
/// any case), parsed as `application/x-www-form-urlencoded` (percent-escapes and `+` decoded;
/// the last occurrence wins).
pub(crate) fn query_flag(query: &str, name: &str) -> bool {
    form_urlencoded::parse(query.as_bytes())
        .filter(|(k, _)| k == name)
        .last()
        .is_some_and(|(_, v)| {
            matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on")
        })
}

/// A request answered with an error: `{"error": "<one line>"}`.
pub(crate) struct Reject {
    status: StatusCode,
    message: String,
    /// Close the connection after the answer (the body was not read).
    close: bool,
    retry_after: bool,
}

impl Reject {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            close: false,
            retry_after: false,
        }
    }
    fn closing(mut self) -> Self {
        self.close = true;
        self
    }
    fn busy(message: impl Into<String>) -> Self {
        let mut r = Self::new(StatusCode::SERVICE_UNAVAILABLE, message);
        r.retry_after = true;
        r
    }
    pub(crate) fn too_large() -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the request body is larger than {MAX_BODY_BYTES} bytes"),
        )
        .closing()
    }
}

impl IntoResponse for Reject {
    fn into_response(self) -> Response {
        // one line, whatever the decoder said
        let message = self
            .message
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        let mut res = (
            self.status,
            axum::Json(serde_json::json!({ "error": message })),
        )
            .into_response();
        if self.close {
            res.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        if self.retry_after {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        res
    }
}

/// The router of every endpoint, with its middleware.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    let not_allowed = |uri: Uri, method: Method| async move {
        Reject::new(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{method} is not allowed on {}", uri.path()),
        )
    };
    Router::new()
        .route("/", get(page).fallback(not_allowed))
        .route("/index.html", get(page).fallback(not_allowed))
        .route("/api/info", get(info).fallback(not_allowed))
        .route(
            "/api/predict",
            axum::routing::post(predict).fallback(not_allowed),
        )
        .route(
            "/api/explain",
            axum::routing::post(explain).fallback(not_allowed),
        )
        .route("/run/{file}", get(run_file))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .fallback(|uri: Uri| async move {
            Reject::new(StatusCode::NOT_FOUND, format!("nothing at {}", uri.path()))
        })
        .layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            observe,
        ))
        .with_state(shared)
}

/// Counts, times and logs one request (one `info` line: method, path, status, duration, batch
/// size); refuses a declared body over the limit before anything reads it.
async fn observe(State(s): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let route = super::metrics::Metrics::route_label(
        req.extensions()
            .get::<MatchedPath>()
            .map(MatchedPath::as_str),
    );
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let res = if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        // unread: the connection closes after the answer (an `Expect: 100-continue` client is
        // never asked for the body)
        Reject::too_large().into_response()
    } else {
        next.run(req).await
    };
    let mut res = res;
    if s.draining.load(Ordering::Acquire) {
        // the connection closes after this answer: say so
        res.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    let status = res.status().as_u16();
    let seconds = start.elapsed().as_secs_f64();
    s.metrics.request(route, status, seconds);
    let batch = res.extensions().get::<BatchSize>().map_or(0, |b| b.0);
    tracing::info!(
        target: "netcalc::serve",
        method = %method,
        path = %path,
        status,
        duration_ms = %format_args!("{:.3}", seconds * 1e3),
        batch,
        "request"
    );
    res
}

async fn page() -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], PAGE).into_response()
}

async fn info(State(s): State<Arc<Shared>>) -> Response {
    axum::Json(s.meta.info_json()).into_response()
}

async fn healthz() -> Response {
    (StatusCode::OK, "ok\n").into_response()
}

async fn readyz(State(s): State<Arc<Shared>>) -> Response {
    if s.draining.load(Ordering::Acquire) {
        (StatusCode::SERVICE_UNAVAILABLE, "draining\n").into_response()
    } else if !s.queue.alive.load(Ordering::Acquire) {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "the inference worker is not running\n",
        )
            .into_response()
    } else if s.queue.failing() {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "the last {} batches or more failed; ready again after one succeeds\n",
                super::batcher::UNREADY_AFTER_FAILURES
            ),
        )
            .into_response()
    } else {
        (StatusCode::OK, "ready\n").into_response()
    }
}

async fn metrics(State(s): State<Arc<Shared>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        s.metrics.render(s.queue.depth()),
    )
        .into_response()
}

async fn run_file(State(s): State<Arc<Shared>>, UrlPath(name): UrlPath<String>) -> Response {
    let allowed = [
        RunDir::LOSS_PNG,
        RunDir::ACCURACY_PNG,
        RunDir::CONFUSION_PNG,
    ];
    let file = s
        .meta
        .run_dir
        .as_ref()
        .filter(|_| allowed.contains(&name.as_str()))
        .map(|d| d.join(&name));
    let read = match file {
        Some(f) => tokio::fs::read(f).await.ok(),
        None => None,
    };
    match read {
        Some(bytes) => ([(header::CONTENT_TYPE, "image/png")], bytes).into_response(),
        None => {
            Reject::new(StatusCode::NOT_FOUND, format!("no {name} for this model")).into_response()
        }
    }
}

/// The body, read within the body timeout and the size limit.
async fn read_body(s: &Shared, body: Body) -> Result<axum::body::Bytes, Reject> {
    let limit = s.limits.body_timeout;
    match tokio::time::timeout(limit, axum::body::to_bytes(body, MAX_BODY_BYTES)).await {
        Err(_) => Err(Reject::new(
            StatusCode::REQUEST_TIMEOUT,
            format!("the request body did not arrive within {limit:?}"),
        )
        .closing()),
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(e)) => {
            let too_big = std::error::Error::source(&e)
                .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
            if too_big {
                Err(Reject::too_large())
            } else {
                Err(Reject::new(
                    StatusCode::BAD_REQUEST,
                    format!("cannot read the request body: {e}"),
                )
                .closing())
            }
        }
    }
}

/// Turns a request body into the image the network sees, and what else was asked for.
fn decode(s: &Shared, ctype: &str, body: &[u8], query: Wants) -> Result<(Vec<u8>, Wants), Reject> {
    let bad = |m: String| Reject::new(StatusCode::BAD_REQUEST, m);
    let meta = &s.meta;
    if ctype.starts_with("application/json") || body.first() == Some(&b'{') {
        let d: DigitRequest =
            serde_json::from_slice(body).map_err(|e| bad(format!("malformed JSON: {e}")))?;
        let [c, h, w] = meta.info.shape;
        let wanted = c * h * w;
        if d.pixels.len() != wanted {
            let what = if meta.draws_digits() {
                "a 28×28 grey image".to_string()
            } else {
                format!("this model's {c}×{h}×{w} input")
            };
            return Err(bad(format!(
                "`pixels` has {} values; {what} has {wanted}",
                d.pixels.len()
            )));
        }
        let image = if meta.draws_digits() {
            let g = GrayImage::from_raw(SIDE as u32, SIDE as u32, d.pixels)
                .ok_or_else(|| bad("`pixels` is not 28×28".into()))?;
            digit_from_gray(g).ok_or_else(|| bad("the image is empty".into()))?
        } else {
            d.pixels
        };
        let wants = Wants {
            stages: d.stages || query.stages,
            digit: d.digit || query.digit,
        };
        Ok((image, wants))
    } else {
        if body.is_empty() {
            return Err(bad(
                "empty body: send JSON {\"pixels\": [...]} or a PNG/JPEG".into(),
            ));
        }
        let origin = std::path::Path::new("request body");
        match images::prepare(body, origin, &meta.info, &s.image_limits) {
            Ok(image) => Ok((image, query)),
            Err(e @ Error::ImageTooLarge { .. }) => Err(Reject::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("{e} (--max-image-pixels)"),
            )),
            Err(e) => Err(bad(format!("not an image: {e}"))),
        }
    }
}

/// Reads and decodes the request's image under a decode permit (taken before the body is
/// read, waited for until `deadline`), on the decoder threads; a panic while decoding answers
/// 500.
async fn image_of(
    s: &Arc<Shared>,
    uri: &Uri,
    headers: &HeaderMap,
    body: Body,
    deadline: Instant,
) -> Result<(Vec<u8>, Wants), Reject> {
    let query = uri.query().unwrap_or("");
    let wants = Wants {
        stages: query_flag(query, "stages"),
        digit: query_flag(query, "digit"),
    };
    let ctype = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let permit =
        match tokio::time::timeout_at(deadline.into(), s.decode_permits.clone().acquire_owned())
            .await
        {
            Ok(Ok(p)) => p,
            Ok(Err(_)) => return Err(Reject::busy("the server is shutting down")),
            Err(_) => return Err(expired(s.limits.request_timeout)),
        };
    let bytes = read_body(s, body).await?;
    let Some(decoders) = s.decoders.get() else {
        return Err(Reject::busy("the server is not running"));
    };
    let shared = s.clone();
    let (tx, rx) = tokio::sync::oneshot::channel();
    decoders.spawn(move || {
        let r =
            std::panic::catch_unwind(AssertUnwindSafe(|| decode(&shared, &ctype, &bytes, wants)));
        drop(permit);
        let _ = tx.send(r);
    });
    match rx.await {
        Ok(Ok(r)) => r,
        Ok(Err(_)) | Err(_) => Err(Reject::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "decoding failed: the decoder panicked",
        )),
    }
}

fn expired(timeout: Duration) -> Reject {
    Reject::busy(format!(
        "not answered within the request timeout ({})",
        seconds(timeout)
    ))
}

/// Puts `work` on the worker's queue and waits for its answer until `deadline`: 503 when the
/// queue is full, the request expires or the server shuts down; 500 when inference fails or
/// panics.
async fn infer(s: &Shared, work: Work, deadline: Instant) -> Result<(Done, usize), Reject> {
    let rx = s.queue.submit(work, deadline).map_err(|r| match r {
        Refused::Full => Reject::busy(format!(
            "the server is busy: {} requests are waiting; retry later",
            s.limits.max_queue
        )),
        Refused::Stopped => Reject::busy("the server is shutting down"),
    })?;
    match tokio::time::timeout_at(deadline.into(), rx).await {
        Err(_) => Err(expired(s.limits.request_timeout)),
        Ok(Err(_)) => Err(Reject::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "inference panicked on this batch; the worker was restarted",
        )),
        Ok(Ok(answer)) => match answer {
            Answer::Done { done, batch } => Ok((done, batch)),
            Answer::Failed(e) => Err(Reject::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("inference failed: {e}"),
            )),
            Answer::Expired => Err(expired(s.limits.request_timeout)),
            Answer::ShuttingDown => Err(Reject::busy(
                "the server is shutting down: not answered within its shutdown timeout",
            )),
        },
    }
}

fn seconds(d: Duration) -> String {
    format!("{} s", d.as_secs_f64())
}

fn with_batch(mut res: Response, batch: usize) -> Response {
    res.extensions_mut().insert(BatchSize(batch));
    res
}

async fn predict(
    State(s): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Reject> {
    let deadline = Instant::now() + s.limits.request_timeout;
    let (image, wants) = image_of(&s, &uri, &headers, body, deadline).await?;
    let digit = wants.digit.then(|| image.clone());
    let (done, batch) = infer(
        &s,
        Work::Predict {
            image,
            stages: wants.stages,
        },
        deadline,
    )
    .await?;
    let Done::Predict {
        probabilities,
        stages,
    } = done
    else {
        return Err(Reject::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the worker answered a prediction with a picture",
        ));
    };
    let top: Vec<TopClass> = top_k(&probabilities, 3)
        .into_iter()
        .map(|(class, probability)| TopClass {
            class,
            name: s.meta.info.class_name(class),
            probability,
        })
        .collect();
    let predicted = top.first().map_or(0, |t| t.class);
    let p = Prediction {
        predicted,
        name: s.meta.info.class_name(predicted),
        probabilities,
        top,
        digit,
        stages,
    };
    Ok(with_batch(axum::Json(p).into_response(), batch))
}

async fn explain(
    State(s): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Reject> {
    let deadline = Instant::now() + s.limits.request_timeout;
    let (image, _) = image_of(&s, &uri, &headers, body, deadline).await?;
    let (done, batch) = infer(&s, Work::Explain { image }, deadline).await?;
    let Done::Explain { stages, row } = done else {
        return Err(Reject::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the worker answered a picture with a prediction",
        ));
    };
    let rx = s
        .painter
        .submit(stages, row, deadline)
        .map_err(|r| match r {
            Refused::Full => Reject::busy(format!(
                "the server is busy: {MAX_PICTURES} pictures are waiting to be drawn; retry later"
            )),
            Refused::Stopped => Reject::busy("the server is shutting down"),
        })?;
    let png = match tokio::time::timeout_at(deadline.into(), rx).await {
        Err(_) | Ok(Ok(Painted::Expired)) => return Err(expired(s.limits.request_timeout)),
        Ok(Ok(Painted::Done(png))) => png,
        Ok(Ok(Painted::Failed(e))) => {
            return Err(Reject::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("drawing failed: {e}"),
            ));
        }
        Ok(Ok(Painted::ShuttingDown)) | Ok(Err(_)) => {
            return Err(Reject::busy(
                "the server is shutting down: not answered within its shutdown timeout",
            ));
        }
    };
    Ok(with_batch(
        ([(header::CONTENT_TYPE, "image/png")], png).into_response(),
        batch,
    ))
}
