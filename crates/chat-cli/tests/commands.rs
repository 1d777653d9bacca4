//! The one-shot commands (`--help`, bad flags, `emulator`, `token`, `provision`) driven as a
//! user would, against the emulator.

mod support;

use std::io::BufRead as _;
use std::process::Stdio;

use support::{Emu, closed_port, command, run};

#[test]
fn every_command_has_help() {
    for args in [
        &["--help"][..],
        &["emulator", "--help"],
        &["provision", "--help"],
        &["provision", "create", "--help"],
        &["provision", "list", "--help"],
        &["provision", "delete", "--help"],
        &["token", "--help"],
        &["chat", "--help"],
        &["demo", "--help"],
    ] {
        let out = run(args, &[]);
        assert_eq!(out.code, Some(0), "{args:?}: {}", out.stderr);
        assert!(
            out.stdout.contains("Usage: axp-chat"),
            "{args:?}: {}",
            out.stdout
        );
    }
    let top = run(&["--help"], &[]).stdout;
    for name in [
        "emulator",
        "provision",
        "token",
        "chat",
        "demo",
        "Exit codes",
    ] {
        assert!(top.contains(name), "{name} missing from --help:\n{top}");
    }
    // The shared emulator options, the same as `chat-emulator`'s.
    let emulator = run(&["emulator", "--help"], &[]).stdout;
    for flag in [
        "--listen",
        "--tls",
        "--credentials-out",
        "--agent",
        "--hold-time-ms",
    ] {
        assert!(emulator.contains(flag), "{flag} missing:\n{emulator}");
    }
}

#[test]
fn secrets_starting_with_a_hyphen_are_values() {
    let emu = Emu::start();
    let c = emu.emulator.credentials();
    let out = run(
        &[
            "token",
            "--guest",
            "--host",
            &emu.emulator.base_url(),
            "--account-id",
            &c.account_id,
            "--client-id",
            &c.client_id,
            "--client-secret",
            "-not-the-secret",
            "--appkey",
            &c.appkey,
            "--integration-id",
            &c.integration_id,
        ],
        &[],
    );
    // Parsed as the secret (and refused by the server), not as an unknown flag.
    assert_eq!(out.code, Some(3), "{}", out.stderr);
}

