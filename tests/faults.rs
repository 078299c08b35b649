//! The server under injected faults (feature `failpoints`): a slow model, a panic, inference
//! errors, jobs that expire, a shutdown with a full queue. Faults are named fail points
//! (`serve-inference`, `serve-restart`, `serve-paint`), configured per test; fail points are global to the
//! process, so the tests take one lock and clear them when done.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use netcalc::CnnConfig;
use netcalc::app::data::{DataInfo, Dataset};
use netcalc::app::serve::{App, PROBE_EVERY, ServeConfig, UNREADY_AFTER_FAILURES};
use serde_json::json;

#[path = "common/http.rs"]
mod http;
use http::{Running, get, metric, post, status_of};

/// One test at a time configures fail points; every point is cleared when the guard drops.
struct Faults(#[allow(dead_code)] MutexGuard<'static, ()>);

impl Faults {
    fn take() -> Self {
        static LOCK: Mutex<()> = Mutex::new(());
        let guard = LOCK.lock().unwrap_or_else(|p| p.into_inner());
        clear();
        Self(guard)
    }

    fn set(&self, point: &str, actions: &str) {
        fail::cfg(point, actions).unwrap();
    }
}

impl Drop for Faults {
    fn drop(&mut self) {
        clear();
    }
}

fn clear() {
    for p in ["serve-inference", "serve-restart", "serve-paint"] {
        fail::remove(p);
    }
}

/// A server of an untrained `cnn` on the fastest CPU backend, 2 runtime threads.
fn start(config: ServeConfig) -> Running {
    let (_, device) = netcalc::select_device(None).unwrap();
    let cfg = CnnConfig::mnist_default();
    let model = cfg.init(&device).unwrap();
    Running::start(
        App::new(model, cfg, DataInfo::mnist(), device, None),
        config,
    )
}

fn digit_json(i: usize) -> Vec<u8> {
    static DIGITS: std::sync::OnceLock<Vec<Vec<u8>>> = std::sync::OnceLock::new();
    let digits = DIGITS.get_or_init(|| {
        let data = Dataset::bundled().unwrap();
        (0..64).map(|i| data.test.image(i).to_vec()).collect()
    });
    json!({ "pixels": digits[i % digits.len()] })
        .to_string()
        .into_bytes()
}

/// POSTs `body` to `path` on its own connection (`Connection: close`) and reads the whole
/// answer: its text, or how the connection failed.
fn post_raw(addr: SocketAddr, path: &str, body: &[u8]) -> Result<String, String> {
    let request = [
        format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes(),
        body.to_vec(),
    ]
    .concat();
    let mut s = std::net::TcpStream::connect(addr).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    s.write_all(&request).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    s.read_to_end(&mut out).map_err(|e| e.to_string())?;
    if out.is_empty() {
        return Err("closed without an answer".into());
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

#[test]
fn a_full_queue_answers_503_with_retry_after_and_never_resets() {
    let faults = Faults::take();
    faults.set("serve-inference", "sleep(20)");
    let r = start(ServeConfig {
        max_queue: 8,
        max_batch: 8,
        ..ServeConfig::default()
    });
    let addr = r.addr();
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let done = done.clone();
        std::thread::spawn(move || {
            let mut most = 0.0f64;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let (_, text) = get(addr, "/metrics");
                most = most.max(metric(&text, "netcalc_queue_depth").unwrap_or(0.0));
                std::thread::sleep(Duration::from_millis(5));
            }
            most
        })
    };
    let barrier = Arc::new(std::sync::Barrier::new(300));
    let clients: Vec<_> = (0..300)
        .map(|i| {
            let barrier = barrier.clone();
            let body = digit_json(i);
            std::thread::spawn(move || {
                barrier.wait();
                post_raw(addr, "/api/predict", &body).expect("no reset")
            })
        })
        .collect();
    let (mut ok, mut busy) = (0, 0);
    for c in clients {
        let answer = c.join().unwrap();
        match status_of(&answer) {
            200 => ok += 1,
            503 => {
                busy += 1;
                assert!(
                    answer.to_ascii_lowercase().contains("retry-after: 1"),
                    "{answer}"
                );
                assert!(answer.contains("\"error\""), "{answer}");
            }
            s => panic!("status {s}: {answer}"),
        }
    }
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let most = watcher.join().unwrap();
    eprintln!("300 at once, queue of 8: {ok} answered, {busy} 503; deepest queue seen {most}");
    assert_eq!(ok + busy, 300);
    assert!(ok >= 8 && busy >= 1, "{ok} 200, {busy} 503");
    assert!(most <= 8.0, "queue depth {most}");
    // idle again: the gauge reads 0, every time
    for _ in 0..5 {
        let (_, text) = get(addr, "/metrics");
        assert_eq!(metric(&text, "netcalc_queue_depth"), Some(0.0), "{text}");
    }
    let (result, _) = r.stop();
    result.unwrap();
}

#[test]
fn stop_drains_readyz_first_then_answers_every_accepted_request() {
    let faults = Faults::take();
    faults.set("serve-inference", "sleep(100)");
    let r = start(ServeConfig {
        drain_delay: Duration::from_secs(1),
        ..ServeConfig::default()
    });
    let addr = r.addr();
    let clients: Vec<_> = (0..8)
        .map(|i| {
            let body = digit_json(i);
            std::thread::spawn(move || post(addr, "/api/predict", "application/json", &body).0)
        })
        .collect();
    std::thread::sleep(Duration::from_millis(150));
    let stopped = Instant::now();
    r.server.stop();
    // not ready at once, while the listener stays open for the drain delay
    assert_eq!(get(addr, "/readyz").0, 503);
    assert!(stopped.elapsed() < Duration::from_millis(900));
    for c in clients {
        assert_eq!(c.join().unwrap(), 200);
    }
    let (result, _) = r.stop();
    assert!(result.is_ok(), "{result:?}");
    assert!(
        stopped.elapsed() >= Duration::from_secs(1),
        "{:?}",
        stopped.elapsed()
    );
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "still listening"
    );
}

