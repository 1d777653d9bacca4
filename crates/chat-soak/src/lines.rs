//! What a customer app of the crash and failover soaks tells the parent process: one line
//! per fact on its standard output, flushed at once, `{customer} {what}`. The parent reads
//! them to time its kills (right after a send was handed over, in the middle of a send) and
//! to measure restarts and takeovers; the verdict itself comes from the emulator and the
//! apps' own tables, never from these lines.

use std::fmt;
use std::io::Write as _;
use std::sync::Mutex;

/// One fact about one customer's app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Fact {
    /// `connect` returned: the session is resumed (or new); the process holds the lease.
    Connected,
    /// The session's id (the target of per-session faults).
    Session(String),
    /// The chat this customer's messages go to.
    Engagement(String),
    /// Where it goes on after the (re)start: the next number to send.
    Next(u64),
    /// About to send number k.
    Sending(u64),
    /// `saved()` returned after send k: handed over.
    Handed(u64),
    /// Its own message k came back delivered.
    Delivered(u64),
    /// The event stream connected (`true`) or failed (`false`).
    Stream(bool),
    /// Send k ended with an error (code).
    Failed(u64, String),
    /// Another process holds the session: this one leaves it alone.
    Held,
    /// Every message was sent and taken: the session is shut down.
    Done,
    /// Something went wrong that the app could not handle (one line of text).
    Problem(String),
}

/// A [`Fact`] about a customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Line {
    pub(crate) customer: usize,
    pub(crate) fact: Fact,
}

impl fmt::Display for Line {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ", self.customer)?;
        match &self.fact {
            Fact::Connected => f.write_str("connected"),
            Fact::Session(s) => write!(f, "session {s}"),
            Fact::Engagement(e) => write!(f, "engagement {e}"),
            Fact::Next(k) => write!(f, "next {k}"),
            Fact::Sending(k) => write!(f, "sending {k}"),
            Fact::Handed(k) => write!(f, "handed {k}"),
            Fact::Delivered(k) => write!(f, "delivered {k}"),
            Fact::Stream(up) => write!(f, "stream {}", if *up { "up" } else { "down" }),
            Fact::Failed(k, code) => write!(f, "failed {k} {code}"),
            Fact::Held => f.write_str("held"),
            Fact::Done => f.write_str("done"),
            // One line: a problem's text never breaks the protocol.
            Fact::Problem(p) => write!(f, "problem {}", p.replace(['\n', '\r'], " ")),
        }
    }
}

impl Line {
    /// Reads a line back; `None` for anything else (a stray line is ignored, not fatal).
    pub(crate) fn parse(line: &str) -> Option<Self> {
        let (customer, rest) = line.trim_end().split_once(' ')?;
        let customer = customer.parse().ok()?;
        let (verb, arg) = rest.split_once(' ').unwrap_or((rest, ""));
        let number = || arg.parse::<u64>().ok();
        let word = || (!arg.is_empty() && !arg.contains(' ')).then(|| arg.to_owned());
        let fact = match verb {
            "connected" if arg.is_empty() => Fact::Connected,
            "session" => Fact::Session(word()?),
            "engagement" => Fact::Engagement(word()?),
            "next" => Fact::Next(number()?),
            "sending" => Fact::Sending(number()?),
            "handed" => Fact::Handed(number()?),
            "delivered" => Fact::Delivered(number()?),
            "stream" => match arg {
                "up" => Fact::Stream(true),
                "down" => Fact::Stream(false),
                _ => return None,
            },
            "failed" => {
                let (k, code) = arg.split_once(' ')?;
                Fact::Failed(k.parse().ok()?, code.to_owned())
            }
            "held" if arg.is_empty() => Fact::Held,
            "done" if arg.is_empty() => Fact::Done,
            "problem" => Fact::Problem(arg.to_owned()),
            _ => return None,
        };
        Some(Self { customer, fact })
    }
}

/// Writes lines to standard output, each flushed at once, whatever thread tells: the
/// parent must see a `handed` line before the process can be killed after it.
#[derive(Debug, Default)]
pub(crate) struct Teller {
    lock: Mutex<()>,
}

impl Teller {
    /// Tells the parent `fact` about `customer`. A parent that went away is not an error
    /// here (the process is about to be killed or to end anyway).
    pub(crate) fn tell(&self, customer: usize, fact: Fact) {
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{}", Line { customer, fact });
        let _ = out.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fact_reads_back() {
        let facts = [
            Fact::Connected,
            Fact::Session("s-1".into()),
            Fact::Engagement("e-1".into()),
            Fact::Next(4),
            Fact::Sending(4),
            Fact::Handed(4),
            Fact::Delivered(4),
            Fact::Stream(true),
            Fact::Stream(false),
            Fact::Failed(4, "ACS-320".into()),
            Fact::Held,
            Fact::Done,
            Fact::Problem("no store: disk full".into()),
        ];
        for fact in facts {
            let line = Line { customer: 7, fact };
            assert_eq!(Line::parse(&line.to_string()), Some(line.clone()), "{line}");
        }
    }

    #[test]
    fn a_problem_stays_on_one_line_and_junk_is_ignored() {
        let line = Line {
            customer: 1,
            fact: Fact::Problem("two\nlines".into()),
        };
        assert_eq!(line.to_string(), "1 problem two lines");
        for junk in [
            "",
            "x connected",
            "1",
            "1 sending",
            "1 sending x",
            "1 stream sideways",
            "1 session",
            "1 done now",
            "1 dance",
        ] {
            assert_eq!(Line::parse(junk), None, "{junk:?}");
        }
    }
}
