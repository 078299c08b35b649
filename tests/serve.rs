//! The web server of `mnist serve`: its JSON API over loopback (held-out digits, every bad
//! request, 100 concurrent requests) and its page in a real browser (headless Chromium over
//! WebDriver) that draws held-out digits on the canvas and reads the prediction from the page.
//!
//! Also `load_digit` on "photos" of held-out digits (tinted paper, uneven light, coloured ink,
//! JPEG, a large frame), read by the same model.
//!
//! The production side of the server (issue 24), each on its own server with small limits:
//! the header and body timeouts, the connection cap, 503 + Retry-After from a full queue, held
//! 1 GB bodies, `Expect: 100-continue`, the drain (library and the real binary under SIGTERM),
//! a panic in inference, `/healthz`, `/readyz`, `/metrics`, and forced batches that answer as
//! single images do.
//!
//! One model is trained for all tests (3 epochs on the 8,000 bundled training images, flex when
//! compiled in).

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use netcalc::BackendKind;
use netcalc::app::data::{DataInfo, Dataset, PIXELS, SIDE};
use netcalc::app::predict::{class_probabilities, load_digit, save_digit_png};
use netcalc::app::serve::{App, MAX_BODY_BYTES, ServeConfig, Server};
use netcalc::app::train::{ProgressMode, RunOptions, TrainConfig, load_model, locate_model, train};
use netcalc::burn::tensor::Device;
use serde_json::{Value, json};

#[path = "common/http.rs"]
mod http;
use http::{Running, agent, get, metric, post, raw, status_of, url};

struct Fixture {
    dir: tempfile::TempDir,
    run: PathBuf,
    device: Device,
    server: Arc<Server>,
    /// Held-out digits (28×28, white on black) and their labels.
    held_out: Vec<(Vec<u8>, u32)>,
    /// All of them, and the model's accuracy on them as `evaluate` measured it.
    test: netcalc::app::data::Split,
    accuracy: f64,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let kind = if BackendKind::Flex.is_compiled() {
            BackendKind::Flex
        } else {
            netcalc::compiled_backends()[0]
        };
        let device = netcalc::device_of(kind).expect("device");
        let data = Dataset::bundled().unwrap();
        let cfg = TrainConfig {
            epochs: 3,
            ..TrainConfig::default()
        };
        let dir = tempfile::tempdir().unwrap();
        let opts = RunOptions {
            out: dir.path().to_path_buf(),
            resume: false,
            stop_after: None,
            progress: ProgressMode::Plain,
            backend: kind,
            interrupt: None,
            data_record: None,
        };
        let run = train(&cfg, &data, &device, &opts).unwrap();
        eprintln!(
            "model for the server tests: {:.2}% held-out accuracy",
            100.0 * run.evaluation.accuracy
        );
        let (model_cfg, model_path) = locate_model(dir.path()).unwrap();
        let model = load_model(&model_cfg, &model_path, &device).unwrap();
        let app = App::new(
            model,
            model_cfg,
            DataInfo::mnist(),
            device.clone(),
            Some(dir.path().to_path_buf()),
        );
        let server = Server::bind(app, "127.0.0.1:0".parse().unwrap()).unwrap();
        let s = server.clone();
        std::thread::spawn(move || s.run(8));
        // 100 digits: enough that a threshold of 90 % has a margin on any CPU (the model's
        // last bits, and so a near tie, differ between AVX2 and AVX-512 matrix kernels)
        let held_out = (0..100)
            .map(|i| (data.test.image(i).to_vec(), data.test.labels[i]))
            .collect();
        Fixture {
            test: data.test.clone(),
            accuracy: run.evaluation.accuracy,
            run: dir.path().to_path_buf(),
            dir,
            device,
            server,
            held_out,
        }
    })
}

fn png_of(digit: &[u8], dir: &Path, name: &str) -> Vec<u8> {
    let p = dir.join(name);
    save_digit_png(digit, &p).unwrap();
    std::fs::read(p).unwrap()
}

fn probabilities(v: &Value) -> Vec<f32> {
    v["probabilities"]
        .as_array()
        .expect("probabilities")
        .iter()
        .map(|p| p.as_f64().unwrap() as f32)
        .collect()
}

