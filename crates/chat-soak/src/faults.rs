//! The fault mix: what can go wrong, a seeded schedule of it, and its injection into the
//! emulator (and the soak's proxy) while the sessions run.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use chat_emulator::{Control, Route};
use serde::Serialize;

use crate::adapter::Transport;

/// One kind of fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultKind {
    /// A 500, 502, 503 or 504 answer, to one session's next poll (or WebSocket upgrade) or to
    /// the next message sent by anyone.
    ServerError,
    /// 429 with `Retry-After: 1`, to the next poll or upgrade, or the next message sent.
    TooManyRequests,
    /// One session's next poll (or upgrade) loses its connection before the answer's body.
    DroppedPoll,
    /// One session's open event-stream sockets are cut by the soak's proxy (a WebSocket
    /// mid-stream, or the long poll's connection mid-poll).
    DroppedSocket,
    /// One session's next poll (or upgrade) is held past the client's poll timeout.
    Hang,
    /// Every chat token minted so far is refused ("Token expired"): the token providers
    /// refresh (the tokens' short lifetimes make them refresh ahead of expiry too).
    TokenExpiry,
    /// One session is removed on the server ("Session not found"): the app starts a new
    /// session, rejoins the engagement and fetches what it missed from history.
    SessionInvalidated,
    /// The next message sent is stored and broadcast, but its answer is lost on the way
    /// back: the client sees a network error.
    LostAnswer,
    /// A whole-server outage, every session at once: the soak's proxy cuts every connection
    /// (REST calls, polls and WebSockets) and refuses new ones for 2 to 4 s.
    Outage,
}

impl FaultKind {
    /// Every kind, in report order.
    pub const ALL: [FaultKind; 9] = [
        Self::ServerError,
        Self::TooManyRequests,
        Self::DroppedPoll,
        Self::DroppedSocket,
        Self::Hang,
        Self::TokenExpiry,
        Self::SessionInvalidated,
        Self::LostAnswer,
        Self::Outage,
    ];

    /// The name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::ServerError => "5xx",
            Self::TooManyRequests => "429",
            Self::DroppedPoll => "dropped-poll",
            Self::DroppedSocket => "dropped-socket",
            Self::Hang => "hang",
            Self::TokenExpiry => "token-expiry",
            Self::SessionInvalidated => "session-invalidated",
            Self::LostAnswer => "lost-answer",
            Self::Outage => "outage",
        }
    }

    /// Relative frequency in the random mix.
    fn weight(self) -> u32 {
        match self {
            Self::ServerError | Self::DroppedPoll | Self::DroppedSocket => 3,
            Self::TooManyRequests | Self::Hang | Self::LostAnswer => 2,
            Self::TokenExpiry | Self::SessionInvalidated | Self::Outage => 1,
        }
    }

    /// Whether it aims at one session (as opposed to the whole emulator).
    pub(crate) fn targets_a_session(self) -> bool {
        !matches!(self, Self::TokenExpiry | Self::LostAnswer | Self::Outage)
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One planned fault: when (from the start of the run), what, and two seeded choices (which
/// live session, which status or route).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Planned {
    pub(crate) at: Duration,
    pub(crate) kind: FaultKind,
    pub(crate) pick: u64,
    pub(crate) variant: u32,
}

/// At most this many faults of the kinds that cost a session or every session a lot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Caps {
    /// Session invalidations (each one costs a session: the app starts a new one).
    pub(crate) invalidations: usize,
    /// Token expiries (each one hits every session).
    pub(crate) expiries: usize,
    /// Whole-server outages (each one hits every session).
    pub(crate) outages: usize,
}

impl Planned {
    /// Whether it goes to the messages route (the 5xx and 429 kinds go to one session's
    /// events or to the next message sent, by the variant).
    fn goes_to_messages(&self) -> bool {
        self.variant % 2 == 1
    }

    /// Whether it is the server misbehaving on one session's next poll or upgrade (or its
    /// open socket). A server that is down answers no poll at all, so these are not armed
    /// during an outage: armed then, they would wait for the session's reconnection
    /// attempts, which the outage makes late, and hit them one after the other.
    pub(crate) fn aims_at_a_stream(&self) -> bool {
        match self.kind {
            FaultKind::ServerError | FaultKind::TooManyRequests => !self.goes_to_messages(),
            FaultKind::DroppedPoll | FaultKind::DroppedSocket | FaultKind::Hang => true,
            FaultKind::TokenExpiry
            | FaultKind::SessionInvalidated
            | FaultKind::LostAnswer
            | FaultKind::Outage => false,
        }
    }
}

