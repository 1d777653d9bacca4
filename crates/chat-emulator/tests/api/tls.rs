//! HTTPS with a self-signed certificate, and the binary's start-up line.

use std::time::Duration;

use chat_emulator::{AgentMode, Emulator};
use serde_json::Value;
use tokio::io::AsyncBufReadExt;

#[tokio::test]
async fn https_with_the_generated_certificate() {
    let dir = std::env::temp_dir().join(format!("chat-emulator-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cert_path = dir.join("cert.pem");
    let emu = Emulator::builder()
        .tls(true)
        .cert_path(&cert_path)
        .agent(AgentMode::Off)
        .start()
        .await
        .unwrap();
    assert!(emu.base_url().starts_with("https://127.0.0.1:"));
    let pem = std::fs::read(&cert_path).unwrap();
    assert_eq!(emu.ca_cert_pem().unwrap().as_bytes(), pem.as_slice());
    let http = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .build()
        .unwrap();
    let c = emu.credentials();
    let r = http
        .post(format!(
            "{}/api/auth/v1/{}/protocol/openid-connect/token",
            emu.base_url(),
            c.account_id
        ))
        .header("appkey", &c.appkey)
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", &c.client_id),
            ("client_secret", &c.client_secret),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Through "localhost" too.
    let url = emu.base_url().replace("127.0.0.1", "localhost");
    let r = http
        .get(format!("{url}/emulator/v1/stats"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // A client that does not trust the certificate is refused.
    assert!(reqwest::get(format!("{}/", emu.base_url())).await.is_err());
    emu.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn binary_prints_credentials_and_writes_the_file() {
    let dir = std::env::temp_dir().join(format!("chat-emulator-bin-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let creds = dir.join("creds.json");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_chat-emulator"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--tls",
            "--agent",
            "off",
            "--hold-time-ms",
            "200",
            "--credentials-out",
        ])
        .arg(&creds)
        .arg("--cert-out")
        .arg(dir.join("ca.pem"))
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let printed: Value = serde_json::from_str(&line).unwrap();
    for key in [
        "hostURL",
        "accountId",
        "clientId",
        "clientSecret",
        "appkey",
        "integrationId",
    ] {
        assert!(
            printed[key].as_str().is_some_and(|v| !v.is_empty()),
            "{key} in {line}"
        );
    }
    assert!(printed["hostURL"].as_str().unwrap().starts_with("https://"));
    let written: Value = serde_json::from_str(&std::fs::read_to_string(&creds).unwrap()).unwrap();
    assert_eq!(written, printed);
    let pem = std::fs::read(printed["caCertFile"].as_str().unwrap()).unwrap();
    let http = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .build()
        .unwrap();
    let r = http
        .get(format!(
            "{}/emulator/v1/stats",
            printed["hostURL"].as_str().unwrap()
        ))
        .header(
            "x-emulator-control-key",
            printed["controlKey"].as_str().unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    child.kill().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
