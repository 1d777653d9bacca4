//! A client with a store: the driver asks for the snapshot to be saved when it changed, one
//! save at a time, a held send only after the save that holds it, positions a little later;
//! a failed save is tried again, and a lost lease stops the session at once.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant, SystemTime};

use chat_core::{Config, EndReason, Request, Snapshot};
use chat_driver::{Action, Call, Driver, Error, Options, SaveError, SaveTicket};

const SESSION: &str = "5e55e55e-0000-4000-8000-000000000001";
const ENGAGEMENT: &str = "e0000000-0000-4000-8000-000000000001";
const DIALOG: &str = "d0000000-0000-4000-8000-000000000001";

struct Rig {
    driver: Driver<u32>,
    now: Instant,
    /// Polls sent and not yet answered.
    polls: Vec<Request>,
}

/// What one round of `poll_action` asked for, until `Wait`.
#[derive(Default, Debug)]
struct Round {
    requests: Vec<Request>,
    saves: Vec<(SaveTicket, Option<String>)>,
    completed: Vec<(u32, Result<chat_core::ReplyValue, Error>)>,
    wait: Option<Instant>,
}

impl Rig {
    fn new() -> Self {
        let mut options = Options::new(
            "https://na.api.avayacloud.com",
            "123e4567-e89b-12d3-a456-426614174000",
            "my-appkey",
        );
        // A token whose payload is {"exp":4000000000}.
        options.token = Some("jwt.e30.eyJleHAiOjQwMDAwMDAwMDB9.sig".to_owned());
        options.config = Config {
            outbox: Some(Duration::from_secs(600)),
            write_ahead: true,
            ..Config::default()
        };
        #[allow(clippy::disallowed_methods)]
        let (now, wall) = (Instant::now(), SystemTime::now());
        let mut driver = Driver::new(now, wall, options.session(false).unwrap(), 64);
        driver.keep_in_store(Some("customer-42".into()));
        Self {
            driver,
            now,
            polls: Vec::new(),
        }
    }

    fn round(&mut self) -> Round {
        let mut round = Round::default();
        loop {
            match self.driver.poll_action() {
                Action::Transmit(r) if r.url.contains("/events") => self.polls.push(r),
                Action::Transmit(r) => round.requests.push(r),
                Action::Abort(id) => self.polls.retain(|p| p.id != id),
                Action::Save(t, record) => round.saves.push((t, record)),
                Action::Complete(w, r) => round.completed.push((w, r)),
                Action::Wait(at) => {
                    round.wait = at;
                    return round;
                }
                other => panic!("{other:?}"),
            }
        }
    }

    fn answer(&mut self, r: &Request, status: u16, body: &str) {
        self.driver
            .handle_response(self.now, r.id, status, body.as_bytes());
    }

    /// Sends "hello" in the chat, as call 2.
    fn send_hello(&mut self) {
        let send = Call::Send {
            engagement: chat_core::EngagementId::new(ENGAGEMENT),
            text: "hello".into(),
            parent: None,
        };
        self.driver.call(self.now, send, 2).unwrap();
    }

    fn saved(&mut self, ticket: SaveTicket) {
        self.driver.handle_saved(self.now, ticket, Ok(()));
    }

