//! The parent's side of the crash and failover soaks' processes: starting a child (this same
//! binary in a hidden mode), reading the lines it tells ([`crate::lines`]), and killing it
//! with SIGKILL.

use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::lines::Line;

/// A line heard from a child process, or the end of its output (`line: None`: it exited or
/// was killed).
#[derive(Debug)]
pub(crate) struct Heard {
    /// Which process of the run (a crash child's customer number, a gateway's number).
    pub(crate) process: usize,
    /// Which start of that process (1 for the first).
    pub(crate) incarnation: u64,
    /// When the parent read it.
    pub(crate) at: Instant,
    pub(crate) line: Option<Line>,
}

/// Starts `command` with its output piped to a reader task that sends every line to `heard`;
/// its standard error is the parent's, and it dies with the parent (`kill_on_drop`). With
/// `stdin`, its standard input is a pipe the parent holds (a gateway runs until it closes).
pub(crate) fn spawn(
    mut command: Command,
    process: usize,
    incarnation: u64,
    stdin: bool,
    heard: mpsc::UnboundedSender<Heard>,
) -> std::io::Result<Child> {
    command
        .stdout(Stdio::piped())
        .stdin(if stdin { Stdio::piped() } else { Stdio::null() })
        .kill_on_drop(true);
    let mut child = command.spawn()?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| std::io::Error::other("the child's output is not piped"))?;
    tokio::spawn(async move {
        let mut lines = BufReader::new(stdout).lines();
        while let Ok(Some(text)) = lines.next_line().await {
            if let Some(line) = Line::parse(&text) {
                let heard_line = Heard {
                    process,
                    incarnation,
                    at: Instant::now(),
                    line: Some(line),
                };
                if heard.send(heard_line).is_err() {
                    return;
                }
            }
        }
        let _ = heard.send(Heard {
            process,
            incarnation,
            at: Instant::now(),
            line: None,
        });
    });
    Ok(child)
}

/// Kills `child` with SIGKILL (what `Child::kill` sends on Unix) and waits until it is gone.
pub(crate) async fn kill(child: &mut Child) {
    let _ = child.kill().await;
}
