//! Tidy checks of the workspace's rules, run with the tests.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn crate_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = fs::read_dir(root().join("crates"))
        .expect("crates/")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.join("Cargo.toml").is_file())
        .collect();
    dirs.sort();
    dirs
}

#[test]
fn every_crate_uses_the_workspace_lints() {
    for dir in crate_dirs().into_iter().chain([root().join("xtask")]) {
        let manifest = fs::read_to_string(dir.join("Cargo.toml")).expect("manifest");
        assert!(
            manifest.contains("[lints]\nworkspace = true"),
            "{} does not use [workspace.lints]",
            dir.display()
        );
    }
}

#[test]
fn every_crate_has_a_crate_level_doc_with_an_example() {
    for dir in crate_dirs() {
        // A binary-only crate (the CLI) has no doctests: its crate doc shows its usage.
        let lib = Some(dir.join("src/lib.rs"))
            .filter(|lib| lib.exists())
            .unwrap_or_else(|| dir.join("src/main.rs"));
        let text = fs::read_to_string(&lib).expect("lib.rs or main.rs");
        assert!(
            text.starts_with("//!"),
            "{} has no crate-level doc",
            lib.display()
        );
        assert!(
            text.contains("//! ```"),
            "{} has no example in its crate doc",
            lib.display()
        );
    }
}

#[test]
fn chat_core_does_no_io() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let out = Command::new(cargo)
        .args([
            "tree",
            "-p",
            "chat-core",
            "-e",
            "normal",
            "--prefix",
            "none",
            "--offline",
        ])
        .current_dir(root())
        .output()
        .expect("cargo tree");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tree = String::from_utf8_lossy(&out.stdout);
    for banned in [
        "tokio",
        "reqwest",
        "hyper",
        "mio",
        "socket2",
        "tungstenite",
        "async-std",
        "ureq",
    ] {
        assert!(
            !tree.lines().any(|l| l.split(' ').next() == Some(banned)),
            "chat-core depends on {banned}:\n{tree}"
        );
    }
    let clippy =
        fs::read_to_string(root().join("crates/chat-core/clippy.toml")).expect("clippy.toml");
    for method in [
        "std::time::Instant::now",
        "std::time::SystemTime::now",
        "std::thread::sleep",
    ] {
        assert!(
            clippy.contains(method),
            "chat-core's clippy.toml does not disallow {method}"
        );
    }
}

#[test]
fn ci_runs_the_readme_test_command() {
    let readme = fs::read_to_string(root().join("README.md")).expect("README.md");
    let ci = fs::read_to_string(root().join(".ci/run")).expect(".ci/run");
    let command = "cargo test --workspace";
    assert!(
        readme.contains(command),
        "README.md does not give `{command}`"
    );
    assert!(ci.contains(command), ".ci/run does not run `{command}`");
}

/// What switches certificate or host-name checks off: reqwest's (and native-tls') `danger_*`
/// builders, rustls' `dangerous()` API and custom verifiers (which is how a tungstenite or
/// tokio-tungstenite `Connector::Rustls` would be made to trust anything), and the rustls
/// feature that used to gate them.
const CERTIFICATE_CHECKS_OFF: [&str; 8] = [
    "danger_accept_invalid_certs",
    "danger_accept_invalid_hostnames",
    ".dangerous()",
    "dangerous_configuration",
    "ServerCertVerifier",
    "NoCertificateVerification",
    "set_certificate_verifier",
    "with_custom_certificate_verifier",
];

fn certificate_checks_off(text: &str) -> Vec<&'static str> {
    let compact: String = text.split_whitespace().collect();
    CERTIFICATE_CHECKS_OFF
        .into_iter()
        .filter(|needle| compact.contains(needle))
        .collect()
}

#[test]
fn the_certificate_check_detector_sees_every_form() {
    for sample in [
        "reqwest::Client::builder().danger_accept_invalid_certs( true )",
        "builder.danger_accept_invalid_hostnames(yes)",
        "ClientConfig::builder() . dangerous ()\n.with_custom_certificate_verifier(v)",
        "impl rustls::client::danger::ServerCertVerifier for Trusting {}",
        "rustls = { version = \"0.21\", features = [\"dangerous_configuration\"] }",
    ] {
        assert!(!certificate_checks_off(sample).is_empty(), "{sample}");
    }
    assert!(certificate_checks_off("Client::builder().use_rustls_tls()").is_empty());
}

#[test]
fn no_certificate_checks_switched_off_outside_tests() {
    let mut files = vec![root().join("Cargo.toml")];
    for dir in crate_dirs() {
        files.push(dir.join("Cargo.toml"));
        files.extend(rust_files(&dir.join("src")));
    }
    for file in files {
        let text = fs::read_to_string(&file).unwrap_or_default();
        let found = certificate_checks_off(&text);
        assert!(
            found.is_empty(),
            "{} turns certificate checks off: {found:?}",
            file.display()
        );
    }
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
    {
        let path = entry.path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}