#[test]
fn bad_flags_exit_2_with_a_message() {
    let out = run(&["token", "--bogus"], &[]);
    assert_eq!(out.code, Some(2));
    assert!(
        out.stderr.contains("unexpected argument '--bogus'"),
        "{}",
        out.stderr
    );

    let out = run(&["frobnicate"], &[]);
    assert_eq!(out.code, Some(2));
    assert!(
        out.stderr.contains("unrecognized subcommand"),
        "{}",
        out.stderr
    );

    let out = run(
        &["provision", "create", "--name", "x", "--settings", "[1]"],
        &[],
    );
    assert_eq!(out.code, Some(2));
    assert!(
        out.stderr.contains("must be a JSON object"),
        "{}",
        out.stderr
    );

    let out = run(&["token", "--customer-id", "a", "--guest"], &[]);
    assert_eq!(out.code, Some(2));
    assert!(out.stderr.contains("cannot be used with"), "{}", out.stderr);

    // Our own checks exit 2 too, naming the flag and the variable.
    let out = run(&["token", "--guest"], &[]);
    assert_eq!(out.code, Some(2));
    assert!(
        out.stderr.contains(
            "no AXP host: give --host, set AXP_API_BASE_URL, or name the emulator's \
             credentials with --credentials FILE"
        ),
        "{}",
        out.stderr
    );

    let emu = Emu::start();
    let mut args = vec!["token".to_owned()];
    args.extend(emu.flags());
    let flags: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run(&flags, &[]);
    assert_eq!(out.code, Some(2));
    assert!(out.stderr.contains("--customer-id ID"), "{}", out.stderr);

    let mut long = flags.clone();
    long.extend(["--customer-id", "c", "--lifetime-minutes", "90"]);
    let out = run(&long, &[]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("invalid --lifetime-minutes: must be 15 to 60 (minutes), was 90"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("..="), "{}", out.stderr);

    let out = run(&["chat", "--host", &emu.emulator.base_url()], &[]);
    assert_eq!(out.code, Some(2));
    assert!(
        out.stderr.contains("no way to get a chat token"),
        "{}",
        out.stderr
    );
}

#[test]
fn emulator_command_announces_its_credentials_and_serves_tokens_over_tls() {
    let dir = std::env::temp_dir().join(format!("axp-chat-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("emulator.json");
    let cert = dir.join("cert.pem");
    let mut child = command(&[
        "emulator",
        "--listen",
        "127.0.0.1:0",
        "--tls",
        "--cert-out",
        cert.to_str().expect("utf-8 path"),
        "--credentials-out",
        file.to_str().expect("utf-8 path"),
    ])
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::null())
    .spawn()
    .expect("axp-chat emulator starts");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("announcement");
    let announced: serde_json::Value = serde_json::from_str(&line).expect("JSON line");
    assert!(
        announced["hostURL"]
            .as_str()
            .is_some_and(|h| h.starts_with("https://127.0.0.1:"))
    );
    assert_eq!(announced["accountId"], "EMULAB");

    // The credentials file is all `token` needs, the certificate to trust included.
    let out = run(
        &[
            "token",
            "--credentials",
            file.to_str().expect("utf-8 path"),
            "--customer-id",
            "c-1",
            "--json",
        ],
        &[],
    );
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let minted: serde_json::Value = serde_json::from_str(out.stdout.trim()).expect("JSON");
    assert!(
        minted["jwtToken"]
            .as_str()
            .is_some_and(|t| t.starts_with("jwt."))
    );
    assert_eq!(minted["customerId"], "c-1");
    // The default lifetime is 15 minutes.
    let expires_in = minted["expiresIn"].as_u64().expect("expiresIn");
    assert!((890..=900).contains(&expires_in), "{expires_in}");
    assert!(
        minted["expiresAt"]
            .as_str()
            .is_some_and(|t| t.len() == 20 && t.ends_with('Z'))
    );
}

#[test]
fn token_mints_for_verified_customers_and_guests() {
    let emu = Emu::start();
    let env = emu.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();

    let out = run(
        &[
            "token",
            "--customer-id",
            "alice",
            "--name",
            "Alice",
            "--email",
            "alice@example.com",
            "--phone",
            "+15550100",
            "--identifier",
            "loyalty=gold",
            "--lifetime-minutes",
            "30",
            "--json",
        ],
        &env,
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let minted: serde_json::Value = serde_json::from_str(out.stdout.trim()).expect("JSON");
    let expires_in = minted["expiresIn"].as_u64().expect("expiresIn");
    assert!((1790..=1800).contains(&expires_in), "{expires_in}");

    let out = run(&["token", "--guest"], &env);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let token = out.stdout.trim();
    assert!(
        token.starts_with("jwt.") && !token.contains('\n'),
        "{token}"
    );
    // The guest's id, to mint for the same guest again (--json has it as customerId).
    assert!(
        out.stderr.starts_with("guest id guest-") && out.stderr.lines().count() == 1,
        "{}",
        out.stderr
    );

    let out = run(&["token", "--guest", "--json"], &env);
    let minted: serde_json::Value = serde_json::from_str(out.stdout.trim()).expect("JSON");
    assert!(
        minted["customerId"]
            .as_str()
            .is_some_and(|id| id.starts_with("guest-"))
    );
}

#[test]
fn demo_refuses_options_that_mean_nothing_there() {
    for args in [
        &["demo", "--join", "123e4567-e89b-12d3-a456-426614174000"][..],
        &["demo", "--new"],
        &["demo", "--host", "https://na.api.avayacloud.com"],
        &["demo", "--token", "jwt.x.y"],
        &["demo", "--customer-id", "alice"],
    ] {
        let out = run(args, &[]);
        assert_eq!(out.code, Some(2), "{args:?}: {}", out.stderr);
        assert!(
            out.stderr.contains("unexpected argument"),
            "{args:?}: {}",
            out.stderr
        );
    }
}

#[test]
fn logs_to_a_redirected_stream_have_no_colour_codes() {
    let emu = Emu::start();
    let env = emu.env();
    let mut env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    env.push(("RUST_LOG", "debug"));
    let out = run(&["token", "--guest"], &env);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(
        out.stderr.contains("token client configured"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains('\u{1b}'), "{:?}", out.stderr);
}

#[test]
fn rejected_credentials_exit_3_without_showing_them() {
    let emu = Emu::start();
    let mut env = emu.env();
    for (name, value) in &mut env {
        if *name == "AXP_CLIENT_SECRET" {
            *value = "wrong-secret-value".to_owned();
        }
    }
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    for args in [
        &["token", "--guest"][..],
        &["provision", "list"],
        &["chat", "--guest"],
    ] {
        let out = run(args, &env);
        assert_eq!(out.code, Some(3), "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains("401"), "{args:?}: {}", out.stderr);
        for secret in ["wrong-secret-value"]
            .iter()
            .map(ToString::to_string)
            .chain(emu.secrets())
        {
            assert!(!out.stderr.contains(&secret) && !out.stdout.contains(&secret));
        }
    }

    // A chat token the server refuses (revoked), and one that is not a token at all.
    let c = emu.emulator.credentials();
    let control = emu.emulator.control();
    let revoked = control.mint_token("alice", true, std::time::Duration::from_secs(900));
    control.revoke_chat_tokens();
    let host = emu.emulator.base_url();
    let chat = |token: &str| {
        run(
            &[
                "chat",
                "--host",
                &host,
                "--integration-id",
                &c.integration_id,
                "--appkey",
                &c.appkey,
                "--token",
                token,
            ],
            &[],
        )
    };
    let out = chat(&revoked);
    assert_eq!(out.code, Some(3), "{}", out.stderr);
    // The server's reason is kept.
    assert!(
        out.stderr
            .contains("ACS-305 : JWT token is invalid (Token revoked)."),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains(&c.appkey) && !out.stderr.contains(&revoked));
    let out = chat("not-a-token");
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(
        out.stderr.contains("JWT Token should have valid format"),
        "{}",
        out.stderr
    );
}

#[test]
fn an_unreachable_host_exits_4() {
    // A well-formed token, minted by an emulator that is not the host.
    let token = Emu::start().emulator.control().mint_token(
        "alice",
        true,
        std::time::Duration::from_secs(900),
    );
    let host = format!("http://127.0.0.1:{}", closed_port());
    let env = [
        // The old name of AXP_API_BASE_URL, still read.
        ("AXP_HOST", host.as_str()),
        ("AXP_ACCOUNT_ID", "EMULAB"),
        ("AXP_CLIENT_ID", "id"),
        ("AXP_CLIENT_SECRET", "secret"),
        ("AXP_APPKEY", "appkey"),
        ("AXP_INTEGRATION_ID", "123e4567-e89b-12d3-a456-426614174000"),
    ];
    for args in [
        &["token", "--guest"][..],
        &["provision", "list"],
        &["chat", "--guest"],
        &["chat", "--token", &token],
    ] {
        let out = run(args, &env);
        assert_eq!(out.code, Some(4), "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains("axp-chat: error:"), "{}", out.stderr);
    }
    let out = run(&["chat", "--backend", &host, "--guest"], &env);
    assert_eq!(out.code, Some(4), "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!("backend {host}")),
        "{}",
        out.stderr
    );
}

#[test]
fn provision_creates_lists_and_deletes_integrations() {
    let emu = Emu::start();
    let env = emu.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();

    let out = run(&["provision", "create", "--name", "web shop"], &env);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let id = out.stdout.trim().to_owned();
    assert_eq!(id.len(), 36, "{id}");

    let out = run(
        &[
            "provision",
            "create",
            "--name",
            "kiosk",
            "--settings",
            r#"{"locale":"en"}"#,
            "--json",
        ],
        &env,
    );
    let kiosk: serde_json::Value = serde_json::from_str(out.stdout.trim()).expect("JSON");
    assert_eq!(kiosk["settings"]["locale"], "en");

    let list = run(&["provision", "list"], &env).stdout;
    assert!(
        list.lines()
            .any(|l| l.starts_with(&format!("{id}\tweb shop\t"))),
        "{list}"
    );
    // The integration provisioned at start, and the two new ones.
    assert_eq!(list.lines().count(), 3, "{list}");
    let json = run(&["provision", "list", "--json"], &env).stdout;
    let all: serde_json::Value = serde_json::from_str(json.trim()).expect("JSON");
    assert_eq!(all.as_array().map(Vec::len), Some(3));

    // A token for the new integration.
    let out = run(&["token", "--guest", "--integration-id", &id], &env);
    assert_eq!(out.code, Some(0), "{}", out.stderr);

    let out = run(&["provision", "delete", &id], &env);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(out.stdout.trim(), format!("deleted {id}"));
    let list = run(&["provision", "list"], &env).stdout;
    assert!(!list.contains(&id), "{list}");

    let out = run(&["provision", "delete", &id], &env);
    assert_eq!(out.code, Some(1));
    assert!(out.stderr.contains("HTTP 404"), "{}", out.stderr);

    let out = run(&["provision", "create", "--name", ""], &env);
    assert_eq!(out.code, Some(2));
    assert!(
        out.stderr.contains("name: must be a string"),
        "{}",
        out.stderr
    );
}