#[test]
fn api_predicts_held_out_digits_as_predict_does() {
    let f = fixture();
    let addr = f.server.addr();
    let (cfg, path) = locate_model(&f.run).unwrap();
    let model = load_model(&cfg, &path, &f.device).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut correct = 0;
    for (i, (digit, label)) in f.held_out.iter().enumerate() {
        // as a PNG file, the way `mnist predict` reads it
        let png = png_of(digit, dir.path(), &format!("{i}.png"));
        // `digit=1`: the answer also carries the image the network saw
        let (status, answer) = post(addr, "/api/predict?digit=1", "image/png", &png);
        assert_eq!(status, 200, "{answer}");
        let expected = &class_probabilities(
            &model,
            &DataInfo::mnist(),
            &[load_digit(&dir.path().join(format!("{i}.png"))).unwrap()],
            &f.device,
        )
        .unwrap()[0];
        let got = probabilities(&answer);
        assert_eq!(got.len(), 10);
        let diff = got
            .iter()
            .zip(expected)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert!(
            diff < 1e-6,
            "digit {i}: API {got:?} vs predict {expected:?}"
        );
        let predicted = answer["predicted"].as_u64().unwrap() as u32;
        assert_eq!(
            answer["top"][0]["class"].as_u64().unwrap() as u32,
            predicted
        );
        assert_eq!(answer["top"].as_array().unwrap().len(), 3);
        assert_eq!(answer["digit"].as_array().unwrap().len(), PIXELS);
        assert!(answer.get("stages").is_none(), "stages only on request");
        correct += usize::from(predicted == *label);

        // as JSON pixels (MNIST polarity): the same answer
        let body = json!({ "pixels": digit }).to_string();
        let (status, answer_json) = post(addr, "/api/predict", "application/json", body.as_bytes());
        assert_eq!(status, 200, "{answer_json}");
        assert_eq!(answer_json["predicted"], answer["predicted"]);
        assert!(answer_json.get("digit").is_none(), "digit only on request");
    }
    eprintln!(
        "API, PNG files: {correct} of {} held-out digits predicted correctly",
        f.held_out.len()
    );
    assert!(
        correct * 10 >= f.held_out.len() * 9,
        "{correct} of {}",
        f.held_out.len()
    );

    // every held-out digit as JSON: the accuracy `evaluate` measured after training
    let n = f.test.len();
    let correct: usize = std::thread::scope(|s| {
        let workers: Vec<_> = (0..4)
            .map(|w| {
                s.spawn(move || {
                    (w..n)
                        .step_by(4)
                        .filter(|&i| {
                            let body = json!({ "pixels": f.test.image(i) }).to_string();
                            let (status, a) =
                                post(addr, "/api/predict", "application/json", body.as_bytes());
                            assert_eq!(status, 200, "{a}");
                            a["predicted"].as_u64() == Some(u64::from(f.test.labels[i]))
                        })
                        .count()
                })
            })
            .collect();
        workers.into_iter().map(|h| h.join().unwrap()).sum()
    });
    let api = correct as f64 / n as f64;
    eprintln!(
        "API, JSON: {correct} of {n} held-out digits ({:.2}%); evaluate: {:.2}%",
        100.0 * api,
        100.0 * f.accuracy
    );
    // the same model and inputs; batches of 1 instead of 256 may flip a near tie at most
    assert!(
        (api - f.accuracy).abs() <= 2.0 / n as f64,
        "API {api} vs evaluate {}",
        f.accuracy
    );
}

