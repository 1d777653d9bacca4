//! `axp-chat chat` and `axp-chat demo` driven through stdin and stdout, as a person (or a
//! script) would, against the emulator.

mod support;

use std::sync::Arc;

use chat_emulator::Route;
use support::{Emu, Session};

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

fn assert_no_secrets(emu: &Emu, lines: &[String]) {
    for secret in emu.secrets() {
        assert!(
            !lines.iter().any(|l| l.contains(&secret)),
            "a secret was printed:\n{}",
            lines.join("\n")
        );
    }
    assert!(
        !lines.iter().any(|l| l.contains("jwt.")),
        "a token was printed"
    );
}

#[test]
fn a_whole_conversation_with_history_leave_and_quit() {
    let emu = Emu::start();
    let mut chat = Session::spawn(
        &args(&["chat", "--customer-id", "alice", "--name", "Alice"]),
        &emu.env(),
    );
    let started =
        chat.expect_out(|l| l.starts_with("* chat ") && l.ends_with("waiting for an agent"));
    let id = started.split(' ').nth(2).expect("id").to_owned();
    chat.expect_err(|l| l.starts_with("connecting to http://127.0.0.1:"));
    chat.expect_err(|l| l == "[connected]");
    chat.expect_out(|l| l.contains("(agent) joined"));
    chat.expect_out(|l| l.contains("How can I help you today?"));

    chat.send("My order has not arrived.");
    chat.expect_out(|l| l == "you: My order has not arrived.");
    chat.expect_out(|l| l.contains("I received your message: \"My order has not arrived.\""));

    chat.send("/participants");
    chat.expect_out(|l| l.starts_with("* in this chat: you and ") && l.ends_with("(agent)"));

    chat.send("/history");
    chat.expect_out(|l| l == "--- history ---");
    let mut history = Vec::new();
    loop {
        let line = chat.expect_out(|_| true);
        if line == "--- end of history ---" {
            break;
        }
        history.push(line);
    }
    assert_eq!(history.len(), 3, "{history:?}");
    assert!(
        history[0].starts_with("#1 ") && history[0].contains("How can I help"),
        "{history:?}"
    );
    assert_eq!(history[1], "#2 you: My order has not arrived.");
    assert!(
        history[2].starts_with("#3 ") && history[2].contains("I received"),
        "{history:?}"
    );

    // A line starting with `/` is sent by doubling it.
    chat.send("//etc/hosts is where it says so");
    chat.expect_out(|l| l == "you: /etc/hosts is where it says so");

    // A refused token is replaced: minted again with the client credentials.
    emu.emulator.control().revoke_chat_tokens();
    chat.expect_err(|l| l == "[the token was refused; fetching a new one]");
    chat.expect_err(|l| l == "[connected]");

    chat.send("/leave");
    chat.expect_out(|l| l == "* the chat has ended");
    // Over on the server too.
    let over = emu.emulator.control().engagements();
    let ended = over
        .iter()
        .find(|e| e.engagement_id.as_str() == id)
        .expect("known");
    assert_eq!(ended.status, chat_tokio::EngagementStatus::Terminated);
    chat.send("hello?");
    chat.expect_err(|l| l == "no chat: /new starts one");
    chat.send("/frobnicate");
    chat.expect_err(|l| l == "unknown command /frobnicate; /help lists them (//text sends /text)");
    chat.send("/quit");
    let (status, stdout, stderr) = chat.finish();
    assert!(status.success(), "{}", stderr.join("\n"));
    assert_no_secrets(&emu, &stdout);
    assert_no_secrets(&emu, &stderr);
}

