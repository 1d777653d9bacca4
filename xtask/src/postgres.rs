//! `cargo xtask postgres [-- COMMAND...]`: a throwaway PostgreSQL server for the tests of
//! chat-store's PostgreSQL backend, from the system's server binaries (Debian's `postgresql`
//! package: `apt-get install postgresql`).
//!
//! The server's data lives in a new directory under the temporary directory, and it listens on
//! a free port of 127.0.0.1 only, with `trust` authentication and durability switched off (it
//! holds test data for minutes). Once it accepts connections, the task prints
//! `export AXP_TEST_POSTGRES_URL=…` and either
//!
//! - runs `COMMAND` with that variable set, then stops the server and exits with the command's
//!   status (`cargo xtask postgres -- cargo test -p chat-store --all-features`), or
//! - without a command, keeps the server running until Ctrl-C.
//!
//! Either way the server is stopped and its directory removed at the end. Run as root (as CI
//! does), the server runs as the `postgres` system user, since PostgreSQL refuses to run as
//! root. The binaries are found from `initdb` on the `PATH`, else in the newest
//! `/usr/lib/postgresql/<version>/bin`, or in `$AXP_POSTGRES_BIN` if set.

use std::fs::{self, File};
use std::io::Read;
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use std::{env, thread};

/// How long the server may take to accept connections.
const STARTUP: Duration = Duration::from_secs(60);

/// The variable chat-store's PostgreSQL tests read the server's URL from.
const URL_VARIABLE: &str = "AXP_TEST_POSTGRES_URL";

pub(crate) fn postgres(args: &[String]) -> Result<(), String> {
    let command = match args.split_first() {
        None => None,
        Some((dash, command)) if dash == "--" && !command.is_empty() => Some(command),
        _ => return Err("usage: cargo xtask postgres [-- COMMAND...]".to_owned()),
    };
    // Ctrl-C reaches the whole foreground process group: the command ends, and this task
    // lives on to stop the server (which runs in a process group of its own) and clean up.
    let (interrupted, interrupt) = mpsc::channel();
    ctrlc::set_handler(move || {
        let _ = interrupted.send(());
    })
    .map_err(|e| format!("xtask postgres: cannot handle Ctrl-C ({e})"))?;

    let server = Server::start()?;
    eprintln!(
        "PostgreSQL ({}) on 127.0.0.1:{}, data in {}",
        server.bin.display(),
        server.port,
        server.dir.display()
    );
    #[allow(clippy::print_stdout)] // the line to paste into a shell: the task's one output
    {
        println!("export {URL_VARIABLE}={}", server.url());
    }
    match command {
        Some(command) => {
            let line = command.join(" ");
            eprintln!("$ {line}");
            let status = Command::new(&command[0])
                .args(&command[1..])
                .env(URL_VARIABLE, server.url())
                .status()
                .map_err(|e| format!("{line} ({e})"))?;
            if status.success() { Ok(()) } else { Err(line) }
        }
        None => {
            eprintln!("Ctrl-C stops the server.");
            server.wait(&interrupt)
        }
    }
    // `server` is dropped here: the server stops and its directory goes.
}

/// A running server, stopped and removed when dropped.
struct Server {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    user: Option<User>,
    process: Child,
}

/// The system user the server runs as when this task runs as root.
#[derive(Clone, Copy)]
struct User {
    uid: u32,
    gid: u32,
}

impl Server {
    fn start() -> Result<Self, String> {
        let bin = bindir()?;
        let user = server_user()?;
        let dir = env::temp_dir().join(format!("axp-postgres-{}", std::process::id()));
        let server = Self::start_in(bin, dir.clone(), user);
        if server.is_err() {
            // What a failed start left (a started server removes its own when dropped).
            let _ = fs::remove_dir_all(&dir);
        }
        server
    }

