//! Every worked example runs (exit 0) and prints its key numbers: the calculation by hand and
//! netcalc's tensor result agree.

mod common;

use std::process::Command;

/// Runs example `name` on the first CPU backend and returns its standard output.
fn run(name: &str) -> String {
    let out = Command::new(common::example_exe(name))
        .env("NETCALC_DEVICE", cpu())
        .output()
        .unwrap_or_else(|e| panic!("run the {name} example: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{name} failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// flex, else ndarray (the examples' numbers are the same on every backend; the CPU ones
/// start at once).
fn cpu() -> &'static str {
    if cfg!(feature = "flex") {
        "flex"
    } else {
        "ndarray"
    }
}

#[track_caller]
fn has(out: &str, wanted: &[&str]) {
    for w in wanted {
        assert!(out.contains(w), "missing `{w}` in:\n{out}");
    }
}

#[test]
fn neuron() {
    let out = run("neuron");
    has(
        &out,
        &[
            "z = 0.5·1 + (−1)·2 + 2·3 + 0.1 = 0.5 − 2 + 6 + 0.1 = 4.6",
            "sigmoid(z) = 1 / (1 + e^−4.6) = 0.990048",
            "sigmoid z = 4.6, y = 0.990048  (4 parameters: 3 weights + 1 bias)",
            "relu    z = 4.6, y = 4.600000",
            "order 4: order-4 tensor",
            "[64, 1, 28, 28]",
            "(order 1, [2]): [0.990048, 0.524979]",
        ],
    );
}

#[test]
fn dense() {
    let out = run("dense");
    has(
        &out,
        &[
            "100·50  + 50  =  5,050",
            " 50·25  + 25  =  1,275",
            " 25·10  + 10  =    260",
            "total: 5,050 + 1,275 + 260 = 6,585",
            "total parameters of the built module: 6,585; forward [4, 100] -> [4, 10]",
            "Total params: 34,826",
            "Total params: 40,785",
            "Total params: 225,034",
        ],
    );
}

#[test]
fn probabilities() {
    let out = run("probabilities");
    has(
        &out,
        &[
            "p = 0.8: odds = 0.8 / 0.2 = 4.0000, logit = ln 4.0000 = +1.386294",
            "odds(p)           = [1.0000, 4.0000, 0.2500, 9.0000]",
            "sigmoid(logit(p)) = [0.500000, 0.800000, 0.200000, 0.900000]",
            "softmax = 0.090031, 0.244728, 0.665241",
            "softmax = [0.090031, 0.244728, 0.665241], sum 1.000000",
            "softmax([0.3, 1.7])[1] = 0.802184 = sigmoid(1.7 − 0.3) = 0.802184",
        ],
    );
}

#[test]
fn losses() {
    let out = run("losses");
    has(
        &out,
        &[
            "= (0.105361 + 0.223144 + 0.510826) / 3 = 0.279777",
            &format!("netcalc ({}): 0.279777", cpu()),
            "(the same as on sigmoid(z)): 0.377779",
            "mean = 0.753109",
            &format!("netcalc ({}): 0.753109", cpu()),
            "(0.25 + 0 + 1 + 4) / 4 = 1.3125",
            &format!("netcalc ({}): 1.3125", cpu()),
        ],
    );
}

#[test]
fn pooling() {
    let out = run("pooling");
    has(
        &out,
        &[
            "floor((6 + 2·0 − 3) / 1) + 1 = floor(3 / 1) + 1 = 4",
            "Max: [3.000, 5.000, 5.000, 5.000]",
            "Avg: [2.000, 3.333, 3.667, 3.000]",
            "floor((6 + 2·1 − 3) / 2) + 1 = floor(5 / 2) + 1 = 3",
            "Max: [3.000, 5.000, 5.000]",
            "Avg: [1.333, 3.333, 3.000]",
            "Max: [1, 1, 2, 2] [4.0, 8.0, 12.0, 16.0]",
            "Avg: [1, 1, 2, 2] [2.5, 6.5, 10.5, 14.5]",
            "floor((26 + 2·0 − 2) / 2) + 1 = floor(24 / 2) + 1 = 13",
            "[1, 32, 26, 26] -> [1, 32, 13, 13], 0 parameters, channels kept",
        ],
    );
}

#[test]
fn convolution() {
    let out = run("convolution");
    has(
        &out,
        &[
            "[1, 1, 2, 2] [-3.5, -3.5, -3.5, -4.5]",
            "parameters 3·3·1·32 + 32 = 320",
            "[1, 1, 28, 28] -> [1, 32, 26, 26], 320 parameters",
            "parameters 3·3·32·64 + 64 = 18496",
            "[1, 32, 13, 13] -> [1, 64, 11, 11], 18496 parameters",
            "netcalc: [3, 5, 5]",
            "parameters 5·4·8 + 8 = 168",
            "[1, 4, 20] -> [1, 8, 16], 168 parameters",
        ],
    );
}

#[test]
fn cnn() {
    let out = run("cnn");
    has(
        &out,
        &[
            "max pool 2×2: floor((26 − 2) / 2) + 1 = 13 → 32×13×13",
            "max pool 2×2: floor((11 − 2) / 2) + 1 = 5 → 64×5×5",
            "feature vector: 64·5·5 = 1600",
            "input                      Input            shape [1, 28, 28]",
            "features.blocks[0].conv    Conv             shape [32, 26, 26]",
            "features.blocks[1].pool    Pool             shape [64, 5, 5]",
            "feature vector             FeatureVector    shape [1600]",
            "classifier.layers[0]       Dense            shape [128]",
            "classifier.layers[1]       ClassScores      shape [10]",
            "softmax                    Probabilities    shape [10]",
            "probabilities sum to 1.0000",
        ],
    );
}

/// The library example: a CNN from its JSON config trained with burn's Adam and cross-entropy
/// on tensors of its own, saved, loaded and asked for predictions.
#[test]
fn library() {
    let out = run("library");
    has(&out, &["bars", "Total params", "after 60 steps on"]);
    let loss = |s: &str| -> (f64, f64) {
        let line = s.lines().find(|l| l.starts_with("loss ")).unwrap();
        let w: Vec<&str> = line.split_whitespace().collect();
        (w[1].parse().unwrap(), w[3].parse().unwrap())
    };
    let (first, last) = loss(&out);
    assert!(last < first / 4.0, "loss {first} -> {last}:\n{out}");
    let right: usize = out
        .lines()
        .find_map(|l| {
            l.split(": ")
                .nth(1)?
                .strip_suffix(" of 30 new images right")
        })
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no prediction line in:\n{out}"));
    assert!(right >= 27, "{right} of 30:\n{out}");
}
