//! Drives the built `axp-chat` as a user would: arguments and environment in, lines on
//! stdin, lines read back from stdout and stderr. Waits are on output lines, bounded by a
//! generous deadline that only a broken build reaches.
#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead as _, BufReader, Read, Write as _};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use chat_emulator::Emulator;

pub const BIN: &str = env!("CARGO_BIN_EXE_axp-chat");
const DEADLINE: Duration = Duration::from_secs(60);

/// The variables a user's shell might have set; removed so that tests see only their own.
const VARS: [&str; 19] = [
    "AXP_HOST",
    "AXP_ACCOUNT_ID",
    "AXP_CLIENT_ID",
    "AXP_CLIENT_SECRET",
    "AXP_APPKEY",
    "AXP_INTEGRATION_ID",
    "AXP_CREDENTIALS_FILE",
    "AXP_CA_CERT_FILE",
    "AXP_ALLOW_PLAIN_HTTP",
    "AXP_CUSTOMER_ID",
    "AXP_CUSTOMER_NAME",
    "AXP_BACKEND_URL",
    "AXP_CHAT_TOKEN",
    "AXP_API_BASE_URL",
    "AXP_JWT_TTL_MINUTES",
    "AXP_CHAT_STATE_DIR",
    "XDG_STATE_HOME",
    "CHAT_EMULATOR_LISTEN",
    "RUST_LOG",
];

/// `axp-chat` with a clean environment.
pub fn command(args: &[&str]) -> Command {
    let mut command = Command::new(BIN);
    command.args(args);
    for var in VARS {
        command.env_remove(var);
    }
    // What each chat last showed is remembered here, not in the user's home (ids are
    // unique, so the tests of one run can share it).
    command.env("AXP_CHAT_STATE_DIR", state_dir());
    command
}

/// This test process's state directory for `axp-chat chat`.
pub fn state_dir() -> std::path::PathBuf {
    std::env::temp_dir().join(format!("axp-chat-tests-{}", std::process::id()))
}

/// A finished one-shot run.
pub struct Output {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Runs to the end with no input.
pub fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = command(args);
    command.envs(env.iter().copied()).stdin(Stdio::null());
    let output = command.output().expect("axp-chat runs");
    Output {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// An in-process emulator with a quick agent, and the runtime serving it.
pub struct Emu {
    pub emulator: Emulator,
    pub runtime: tokio::runtime::Runtime,
}

impl Emu {
    pub fn start() -> Self {
        Self::start_with(false)
    }

    /// Serving HTTPS with a self-signed certificate ([`Emulator::ca_cert_pem`]).
    pub fn start_tls() -> Self {
        Self::start_with(true)
    }

    fn start_with(tls: bool) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let emulator = runtime
            .block_on(
                Emulator::builder()
                    .tls(tls)
                    .hold_time(Duration::from_millis(500))
                    .agent_delay(Duration::from_millis(20))
                    .start(),
            )
            .expect("emulator starts");
        Self { emulator, runtime }
    }

    /// token-client's configuration for this emulator's account, as a backend holds it.
    pub fn config_of(emulator: &Emulator) -> token_client::TokenClientConfig {
        let c = emulator.credentials().clone();
        token_client::TokenClientConfig::new(
            emulator.base_url(),
            c.account_id,
            c.client_id,
            c.client_secret,
            c.appkey,
            c.integration_id,
        )
    }

    /// The account as flags.
    pub fn flags(&self) -> Vec<String> {
        let c = self.emulator.credentials();
        [
            ("--host", self.emulator.base_url()),
            ("--account-id", c.account_id.clone()),
            ("--client-id", c.client_id.clone()),
            ("--client-secret", c.client_secret.clone()),
            ("--appkey", c.appkey.clone()),
            ("--integration-id", c.integration_id.clone()),
        ]
        .into_iter()
        // `--flag=value`: a random secret may start with '-'.
        .map(|(flag, value)| format!("{flag}={value}"))
        .collect()
    }

    /// The account as environment variables.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        let c = self.emulator.credentials();
        vec![
            ("AXP_API_BASE_URL", self.emulator.base_url()),
            ("AXP_ACCOUNT_ID", c.account_id.clone()),
            ("AXP_CLIENT_ID", c.client_id.clone()),
            ("AXP_CLIENT_SECRET", c.client_secret.clone()),
            ("AXP_APPKEY", c.appkey.clone()),
            ("AXP_INTEGRATION_ID", c.integration_id.clone()),
        ]
    }

