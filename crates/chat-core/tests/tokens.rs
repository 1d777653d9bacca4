//! The token's lifecycle with a provider (`Config::token_refresh`): asked for ahead of expiry
//! and after a 401, one call at a time, retried, timed out; a REST call refused with 401 sent
//! again once under its own id; `init` without a token.

mod support;

use std::time::Duration;

use chat_core::{
    AppKey, ChatError, Config, Event, InitParams, ReplyValue, RequestKind, StreamFailureReason,
    StreamState, TokenRefresh,
};
use serde_json::json;
use support::*;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn refreshing() -> Config {
    Config {
        token_refresh: Some(TokenRefresh::default()),
        ..Config::default()
    }
}

fn bearer(r: &chat_core::Request) -> String {
    r.headers()
        .find(|(k, _)| *k == "Authorization")
        .map(|(_, v)| v.to_owned())
        .unwrap_or_default()
}

#[test]
fn without_a_provider_the_core_never_asks_for_a_token() {
    let mut h = Harness::new(Config::default());
    h.init();
    h.active_engagement();
    let poll = h.take_poll();
    h.respond(&poll, 401, json!({}));
    h.advance(secs(3600));
    assert!(h.fetches.is_empty());
    assert_eq!(h.session.stream_state(), StreamState::Paused);
    assert!(h.session.refresh_token(h.now).is_err());
}

#[test]
fn the_provider_is_asked_ahead_of_expiry_and_its_token_is_used() {
    let mut h = Harness::new(refreshing());
    h.init();
    assert!(h.fetches.is_empty());
    // The 15-minute token is refreshed 180 s before `exp`.
    h.advance(secs(719));
    assert!(h.fetches.is_empty());
    h.advance(secs(1));
    assert_eq!(h.fetches.len(), 1);
    let fresh = token(WALL0_UNIX + 720 + 900);
    h.give_token(&fresh).unwrap();
    // The next requests carry the new token.
    h.session.list_engagements(h.now).unwrap();
    let next = h.take_rest("GET", "/sessions/");
    assert_eq!(bearer(&next), format!("Bearer {}", fresh.expose()));
    h.respond(&next, 200, session_json(json!([])));
    // And the next refresh comes 180 s before the new `exp`.
    h.advance(secs(719));
    assert!(h.fetches.is_empty());
    h.advance(secs(1));
    assert_eq!(h.fetches.len(), 1, "one call, never two at once");
}

#[test]
fn a_short_token_is_refreshed_at_half_its_life() {
    let mut h = Harness::with_token(refreshing(), token(WALL0_UNIX + 120));
    h.init();
    h.advance(secs(59));
    assert!(h.fetches.is_empty());
    h.advance(secs(1));
    assert_eq!(h.fetches.len(), 1);
}

#[test]
fn a_rest_call_refused_with_401_is_sent_again_once_under_its_own_id() {
    let mut h = Harness::new(refreshing());
    h.init();
    let id = h
        .session
        .create_engagement(h.now, Default::default())
        .unwrap();
    let req = h.take_rest("POST", "/engagements");
    h.respond(&req, 401, json!({"detail": "Token expired"}));
    assert!(h.replies.is_empty(), "held for the new token");
    assert_eq!(h.fetches.len(), 1);
    let fresh = token(WALL0_UNIX + 1800);
    h.give_token(&fresh).unwrap();
    let again = h.take_rest("POST", "/engagements");
    assert_eq!(again.id, id, "the caller's own id");
    assert_eq!(again.body, req.body);
    assert_eq!(bearer(&again), format!("Bearer {}", fresh.expose()));
    // Refused again: that is the answer, with the server's reason kept.
    h.respond(&again, 401, json!({"detail": "Token revoked"}));
    let refused = h.take_reply(id).unwrap_err();
    assert_eq!(
        refused,
        ChatError::InvalidToken {
            detail: Some("Token revoked".into())
        }
    );
    assert_eq!(
        refused.to_string(),
        "ACS-305 : JWT token is invalid (Token revoked)."
    );
    assert!(h.fetches.is_empty());
}