/// The schedule: `total` faults at seeded random times in `[from, until)`, each kind of
/// `kinds` at least once (when `total` allows), then a weighted random mix, within `caps`.
pub(crate) fn plan(
    seed: u64,
    from: Duration,
    until: Duration,
    total: usize,
    kinds: &[FaultKind],
    caps: Caps,
) -> Vec<Planned> {
    let mut rng = fastrand::Rng::with_seed(seed ^ 0xfa17_5eed);
    let mut chosen: Vec<FaultKind> = kinds.to_vec();
    rng.shuffle(&mut chosen);
    chosen.truncate(total);
    let cap = |k: FaultKind| match k {
        FaultKind::SessionInvalidated => caps.invalidations,
        FaultKind::TokenExpiry => caps.expiries,
        FaultKind::Outage => caps.outages,
        _ => usize::MAX,
    };
    let weights: u32 = kinds.iter().map(|k| k.weight()).sum();
    let mut attempts = 0;
    while chosen.len() < total && weights > 0 && attempts < total * 20 {
        attempts += 1;
        let mut roll = rng.u32(0..weights);
        let Some(&kind) = kinds.iter().find(|k| {
            if roll < k.weight() {
                true
            } else {
                roll -= k.weight();
                false
            }
        }) else {
            continue;
        };
        if chosen.iter().filter(|&&c| c == kind).count() < cap(kind) {
            chosen.push(kind);
        }
    }
    let span = until.saturating_sub(from).as_millis().max(1) as u64;
    let mut planned: Vec<Planned> = chosen
        .into_iter()
        .map(|kind| Planned {
            at: from + Duration::from_millis(rng.u64(0..span)),
            kind,
            pick: rng.u64(..),
            variant: rng.u32(..),
        })
        .collect();
    planned.sort_by_key(|p| p.at);
    planned
}

/// Where faults go.
pub(crate) struct Injector<'a> {
    pub(crate) control: &'a Control,
    pub(crate) proxy: &'a crate::proxy::Proxy,
    pub(crate) transport: Transport,
    pub(crate) poll_timeout: Duration,
    pub(crate) injected: BTreeMap<FaultKind, u64>,
}

impl Injector<'_> {
    /// Injects `fault` on `session` (ignored by the kinds that hit everyone).
    pub(crate) fn inject(&mut self, fault: &Planned, session: Option<&chat_core::SessionId>) {
        let control = self.control;
        let ws = self.transport == Transport::WebSocket;
        // Faults of the events resource reach a WebSocket at its next upgrade: the socket is
        // cut so that the upgrade comes now.
        let cut = |proxy: &crate::proxy::Proxy, sid: &chat_core::SessionId| {
            if ws {
                proxy.cut(sid.as_str());
            }
        };
        let to_messages = fault.goes_to_messages();
        crate::session::trace(|| {
            format!(
                "fault at {:?}: {} on {session:?} (to messages: {to_messages})",
                fault.at, fault.kind
            )
        });
        match (fault.kind, session) {
            (FaultKind::ServerError, _) if to_messages => {
                control.fail_next(Route::Messages, status(fault.variant), 1);
            }
            (FaultKind::ServerError, Some(sid)) => {
                control.fail_next_for_session(sid, Route::Events, status(fault.variant), 1);
                cut(self.proxy, sid);
            }
            (FaultKind::TooManyRequests, _) if to_messages => {
                control.fail_next_with_retry_after(Route::Messages, 429, 1, 1);
            }
            (FaultKind::TooManyRequests, Some(sid)) => {
                // No per-session form with Retry-After: the next events request of anyone.
                control.fail_next_with_retry_after(Route::Events, 429, 1, 1);
                cut(self.proxy, sid);
            }
            (FaultKind::DroppedPoll, Some(sid)) => {
                control.drop_next_polls_for_session(sid, 1);
                cut(self.proxy, sid);
            }
            (FaultKind::DroppedSocket, Some(sid)) => {
                self.proxy.cut(sid.as_str());
            }
            (FaultKind::Hang, Some(sid)) => {
                control.hang_next_polls_for_session(
                    sid,
                    1,
                    self.poll_timeout + Duration::from_secs(1),
                );
                cut(self.proxy, sid);
            }
            (FaultKind::TokenExpiry, _) => control.expire_tokens(),
            (FaultKind::SessionInvalidated, Some(sid)) => {
                control.invalidate_session(sid);
            }
            (FaultKind::LostAnswer, _) => control.lose_next_answers(Route::Messages, 1),
            (FaultKind::Outage, _) => self.proxy.outage(outage_length(fault.variant)),
            (_, None) => return,
        }
        *self.injected.entry(fault.kind).or_default() += 1;
    }
}

/// A run's faults as its time goes (the crash and failover soaks): the schedule, where it
/// stands, and what was injected or skipped.
pub(crate) struct Schedule<'a> {
    planned: Vec<Planned>,
    next: usize,
    injector: Injector<'a>,
    skipped: u64,
}

impl<'a> Schedule<'a> {
    /// `planned` (from [`plan`]), injected through `injector`.
    pub(crate) fn new(planned: Vec<Planned>, injector: Injector<'a>) -> Self {
        Self {
            planned,
            next: 0,
            injector,
            skipped: 0,
        }
    }