    /// The secrets no output may contain.
    pub fn secrets(&self) -> Vec<String> {
        let c = self.emulator.credentials();
        vec![
            c.client_secret.clone(),
            c.appkey.clone(),
            self.emulator.control_key().to_owned(),
        ]
    }
}

/// A running `axp-chat` with piped stdin, stdout and stderr.
pub struct Session {
    child: Child,
    stdin: Option<ChildStdin>,
    out: Receiver<String>,
    err: Receiver<String>,
    pub stdout: Vec<String>,
    pub stderr: Vec<String>,
}

fn lines(stream: impl Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

impl Session {
    pub fn spawn(args: &[String], env: &[(&str, String)]) -> Self {
        let mut command = command(&[]);
        command
            .args(args)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("axp-chat starts");
        let out = lines(child.stdout.take().expect("stdout"));
        let err = lines(child.stderr.take().expect("stderr"));
        Self {
            stdin: child.stdin.take(),
            child,
            out,
            err,
            stdout: Vec::new(),
            stderr: Vec::new(),
        }
    }

    /// Types a line.
    pub fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{line}").expect("axp-chat reads stdin");
        stdin.flush().expect("flush");
    }

    /// Waits for a stdout line matching `want`, and returns it.
    pub fn expect_out(&mut self, want: impl Fn(&str) -> bool) -> String {
        self.expect(true, want)
    }

    /// Waits for a stderr line matching `want`, and returns it.
    pub fn expect_err(&mut self, want: impl Fn(&str) -> bool) -> String {
        self.expect(false, want)
    }

    fn expect(&mut self, stdout: bool, want: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let left = DEADLINE.saturating_sub(start.elapsed());
            let (rx, seen) = if stdout {
                (&self.out, &mut self.stdout)
            } else {
                (&self.err, &mut self.stderr)
            };
            match rx.recv_timeout(left) {
                Ok(line) => {
                    seen.push(line.clone());
                    if want(&line) {
                        return line;
                    }
                }
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {
                    self.drain();
                    panic!(
                        "no such line on {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
                        if stdout { "stdout" } else { "stderr" },
                        self.stdout.join("\n"),
                        self.stderr.join("\n")
                    );
                }
            }
        }
    }

    fn drain(&mut self) {
        while let Ok(line) = self.out.try_recv() {
            self.stdout.push(line);
        }
        while let Ok(line) = self.err.try_recv() {
            self.stderr.push(line);
        }
    }

    /// Sends SIGINT (Ctrl-C) to this child, by its id.
    pub fn interrupt(&self) {
        let status = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
    }

    /// Closes stdin (end of input), reads everything left and waits for the exit.
    pub fn finish(mut self) -> (ExitStatus, Vec<String>, Vec<String>) {
        drop(self.stdin.take());
        self.finish_keeping_stdin()
    }

    /// Reads everything left and waits for the exit, with stdin still open (so that only
    /// something else, such as Ctrl-C, can end the process).
    pub fn finish_keeping_stdin(mut self) -> (ExitStatus, Vec<String>, Vec<String>) {
        let start = Instant::now();
        for stdout in [true, false] {
            loop {
                let rx = if stdout { &self.out } else { &self.err };
                match rx.recv_timeout(DEADLINE.saturating_sub(start.elapsed())) {
                    Ok(line) if stdout => self.stdout.push(line),
                    Ok(line) => self.stderr.push(line),
                    Err(RecvTimeoutError::Disconnected) => break,
                    Err(RecvTimeoutError::Timeout) => {
                        panic!("axp-chat did not exit:\n{}", self.stderr.join("\n"));
                    }
                }
            }
        }
        let status = self.child.wait().expect("exit status");
        (
            status,
            std::mem::take(&mut self.stdout),
            std::mem::take(&mut self.stderr),
        )
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // Only after a failed assertion: finish() has already reaped the child otherwise.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A loopback port with nothing listening on it.
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    port
}