#[test]
fn a_replayed_call_completes_normally() {
    let mut h = Harness::new(refreshing());
    h.init();
    let id = h
        .session
        .create_engagement(h.now, Default::default())
        .unwrap();
    let req = h.take_rest("POST", "/engagements");
    h.respond(&req, 401, json!({}));
    h.give_token(&token(WALL0_UNIX + 1800)).unwrap();
    let again = h.take_rest("POST", "/engagements");
    h.respond(
        &again,
        201,
        engagement_json(ENGAGEMENT, "PENDING", json!([])),
    );
    assert!(matches!(h.take_reply(id), Ok(ReplyValue::Engagement(_))));
}

#[test]
fn a_call_refused_while_no_token_can_be_had_fails_with_acs_305() {
    let mut h = Harness::new(refreshing());
    h.init();
    let id = h.session.list_engagements(h.now).unwrap();
    let req = h.take_rest("GET", "/sessions/");
    h.respond(&req, 401, json!({}));
    h.fail_token();
    assert_eq!(
        h.take_reply(id),
        Err(ChatError::InvalidToken { detail: None })
    );
}

#[test]
fn a_stream_refused_with_401_gets_a_new_token_and_resumes() {
    let mut h = Harness::new(refreshing());
    h.init();
    h.active_engagement();
    h.take_events();
    let poll = h.take_poll();
    h.respond(&poll, 401, json!({}));
    assert_eq!(h.session.stream_state(), StreamState::Paused);
    assert_eq!(h.fetches.len(), 1);
    h.give_token(&token(WALL0_UNIX + 1800)).unwrap();
    let poll = h.take_poll();
    h.respond(&poll, 200, json!([]));
    assert_eq!(h.session.stream_state(), StreamState::Connected);
    let names = h.take_event_names();
    assert_eq!(names, ["EVENT_STREAM_FAILED", "EVENT_STREAM_CONNECTED"]);
}

#[test]
fn refreshes_after_401s_in_a_row_are_capped() {
    let mut h = Harness::new(refreshing());
    h.init();
    h.active_engagement();
    let mut refreshes = 0;
    for n in 0..10 {
        let poll = h.take_poll();
        h.respond(&poll, 401, json!({}));
        if h.fetches.is_empty() {
            break;
        }
        refreshes += 1;
        h.give_token(&token(WALL0_UNIX + 1800 + n)).unwrap();
    }
    assert_eq!(refreshes, 3, "the default cap");
    assert_eq!(h.session.stream_state(), StreamState::Paused);
    // A token the server accepts resets the count.
    h.session
        .set_token(h.now, h.wall(), token(WALL0_UNIX + 2000))
        .unwrap();
    let poll = h.take_poll();
    h.respond(&poll, 200, json!([]));
    let poll = h.take_poll();
    h.respond(&poll, 401, json!({}));
    assert_eq!(h.fetches.len(), 1);
}

#[test]
fn a_failed_provider_call_is_tried_again_while_the_token_lives() {
    let mut h = Harness::new(refreshing());
    h.init();
    h.advance(secs(720));
    h.fail_token();
    assert!(h.fetches.is_empty());
    h.advance(secs(4));
    assert!(h.fetches.is_empty());
    h.advance(secs(1));
    assert_eq!(h.fetches.len(), 1, "after the 5 s retry");
}

#[test]
fn a_provider_that_does_not_answer_times_out_and_its_late_token_is_ignored() {
    let mut h = Harness::new(refreshing());
    h.init();
    let waiter = h.session.refresh_token(h.now).unwrap();
    h.drain();
    assert_eq!(h.fetches.len(), 1);
    let late = h.fetches[0];
    h.advance(secs(30));
    assert_eq!(h.take_reply(waiter), Err(ChatError::TokenUnavailable));
    // The late answer changes nothing.
    let old = h.session.token().unwrap().clone();
    let wall = h.wall();
    h.session
        .handle_token(h.now, wall, late, token(WALL0_UNIX + 5000).expose())
        .unwrap();
    assert_eq!(h.session.token(), Some(&old));
}

