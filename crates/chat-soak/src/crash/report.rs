//! The figures of a crash soak and their table.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::tally::{Spread, Tally, counts, direction, layout};

/// The figures of a crash soak.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CrashReport {
    /// The client library the children drove.
    pub adapter: String,
    /// The event-stream transport.
    pub transport: String,
    /// The seed.
    pub seed: u64,
    /// Customer processes.
    pub children: u64,
    /// Numbers each customer sent.
    pub messages: u64,
    /// Agent messages posted to each customer.
    pub agent_messages: u64,
    /// Wall-clock time of the run, in seconds.
    pub seconds: f64,
    /// SIGKILLs, in all and by how their instant was chosen.
    pub kills: u64,
    /// Kills by how their instant was chosen (`at random`, `after handed`, `mid-send`; an
    /// armed kill whose line did not come in time is `… (timed out)`).
    pub kills_by_how: BTreeMap<String, u64>,
    /// Kills after which the session was removed on the server before the restart.
    pub invalidated_while_down: u64,
    /// Children started again (after a kill, or after a child exited on its own).
    pub restarts: u64,
    /// Children that exited without being done (each started again; a failure).
    pub child_failures: u64,
    /// Sends the children were told were handed over (distinct numbers).
    pub handed: u64,
    /// Sends that ended with an error, by code (each found again and resent by the app).
    pub send_errors: BTreeMap<String, u64>,
    /// Customer → agent, from the emulator's dialogs.
    pub customer_to_agent: Tally,
    /// Agent → customer, from the apps' own tables.
    pub agent_to_customer: Tally,
    /// From a restart to the child's `connect` returning.
    pub restart_to_connected: Spread,
    /// From a restart to the first of the child's messages delivered that was not delivered
    /// before the kill.
    pub restart_to_delivered: Spread,
    /// Faults injected, by kind.
    pub faults: BTreeMap<String, u64>,
    /// What went wrong beyond the counts, one line each.
    pub problems: Vec<String>,
}

impl CrashReport {
    /// The bar: nothing lost, duplicated or out of order either way, every child done, no
    /// child that exited on its own.
    pub fn clean(&self) -> bool {
        self.customer_to_agent.clean()
            && self.agent_to_customer.clean()
            && self.problems.is_empty()
            && self.child_failures == 0
    }

    /// The figures as a table.
    pub fn table(&self) -> String {
        let mut rows = vec![
            (
                "run".to_owned(),
                format!(
                    "{} / {}: {} children × {} sends and {} agent messages, seed {}, {:.1} s",
                    self.adapter,
                    self.transport,
                    self.children,
                    self.messages,
                    self.agent_messages,
                    self.seed,
                    self.seconds
                ),
            ),
            (
                "kills (SIGKILL)".to_owned(),
                format!(
                    "{} ({}); {} with the session removed on the server while down",
                    self.kills,
                    counts(&self.kills_by_how),
                    self.invalidated_while_down
                ),
            ),
            (
                "restarts".to_owned(),
                format!(
                    "{} ({} after a child failed)",
                    self.restarts, self.child_failures
                ),
            ),
            (
                "customer → agent".to_owned(),
                direction(&self.customer_to_agent),
            ),
            (
                "  handed over, send errors".to_owned(),
                format!("{}, {}", self.handed, counts(&self.send_errors)),
            ),
            (
                "agent → customer".to_owned(),
                direction(&self.agent_to_customer),
            ),
            (
                "restart → connected".to_owned(),
                self.restart_to_connected.to_string(),
            ),
            (
                "restart → first delivered".to_owned(),
                self.restart_to_delivered.to_string(),
            ),
            ("faults".to_owned(), counts(&self.faults)),
        ];
        for p in &self.problems {
            rows.push(("problem".to_owned(), p.clone()));
        }
        rows.push((
            "verdict".to_owned(),
            if self.clean() { "PASS" } else { "FAIL" }.to_owned(),
        ));
        layout(&rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_is_clean_only_without_losses_problems_or_failed_children() {
        let mut r = CrashReport::default();
        assert!(r.clean());
        assert!(r.table().contains("PASS"));
        r.child_failures = 1;
        assert!(!r.clean());
        r.child_failures = 0;
        r.customer_to_agent.lost = 1;
        assert!(!r.clean());
        assert!(r.table().contains("FAIL"));
        r.customer_to_agent.lost = 0;
        r.problems.push("child 1 was not done".into());
        assert!(!r.clean());
        assert!(r.table().contains("child 1 was not done"));
    }
}