#[test]
fn a_panic_in_inference_answers_500_and_the_worker_comes_back() {
    let faults = Faults::take();
    faults.set("serve-restart", "sleep(1000)");
    let r = start(ServeConfig::default());
    let addr = r.addr();
    faults.set("serve-inference", "1*panic");
    let (status, answer) = post(addr, "/api/predict", "application/json", &digit_json(4));
    assert_eq!(status, 500, "{answer}");
    assert!(
        answer["error"].as_str().unwrap().contains("panicked"),
        "{answer}"
    );
    assert_eq!(
        get(addr, "/readyz").0,
        503,
        "ready while the worker restarts"
    );
    assert_eq!(get(addr, "/healthz").0, 200);
    r.wait_ready();
    let (status, _) = post(addr, "/api/predict", "application/json", &digit_json(4));
    assert_eq!(status, 200);
    let (_, text) = get(addr, "/metrics");
    assert_eq!(
        metric(&text, "netcalc_worker_restarts_total"),
        Some(1.0),
        "{text}"
    );
    let (result, _) = r.stop();
    result.unwrap();
}

#[test]
fn failed_batches_make_the_server_unready_until_one_succeeds() {
    let faults = Faults::take();
    let r = start(ServeConfig::default());
    let addr = r.addr();
    faults.set("serve-inference", "return(the model is broken)");
    for k in 1..=UNREADY_AFTER_FAILURES {
        let (status, answer) = post(addr, "/api/predict", "application/json", &digit_json(k));
        assert_eq!(status, 500, "{answer}");
        let error = answer["error"].as_str().unwrap();
        assert!(
            error.contains("inference failed") && error.contains("the model is broken"),
            "{answer}"
        );
        let ready = get(addr, "/readyz");
        if k < UNREADY_AFTER_FAILURES {
            assert_eq!(
                ready.0, 200,
                "unready after {k} failed batches: {}",
                ready.1
            );
        } else {
            assert_eq!(ready.0, 503, "ready after {k} failed batches");
            assert!(ready.1.contains("failed"), "{}", ready.1);
        }
    }
    // errors are not restarts
    let (_, text) = get(addr, "/metrics");
    assert_eq!(metric(&text, "netcalc_worker_restarts_total"), Some(0.0));
    // while the model fails, the idle worker's probes fail too
    std::thread::sleep(PROBE_EVERY * 2);
    assert_eq!(
        get(addr, "/readyz").0,
        503,
        "ready while the model still fails"
    );
    // the model answers again: with no request at all, a probe makes it ready
    fail::remove("serve-inference");
    let start = Instant::now();
    while get(addr, "/readyz").0 != 200 {
        assert!(start.elapsed() < PROBE_EVERY * 4, "never ready again");
        std::thread::sleep(Duration::from_millis(20));
    }
    let (status, _) = post(addr, "/api/predict", "application/json", &digit_json(0));
    assert_eq!(status, 200);
    let (result, _) = r.stop();
    result.unwrap();
}

#[test]
fn a_job_that_expires_in_the_queue_gets_503_never_500() {
    let faults = Faults::take();
    faults.set("serve-inference", "sleep(600)");
    let r = start(ServeConfig {
        request_timeout: Duration::from_millis(300),
        max_batch: 1,
        ..ServeConfig::default()
    });
    let addr = r.addr();
    let clients: Vec<_> = (0..6)
        .map(|i| {
            let body = digit_json(i);
            std::thread::spawn(move || post_raw(addr, "/api/predict", &body))
        })
        .collect();
    for c in clients {
        let answer = c.join().unwrap().expect("an answer");
        assert_eq!(status_of(&answer), 503, "{answer}");
        assert!(
            answer.to_ascii_lowercase().contains("retry-after: 1")
                && answer.contains("request timeout"),
            "{answer}"
        );
    }
    let (_, text) = get(addr, "/metrics");
    assert_eq!(
        metric(
            &text,
            "netcalc_requests_total{path=\"/api/predict\",status=\"500\"}"
        ),
        None,
        "{text}"
    );
    let (result, _) = r.stop();
    result.unwrap();
}