#[test]
fn refresh_token_replies_once_the_new_token_is_in_use() {
    let mut h = Harness::new(refreshing());
    h.init();
    let a = h.session.refresh_token(h.now).unwrap();
    let b = h.session.refresh_token(h.now).unwrap();
    h.drain();
    assert_eq!(h.fetches.len(), 1, "single-flight");
    let fresh = token(WALL0_UNIX + 3000);
    h.give_token(&fresh).unwrap();
    assert_eq!(h.take_reply(a), Ok(ReplyValue::TokenRefreshed));
    assert_eq!(h.take_reply(b), Ok(ReplyValue::TokenRefreshed));
    assert_eq!(h.session.token(), Some(&fresh));
}

#[test]
fn an_unusable_token_from_the_provider_is_a_failed_call() {
    let mut h = Harness::new(refreshing());
    h.init();
    let waiter = h.session.refresh_token(h.now).unwrap();
    h.drain();
    let id = h.fetches.remove(0);
    let wall = h.wall();
    let err = h
        .session
        .handle_token(h.now, wall, id, "not a token")
        .unwrap_err();
    assert_eq!(err.code(), "ACS-322");
    assert_eq!(h.take_reply(waiter), Err(ChatError::TokenUnavailable));
    let waiter = h.session.refresh_token(h.now).unwrap();
    let expired = token(WALL0_UNIX - 10);
    assert!(h.give_token(&expired).is_err());
    assert_eq!(h.take_reply(waiter), Err(ChatError::TokenUnavailable));
}

#[test]
fn init_without_a_token_asks_the_provider_first() {
    let params = InitParams::without_token(HOST, INTEGRATION, AppKey::new(APPKEY)).unwrap();
    assert!(
        chat_core::Session::new(params.clone(), Config::default()).is_err(),
        "no token and no provider"
    );
    let mut h = Harness::with_params(params, refreshing());
    let id = h.session.init(h.now, h.wall()).unwrap();
    h.drain();
    assert!(h.sent.is_empty(), "nothing before the token");
    assert_eq!(h.fetches.len(), 1);
    let first = token(WALL0_UNIX + 900);
    h.give_token(&first).unwrap();
    let req = h.take_rest("POST", "/sessions");
    assert_eq!(req.id, id);
    assert_eq!(bearer(&req), format!("Bearer {}", first.expose()));
    h.respond(&req, 201, session_json(json!([])));
    assert!(matches!(h.take_reply(id), Ok(ReplyValue::Initialized(_))));
    // A provider that fails the first call fails `init`.
    let params = InitParams::without_token(HOST, INTEGRATION, AppKey::new(APPKEY)).unwrap();
    let mut h = Harness::with_params(params, refreshing());
    let id = h.session.init(h.now, h.wall()).unwrap();
    h.fail_token();
    assert_eq!(h.take_reply(id), Err(ChatError::TokenUnavailable));
    assert!(
        h.session.init(h.now, h.wall()).is_ok(),
        "and may be tried again"
    );
}

#[test]
fn a_held_send_refused_with_401_goes_again_with_the_new_token() {
    let mut h = Harness::new(Config {
        outbox: Some(secs(60)),
        ..refreshing()
    });
    h.init();
    let e = h.active_engagement();
    let id = h.session.send_message(h.now, &e, "hi", None).unwrap();
    let post = h.take_rest("POST", "/messages");
    h.respond(&post, 401, json!({}));
    h.give_token(&token(WALL0_UNIX + 1800)).unwrap();
    let again = h.take_rest("POST", "/messages");
    h.respond(&again, 200, rest_message(1, "CUSTOMER", "hi"));
    assert!(matches!(h.take_reply(id), Ok(ReplyValue::MessageSent(_))));
    assert!(
        h.events
            .iter()
            .all(|e| !matches!(e, Event::EventStreamFailed(f) if f.reason == StreamFailureReason::Unauthorized))
    );
    assert!(h.sent.iter().all(|r| r.kind != RequestKind::Rest));
}

