//! `axp-chat chat --transport websocket` at `RUST_LOG=trace` (every target, the `log` crate's
//! records bridged in by the CLI's subscriber) prints no secret: not the client secret, the
//! appkey or the control key, and no chat token, through the upgrade, the pushed frames and
//! the in-band token refreshes that short-lived tokens bring.

mod support;

use std::time::Duration;

use chat_emulator::Emulator;
use support::{Emu, Session};

/// An emulator whose chat tokens live a few seconds: the CLI refreshes them while the
/// WebSocket is open, so the new ones go in-band.
fn short_lived_tokens() -> Emu {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let emulator = runtime
        .block_on(
            Emulator::builder()
                .hold_time(Duration::from_millis(500))
                .agent_delay(Duration::from_millis(20))
                .allow_short_token_ttl(true)
                .chat_token_ttl(Duration::from_secs(8))
                .start(),
        )
        .expect("emulator starts");
    Emu { emulator, runtime }
}

/// `text` and its hexadecimal form (how a frame dump shows a payload).
fn forms(text: &str) -> [String; 2] {
    let hex = text.bytes().map(|b| format!("{b:02x}")).collect();
    [text.to_owned(), hex]
}

/// Something that looks like a chat token (`jwt.` and base64url), or its hexadecimal form.
fn has_token(line: &str) -> bool {
    let hex_prefix = forms("jwt.e")[1].clone();
    line.contains(&hex_prefix)
        || line.match_indices("jwt.").any(|(at, _)| {
            line[at + 4..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
                .count()
                >= 8
        })
}

/// Panics if `line` holds a secret.
fn assert_clean(secrets: &[String], line: &str) {
    for secret in secrets {
        for form in forms(secret) {
            assert!(!line.contains(&form), "a secret was printed: {line}");
        }
    }
    assert!(!has_token(line), "a token was printed: {line}");
}

#[test]
fn the_token_detector_sees_tokens() {
    assert!(has_token("Bearer jwt.eyJhbGciOi.eyJzdWIi.sig"));
    assert!(has_token(
        r#"payload: b"{\"jwtToken\":\"jwt.eyJhbGciOiJIUzI1NiJ9.e30.x\"}""#
    ));
    assert!(has_token(&format!(
        "payload: 0x{}",
        forms("jwt.eyJhbGci")[1]
    )));
    assert!(!has_token("token_client::jwt: minted"));
    assert!(!has_token("chat_tokio::token: jwt.refresh done"));
}

#[test]
fn no_secret_in_trace_logs_over_a_websocket() {
    let emu = short_lived_tokens();
    let secrets = emu.secrets();
    let mut env = emu.env();
    env.push(("RUST_LOG", "trace".to_owned()));
    let mut chat = Session::spawn(
        &["chat", "--guest", "--transport", "websocket"].map(str::to_owned),
        &env,
    );
    let clean = |line: &str| {
        assert_clean(&secrets, line);
        true
    };
    chat.expect_out(|l| clean(l) && l.contains("How can I help"));
    chat.send("over a traced socket");
    chat.expect_out(|l| {
        clean(l) && l.contains("I received your message: \"over a traced socket\"")
    });
    // The short-lived token is refreshed while the socket is open; the next poll (after the
    // next pushed frame) sends it in-band.
    chat.expect_err(|l| clean(l) && l.contains("chat token refreshed"));
    chat.send("after a refresh");
    chat.expect_out(|l| clean(l) && l.contains("I received your message: \"after a refresh\""));
    chat.expect_err(|l| clean(l) && l.contains("WebSocket: a new token goes in-band"));
    chat.send("/quit");
    let (status, stdout, stderr) = chat.finish();
    assert!(status.success(), "{}", stderr.join("\n"));
    // Traced, and with the `log` crate's records (reqwest logs through it).
    assert!(
        stderr.iter().filter(|l| l.contains("TRACE")).count() > 20,
        "not traced:\n{}",
        stderr.join("\n")
    );
    assert!(
        stderr.iter().any(|l| l.contains("reqwest::")),
        "no record of the log crate:\n{}",
        stderr.join("\n")
    );
    assert!(emu.emulator.control().stats().ws_connections >= 1);
    for line in stdout.iter().chain(&stderr) {
        assert_clean(&secrets, line);
    }
}