#[test]
fn quit_leaves_the_chat_open_and_the_next_run_joins_it() {
    let emu = Emu::start();
    let customer = args(&["chat", "--customer-id", "bob"]);
    let mut first = Session::spawn(&customer, &emu.env());
    let started = first.expect_out(|l| l.starts_with("* chat "));
    let id = started.split(' ').nth(2).expect("id").to_owned();
    first.expect_out(|l| l.contains("How can I help"));
    first.send("first visit");
    first.expect_out(|l| l == "you: first visit");
    // End of input is /quit: the session ends, the chat stays.
    let (status, _, _) = first.finish();
    assert!(status.success());

    let mut second = Session::spawn(&customer, &emu.env());
    second.expect_out(|l| *l == format!("* joined chat {id}"));
    second.expect_out(|l| l.starts_with("* in this chat: ") && l.contains("(agent)"));
    second.send("/history");
    second.expect_out(|l| l == "#2 you: first visit");
    second.send("back again");
    second.expect_out(|l| l == "you: back again");
    second.expect_out(|l| l.contains("I received your message: \"back again\""));
    second.send("/leave");
    second.expect_out(|l| l == "* the chat has ended");
    second.send("/new");
    let restarted = second.expect_out(|l| l.starts_with("* chat "));
    assert!(!restarted.contains(&id));
    second.expect_out(|l| l.contains("How can I help"));
    second.send("/quit");
    assert!(second.finish().0.success());

    // --join of a chat that is not open is a usage error.
    let mut join = customer.clone();
    join.extend(args(&["--join", &id]));
    let mut third = Session::spawn(&join, &emu.env());
    third.expect_err(|l| l.contains("is not an open chat of this customer"));
    assert_eq!(third.finish().0.code(), Some(2));
}

#[test]
fn rejoining_shows_what_came_while_away_once_and_oldest_first() {
    let emu = Emu::start();
    let customer = args(&["chat", "--customer-id", "carol"]);
    let mut first = Session::spawn(&customer, &emu.env());
    let started = first.expect_out(|l| l.starts_with("* chat "));
    let id = started.split(' ').nth(2).expect("id").to_owned();
    first.expect_out(|l| l.contains("How can I help"));
    first.send("where is my parcel?");
    first.expect_out(|l| l.contains("I received your message"));
    assert!(first.finish().0.success());

    // While nobody watches, the agent writes twice.
    let engagement = chat_tokio::EngagementId::new(id.clone());
    let control = emu.emulator.control();
    for text in ["It left the depot.", "It arrives tomorrow."] {
        control
            .post_message(&engagement, chat_tokio::ParticipantType::Agent, text)
            .expect("posted");
    }

    let mut second = Session::spawn(&customer, &emu.env());
    second.expect_out(|l| *l == format!("* joined chat {id}"));
    second.expect_out(|l| l == "--- while you were away ---");
    let first_missed = second.expect_out(|_| true);
    assert!(
        first_missed.ends_with(": It left the depot."),
        "{first_missed}"
    );
    let second_missed = second.expect_out(|_| true);
    assert!(
        second_missed.ends_with(": It arrives tomorrow."),
        "{second_missed}"
    );
    second.expect_out(|l| l == "--- now ---");
    second.send("thanks");
    second.expect_out(|l| l == "you: thanks");
    second.expect_out(|l| l.contains("I received your message: \"thanks\""));
    let (status, stdout, stderr) = second.finish();
    assert!(status.success(), "{}", stderr.join("\n"));
    // What the first run showed is not shown again, and nothing twice.
    assert!(
        !stdout.iter().any(|l| l.contains("where is my parcel?")),
        "{stdout:?}"
    );
    for text in ["It left the depot.", "It arrives tomorrow.", "you: thanks"] {
        assert_eq!(
            stdout.iter().filter(|l| l.ends_with(text)).count(),
            1,
            "{stdout:?}"
        );
    }
}

#[test]
fn a_guest_chat_prints_the_guest_id_and_can_be_joined_again() {
    let emu = Emu::start();
    let mut first = Session::spawn(&args(&["chat", "--guest", "--name", "Visitor"]), &emu.env());
    let line = first.expect_err(|l| l.starts_with("guest id guest-"));
    let guest = line
        .strip_prefix("guest id ")
        .and_then(|rest| rest.split(':').next())
        .expect("an id")
        .to_owned();
    assert!(line.contains(&format!("--guest-id {guest}")), "{line}");
    let started = first.expect_out(|l| l.starts_with("* chat "));
    let id = started.split(' ').nth(2).expect("id").to_owned();
    first.expect_out(|l| l.contains("How can I help"));
    assert!(first.finish().0.success());

    let mut again = Session::spawn(&args(&["chat", "--guest-id", &guest]), &emu.env());
    again.expect_out(|l| *l == format!("* joined chat {id}"));
    again.send("/quit");
    assert!(again.finish().0.success());
}