#[test]
fn token_refresh_ranges_are_checked() {
    for bad in [
        TokenRefresh {
            lead: Duration::ZERO,
            ..TokenRefresh::default()
        },
        TokenRefresh {
            retry: secs(301),
            ..TokenRefresh::default()
        },
        TokenRefresh {
            timeout: Duration::ZERO,
            ..TokenRefresh::default()
        },
        TokenRefresh {
            max_in_a_row: 0,
            ..TokenRefresh::default()
        },
    ] {
        let config = Config {
            token_refresh: Some(bad),
            ..Config::default()
        };
        assert_eq!(config.validate().map_err(|e| e.code()), Err("ACS-303"));
    }
}

#[test]
fn a_token_expired_before_init_or_set_token_says_so() {
    let mut h = Harness::with_token(Config::default(), token(1));
    let refused = h.session.init(h.now, h.wall()).unwrap_err();
    assert!(refused.is_expired_token(), "{refused}");
    let mut h = Harness::new(Config::default());
    h.init();
    let refused = h.session.set_token(h.now, h.wall(), token(1)).unwrap_err();
    assert!(refused.is_expired_token(), "{refused}");
}

#[test]
fn a_401_to_a_token_already_replaced_is_sent_again_with_the_new_one_at_once() {
    let mut h = Harness::new(refreshing());
    h.init();
    // Three calls go out with the same token, which then lapses.
    let ids: Vec<_> = (0..3)
        .map(|_| h.session.list_engagements(h.now).unwrap())
        .collect();
    let reqs: Vec<_> = (0..3).map(|_| h.take_rest("GET", "/sessions/")).collect();
    h.respond(&reqs[0], 401, json!({"detail": "Token expired"}));
    assert_eq!(h.fetches.len(), 1);
    let fresh = token(WALL0_UNIX + 1800);
    h.give_token(&fresh).unwrap();
    let first_again = h.take_rest("GET", "/sessions/");
    assert_eq!(first_again.id, ids[0]);
    // The two others were refused for the old token: no new token is asked for (three
    // would have used up the cap on refreshes in a row), each goes again with the new one.
    for (req, id) in reqs[1..].iter().zip(&ids[1..]) {
        h.respond(req, 401, json!({"detail": "Token expired"}));
        assert!(h.fetches.is_empty(), "the new token is already here");
        let again = h.take_rest("GET", "/sessions/");
        assert_eq!(again.id, *id);
        assert_eq!(bearer(&again), format!("Bearer {}", fresh.expose()));
        h.respond(&again, 200, session_json(json!([])));
        assert!(matches!(h.take_reply(*id), Ok(ReplyValue::Engagements(_))));
    }
    h.respond(&first_again, 200, session_json(json!([])));
    assert!(matches!(
        h.take_reply(ids[0]),
        Ok(ReplyValue::Engagements(_))
    ));
    // Refused again with the token in use, a call still gets its one replay.
    let id = h.session.list_engagements(h.now).unwrap();
    let req = h.take_rest("GET", "/sessions/");
    h.respond(&req, 401, json!({}));
    assert_eq!(h.fetches.len(), 1);
    h.give_token(&token(WALL0_UNIX + 2400)).unwrap();
    let again = h.take_rest("GET", "/sessions/");
    h.respond(&again, 401, json!({}));
    assert_eq!(
        h.take_reply(id),
        Err(ChatError::InvalidToken { detail: None })
    );
}
