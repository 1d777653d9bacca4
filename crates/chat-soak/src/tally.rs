//! The verdict of the crash and failover soaks, per direction: of the numbers that should be
//! somewhere, how many are there, lost, repeated or out of order; and the spread of the
//! times measured (restart or takeover to the first message delivered).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::Serialize;

/// The counts of one direction, summed over the customers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    /// Numbers that should have arrived: every customer's 1..=M (customer → agent), every
    /// agent message the emulator accepted (agent → customer).
    pub expected: u64,
    /// Of those, how many arrived (at least once).
    pub received: u64,
    /// Expected and not there.
    pub lost: u64,
    /// Of the lost customer → agent numbers, those the app had been told were handed over
    /// (`saved()` returned after the send): a loss that is the SDK's by definition.
    pub lost_after_handed: u64,
    /// Extra copies.
    pub duplicated: u64,
    /// Numbers that arrived after a higher one (first copies only).
    pub out_of_order: u64,
    /// Numbers that arrived and were never sent: a soak bug, or someone else's message.
    pub unexpected: u64,
}

impl Tally {
    /// Whether nothing was lost, repeated, reordered or made up.
    pub fn clean(&self) -> bool {
        self.lost == 0
            && self.lost_after_handed == 0
            && self.duplicated == 0
            && self.out_of_order == 0
            && self.unexpected == 0
    }

    /// Adds one customer's direction: `expected` numbers, `handed` (those handed over, for
    /// customer → agent), and `seen`, the numbers as they arrived, in order.
    pub(crate) fn add(&mut self, expected: &BTreeSet<u64>, handed: &BTreeSet<u64>, seen: &[u64]) {
        let mut first = BTreeSet::new();
        let mut highest = 0;
        for &n in seen {
            if !expected.contains(&n) {
                self.unexpected += 1;
            } else if !first.insert(n) {
                self.duplicated += 1;
            } else if n < highest {
                self.out_of_order += 1;
            }
            highest = highest.max(n);
        }
        self.expected += expected.len() as u64;
        self.received += expected.intersection(&first).count() as u64;
        self.lost += expected.difference(&first).count() as u64;
        self.lost_after_handed += handed.difference(&first).count() as u64;
    }
}

/// The spread of some durations: how many, the median and the worst, in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Spread {
    /// How many were measured.
    pub count: u64,
    /// The median, in milliseconds (0 when none).
    pub median_ms: u64,
    /// The worst, in milliseconds (0 when none).
    pub max_ms: u64,
}

impl Spread {
    /// The spread of `times`.
    pub(crate) fn of(times: &[Duration]) -> Self {
        let mut ms: Vec<u64> = times.iter().map(|d| d.as_millis() as u64).collect();
        ms.sort_unstable();
        Self {
            count: ms.len() as u64,
            median_ms: ms.get(ms.len() / 2).copied().unwrap_or(0),
            max_ms: ms.last().copied().unwrap_or(0),
        }
    }
}

impl std::fmt::Display for Spread {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.count == 0 {
            f.write_str("none measured")
        } else {
            write!(
                f,
                "{} / {} ms (of {})",
                self.median_ms, self.max_ms, self.count
            )
        }
    }
}

/// One direction's counts, in words.
pub(crate) fn direction(t: &Tally) -> String {
    format!(
        "expected {} / received {} / lost {} (after handed {}) / duplicated {} / out of order {} / unexpected {}",
        t.expected,
        t.received,
        t.lost,
        t.lost_after_handed,
        t.duplicated,
        t.out_of_order,
        t.unexpected
    )
}

/// Counts by name: `a 1, b 2`, or `none`.
pub(crate) fn counts(counts: &BTreeMap<String, u64>) -> String {
    if counts.is_empty() {
        return "none".to_owned();
    }
    counts
        .iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Rows of a report as two aligned columns.
pub(crate) fn layout(rows: &[(String, String)]) -> String {
    let width = rows
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for (k, v) in rows {
        let pad = width - k.chars().count();
        out.push_str(k);
        out.push_str(&" ".repeat(pad + 2));
        out.push_str(v);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(n: impl IntoIterator<Item = u64>) -> BTreeSet<u64> {
        n.into_iter().collect()
    }

    #[test]
    fn a_clean_direction_counts_nothing_wrong() {
        let mut t = Tally::default();
        t.add(&set(1..=4), &set([1, 2]), &[1, 2, 3, 4]);
        assert!(t.clean(), "{t:?}");
        assert_eq!((t.expected, t.received), (4, 4));
    }

    #[test]
    fn losses_copies_reorders_and_strangers_are_each_counted() {
        let mut t = Tally::default();
        // 2 is lost (and had been handed over), 3 comes twice, 5 before 4, 9 was never sent.
        t.add(&set(1..=5), &set([1, 2, 3]), &[1, 3, 3, 5, 4, 9]);
        assert_eq!(t.lost, 1);
        assert_eq!(t.lost_after_handed, 1);
        assert_eq!(t.duplicated, 1);
        assert_eq!(t.out_of_order, 1);
        assert_eq!(t.unexpected, 1);
        assert_eq!(t.received, 4);
        assert!(!t.clean());
    }

    #[test]
    fn reports_read_as_aligned_rows() {
        let rows = [
            ("a".to_owned(), "1".to_owned()),
            ("bcd".to_owned(), "2".to_owned()),
        ];
        assert_eq!(layout(&rows), "a    1\nbcd  2\n");
        assert_eq!(counts(&BTreeMap::new()), "none");
        let mut c = BTreeMap::new();
        c.insert("x".to_owned(), 2);
        c.insert("y".to_owned(), 1);
        assert_eq!(counts(&c), "x 2, y 1");
    }

    #[test]
    fn the_spread_is_the_median_and_the_worst() {
        let ms = |v: &[u64]| {
            v.iter()
                .map(|&m| Duration::from_millis(m))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            Spread::of(&ms(&[30, 10, 20])),
            Spread {
                count: 3,
                median_ms: 20,
                max_ms: 30
            }
        );
        assert_eq!(Spread::of(&[]), Spread::default());
        assert_eq!(Spread::of(&ms(&[5])).to_string(), "5 / 5 ms (of 1)");
    }
}