#[test]
fn tokens_come_from_the_backend_and_connection_state_is_shown() {
    let emu = Emu::start();
    // The reference backend, axp-token-server's router, in process.
    let backend = emu.runtime.block_on(async {
        let client =
            token_client::TokenClient::new(Emu::config_of(&emu.emulator)).expect("token client");
        let app = token_client::server::router(
            client,
            Arc::new(token_client::server::TrustClientClaims),
            &[],
        )
        .expect("router");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        url
    });
    // Only the host and the backend: the appkey and the integration come from the backend.
    let mut chat = Session::spawn(
        &args(&[
            "chat",
            "--host",
            &emu.emulator.base_url(),
            "--backend",
            &backend,
            "--customer-id",
            "carol",
        ]),
        &[],
    );
    chat.expect_out(|l| l.contains("How can I help"));
    chat.expect_err(|l| l == "[connected]");

    // The event stream fails (a poll and its 3 probes): shown, then recovered by itself.
    emu.emulator.control().fail_next(Route::Events, 500, 4);
    chat.expect_err(|l| l.starts_with("[connection lost (SERVER_ERROR); retrying in"));
    chat.expect_err(|l| l == "[connected]");
    chat.send("still there?");
    chat.expect_out(|l| l.contains("I received your message: \"still there?\""));

    // A refused token on the stream is replaced through the backend.
    emu.emulator.control().revoke_chat_tokens();
    chat.expect_err(|l| l == "[the token was refused; fetching a new one]");
    chat.expect_err(|l| l == "[connected]");
    chat.send("after the refresh");
    chat.expect_out(|l| l.contains("I received your message: \"after the refresh\""));
    let (status, stdout, stderr) = chat.finish();
    assert!(status.success(), "{}", stderr.join("\n"));
    assert_no_secrets(&emu, &stdout);
    assert_no_secrets(&emu, &stderr);
}

#[test]
fn chats_over_a_websocket_too() {
    let emu = Emu::start();
    let mut chat = Session::spawn(
        &args(&["chat", "--guest", "--transport", "websocket"]),
        &emu.env(),
    );
    chat.expect_out(|l| l.contains("How can I help"));
    chat.send("over a socket");
    chat.expect_out(|l| l.contains("I received your message: \"over a socket\""));
    assert!(emu.emulator.control().stats().ws_connections >= 1);
    chat.send("/quit");
    assert!(chat.finish().0.success());
}

