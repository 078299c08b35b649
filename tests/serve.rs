//! The web server of `mnist serve`: its JSON API over loopback (held-out digits, every bad
//! request, 100 concurrent requests) and its page in a real browser (headless Chromium over
//! WebDriver) that draws held-out digits on the canvas and reads the prediction from the page.
//!
//! Also `load_digit` on "photos" of held-out digits (tinted paper, uneven light, coloured ink,
//! JPEG, a large frame), read by the same model.
//!
//! One model is trained for all tests (3 epochs on the 8,000 bundled training images, flex when
//! compiled in).

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use netcalc::BackendKind;
use netcalc::app::data::{DataInfo, Dataset, PIXELS, SIDE};
use netcalc::app::predict::{class_probabilities, load_digit, save_digit_png};
use netcalc::app::serve::{App, MAX_BODY_BYTES, Server};
use netcalc::app::train::{ProgressMode, RunOptions, TrainConfig, load_model, locate_model, train};
use netcalc::burn::tensor::Device;
use serde_json::{Value, json};

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

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

fn url(addr: SocketAddr, path: &str) -> String {
    format!("http://{addr}{path}")
}

/// POST `body` with `content_type`; (status, body as JSON or `null`).
fn post(addr: SocketAddr, path: &str, content_type: &str, body: &[u8]) -> (u16, Value) {
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
        let (status, answer) = post(addr, "/api/predict", "image/png", &png);
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
        140,
        140,
        image::imageops::FilterType::Triangle,
    );
    let (ox, oy) = (30 + (k * 53) % 200, 20 + (k * 37) % 130);
    let mut state = 0x9E37_79B9_7F4A_7C15u64 ^ k as u64;
    let img = RgbImage::from_fn(400, 300, |x, y| {
        let a = if (ox..ox + 140).contains(&(x as usize)) && (oy..oy + 140).contains(&(y as usize))
        {
            big.get_pixel(x - ox as u32, y - oy as u32)[0] as f32 / 255.0
        } else {
            0.0
        };
        let light = 0.62 + 0.38 * x as f32 / 400.0 + 0.12 * y as f32 / 300.0;
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let noise = (state % 13) as f32 - 6.0;
        Rgb(std::array::from_fn(|c| {
            ((paper[c] * (1.0 - a) + ink[c] * a) * light + noise).clamp(0.0, 255.0) as u8
        }))
    });
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 70)
        .write_image(img.as_raw(), 400, 300, image::ExtendedColorType::Rgb8)
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
