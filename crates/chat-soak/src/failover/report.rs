//! The figures of a failover soak and their table.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::tally::{Spread, Tally, counts, direction, layout};

/// The figures of a failover soak.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FailoverReport {
    /// The event-stream transport.
    pub transport: String,
    /// The seed.
    pub seed: u64,
    /// Gateway processes.
    pub gateways: u64,
    /// Customers.
    pub customers: u64,
    /// Numbers each customer sent.
    pub messages: u64,
    /// Agent messages posted to each customer.
    pub agent_messages: u64,
    /// The store's lease, in milliseconds.
    pub lease_ttl_ms: u64,
    /// How often the gateways looked for sessions nobody holds, in milliseconds.
    pub poll_ms: u64,
    /// The bound on a takeover's start: the lease plus one poll (the lease counts from the
    /// dead gateway's last renewal, at most a third of the lease before the kill).
    pub bound_ms: u64,
    /// Wall-clock time of the run, in seconds.
    pub seconds: f64,
    /// The gateways killed, with when (seconds into the run) and how many sessions each held.
    pub killed: Vec<String>,
    /// Sessions of a killed gateway taken over by another.
    pub sessions_taken_over: u64,
    /// Sessions taken over by another gateway without a kill (a lease lost to a stall).
    pub other_takeovers: u64,
    /// From the kill to the new owner's `connect` returning, per session taken over.
    pub takeover_to_connected: Spread,
    /// From the kill to the first message the new owner delivered that was not delivered
    /// before, per session taken over.
    pub takeover_to_delivered: Spread,
    /// Sends the customers were told were handed over (distinct numbers).
    pub handed: u64,
    /// Sends that ended with an error, by code.
    pub send_errors: BTreeMap<String, u64>,
    /// Customer → agent, from the emulator's dialogs.
    pub customer_to_agent: Tally,
    /// Agent → customer, from the gateways' table in PostgreSQL.
    pub agent_to_customer: Tally,
    /// Faults injected, by kind.
    pub faults: BTreeMap<String, u64>,
    /// What went wrong beyond the counts, one line each.
    pub problems: Vec<String>,
}

impl FailoverReport {
    /// The bar: nothing lost, duplicated or out of order either way, every session of a
    /// killed gateway taken over, every customer done.
    pub fn clean(&self) -> bool {
        self.customer_to_agent.clean() && self.agent_to_customer.clean() && self.problems.is_empty()
    }

    /// The figures as a table.
    pub fn table(&self) -> String {
        let mut rows = vec![
            (
                "run".to_owned(),
                format!(
                    "{} gateways / {}: {} customers × {} sends and {} agent messages, seed {}, {:.1} s",
                    self.gateways,
                    self.transport,
                    self.customers,
                    self.messages,
                    self.agent_messages,
                    self.seed,
                    self.seconds
                ),
            ),
            (
                "lease, poll, bound".to_owned(),
                format!(
                    "{} ms, {} ms, {} ms",
                    self.lease_ttl_ms, self.poll_ms, self.bound_ms
                ),
            ),
            ("killed (SIGKILL)".to_owned(), self.killed.join("; ")),
            (
                "sessions taken over".to_owned(),
                format!(
                    "{} (and {} without a kill)",
                    self.sessions_taken_over, self.other_takeovers
                ),
            ),
            (
                "kill → connected".to_owned(),
                self.takeover_to_connected.to_string(),
            ),
            (
                "kill → first delivered".to_owned(),
                self.takeover_to_delivered.to_string(),
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
    fn a_report_is_clean_only_without_losses_or_problems() {
        let mut r = FailoverReport::default();
        assert!(r.clean());
        r.agent_to_customer.duplicated = 1;
        assert!(!r.clean());
        assert!(r.table().contains("FAIL"));
        r.agent_to_customer.duplicated = 0;
        r.problems.push("a session was never taken over".into());
        assert!(!r.clean());
    }
}