    /// Injects the faults due by `now` (the run started at `started`). `target` picks the
    /// session of a fault that aims at one (given whether it aims at a connected event
    /// stream); one that finds none, or a fault of a stream while the server is down, is
    /// skipped.
    pub(crate) fn inject_due(
        &mut self,
        started: tokio::time::Instant,
        now: tokio::time::Instant,
        mut target: impl FnMut(&Planned) -> Option<chat_core::SessionId>,
    ) {
        while let Some(fault) = self
            .planned
            .get(self.next)
            .copied()
            .filter(|f| started + f.at <= now)
        {
            self.next += 1;
            if fault.aims_at_a_stream() && !self.injector.proxy.status().up {
                self.skipped += 1;
                continue;
            }
            let session = if fault.kind.targets_a_session() {
                match target(&fault) {
                    Some(session) => Some(session),
                    None => {
                        self.skipped += 1;
                        continue;
                    }
                }
            } else {
                None
            };
            self.injector.inject(&fault, session.as_ref());
        }
    }

    /// When the next fault is due.
    pub(crate) fn next_due(&self, started: tokio::time::Instant) -> Option<tokio::time::Instant> {
        self.planned.get(self.next).map(|f| started + f.at)
    }

    /// The faults injected by kind, and those skipped.
    pub(crate) fn counts(&self) -> BTreeMap<String, u64> {
        let mut counts: BTreeMap<String, u64> = self
            .injector
            .injected
            .iter()
            .map(|(k, n)| (k.name().to_owned(), *n))
            .collect();
        if self.skipped > 0 {
            counts.insert("skipped".to_owned(), self.skipped);
        }
        counts
    }
}

/// The seeded pick among `candidates` (sessions) for `fault`.
pub(crate) fn pick_among(
    fault: &Planned,
    candidates: &[chat_core::SessionId],
) -> Option<chat_core::SessionId> {
    if candidates.is_empty() {
        return None;
    }
    Some(candidates[(fault.pick % candidates.len() as u64) as usize].clone())
}

/// How long an outage lasts: 2, 3 or 4 s.
pub(crate) fn outage_length(variant: u32) -> Duration {
    Duration::from_secs(2 + u64::from(variant % 3))
}

fn status(variant: u32) -> u16 {
    [500, 502, 503, 504][(variant / 2 % 4) as usize]
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAPS: Caps = Caps {
        invalidations: 2,
        expiries: 1,
        outages: 2,
    };

    fn plan_of(seed: u64) -> Vec<Planned> {
        plan(
            seed,
            Duration::from_secs(1),
            Duration::from_secs(9),
            40,
            &FaultKind::ALL,
            CAPS,
        )
    }

    #[test]
    fn the_plan_is_seeded_and_has_every_kind() {
        let a = plan_of(7);
        assert_eq!(a, plan_of(7));
        assert_eq!(a.len(), 40);
        for kind in FaultKind::ALL {
            assert!(a.iter().any(|p| p.kind == kind), "{kind}");
        }
        let count = |k| a.iter().filter(|p| p.kind == k).count();
        assert!(count(FaultKind::SessionInvalidated) <= 2);
        assert_eq!(count(FaultKind::TokenExpiry), 1);
        assert!((1..=2).contains(&count(FaultKind::Outage)));
        assert!(a.windows(2).all(|w| w[0].at <= w[1].at));
        assert!(
            a.iter()
                .all(|p| p.at >= Duration::from_secs(1) && p.at < Duration::from_secs(9))
        );
        assert_ne!(a, plan_of(8));
    }

    #[test]
    fn the_whole_server_kinds_hit_no_one_session_and_outages_last_seconds() {
        for kind in [
            FaultKind::TokenExpiry,
            FaultKind::LostAnswer,
            FaultKind::Outage,
        ] {
            assert!(!kind.targets_a_session(), "{kind}");
        }
        let lengths: Vec<u64> = (0..6).map(|v| outage_length(v).as_secs()).collect();
        assert_eq!(lengths, [2, 3, 4, 2, 3, 4]);
    }

    #[test]
    fn the_faults_a_down_server_cannot_make_are_those_of_a_stream() {
        let fault = |kind, variant| Planned {
            at: Duration::ZERO,
            kind,
            pick: 0,
            variant,
        };
        // 5xx and 429: to a session's events (even variants) or to the next message (odd).
        for kind in [FaultKind::ServerError, FaultKind::TooManyRequests] {
            assert!(fault(kind, 2).aims_at_a_stream(), "{kind}");
            assert!(!fault(kind, 3).aims_at_a_stream(), "{kind}");
        }
        for kind in [
            FaultKind::DroppedPoll,
            FaultKind::DroppedSocket,
            FaultKind::Hang,
        ] {
            assert!(fault(kind, 1).aims_at_a_stream(), "{kind}");
        }
        for kind in [
            FaultKind::TokenExpiry,
            FaultKind::SessionInvalidated,
            FaultKind::LostAnswer,
            FaultKind::Outage,
        ] {
            assert!(!fault(kind, 0).aims_at_a_stream(), "{kind}");
        }
    }
}