    /// A restored session with one active chat, caught up, everything saved.
    fn with_active_chat() -> Self {
        let mut rig = Self::new();
        let snapshot = format!(
            r#"{{"format":1,"resumption":{{"sessionId":"{SESSION}","activeEngagements":["{ENGAGEMENT}"],"lastMessageIndexes":[["{ENGAGEMENT}",0]]}}}}"#
        );
        let snapshot = Snapshot::from_json(&snapshot).unwrap();
        rig.driver
            .call(rig.now, Call::Restore(Box::new(snapshot)), 1)
            .unwrap();
        let round = rig.round();
        for (ticket, _) in &round.saves {
            rig.saved(*ticket);
        }
        let get = &round.requests[0];
        let session = format!(
            r#"{{"sessionId":"{SESSION}","engagements":[{{"engagementId":"{ENGAGEMENT}","dialogs":[{{"dialogId":"{DIALOG}","dialogStatus":"ACTIVE","participants":[]}}]}}]}}"#
        );
        rig.answer(get, 200, &session);
        let mut round = rig.round();
        assert!(round.completed.iter().any(|(w, r)| *w == 1 && r.is_ok()));
        loop {
            for r in round
                .requests
                .iter()
                .filter(|r| r.url.contains("/messages"))
            {
                rig.answer(r, 200, r#"{"messages":[],"links":{"next":""}}"#);
            }
            for (ticket, _) in &round.saves {
                rig.saved(*ticket);
            }
            if round.saves.is_empty() && !round.requests.iter().any(|r| r.url.contains("/messages"))
            {
                break;
            }
            round = rig.round();
        }
        rig
    }
}

#[test]
fn a_held_send_goes_out_after_the_save_that_holds_it() {
    let mut rig = Rig::with_active_chat();
    rig.send_hello();
    let round = rig.round();
    assert!(
        !round.requests.iter().any(|r| r.url.contains("/messages")),
        "no send before the save: {round:?}"
    );
    let (ticket, record) = round
        .saves
        .first()
        .cloned()
        .unwrap_or_else(|| panic!("a save: {round:#?}"));
    let record = record.expect("a record, not a removal");
    let stored = Snapshot::from_json(&record).unwrap();
    assert_eq!(stored.sends[0].text, "hello");
    assert_eq!(stored.customer.as_deref(), Some("customer-42"));
    assert!(!record.contains("jwt.") && !record.contains("my-appkey"));
    assert_eq!(rig.round().saves.len(), 0, "one save at a time");

    rig.saved(ticket);
    let round = rig.round();
    assert!(round.requests.iter().any(|r| r.url.contains("/messages")));
}

#[test]
fn a_failed_save_is_tried_again_and_the_send_waits_for_it() {
    let mut rig = Rig::with_active_chat();
    rig.send_hello();
    let (ticket, _) = rig.round().saves[0].clone();
    let disk_full: Box<dyn std::error::Error + Send + Sync> = "disk full".into();
    rig.driver
        .handle_saved(rig.now, ticket, Err(SaveError::Failed(disk_full.into())));
    let round = rig.round();
    assert!(round.saves.is_empty() && round.requests.is_empty());
    let retry = round.wait.expect("a retry deadline");
    assert!(retry - rig.now >= chat_driver::SAVE_RETRY);
    rig.now = retry;
    rig.driver.handle_timeout(rig.now);
    let round = rig.round();
    let (ticket, _) = round.saves[0].clone();
    rig.saved(ticket);
    assert!(
        rig.round()
            .requests
            .iter()
            .any(|r| r.url.contains("/messages"))
    );
}

#[test]
fn a_lost_lease_stops_the_session_and_nothing_more_is_sent_or_saved() {
    let mut rig = Rig::with_active_chat();
    rig.send_hello();
    let (ticket, _) = rig.round().saves[0].clone();
    rig.driver
        .handle_saved(rig.now, ticket, Err(SaveError::LeaseLost));
    let round = rig.round();
    assert!(round.saves.is_empty());
    assert!(!round.requests.iter().any(|r| r.url.contains("/messages")));
    assert!(matches!(&round.completed[..], [(2, Err(_))]), "{round:?}");
    assert_eq!(rig.driver.end_reason(), Some(EndReason::Abandoned));
}

#[test]
fn positions_taken_are_saved_a_little_later_and_in_one_save() {
    let mut rig = Rig::with_active_chat();
    while rig.driver.take_event(rig.now).is_some() {}
    rig.round();
    let poll = rig.polls.pop().expect("a poll");
    let message = |id: &str, index: u64| {
        format!(
            r#"{{"eventId":"{id}","eventType":"MESSAGE","engagementId":"{ENGAGEMENT}","dialogId":"{DIALOG}","message":{{"messageId":"00000000-0000-4000-8000-00000000000{index}","messageIndex":{index},"body":{{"elementType":"TEXT","elementText":{{"text":"m{index}","textFormat":"PLAINTEXT"}}}}}},"participant":{{"participantId":"a1","participantType":"AGENT"}}}}"#
        )
    };
    let batch = format!("[{},{}]", message("ev-1", 1), message("ev-2", 2));
    rig.answer(&poll, 200, &batch);
    let round = rig.round();
    assert!(round.saves.is_empty(), "nothing taken yet: nothing to save");
    while rig.driver.take_event(rig.now).is_some() {}
    let round = rig.round();
    assert!(round.saves.is_empty(), "not at once");
    let due = round.wait.expect("a deadline for it");
    assert!(due - rig.now <= chat_driver::POSITION_SAVE_DELAY);
    rig.now = due;
    rig.driver.handle_timeout(rig.now);
    let saves = rig.round().saves;
    assert_eq!(saves.len(), 1);
    let stored = Snapshot::from_json(saves[0].1.as_deref().unwrap()).unwrap();
    let r = stored.resumption.unwrap();
    assert_eq!(r.last_message_indexes[0].1, 2);
}

#[test]
fn a_session_shut_down_is_removed_from_the_store() {
    let mut rig = Rig::with_active_chat();
    rig.driver.call(rig.now, Call::Shutdown(None), 3).unwrap();
    let round = rig.round();
    let delete = round
        .requests
        .iter()
        .find(|r| r.method.as_str() == "DELETE")
        .expect("a delete");
    let delete = delete.clone();
    rig.answer(&delete, 204, "");
    let round = rig.round();
    let (_, record) = round.saves.last().cloned().expect("a save");
    assert_eq!(record, None, "removed");
}

#[test]
fn the_lease_is_renewed_every_third_of_its_time_and_a_process_that_cannot_stops_in_time() {
    let mut rig = Rig::with_active_chat();
    let ttl = Duration::from_secs(30);
    let lease = chat_store::Lease {
        key: "customer-42".into(),
        owner: "here".into(),
        epoch: 1,
    };
    rig.driver.hold_lease(rig.now, lease.clone(), ttl);
    assert_eq!(rig.driver.lease(), Some(&lease));
    let round = rig.round();
    assert_eq!(round.wait, Some(rig.now + ttl / 3), "the first renewal");
    rig.now += ttl / 3;
    rig.driver.handle_timeout(rig.now);
    let mut renewals = 0;
    loop {
        match rig.driver.poll_action() {
            Action::RenewLease => renewals += 1,
            Action::Wait(_) => break,
            _ => {}
        }
    }
    assert_eq!(renewals, 1);
    rig.driver.handle_renewed(rig.now, Ok(()));
    assert_eq!(rig.round().wait, Some(rig.now + ttl / 3));

    // The store is unreachable from now on: renewals fail, and before the lease may have
    // lapsed (and another process taken over) this one stops.
    let renewed_at = rig.now;
    loop {
        rig.now = rig.round().wait.expect("a deadline");
        rig.driver.handle_timeout(rig.now);
        let mut renew = false;
        loop {
            match rig.driver.poll_action() {
                Action::RenewLease => renew = true,
                Action::Wait(_) => break,
                _ => {}
            }
        }
        if renew {
            let down: Box<dyn std::error::Error + Send + Sync> = "connection refused".into();
            rig.driver
                .handle_renewed(rig.now, Err(SaveError::Failed(down.into())));
        }
        if rig.driver.end_reason().is_some() {
            break;
        }
        assert!(rig.now < renewed_at + ttl, "still driving past the lease");
    }
    assert_eq!(rig.driver.end_reason(), Some(EndReason::Abandoned));
    assert_eq!(rig.now, renewed_at + ttl, "stopped when the lease ran out");
}

/// A restored session's record is what the store holds until the session is resumed: a save
/// before that would write a snapshot without the session (its id comes with the resume's
/// answer), and a process killed then, or a connect that fails (server unreachable), would
/// leave the store without the session, its chats, its positions and its held sends.
#[test]
fn a_restored_session_is_not_saved_over_before_it_is_resumed() {
    let stored = format!(
        r#"{{"format":1,"resumption":{{"sessionId":"{SESSION}","activeEngagements":["{ENGAGEMENT}"],"lastMessageIndexes":[["{ENGAGEMENT}",3]]}},"sends":[{{"engagementId":"{ENGAGEMENT}","text":"held","baseline":3,"giveUpAtMs":4000000000000}}]}}"#
    );
    let restore = |rig: &mut Rig| {
        let snapshot = Snapshot::from_json(&stored).unwrap();
        rig.driver
            .call(rig.now, Call::Restore(Box::new(snapshot)), 1)
            .unwrap();
        rig.round()
    };

    // The resume fails (the server cannot be reached): nothing was saved over the record.
    let mut rig = Rig::new();
    let round = restore(&mut rig);
    assert!(
        round.saves.is_empty(),
        "saved before the resume: {round:#?}"
    );
    let get = round.requests[0].clone();
    rig.driver
        .handle_failure(rig.now, get.id, chat_core::TransportError::Connect);
    let round = rig.round();
    assert!(matches!(&round.completed[..], [(1, Err(_))]), "{round:?}");
    assert!(
        round.saves.is_empty(),
        "saved after a failed resume: {round:#?}"
    );

    // The resume succeeds: the first save holds the session and the held send.
    let mut rig = Rig::new();
    let round = restore(&mut rig);
    let session = format!(
        r#"{{"sessionId":"{SESSION}","engagements":[{{"engagementId":"{ENGAGEMENT}","dialogs":[{{"dialogId":"{DIALOG}","dialogStatus":"ACTIVE","participants":[]}}]}}]}}"#
    );
    rig.answer(&round.requests[0], 200, &session);
    let round = rig.round();
    let (_, record) = round.saves.first().cloned().expect("a save once resumed");
    let saved = Snapshot::from_json(&record.expect("a record")).unwrap();
    let resumption = saved.resumption.expect("the session");
    assert_eq!(resumption.session_id.as_str(), SESSION);
    assert_eq!(resumption.active_engagements[0].as_str(), ENGAGEMENT);
    assert_eq!(saved.sends[0].text, "held");
}

#[test]
fn with_positions_recorded_by_the_app_a_take_never_moves_the_stored_position() {
    let mut rig = Rig::with_active_chat();
    rig.driver
        .positions_by_app(vec![(chat_core::EngagementId::new(ENGAGEMENT), 0)]);
    rig.round();
    let poll = rig.polls.pop().expect("a poll");
    let message = format!(
        r#"[{{"eventId":"ev-1","eventType":"MESSAGE","engagementId":"{ENGAGEMENT}","dialogId":"{DIALOG}","message":{{"messageId":"00000000-0000-4000-8000-000000000001","messageIndex":1,"body":{{"elementType":"TEXT","elementText":{{"text":"m1","textFormat":"PLAINTEXT"}}}}}},"participant":{{"participantId":"a1","participantType":"AGENT"}}}}]"#
    );
    rig.answer(&poll, 200, &message);
    rig.round();
    while rig.driver.take_event(rig.now).is_some() {}
    let round = rig.round();
    assert!(round.saves.is_empty(), "a take alone saves nothing");
    // A save for another reason (a held send) keeps the restored position: the app's own
    // transaction is the one that moves it.
    rig.send_hello();
    let saves = rig.round().saves;
    let stored = Snapshot::from_json(saves[0].1.as_deref().unwrap()).unwrap();
    assert_eq!(stored.resumption.unwrap().last_message_indexes[0].1, 0);
}