#[test]
fn api_returns_every_stage_on_request() {
    let f = fixture();
    let (digit, _) = &f.held_out[0];
    let body = json!({ "pixels": digit, "stages": true }).to_string();
    let (status, answer) = post(
        f.server.addr(),
        "/api/predict",
        "application/json",
        body.as_bytes(),
    );
    assert_eq!(status, 200);
    let stages = answer["stages"].as_array().expect("stages");
    let shapes: Vec<Value> = stages.iter().map(|s| s["shape"].clone()).collect();
    // the default CNN, as its summary lists it
    assert_eq!(
        Value::Array(shapes),
        json!([
            [1, 28, 28],
            [32, 26, 26],
            [32, 13, 13],
            [64, 11, 11],
            [64, 5, 5],
            [1600],
            [128],
            [10],
            [10]
        ])
    );
    for s in stages {
        let n: u64 = s["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_u64().unwrap())
            .product();
        assert_eq!(
            s["values"].as_array().unwrap().len() as u64,
            n,
            "{}",
            s["name"]
        );
    }
    assert_eq!(stages.last().unwrap()["values"], answer["probabilities"]);
    // a PNG upload asks for them in the query string, parsed as a query (not searched for)
    let png = png_of(digit, f.dir.path(), "stages.png");
    for (query, wanted) in [
        ("?stages=1", true),
        ("?stages=true&x=1", true),
        ("?nostages=1", false),
        ("?stages=0", false),
    ] {
        let (status, answer) = post(
            f.server.addr(),
            &format!("/api/predict{query}"),
            "image/png",
            &png,
        );
        assert_eq!(status, 200, "{query}");
        assert_eq!(answer.get("stages").is_some(), wanted, "{query}");
    }
    // the picture of the stages
    let res = agent()
        .post(url(f.server.addr(), "/api/explain"))
        .header("Content-Type", "application/json")
        .send(body.as_bytes())
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let png = res.into_body().read_to_vec().unwrap();
    let img = image::load_from_memory(&png).expect("a PNG");
    assert!(
        img.width() > 1000 && img.height() >= 500,
        "{}x{}",
        img.width(),
        img.height()
    );
}

/// `/api/info` describes the model and names its run, without telling where on this machine
/// the run lies.
#[test]
fn info_names_the_model_and_no_local_path() {
    let f = fixture();
    let mut res = agent()
        .get(url(f.server.addr(), "/api/info"))
        .call()
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let info: Value = serde_json::from_str(&res.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(info["model"], "cnn");
    assert_eq!(info["num_classes"], 10);
    assert_eq!(
        info["classes"],
        json!(["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"])
    );
    assert_eq!(info["draw"], true);
    assert_eq!(info["input"], json!([1, 28, 28]));
    let run = info["run"].as_str().expect("the run's name");
    let name = f.run.canonicalize().unwrap();
    assert_eq!(run, name.file_name().unwrap().to_string_lossy());
    let text = info.to_string();
    let dir = f.run.canonicalize().unwrap().display().to_string();
    assert!(!text.contains(&dir) && !run.contains('/'), "{text}");
}

#[test]
fn bad_requests_get_4xx_with_a_reason_and_the_server_keeps_serving() {
    let f = fixture();
    let addr = f.server.addr();
    let cases: Vec<(&str, &str, Vec<u8>, u16, &str)> = vec![
        (
            "/api/predict",
            "application/json",
            b"{\"pixels\": [1, 2".to_vec(),
            400,
            "malformed JSON",
        ),
        (
            "/api/predict",
            "application/json",
            b"{\"pixels\": [1, 2, 3]}".to_vec(),
            400,
            "has 3 values",
        ),
        (
            "/api/predict",
            "application/json",
            b"{\"pixels\": [300]}".to_vec(),
            400,
            "malformed JSON",
        ),
        (
            "/api/predict",
            "application/json",
            b"{\"pixel\": []}".to_vec(),
            400,
            "unknown field",
        ),
        (
            "/api/predict",
            "image/png",
            b"\x89PNG\r\n\x1a\nnot really".to_vec(),
            400,
            "not an image",
        ),
        (
            "/api/predict",
            "text/plain",
            b"hello".to_vec(),
            400,
            "not an image",
        ),
        ("/api/predict", "image/png", Vec::new(), 400, "empty body"),
        (
            "/api/predict",
            "image/png",
            vec![0u8; MAX_BODY_BYTES + 1],
            413,
            "larger than",
        ),
        (
            "/api/explain",
            "image/jpeg",
            b"\xff\xd8\xff broken".to_vec(),
            400,
            "not an image",
        ),
        (
            "/api/nothing",
            "application/json",
            b"{}".to_vec(),
            404,
            "nothing at",
        ),
    ];
    for (path, ctype, body, status, reason) in cases {
        let (got, answer) = post(addr, path, ctype, &body);
        assert_eq!(got, status, "{path} {ctype}: {answer}");
        let message = answer["error"].as_str().unwrap_or_default();
        assert!(message.contains(reason), "{path} {ctype}: {message}");
        assert!(!message.contains('\n'), "one line: {message}");
    }
    let mut res = agent().get(url(addr, "/api/predict")).call().unwrap();
    assert_eq!(res.status().as_u16(), 405);
    assert!(
        res.body_mut()
            .read_to_string()
            .unwrap()
            .contains("GET is not allowed")
    );
    let res = agent().get(url(addr, "/run/model.bpk")).call().unwrap();
    assert_eq!(
        res.status().as_u16(),
        404,
        "only the plots are served from the run"
    );
    // a body cut short: the server notices, answers or drops it, and carries on
    {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        write!(s, "POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: 5000\r\n\r\nshort").unwrap();
    }
    // still serving
    let (digit, _) = &f.held_out[1];
    let body = json!({ "pixels": digit }).to_string();
    assert_eq!(
        post(addr, "/api/predict", "application/json", body.as_bytes()).0,
        200
    );
    let res = agent().get(url(addr, "/")).call().unwrap();
    assert_eq!(res.status().as_u16(), 200);
    for plot in ["loss.png", "accuracy.png", "confusion.png"] {
        let res = agent()
            .get(url(addr, &format!("/run/{plot}")))
            .call()
            .unwrap();
        assert_eq!(res.status().as_u16(), 200, "{plot}");
    }
}

#[test]
fn a_hundred_concurrent_requests_are_all_answered() {
    let f = fixture();
    let addr = f.server.addr();
    let expected: Vec<Value> = f
        .held_out
        .iter()
        .map(|(d, _)| {
            let body = json!({ "pixels": d }).to_string();
            post(addr, "/api/predict", "application/json", body.as_bytes()).1["predicted"].clone()
        })
        .collect();
    let handles: Vec<_> = (0..100)
        .map(|i| {
            let (digit, _) = f.held_out[i % f.held_out.len()].clone();
            std::thread::spawn(move || {
                let body = json!({ "pixels": digit }).to_string();
                post(addr, "/api/predict", "application/json", body.as_bytes())
            })
        })
        .collect();
    for (i, h) in handles.into_iter().enumerate() {
        let (status, answer) = h.join().expect("client thread");
        assert_eq!(status, 200, "request {i}: {answer}");
        assert_eq!(
            answer["predicted"],
            expected[i % expected.len()],
            "request {i}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The page in a real browser: headless Chromium driven over WebDriver (chromedriver's HTTP API).

/// chromedriver, killed when dropped.
struct Driver {
    child: Child,
    base: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn find_program(env: &str, names: &[&str]) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(env) {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    names
        .iter()
        .flat_map(|n| std::env::split_paths(&path).map(move |d| d.join(n)))
        .find(|p| p.is_file())
}

fn webdriver(agent: &ureq::Agent, method: &str, url: &str, body: Option<Value>) -> Value {
    let mut res = match (method, body) {
        ("GET", _) => agent.get(url).call(),
        ("DELETE", _) => agent.delete(url).call(),
        (_, body) => agent
            .post(url)
            .header("Content-Type", "application/json")
            .send(body.unwrap_or(json!({})).to_string().as_bytes()),
    }
    .unwrap_or_else(|e| panic!("WebDriver {method} {url}: {e}"));
    let status = res.status().as_u16();
    let text = res
        .body_mut()
        .with_config()
        .limit(64 << 20)
        .read_to_string()
        .unwrap();
    let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    assert!(status < 300, "WebDriver {method} {url}: {status} {text}");
    v["value"].clone()
}

fn start_browser() -> (Driver, ureq::Agent, String) {
    let driver = find_program("NETCALC_CHROMEDRIVER", &["chromedriver"]).unwrap_or_else(|| {
        panic!(
            "chromedriver not found (set NETCALC_CHROMEDRIVER or install Debian's `chromium` and \
             `chromium-driver` packages, as .ci/run does)"
        )
    });
    let chromium = find_program(
        "NETCALC_CHROMIUM",
        &["chromium", "chromium-browser", "google-chrome"],
    )
    .unwrap_or_else(|| panic!("chromium not found (install Debian's `chromium` package)"));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(&driver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", driver.display()));
    let d = Driver {
        child,
        base: format!("http://127.0.0.1:{port}"),
    };
    let agent = agent();
    let start = Instant::now();
    loop {
        let ready = agent
            .get(format!("{}/status", d.base))
            .call()
            .ok()
            .and_then(|mut r| r.body_mut().read_to_string().ok())
            .and_then(|t| serde_json::from_str::<Value>(&t).ok())
            .is_some_and(|v| v["value"]["ready"] == json!(true));
        if ready {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "chromedriver did not become ready"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let caps = json!({ "capabilities": { "alwaysMatch": {
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": chromium,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1400,1100"]
        }
    }}});
    let session = webdriver(&agent, "POST", &format!("{}/session", d.base), Some(caps));
    let id = session["sessionId"]
        .as_str()
        .expect("session id")
        .to_string();
    let base = format!("{}/session/{id}", d.base);
    (d, agent, base)
}

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Strokes that redraw a 28×28 digit on the 280×280 canvas: one horizontal stroke per run of
/// ink in each row, as pointer actions relative to the canvas centre.
fn strokes(digit: &[u8], canvas: &str) -> Value {
    let origin = json!({ ELEMENT: canvas });
    let mut actions = Vec::new();
    for r in 0..SIDE {
        let mut c = 0;
        while c < SIDE {
            if digit[r * SIDE + c] < 100 {
                c += 1;
                continue;
            }
            let start = c;
            while c < SIDE && digit[r * SIDE + c] >= 100 {
                c += 1;
            }
            let y = (r * 10 + 5) as i64 - 140;
            let (x0, x1) = (
                (start * 10 + 5) as i64 - 140,
                ((c - 1) * 10 + 5) as i64 - 140,
            );
            actions.push(
                json!({"type": "pointerMove", "duration": 0, "origin": origin, "x": x0, "y": y}),
            );
            actions.push(json!({"type": "pointerDown", "button": 0}));
            actions.push(
                json!({"type": "pointerMove", "duration": 20, "origin": origin, "x": x1, "y": y}),
            );
            actions.push(json!({"type": "pointerUp", "button": 0}));
        }
    }
    json!({ "actions": [{ "type": "pointer", "id": "pen", "parameters": { "pointerType": "mouse" }, "actions": actions }] })
}

fn base64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("not base64: {c}"),
    };
    let bytes: Vec<u8> = s
        .bytes()
        .filter(|c| !c.is_ascii_whitespace() && *c != b'=')
        .collect();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let v: Vec<u32> = chunk.iter().map(|&c| u32::from(val(c))).collect();
        let n = v
            .iter()
            .enumerate()
            .fold(0, |acc, (i, x)| acc | x << (18 - 6 * i));
        out.extend_from_slice(&n.to_be_bytes()[1..chunk.len()]);
    }
    out
}

#[test]
fn a_real_browser_draws_held_out_digits_and_reads_the_prediction() {
    let f = fixture();
    let (_driver, agent, session) = start_browser();
    let wd = |method: &str, path: &str, body: Option<Value>| {
        webdriver(&agent, method, &format!("{session}{path}"), body)
    };
    wd(
        "POST",
        "/url",
        Some(json!({ "url": url(f.server.addr(), "/") })),
    );
    let find = |css: &str| {
        wd(
            "POST",
            "/element",
            Some(json!({ "using": "css selector", "value": css })),
        )[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no {css} on the page"))
            .to_string()
    };
    let canvas = find("#pad");
    let clear = find("#clear");
    let predicted = find("#predicted");
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("serve-browser");
    std::fs::create_dir_all(&out).unwrap();
    let mut correct = 0;
    let digits = &f.held_out[..12];
    for (i, (digit, label)) in digits.iter().enumerate() {
        wd("POST", &format!("/element/{clear}/click"), None);
        wd("POST", "/actions", Some(strokes(digit, &canvas)));
        // the page predicts as it is drawn; wait until it shows the final drawing's answer
        let start = Instant::now();
        let shown = loop {
            let text = wd("GET", &format!("/element/{predicted}/text"), None);
            let text = text.as_str().unwrap_or_default().trim().to_string();
            let settled = wd(
                "POST",
                "/execute/sync",
                Some(
                    json!({ "script": "return !dirty && !busy && document.getElementById('stages').hidden === false;", "args": [] }),
                ),
            );
            if !text.is_empty() && settled == json!(true) {
                break text;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "digit {i}: no prediction shown"
            );
            std::thread::sleep(Duration::from_millis(100));
        };
        // what the page shows is the API's answer for what is on the canvas
        let data_url = wd(
            "POST",
            "/execute/sync",
            Some(json!({ "script": "return pad.toDataURL('image/png');", "args": [] })),
        );
        let png = base64_decode(
            data_url
                .as_str()
                .unwrap()
                .trim_start_matches("data:image/png;base64,"),
        );
        let (status, answer) = post(f.server.addr(), "/api/predict", "image/png", &png);
        assert_eq!(status, 200);
        assert_eq!(
            shown,
            answer["predicted"].to_string(),
            "digit {i}: page vs API"
        );
        eprintln!("browser: held-out digit {i} (label {label}) drawn, page shows {shown}");
        correct += usize::from(shown == label.to_string());
        if i + 1 == digits.len() {
            let shot = wd("GET", "/screenshot", None);
            let path = out.join("page.png");
            std::fs::write(&path, base64_decode(shot.as_str().unwrap())).unwrap();
            image::open(&path).expect("the screenshot is a PNG");
            eprintln!("screenshot: {}", path.display());
        }
    }
    let _ = wd("DELETE", "", None);
    eprintln!(
        "browser: {correct} of {} drawn digits read correctly from the page",
        digits.len()
    );
    assert!(correct >= 10, "{correct} of {}", digits.len());
}

// ---------------------------------------------------------------------------------------------
// Photos of digits.

/// A held-out digit as a phone would photograph it: a 400×300 frame of grey or tinted paper,
/// lit unevenly (darker on one side and at the top), the digit in blue or black ink, 5× its
/// size, off-centre, with sensor noise, saved as JPEG at quality 70.
fn photo(digit: &[u8], k: usize) -> Vec<u8> {
    photo_sized(digit, k, (400, 300), 140, 13)
}

/// [`photo`] in a `w`×`h` frame, the digit `side` pixels tall, sensor noise of `noise` levels.
fn photo_sized(digit: &[u8], k: usize, (w, h): (u32, u32), side: u32, noise: u64) -> Vec<u8> {
    use image::{ImageEncoder, Rgb, RgbImage};
    let papers = [
        [196.0, 194.0, 188.0],
        [222.0, 210.0, 172.0],
        [176.0, 188.0, 200.0],
    ];
    let inks = [[38.0, 52.0, 160.0], [28.0, 28.0, 34.0]];
    let paper = papers[k % papers.len()];
    let ink = inks[k % inks.len()];
    let big = image::imageops::resize(
        &image::GrayImage::from_raw(SIDE as u32, SIDE as u32, digit.to_vec()).unwrap(),
        side,
        side,
        image::imageops::FilterType::Triangle,
    );
    let (sx, sy) = ((w - side) as usize, (h - side) as usize);
    let (ox, oy) = (
        (30 + (k * 53) % 200) * sx / 260,
        (20 + (k * 37) % 130) * sy / 160,
    );
    let side = side as usize;
    let mut state = 0x9E37_79B9_7F4A_7C15u64 ^ k as u64;
    let img = RgbImage::from_fn(w, h, |x, y| {
        let a =
            if (ox..ox + side).contains(&(x as usize)) && (oy..oy + side).contains(&(y as usize)) {
                big.get_pixel(x - ox as u32, y - oy as u32)[0] as f32 / 255.0
            } else {
                0.0
            };
        let light = 0.62 + 0.38 * x as f32 / w as f32 + 0.12 * y as f32 / h as f32;
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let noise = (state % noise) as f32 - (noise / 2) as f32;
        Rgb(std::array::from_fn(|c| {
            ((paper[c] * (1.0 - a) + ink[c] * a) * light + noise).clamp(0.0, 255.0) as u8
        }))
    });
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 70)
        .write_image(img.as_raw(), w, h, image::ExtendedColorType::Rgb8)
        .unwrap();
    jpeg
}

#[test]
fn photos_of_held_out_digits_are_read_like_scans() {
    let f = fixture();
    let (cfg, path) = locate_model(&f.run).unwrap();
    let model = load_model(&cfg, &path, &f.device).unwrap();
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("photos");
    std::fs::create_dir_all(&out).unwrap();
    let (mut photo_correct, mut clean_correct) = (0, 0);
    for (k, (digit, label)) in f.held_out.iter().enumerate() {
        let p = out.join(format!("photo-{k}-label-{label}.jpg"));
        std::fs::write(&p, photo(digit, k)).unwrap();
        let read = load_digit(&p).unwrap();
        let probs = class_probabilities(
            &model,
            &DataInfo::mnist(),
            &[read, digit.clone()],
            &f.device,
        )
        .unwrap();
        let best = |p: &[f32]| netcalc::app::predict::top_k(p, 1)[0].0;
        photo_correct += usize::from(best(&probs[0]) == *label as usize);
        clean_correct += usize::from(best(&probs[1]) == *label as usize);
    }
    eprintln!(
        "photos: {photo_correct} of {} held-out digits read correctly from 400x300 JPEG photos \
         (the clean digits: {clean_correct}); photos in {}",
        f.held_out.len(),
        out.display()
    );
    assert!(
        photo_correct * 10 >= f.held_out.len() * 9,
        "{photo_correct} of {}",
        f.held_out.len()
    );
}

// ---------------------------------------------------------------------------------------------
// The production server: limits, batching, health, metrics, drain, faults.

/// A server of the fixture's model with `config`, running on 2 runtime threads until stopped.
fn start(config: ServeConfig) -> Running {
    let f = fixture();
    let (cfg, path) = locate_model(&f.run).unwrap();
    let model = load_model(&cfg, &path, &f.device).unwrap();
    let app = App::new(
        model,
        cfg,
        DataInfo::mnist(),
        f.device.clone(),
        Some(f.run.clone()),
    );
    Running::start(app, config)
}

fn digit_json(i: usize) -> Vec<u8> {
    let f = fixture();
    json!({ "pixels": f.held_out[i % f.held_out.len()].0 })
        .to_string()
        .into_bytes()
}

#[test]
fn health_ready_and_metrics_report_the_server() {
    let r = start(ServeConfig::default());
    let addr = r.addr();
    assert_eq!(get(addr, "/healthz").0, 200);
    assert_eq!(get(addr, "/readyz").0, 200);
    assert_eq!(
        post(addr, "/api/predict", "application/json", &digit_json(0)).0,
        200
    );
    assert_eq!(get(addr, "/wp-login.php").0, 404);
    assert_eq!(get(addr, "/wp-admin/x").0, 404);
    let (status, text) = get(addr, "/metrics");
    assert_eq!(status, 200);
    for name in [
        "netcalc_requests_total",
        "netcalc_request_duration_seconds_bucket",
        "netcalc_batch_size_bucket",
        "netcalc_queue_depth",
        "netcalc_inference_duration_seconds_bucket",
        "netcalc_worker_restarts_total",
    ] {
        assert!(text.contains(name), "no {name} in\n{text}");
    }
    assert_eq!(
        metric(
            &text,
            "netcalc_requests_total{path=\"/api/predict\",status=\"200\"}"
        ),
        Some(1.0),
        "{text}"
    );
    // unknown paths are counted under one label, so scanners cannot grow the metrics
    assert_eq!(
        metric(
            &text,
            "netcalc_requests_total{path=\"other\",status=\"404\"}"
        ),
        Some(2.0),
        "{text}"
    );
    assert!(!text.contains("wp-"), "{text}");
    assert_eq!(
        metric(&text, "netcalc_batch_size_count"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(metric(&text, "netcalc_queue_depth"), Some(0.0), "{text}");
    r.stop().0.unwrap();
}

#[test]
fn slow_headers_are_closed_after_the_header_timeout_and_others_are_served() {
    let r = start(ServeConfig {
        header_timeout: Duration::from_secs(1),
        ..ServeConfig::default()
    });
    let addr = r.addr();
    let slow: Vec<_> = (0..20)
        .map(|_| {
            std::thread::spawn(move || {
                let start = Instant::now();
                let mut s = std::net::TcpStream::connect(addr).unwrap();
                s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
                let header = b"POST /api/predict HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
                let mut answer = Vec::new();
                for b in header.iter().cycle() {
                    if s.write_all(&[*b]).is_err() {
                        break;
                    }
                    let mut buf = [0u8; 256];
                    match s.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => answer.extend_from_slice(&buf[..n]),
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::TimedOut => {}
                        Err(_) => break,
                    }
                    if start.elapsed() > Duration::from_secs(20) {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
                (start.elapsed(), String::from_utf8_lossy(&answer).into_owned())
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let start = Instant::now();
    assert_eq!(
        post(addr, "/api/predict", "application/json", &digit_json(1)).0,
        200
    );
    let normal = start.elapsed();
    assert!(
        normal < Duration::from_secs(2),
        "a normal request took {normal:?}"
    );
    for h in slow {
        let (took, answer) = h.join().unwrap();
        assert!(
            took >= Duration::from_millis(900) && took < Duration::from_secs(6),
            "a slow-header client was closed after {took:?}"
        );
        assert!(
            answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
            "{answer}"
        );
    }
    r.stop().0.unwrap();
}

#[test]
fn a_slow_body_gets_408_after_the_body_timeout() {
    let r = start(ServeConfig {
        body_timeout: Duration::from_secs(1),
        ..ServeConfig::default()
    });
    let (answer, took) = raw(
        r.addr(),
        b"POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: 1000\r\n\r\nonly this",
        Duration::from_secs(20),
    );
    assert_eq!(status_of(&answer), 408, "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("connection: close"),
        "{answer}"
    );
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(6),
        "{took:?}"
    );
    r.stop().0.unwrap();
}

#[test]
fn connections_over_the_cap_wait_until_one_closes() {
    let r = start(ServeConfig {
        max_connections: 4,
        header_timeout: Duration::from_secs(30),
        ..ServeConfig::default()
    });
    let addr = r.addr();
    // readiness polling used connections that are closed by now; give them a moment
    std::thread::sleep(Duration::from_millis(200));
    let idle: Vec<_> = (0..4)
        .map(|_| std::net::TcpStream::connect(addr).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let waiting = std::thread::spawn(move || {
        raw(
            addr,
            b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            Duration::from_secs(20),
        )
    });
    std::thread::sleep(Duration::from_secs(1));
    assert!(!waiting.is_finished(), "a fifth connection was served");
    let released = Instant::now();
    drop(idle);
    let (answer, _) = waiting.join().unwrap();
    assert_eq!(status_of(&answer), 200, "{answer}");
    assert!(released.elapsed() < Duration::from_secs(5));
    r.stop().0.unwrap();
}

#[test]
fn held_huge_bodies_get_413_at_once_and_others_are_served() {
    let r = start(ServeConfig::default());
    let addr = r.addr();
    let held: Vec<_> = (0..8)
        .map(|_| {
            std::thread::spawn(move || {
                let start = Instant::now();
                let mut s = std::net::TcpStream::connect(addr).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
                s.write_all(b"POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: 1000000000\r\n\r\nabc").unwrap();
                let mut out = Vec::new();
                let mut buf = [0u8; 4096];
                // read the answer; the connection is kept open by this client
                while !String::from_utf8_lossy(&out).contains("}") {
                    match s.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => out.extend_from_slice(&buf[..n]),
                        Err(e) => panic!("reset or timed out: {e}"),
                    }
                }
                let took = start.elapsed();
                // ...and then closed by the server, without a reset
                let rest = s.read_to_end(&mut out);
                (took, String::from_utf8_lossy(&out).into_owned(), rest.is_ok(), s)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(100));
    let start = Instant::now();
    assert_eq!(
        post(addr, "/api/predict", "application/json", &digit_json(2)).0,
        200
    );
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    for h in held {
        let (took, answer, closed_cleanly, _s) = h.join().unwrap();
        assert_eq!(status_of(&answer), 413, "{answer}");
        assert!(
            answer.to_ascii_lowercase().contains("connection: close"),
            "{answer}"
        );
        assert!(answer.contains("larger than"), "{answer}");
        assert!(took < Duration::from_secs(2), "413 after {took:?}");
        assert!(closed_cleanly, "the connection was reset");
    }
    r.stop().0.unwrap();
}

#[test]
fn expect_100_continue_with_a_huge_body_gets_413_unasked() {
    let f = fixture();
    let addr = f.server.addr();
    let (answer, took) = raw(
        addr,
        b"POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: 10000000\r\nExpect: 100-continue\r\n\r\n",
        Duration::from_secs(20),
    );
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(!answer.contains("100 Continue"), "{answer}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    // a small body is asked for and answered
    let body = digit_json(3);
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(
        s,
        "POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 100 Continue"));
    s.write_all(&body).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    assert!(
        String::from_utf8_lossy(&out).contains("HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&out)
    );
}

#[test]
fn concurrent_requests_are_batched_and_answer_as_single_images() {
    let f = fixture();
    let r = start(ServeConfig {
        max_wait: Duration::from_millis(50),
        ..ServeConfig::default()
    });
    let addr = r.addr();
    let (cfg, path) = locate_model(&f.run).unwrap();
    let model = load_model(&cfg, &path, &f.device).unwrap();
    let barrier = Arc::new(std::sync::Barrier::new(16));
    let clients: Vec<_> = (0..16)
        .map(|i| {
            let barrier = barrier.clone();
            let body = digit_json(i);
            std::thread::spawn(move || {
                barrier.wait();
                post(addr, "/api/predict?digit=1", "application/json", &body)
            })
        })
        .collect();
    for (i, c) in clients.into_iter().enumerate() {
        let (status, answer) = c.join().unwrap();
        assert_eq!(status, 200, "{answer}");
        let seen: Vec<u8> = answer["digit"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u8)
            .collect();
        let single =
            &class_probabilities(&model, &DataInfo::mnist(), &[seen], &f.device).unwrap()[0];
        let diff = probabilities(&answer)
            .iter()
            .zip(single)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert!(
            diff <= 1e-6,
            "request {i}: batched vs single differ by {diff}"
        );
    }
    let (_, text) = get(addr, "/metrics");
    let count = metric(&text, "netcalc_batch_size_count").unwrap();
    let ones = metric(&text, "netcalc_batch_size_bucket{le=\"1\"}").unwrap();
    let sum = metric(&text, "netcalc_batch_size_sum").unwrap();
    eprintln!("16 concurrent requests, max wait 50 ms: {count} batches, {sum} images");
    assert!(ones < count, "no batch of 2 or more:\n{text}");
    r.stop().0.unwrap();
}

#[test]
fn the_binary_drains_on_sigterm_and_exits_0() {
    let (mut child, addr) = serve_binary(&[]);
    // slow requests (the picture of the stages), in flight when the signal comes
    let clients: Vec<_> = (0..16)
        .map(|i| {
            let body = digit_json(i);
            std::thread::spawn(move || {
                let res = agent()
                    .post(url(addr, "/api/explain"))
                    .header("Content-Type", "application/json")
                    .send(&body[..]);
                res.map(|r| r.status().as_u16()).map_err(|e| e.to_string())
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(150));
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    for c in clients {
        assert_eq!(c.join().unwrap(), Ok(200));
    }
    let status = child.wait().unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_eq!(status.code(), Some(0), "{err}");
    // the request log: one line per request
    assert!(
        err.contains("/api/explain") && err.contains("status=200"),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------------------
// Hostile images, large photos, and every request kind in one batch.

#[test]
fn a_12_mp_phone_photo_is_predicted_as_predict_reads_it() {
    let f = fixture();
    let (digit, label) = &f.held_out[7];
    let jpeg = photo_sized(digit, 7, (4032, 3024), 1400, 5);
    assert!(jpeg.len() < MAX_BODY_BYTES, "{} bytes", jpeg.len());
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("12mp.jpg");
    std::fs::write(&p, &jpeg).unwrap();
    let (status, answer) = post(f.server.addr(), "/api/predict", "image/jpeg", &jpeg);
    assert_eq!(status, 200, "{answer}");
    let (cfg, path) = locate_model(&f.run).unwrap();
    let model = load_model(&cfg, &path, &f.device).unwrap();
    let expected = &class_probabilities(
        &model,
        &DataInfo::mnist(),
        &[load_digit(&p).unwrap()],
        &f.device,
    )
    .unwrap()[0];
    let diff = probabilities(&answer)
        .iter()
        .zip(expected)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max);
    assert!(diff < 1e-6, "API vs predict: {diff}");
    assert_eq!(
        answer["predicted"].as_u64(),
        Some(u64::from(*label)),
        "{answer}"
    );
}

/// `netcalc serve` of the fixture's model (2 threads, `extra` flags) as a child process, its
/// standard error piped; its address, once it is ready.
fn serve_binary(extra: &[&str]) -> (Child, SocketAddr) {
    let f = fixture();
    let mut child = Command::new(env!("CARGO_BIN_EXE_netcalc"))
        .args(["serve", "--addr", "127.0.0.1:0", "--threads", "2"])
        .args(extra)
        .arg("--model")
        .arg(&f.run)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut out, &mut line).unwrap();
    let addr: SocketAddr = line
        .split("http://")
        .nth(1)
        .and_then(|s| s.split('/').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no address in {line:?}"));
    let start = Instant::now();
    while get(addr, "/readyz").0 != 200 {
        assert!(start.elapsed() < Duration::from_secs(30));
        std::thread::sleep(Duration::from_millis(20));
    }
    (child, addr)
}

#[test]
fn image_bombs_are_refused_before_decoding_and_memory_stays_flat() {
    let (mut child, addr) = serve_binary(&["--quiet"]);
    let pid = child.id();
    // warm: a few ordinary predictions
    for i in 0..8 {
        assert_eq!(
            post(addr, "/api/predict", "application/json", &digit_json(i)).0,
            200
        );
    }
    let (_, base) = http::memory_of(pid);
    // the peak (VmHWM) from here on: Linux resets it on `5` in clear_refs
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").unwrap();
    let bombs = [
        ("grey", http::png_declaring((8192, 8192), false)),
        ("RGBA", http::png_declaring((8192, 8192), true)),
    ];
    let probing = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let probe = {
        let probing = probing.clone();
        std::thread::spawn(move || {
            let mut latencies = Vec::new();
            while probing.load(std::sync::atomic::Ordering::Relaxed) {
                let start = Instant::now();
                assert_eq!(get(addr, "/healthz").0, 200);
                latencies.push(start.elapsed());
                std::thread::sleep(Duration::from_millis(10));
            }
            latencies
        })
    };
    for (kind, bomb) in &bombs {
        assert!(bomb.len() < 16 << 10, "{kind}: {} bytes", bomb.len());
        let barrier = Arc::new(std::sync::Barrier::new(64));
        let clients: Vec<_> = (0..64)
            .map(|_| {
                let (barrier, bomb) = (barrier.clone(), bomb.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    post(addr, "/api/predict", "image/png", &bomb)
                })
            })
            .collect();
        for c in clients {
            let (status, answer) = c.join().unwrap();
            assert_eq!(status, 422, "{kind}: {answer}");
            let error = answer["error"].as_str().unwrap();
            assert!(
                error.contains("8192×8192") && error.contains("24000000"),
                "{kind}: {error}"
            );
        }
    }
    probing.store(false, std::sync::atomic::Ordering::Relaxed);
    let mut latencies = probe.join().unwrap();
    latencies.sort();
    let (peak, _) = http::memory_of(pid);
    // an ordinary request is still served
    assert_eq!(
        post(addr, "/api/predict", "application/json", &digit_json(1)).0,
        200
    );
    let _ = child.kill();
    let _ = child.wait();
    let max = latencies.last().copied().unwrap_or_default();
    eprintln!(
        "128 bombs: peak RSS {} MB over a base of {} MB; /healthz p50 {:?}, max {max:?} ({} probes)",
        peak >> 20,
        base >> 20,
        latencies[latencies.len() / 2],
        latencies.len()
    );
    assert!(peak <= base + (64 << 20), "peak {peak} over base {base}");
    assert!(max < Duration::from_secs(1), "/healthz took {max:?}");
}

#[test]
fn explanations_and_stages_ride_in_the_batches_of_predictions() {
    let r = start(ServeConfig {
        max_wait: Duration::from_millis(30),
        ..ServeConfig::default()
    });
    let addr = r.addr();
    let rounds = 6;
    let mut explained = 0;
    let barrier = Arc::new(std::sync::Barrier::new(20));
    let clients: Vec<_> = (0..20)
        .map(|i| {
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                let mut kinds = Vec::new();
                for _ in 0..rounds {
                    barrier.wait();
                    let body = digit_json(i);
                    let (path, kind) = match i % 5 {
                        0 => ("/api/explain", "explain"),
                        1 => ("/api/predict?stages=1", "stages"),
                        _ => ("/api/predict", "predict"),
                    };
                    let mut res = agent()
                        .post(url(addr, path))
                        .header("Content-Type", "application/json")
                        .send(&body[..])
                        .unwrap();
                    assert_eq!(res.status().as_u16(), 200, "{kind}");
                    let bytes = res.body_mut().read_to_vec().unwrap();
                    if kind == "explain" {
                        assert!(bytes.starts_with(b"\x89PNG"), "not a PNG");
                    } else {
                        let v: Value = serde_json::from_slice(&bytes).unwrap();
                        assert_eq!(v.get("stages").is_some(), kind == "stages");
                        if kind == "stages" {
                            let stages = v["stages"].as_array().unwrap();
                            assert_eq!(stages.last().unwrap()["values"], v["probabilities"]);
                        }
                    }
                    kinds.push(kind);
                }
                kinds
            })
        })
        .collect();
    for c in clients {
        explained += c
            .join()
            .unwrap()
            .iter()
            .filter(|k| **k != "predict")
            .count();
    }
    let (_, text) = get(addr, "/metrics");
    let batches = metric(&text, "netcalc_batch_size_count").unwrap();
    let images = metric(&text, "netcalc_batch_size_sum").unwrap();
    eprintln!("{images} images in {batches} batches; {explained} explanations and stage requests");
    assert_eq!(images as usize, 20 * rounds);
    // each explanation or stage request alone would be a batch of its own
    assert!(
        (batches as usize) < explained,
        "{batches} batches for {explained} explanations and stage requests"
    );
    r.stop().0.unwrap();
}
