//! How `axp-chat chat` ends when its credentials do (docs/cli.md, exit codes): a fixed
//! `--token` that expires during the chat, or that the server refuses, stops it with exit 3;
//! one already expired is refused at once with exit 3 (not as a usage error); a session the
//! server invalidates ends it with exit 1. The binary runs as a subprocess against the
//! in-process emulator; every wait is on its output or its exit.

mod support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use support::{Emu, Session};

/// `chat` with a fixed token: the host, appkey and integration as flags, no client
/// credentials (so nothing could mint another token).
fn with_fixed_token(emu: &Emu, token: &str) -> Vec<String> {
    let c = emu.emulator.credentials();
    vec![
        "chat".to_owned(),
        format!("--host={}", emu.emulator.base_url()),
        format!("--appkey={}", c.appkey),
        format!("--integration-id={}", c.integration_id),
        format!("--token={token}"),
    ]
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

#[test]
fn a_fixed_token_that_expires_during_the_chat_ends_it_with_exit_code_3() {
    let emu = Emu::start();
    let token = emu
        .emulator
        .control()
        .mint_token("dora", true, Duration::from_secs(4));
    let mut chat = Session::spawn(&with_fixed_token(&emu, &token), &[]);
    chat.expect_err(|l| l.starts_with("[a fixed --token is not refreshed"));
    chat.expect_out(|l| l.contains("How can I help"));
    chat.send("before it expires");
    chat.expect_out(|l| l == "you: before it expires");
    // Stdin stays open: only the expiry can end it. Whichever sees it first, the client's
    // clock (TOKEN_EXPIRED) or the server (401 on the stream), the chat stops.
    let (status, _, stderr) = chat.finish_keeping_stdin();
    assert_eq!(status.code(), Some(3), "{}", stderr.join("\n"));
    let last = stderr.last().expect("an error line");
    assert!(
        last.starts_with("axp-chat: error: ") && last.contains("a fixed --token is not refreshed"),
        "{}",
        stderr.join("\n")
    );
    assert!(
        stderr.iter().any(
            |l| l == "[the token has expired and cannot be refreshed (--token)]"
                || l == "[the token was refused and cannot be refreshed (--token)]"
        ),
        "{}",
        stderr.join("\n")
    );
    assert!(
        !stderr.iter().any(|l| l.contains(&token)),
        "the token was printed"
    );
}

#[test]
fn a_fixed_token_the_server_refuses_ends_the_chat_with_exit_code_3() {
    let emu = Emu::start();
    let token = emu
        .emulator
        .control()
        .mint_token("eve", true, Duration::from_secs(900));
    let mut chat = Session::spawn(&with_fixed_token(&emu, &token), &[]);
    chat.expect_out(|l| l.contains("How can I help"));
    chat.expect_err(|l| l == "[connected]");
    emu.emulator.control().revoke_chat_tokens();
    chat.expect_err(|l| l == "[the token was refused and cannot be refreshed (--token)]");
    let (status, _, stderr) = chat.finish_keeping_stdin();
    assert_eq!(status.code(), Some(3), "{}", stderr.join("\n"));
    assert_eq!(
        stderr.last().map(String::as_str),
        Some(
            "axp-chat: error: the server refused the chat token (a fixed --token is not refreshed)"
        )
    );
}

#[test]
fn an_expired_token_is_refused_at_once_with_exit_code_3() {
    let emu = Emu::start();
    let c = emu.emulator.credentials().clone();
    let token = emu.emulator.control().forge_token(
        &c.account_id,
        &c.integration_id,
        "fay",
        true,
        unix_now() - 60,
    );
    let args = with_fixed_token(&emu, &token);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = support::run(&args, &[]);
    assert_eq!(out.code, Some(3), "{}", out.stderr);
    assert!(
        out.stderr.contains("axp-chat: error: cannot connect to")
            && out.stderr.contains("JWT Token should be live"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains(&token) && !out.stdout.contains(&token));
    assert_eq!(
        emu.emulator.control().stats().sessions,
        0,
        "nothing was sent"
    );
}

#[test]
fn a_session_the_server_invalidates_ends_the_chat_with_exit_code_1() {
    let emu = Emu::start();
    let mut chat = Session::spawn(
        &["chat".to_owned(), "--customer-id=gus".to_owned()],
        &emu.env(),
    );
    let connected = chat.expect_err(|l| l.starts_with("connected: session "));
    let session = connected
        .strip_prefix("connected: session ")
        .expect("id")
        .to_owned();
    chat.expect_out(|l| l.contains("How can I help"));
    assert!(
        emu.emulator
            .control()
            .invalidate_session(&chat_tokio::SessionId::new(session))
    );
    chat.expect_err(|l| l == "[the server ended the session]");
    let (status, _, stderr) = chat.finish_keeping_stdin();
    assert_eq!(status.code(), Some(1), "{}", stderr.join("\n"));
    assert_eq!(
        stderr.last().map(String::as_str),
        Some("axp-chat: error: the session was ended by the server")
    );
}

#[test]
fn a_token_the_server_says_has_expired_exits_3_with_its_reason() {
    let emu = Emu::start();
    let token = emu
        .emulator
        .control()
        .mint_token("hal", true, Duration::from_secs(900));
    // Expired by the server's clock, not yet by ours: only the server's word tells why.
    emu.emulator.control().expire_tokens();
    let args = with_fixed_token(&emu, &token);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = support::run(&args, &[]);
    assert_eq!(out.code, Some(3), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("ACS-305 : JWT token is invalid (Token expired)."),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains(&token) && !out.stdout.contains(&token));
}

#[test]
fn an_unknown_account_exits_3_and_names_the_flag() {
    let emu = Emu::start();
    let mut env = emu.env();
    for (name, value) in &mut env {
        if *name == "AXP_ACCOUNT_ID" {
            *value = "NOSUCHACCOUNT".to_owned();
        }
    }
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    for args in [&["token", "--guest"][..], &["chat", "--guest"]] {
        let out = support::run(args, &env);
        assert_eq!(out.code, Some(3), "{args:?}: {}", out.stderr);
        assert!(
            out.stderr.contains("unknown account (check --account-id"),
            "{args:?}: {}",
            out.stderr
        );
        // One message, one endpoint prefix.
        assert_eq!(out.stderr.matches("OAuth token endpoint").count(), 1);
    }
}

#[test]
fn a_bad_integration_id_exits_2_before_anything_is_sent() {
    let emu = Emu::start();
    let mut env = emu.env();
    for (name, value) in &mut env {
        if *name == "AXP_INTEGRATION_ID" {
            *value = "not-an-integration".to_owned();
        }
    }
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    for args in [&["token", "--guest"][..], &["chat", "--guest"]] {
        let out = support::run(args, &env);
        assert_eq!(out.code, Some(2), "{args:?}: {}", out.stderr);
        assert!(
            out.stderr.contains(
                "the integration id \"not-an-integration\" (--integration-id) is not a UUID"
            ),
            "{args:?}: {}",
            out.stderr
        );
    }
    let stats = emu.emulator.control().stats();
    assert_eq!(
        (stats.oauth_calls, stats.token_calls),
        (0, 0),
        "nothing sent"
    );
}

#[test]
fn an_untrusted_certificate_names_ca_cert_exits_4_and_is_tried_once() {
    let emu = Emu::start_tls();
    for args in [&["token", "--guest"][..], &["chat", "--guest"]] {
        let before = emu.emulator.control().stats().oauth_calls;
        let env = emu.env();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let out = support::run(args, &env);
        assert_eq!(out.code, Some(4), "{args:?}: {}", out.stderr);
        assert!(
            out.stderr.contains("certificate is not trusted")
                && out.stderr.contains("--ca-cert FILE"),
            "{args:?}: {}",
            out.stderr
        );
        assert!(!out.stderr.contains("gave up"), "{}", out.stderr);
        // The handshake fails before any request reaches the emulator.
        assert_eq!(emu.emulator.control().stats().oauth_calls, before);
    }
    // A backend over TLS that is not trusted: the same words (the emulator stands in for it).
    let env = emu.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let backend = emu.emulator.base_url();
    let out = support::run(&["chat", "--guest", "--backend", &backend], &env);
    assert_eq!(out.code, Some(4), "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!("backend {backend}"))
            && out.stderr.contains("certificate is not trusted")
            && out.stderr.contains("--ca-cert FILE"),
        "{}",
        out.stderr
    );
    // A chat with a fixed token fails on the chat API's handshake the same way.
    let token = emu
        .emulator
        .control()
        .mint_token("ida", true, Duration::from_secs(900));
    let args = with_fixed_token(&emu, &token);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = support::run(&args, &[]);
    assert_eq!(out.code, Some(4), "{}", out.stderr);
    assert!(
        out.stderr.contains("certificate is not trusted") && out.stderr.contains("--ca-cert FILE"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("unreachable"), "{}", out.stderr);
}