    fn start_in(bin: PathBuf, dir: PathBuf, user: Option<User>) -> Result<Self, String> {
        if dir.exists() {
            fs::remove_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        fs::create_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        if let Some(user) = user {
            std::os::unix::fs::chown(&dir, Some(user.uid), Some(user.gid))
                .map_err(|e| format!("chown {}: {e}", dir.display()))?;
        }
        let data = dir.join("data");
        let log = dir.join("server.log");
        let mut initdb = as_user(Command::new(bin.join("initdb")), user);
        initdb
            .arg("--pgdata")
            .arg(&data)
            .args(["--username=postgres", "--auth=trust", "--encoding=UTF8"])
            .args(["--locale=C", "--no-sync"]);
        run(&mut initdb, "initdb")?;

        let port = free_port()?;
        let output = File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let errors = output
            .try_clone()
            .map_err(|e| format!("{}: {e}", log.display()))?;
        let mut postgres = as_user(Command::new(bin.join("postgres")), user);
        postgres
            .arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string(), "-c", "listen_addresses=127.0.0.1"])
            .arg("-c")
            .arg(format!("unix_socket_directories={}", dir.display()))
            // Test data, thrown away in minutes: no fsync, for speed.
            .args(["-c", "fsync=off", "-c", "synchronous_commit=off"])
            .args(["-c", "full_page_writes=off"])
            .stdin(Stdio::null())
            .stdout(output)
            .stderr(errors)
            // Out of the terminal's process group: Ctrl-C is for this task, which stops the
            // server in order.
            .process_group(0);
        let process = postgres
            .spawn()
            .map_err(|e| format!("{} ({e})", bin.join("postgres").display()))?;
        let server = Self {
            bin,
            dir,
            port,
            user,
            process,
        };
        server.ready()
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Waits until the server accepts connections (`pg_isready`), or fails with its log.
    fn ready(mut self) -> Result<Self, String> {
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = self.process.try_wait() {
                return Err(format!(
                    "the PostgreSQL server exited ({status}):\n{}",
                    self.log()
                ));
            }
            let ready = Command::new(self.bin.join("pg_isready"))
                .args(["-q", "-h", "127.0.0.1", "-p", &self.port.to_string()])
                .status()
                .map_err(|e| format!("pg_isready ({e})"))?;
            if ready.success() {
                return Ok(self);
            }
            if started.elapsed() > STARTUP {
                return Err(format!(
                    "the PostgreSQL server did not accept connections within {} s:\n{}",
                    STARTUP.as_secs(),
                    self.log()
                ));
            }
            // The server is another process: nothing to await but its answer.
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// Keeps the server until Ctrl-C; fails if the server exits first.
    fn wait(mut self, interrupt: &mpsc::Receiver<()>) -> Result<(), String> {
        loop {
            match interrupt.recv_timeout(Duration::from_secs(1)) {
                Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => return Ok(()),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
            }
            if let Ok(Some(status)) = self.process.try_wait() {
                return Err(format!(
                    "the PostgreSQL server exited ({status}):\n{}",
                    self.log()
                ));
            }
        }
    }

    /// The end of the server's log.
    fn log(&self) -> String {
        let mut text = String::new();
        let _ =
            File::open(self.dir.join("server.log")).and_then(|mut f| f.read_to_string(&mut text));
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.process.try_wait() {
            // A fast shutdown: the sessions are ended, nothing is kept.
            let mut stop = as_user(Command::new(self.bin.join("pg_ctl")), self.user);
            stop.args(["stop", "--mode=fast", "--wait", "--timeout=30", "--silent"])
                .arg("--pgdata")
                .arg(self.dir.join("data"));
            if run(&mut stop, "pg_ctl stop").is_err() {
                let _ = self.process.kill();
            }
        }
        let _ = self.process.wait();
        if let Err(e) = fs::remove_dir_all(&self.dir) {
            eprintln!("xtask postgres: cannot remove {} ({e})", self.dir.display());
        }
    }
}

/// The directory of the server binaries.
fn bindir() -> Result<PathBuf, String> {
    if let Some(dir) = env::var_os("AXP_POSTGRES_BIN") {
        return Ok(PathBuf::from(dir));
    }
    // initdb on the PATH, through its symbolic link (Debian links a few binaries only).
    let on_path = env::var_os("PATH")
        .map(|path| env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .map(|dir| dir.join("initdb"))
        .find(|initdb| initdb.is_file())
        .and_then(|initdb| fs::canonicalize(initdb).ok())
        .and_then(|initdb| initdb.parent().map(Path::to_path_buf))
        .filter(|dir| dir.join("postgres").is_file());
    if let Some(dir) = on_path {
        return Ok(dir);
    }
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin).ok_or_else(|| {
        "no PostgreSQL server binaries (initdb, postgres): install them (Debian: \
         `apt-get install postgresql`) or set AXP_POSTGRES_BIN to their directory"
            .to_owned()
    })
}

/// The `postgres` system user when this task runs as root (the server refuses root), else
/// none: the server runs as the current user.
fn server_user() -> Result<Option<User>, String> {
    let uid = fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or(1);
    if uid != 0 {
        return Ok(None);
    }
    let passwd = fs::read_to_string("/etc/passwd").unwrap_or_default();
    passwd
        .lines()
        .map(|line| line.split(':').collect::<Vec<_>>())
        .find(|fields| fields.first() == Some(&"postgres"))
        .and_then(|fields| {
            Some(User {
                uid: fields.get(2)?.parse().ok()?,
                gid: fields.get(3)?.parse().ok()?,
            })
        })
        .map(Some)
        .ok_or_else(|| {
            "running as root, and PostgreSQL refuses to: there is no `postgres` user to run it \
             as (Debian's postgresql package creates one)"
                .to_owned()
        })
}

fn as_user(mut command: Command, user: Option<User>) -> Command {
    if let Some(user) = user {
        command.uid(user.uid).gid(user.gid);
    }
    command
}

/// Runs `command` quietly: its output is shown only if it fails.
fn run(command: &mut Command, name: &str) -> Result<(), String> {
    let output = command.output().map_err(|e| format!("{name} ({e})"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{name} ({}):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// A port of 127.0.0.1 free a moment ago.
fn free_port() -> Result<u16, String> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .map_err(|e| format!("no free port on 127.0.0.1 ({e})"))
}
