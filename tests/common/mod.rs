//! What several integration tests share.

use std::path::PathBuf;
use std::process::Command;

/// The executable of example `name`. `cargo test` builds the examples beside the test
/// binaries (`target/<profile>/examples/`), so it is looked up there; where it is not (a test
/// run that built only its own target), `cargo build --example NAME` with this test's profile
/// and features builds it and reports its path.
pub fn example_exe(name: &str) -> PathBuf {
    let beside = std::env::current_exe().ok().and_then(|exe| {
        let profile_dir = exe.parent()?.parent()?;
        let p = profile_dir
            .join("examples")
            .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
        p.is_file().then_some(p)
    });
    beside.unwrap_or_else(|| build_example(name))
}

fn build_example(name: &str) -> PathBuf {
    let features: Vec<&str> = [
        ("ndarray", cfg!(feature = "ndarray")),
        ("flex", cfg!(feature = "flex")),
        ("wgpu", cfg!(feature = "wgpu")),
        ("app", cfg!(feature = "app")),
    ]
    .into_iter()
    .filter_map(|(f, on)| on.then_some(f))
    .collect();
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.args([
        "build",
        "--example",
        name,
        "--message-format",
        "json",
        "--manifest-path",
    ])
    .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
    .args(["--no-default-features", "--features", &features.join(",")]);
    if !cfg!(debug_assertions) {
        cmd.arg("--release");
    }
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("run cargo build --example {name}: {e}"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["reason"] == "compiler-artifact" && v["target"]["name"] == name)
        .find_map(|v| v["executable"].as_str().map(PathBuf::from))
        .unwrap_or_else(|| panic!("cargo reported no executable for the {name} example"))
}
