//! The server's Prometheus metrics, one registry per [`super::Server`] (no global recorder, so
//! that several servers in one process, as in the tests, keep their own counts).
//!
//! - `netcalc_requests_total{path,status}`: `path` is the matched route, `other` for anything
//!   else, so that scanners cannot grow the label set;
//! - `netcalc_request_duration_seconds{path}` (histogram);
//! - `netcalc_batch_size` (histogram): images per forward pass of the inference worker;
//! - `netcalc_queue_depth` (gauge): requests waiting for the worker;
//! - `netcalc_inference_duration_seconds` (histogram): one forward pass;
//! - `netcalc_worker_restarts_total`: restarts of the worker after a panic.

use std::collections::HashMap;
use std::sync::Mutex;

use metrics::{Counter, Gauge, Histogram, Key, Label, Level, Metadata, Recorder, SharedString};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};

/// The routes a request can be counted under; anything else is `other`.
pub(crate) const ROUTES: [&str; 9] = [
    "/",
    "/index.html",
    "/api/info",
    "/api/predict",
    "/api/explain",
    "/run/{file}",
    "/healthz",
    "/readyz",
    "/metrics",
];

const SECONDS: [f64; 15] = [
    0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
    10.0,
];
const BATCH: [f64; 10] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0];

/// A route and status's request count, and the route's durations.
type RequestMetrics = (Counter, Histogram);

/// One server's metrics.
pub(crate) struct Metrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    /// Images per forward pass.
    pub batch_size: Histogram,
    /// Requests waiting for the worker.
    pub queue_depth: Gauge,
    /// Seconds per forward pass.
    pub inference: Histogram,
    /// Worker restarts after a panic.
    pub restarts: Counter,
    requests: Mutex<HashMap<(&'static str, u16), RequestMetrics>>,
}

fn metadata() -> Metadata<'static> {
    Metadata::new(module_path!(), Level::INFO, Some(module_path!()))
}

impl Metrics {
    /// An empty registry with the server's histograms bucketed.
    pub fn new() -> Self {
        let builder = PrometheusBuilder::new();
        let builder = builder
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &SECONDS)
            .and_then(|b| {
                b.set_buckets_for_metric(Matcher::Full("netcalc_batch_size".into()), &BATCH)
            });
        // both bucket lists are non-empty constants, so this does not fail; if it ever did,
        // the metrics would be summaries instead of histograms
        let recorder = match builder {
            Ok(b) => b.build_recorder(),
            Err(_) => PrometheusBuilder::new().build_recorder(),
        };
        let handle = recorder.handle();
        let describe = |name: &'static str, help: &'static str| {
            let n = metrics::KeyName::from_const_str(name);
            recorder.describe_counter(n, None, SharedString::const_str(help));
        };
        describe(
            "netcalc_requests_total",
            "HTTP requests answered, by matched route and status.",
        );
        describe(
            "netcalc_worker_restarts_total",
            "Restarts of the inference worker after a panic.",
        );
        recorder.describe_histogram(
            metrics::KeyName::from_const_str("netcalc_request_duration_seconds"),
            Some(metrics::Unit::Seconds),
            SharedString::const_str("Time from a request's headers to its answer, by route."),
        );
        recorder.describe_histogram(
            metrics::KeyName::from_const_str("netcalc_batch_size"),
            None,
            SharedString::const_str("Images per forward pass of the inference worker."),
        );
        recorder.describe_histogram(
            metrics::KeyName::from_const_str("netcalc_inference_duration_seconds"),
            Some(metrics::Unit::Seconds),
            SharedString::const_str("Seconds per forward pass of the inference worker."),
        );
        recorder.describe_gauge(
            metrics::KeyName::from_const_str("netcalc_queue_depth"),
            None,
            SharedString::const_str("Requests waiting for the inference worker."),
        );
        let meta = metadata();
        let batch_size =
            recorder.register_histogram(&Key::from_static_name("netcalc_batch_size"), &meta);
        let queue_depth =
            recorder.register_gauge(&Key::from_static_name("netcalc_queue_depth"), &meta);
        let inference = recorder.register_histogram(
            &Key::from_static_name("netcalc_inference_duration_seconds"),
            &meta,
        );
        let restarts = recorder.register_counter(
            &Key::from_static_name("netcalc_worker_restarts_total"),
            &meta,
        );
        queue_depth.set(0.0);
        restarts.absolute(0);
        Self {
            recorder,
            handle,
            batch_size,
            queue_depth,
            inference,
            restarts,
            requests: Mutex::new(HashMap::new()),
        }
    }

    /// The label a request path is counted under: its route, or `other`.
    pub fn route_label(matched: Option<&str>) -> &'static str {
        matched
            .and_then(|m| ROUTES.iter().find(|r| **r == m))
            .copied()
            .unwrap_or("other")
    }

    /// Counts one answered request.
    pub fn request(&self, route: &'static str, status: u16, seconds: f64) {
        let mut map = self.requests.lock().unwrap_or_else(|p| p.into_inner());
        let (count, duration) = map.entry((route, status)).or_insert_with(|| {
            let meta = metadata();
            let labels = vec![
                Label::new("path", route),
                Label::new("status", status.to_string()),
            ];
            let count = self
                .recorder
                .register_counter(&Key::from_parts("netcalc_requests_total", labels), &meta);
            let duration = self.recorder.register_histogram(
                &Key::from_parts(
                    "netcalc_request_duration_seconds",
                    vec![Label::new("path", route)],
                ),
                &meta,
            );
            (count, duration)
        });
        count.increment(1);
        duration.record(seconds);
    }

    /// The Prometheus text exposition of every metric; `queue_depth`: the jobs waiting for the
    /// worker now (read from the queue's one counter, so the gauge is never stale).
    pub fn render(&self, queue_depth: usize) -> String {
        self.queue_depth.set(queue_depth as f64);
        self.handle.run_upkeep();
        self.handle.render()
    }
}