#[test]
fn the_shutdown_timeout_bounds_a_full_queue_of_explanations() {
    let faults = Faults::take();
    faults.set("serve-inference", "sleep(300)");
    let timeout = Duration::from_secs(1);
    let r = start(ServeConfig {
        shutdown_timeout: timeout,
        max_batch: 1,
        ..ServeConfig::default()
    });
    let addr = r.addr();
    // 40 explanations at 300 ms each: 12 s of work, far past the timeout
    let clients: Vec<_> = (0..40)
        .map(|i| {
            let body = digit_json(i);
            std::thread::spawn(move || post_raw(addr, "/api/explain", &body))
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let (result, took) = r.stop();
    result.unwrap();
    assert!(
        took < timeout + Duration::from_secs(2),
        "run returned after {took:?}"
    );
    let (mut ok, mut refused) = (0, 0);
    for c in clients {
        let answer = c
            .join()
            .unwrap()
            .expect("every accepted request is answered");
        match status_of(&answer) {
            200 => ok += 1,
            503 => {
                refused += 1;
                assert!(answer.contains("shutting down"), "{answer}");
            }
            s => panic!("status {s}: {answer}"),
        }
    }
    eprintln!("shutdown after {took:?}: {ok} pictures, {refused} answered 503");
    assert!(ok >= 1 && refused >= 20, "{ok} 200, {refused} 503");
}

#[test]
fn a_slow_painter_refuses_pictures_past_its_queue_and_never_delays_predictions() {
    let faults = Faults::take();
    // every picture takes 100 ms to draw; the first one panics
    faults.set("serve-paint", "1*panic->sleep(100)");
    let r = start(ServeConfig::default());
    let addr = r.addr();
    let first = post_raw(addr, "/api/explain", &digit_json(0)).expect("an answer");
    assert_eq!(status_of(&first), 500, "{first}");
    assert!(
        first.contains("drawing failed: drawing the picture panicked"),
        "{first}"
    );
    // 64 wait to be drawn, one is being drawn: of 90 at once, the rest are refused at once
    let clients: Vec<_> = (0..90)
        .map(|i| {
            let body = digit_json(i);
            std::thread::spawn(move || {
                let start = Instant::now();
                let answer = post_raw(addr, "/api/explain", &body).expect("an answer");
                (status_of(&answer), answer, start.elapsed())
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    // predictions go on meanwhile: the painter has its own thread and queue
    for i in 0..5 {
        let t = Instant::now();
        let (status, body) = post(addr, "/api/predict", "application/json", &digit_json(i));
        assert_eq!(status, 200, "{body}");
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    }
    let (mut drawn, mut refused) = (0, 0);
    for c in clients {
        let (status, answer, took) = c.join().unwrap();
        match status {
            200 => drawn += 1,
            503 => {
                refused += 1;
                assert!(
                    answer.contains("64 pictures are waiting to be drawn")
                        && answer.to_ascii_lowercase().contains("retry-after: 1"),
                    "{answer}"
                );
                assert!(took < Duration::from_secs(5), "refused after {took:?}");
            }
            s => panic!("status {s}: {answer}"),
        }
    }
    // at most the queue and the one being drawn when it filled (more as pictures leave it)
    assert!(
        drawn >= 65 && refused >= 1,
        "{drawn} drawn, {refused} refused"
    );
    assert_eq!(drawn + refused, 90);
    let (result, _) = r.stop();
    result.unwrap();
}

#[test]
fn connections_accepted_at_a_shutdown_are_answered_not_reset() {
    let _faults = Faults::take();
    // Rounds of 32 clients, one request per connection, with the stop in the middle: every
    // connection the server accepted gets an answer (200, or 503 after the stop); one that
    // could not connect at all (the listener had closed) is no broken connection.
    let mut broken = 0;
    let mut answered = 0;
    for round in 0..3 {
        let r = start(ServeConfig::default());
        let addr = r.addr();
        let clients: Vec<_> = (0..32)
            .map(|i| {
                let body = digit_json(i);
                std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_millis(2 * i as u64));
                    post_raw(addr, "/api/predict", &body)
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(20 + 10 * round));
        let (result, _) = r.stop();
        result.unwrap();
        for c in clients {
            match c.join().unwrap() {
                Ok(answer) => {
                    let s = status_of(&answer);
                    assert!(s == 200 || s == 503, "{answer}");
                    answered += 1;
                }
                Err(e) if e.contains("refused") => {}
                Err(e) => {
                    eprintln!("broken: {e}");
                    broken += 1;
                }
            }
        }
    }
    eprintln!("at shutdown: {answered} answered, {broken} broken connections");
    assert_eq!(broken, 0);
    assert!(answered > 0);
}
