//! The crash soak's kills: when, which child (a seeded pick among those alive then), how the
//! instant is chosen, how long the child stays dead, and whether its session is removed on
//! the server meanwhile.

use std::time::Duration;

/// How a kill picks its instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum How {
    /// At the planned instant, whatever the child is doing (connecting, restoring, idle…).
    AtRandom,
    /// Right after the child tells that a send was handed over.
    AfterHanded,
    /// This long after the child tells it is about to send: in the middle of the send (its
    /// write-ahead, its request, its answer).
    MidSend(Duration),
}

impl How {
    /// The name in reports.
    pub(super) fn name(self) -> &'static str {
        match self {
            Self::AtRandom => "at random",
            Self::AfterHanded => "after handed",
            Self::MidSend(_) => "mid-send",
        }
    }
}

/// One planned kill.
#[derive(Debug, Clone, Copy)]
pub(super) struct PlannedKill {
    /// From the start of the run.
    pub(super) at: Duration,
    /// The seeded choice among the children alive then.
    pub(super) pick: u64,
    pub(super) how: How,
    /// How long the child stays dead.
    pub(super) down_for: Duration,
    /// Whether its session is removed on the server while it is dead, so that the restart
    /// finds it gone (ACS-320) and the SDK replaces it.
    pub(super) invalidate: bool,
}

/// The kills: seeded instants in `[from, until)`, the three ways in turn, a pause of 50 ms
/// to 1.5 s before each restart, one in four with the session removed meanwhile.
pub(super) fn kill_plan(
    seed: u64,
    kills: usize,
    from: Duration,
    until: Duration,
) -> Vec<PlannedKill> {
    let mut rng = fastrand::Rng::with_seed(seed ^ 0x6b11_1ed5);
    let span = until.saturating_sub(from).as_millis().max(1) as u64;
    let mut plan: Vec<PlannedKill> = (0..kills)
        .map(|i| PlannedKill {
            at: from + Duration::from_millis(rng.u64(0..span)),
            pick: rng.u64(..),
            how: match i % 3 {
                0 => How::AtRandom,
                1 => How::AfterHanded,
                _ => How::MidSend(Duration::from_millis(rng.u64(0..25))),
            },
            down_for: Duration::from_millis(rng.u64(50..1500)),
            invalidate: i % 4 == 3,
        })
        .collect();
    plan.sort_by_key(|k| k.at);
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kill_plan_is_seeded_within_its_span_and_has_every_way() {
        let from = Duration::from_secs(1);
        let until = Duration::from_secs(9);
        let plan = kill_plan(5, 12, from, until);
        assert_eq!(plan.len(), 12);
        assert!(plan.windows(2).all(|w| w[0].at <= w[1].at));
        assert!(plan.iter().all(|k| k.at >= from && k.at < until));
        for name in ["at random", "after handed", "mid-send"] {
            assert_eq!(plan.iter().filter(|k| k.how.name() == name).count(), 4);
        }
        assert_eq!(plan.iter().filter(|k| k.invalidate).count(), 3);
        let again = kill_plan(5, 12, from, until);
        assert!(
            plan.iter()
                .zip(&again)
                .all(|(a, b)| a.at == b.at && a.pick == b.pick)
        );
    }
}