#[test]
fn ca_cert_is_trusted_by_every_transport() {
    let emu = Emu::start_tls();
    assert!(emu.emulator.base_url().starts_with("https://"));
    let dir = std::env::temp_dir().join(format!("axp-chat-ca-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let cert = dir.join("ca.pem");
    std::fs::write(&cert, emu.emulator.ca_cert_pem().expect("a certificate")).expect("write");
    let cert = cert.to_str().expect("utf-8 path").to_owned();
    for transport in ["long-poll", "websocket", "auto"] {
        let sockets = emu.emulator.control().stats().ws_connections;
        let mut chat = Session::spawn(
            &args(&[
                "chat",
                "--guest",
                "--transport",
                transport,
                "--ca-cert",
                &cert,
            ]),
            &emu.env(),
        );
        chat.expect_out(|l| l.contains("How can I help"));
        chat.send("over TLS");
        chat.expect_out(|l| l.contains("I received your message: \"over TLS\""));
        chat.send("/quit");
        assert!(chat.finish().0.success(), "{transport}");
        let opened = emu.emulator.control().stats().ws_connections - sockets;
        assert_eq!(
            opened >= 1,
            transport != "long-poll",
            "{transport}: {opened}"
        );
    }
    // The control: without the certificate, the same host is refused (unreachable).
    let out = support::run(
        &["chat", "--guest", "--transport", "websocket"],
        &emu.env()
            .iter()
            .map(|(k, v)| (*k, v.as_str()))
            .collect::<Vec<_>>(),
    );
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(out.code, Some(4), "{}", out.stderr);
    assert!(out.stderr.contains("certificate"), "{}", out.stderr);
}

#[test]
fn retry_is_refused_while_connected() {
    let emu = Emu::start();
    let mut chat = Session::spawn(&args(&["chat", "--guest"]), &emu.env());
    chat.expect_out(|l| l.contains("How can I help"));
    chat.send("/retry");
    chat.expect_err(|l| l.starts_with("cannot retry: ACS-318"));
    chat.send("/quit");
    assert!(chat.finish().0.success());
}

#[test]
fn ctrl_c_closes_the_session_and_keeps_the_chat() {
    let emu = Emu::start();
    let mut chat = Session::spawn(&args(&["chat", "--customer-id", "frank"]), &emu.env());
    chat.expect_out(|l| l.contains("How can I help"));
    assert_eq!(emu.emulator.control().stats().sessions, 1);
    chat.interrupt();
    let (status, _, stderr) = chat.finish_keeping_stdin();
    assert!(status.success(), "{}", stderr.join("\n"));
    // The session was deleted before the exit; the chat is still there to join.
    let stats = emu.emulator.control().stats();
    assert_eq!(stats.sessions, 0);
    assert_eq!(stats.ongoing_engagements, 1);
}

#[test]
fn demo_runs_everything_from_a_script() {
    let mut demo = Session::spawn(
        &args(&["demo", "--agent-delay-ms", "20", "--name", "Eve"]),
        &[],
    );
    demo.expect_err(|l| l.starts_with("emulator running at http://127.0.0.1:"));
    demo.expect_out(|l| l.starts_with("* chat "));
    demo.expect_out(|l| l.contains("How can I help"));
    demo.send("hello from a script");
    demo.expect_out(|l| l == "you: hello from a script");
    demo.expect_out(|l| l.contains("I received your message: \"hello from a script\""));
    demo.send("/history");
    demo.expect_out(|l| l == "#2 you: hello from a script");
    demo.send("/leave");
    demo.expect_out(|l| l == "* the chat has ended");
    demo.send("/quit");
    let (status, _, stderr) = demo.finish();
    assert!(status.success(), "{}", stderr.join("\n"));
}

/// docs/cli.md's `printf 'Where is my order?\n/history\n/leave\n/quit\n' | axp-chat demo`,
/// all lines written before anything is read: a script takes turns with the agent, so its
/// transcript is the one the docs show.
#[test]
fn the_docs_scripted_demo_shows_what_it_promises() {
    let mut demo = Session::spawn(&args(&["demo", "--agent-delay-ms", "20"]), &[]);
    for line in ["Where is my order?", "/history", "/leave", "/quit"] {
        demo.send(line);
    }
    let (status, stdout, stderr) = demo.finish();
    assert!(status.success(), "{}", stderr.join("\n"));
    let greeting = "Alex (agent): Hello, my name is Alex. How can I help you today?";
    let answer = "Alex (agent): Thanks, I received your message: \"Where is my order?\"";
    let expected = [
        "* you joined".to_owned(),
        "* Alex (agent) joined".to_owned(),
        greeting.to_owned(),
        "you: Where is my order?".to_owned(),
        answer.to_owned(),
        "--- history ---".to_owned(),
        format!("#1 {greeting}"),
        "#2 you: Where is my order?".to_owned(),
        format!("#3 {answer}"),
        "--- end of history ---".to_owned(),
        "* you left".to_owned(),
        "* the chat has ended".to_owned(),
    ];
    assert!(
        stdout[0].starts_with("* chat ") && stdout[0].ends_with(" started, waiting for an agent"),
        "{stdout:?}"
    );
    assert_eq!(stdout[1..], expected, "{stdout:#?}");
}
