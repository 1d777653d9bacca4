//! Unit tests of the adapter: mockall mocks of the transports and the token provider, with
//! tokio's clock paused.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chat_core::{Method, PollOutcome, Request, RequestKind, TransportError};
use serde_json::json;

use crate::token::MockTokenProvider;
use crate::transport::{MockEventTransport, MockHttpTransport};
use crate::{
    Client, ClientBuilder, Config, Event, EventStream, EventTransport, Response,
    StreamFailureReason,
};

const SID: &str = "5e55e55e-0000-4000-8000-000000000001";
const EID: &str = "e0000000-0000-4000-8000-000000000001";
const DID: &str = "d0000000-0000-4000-8000-000000000001";
const INTEGRATION: &str = "123e4567-e89b-12d3-a456-426614174000";
/// Payload `{"exp":4000000000}`.
const TOKEN: &str = "jwt.e30.eyJleHAiOjQwMDAwMDAwMDB9.first";
/// Payload `{"exp":4000000001}`.
const TOKEN2: &str = "jwt.e30.eyJleHAiOjQwMDAwMDAwMDF9.second";

fn body(v: serde_json::Value) -> Vec<u8> {
    v.to_string().into_bytes()
}

fn customer_added(id: u64) -> serde_json::Value {
    json!({"eventId": id.to_string(), "eventType": "PARTICIPANT_ADDED", "engagementId": EID,
           "dialogId": DID, "participant": {"participantId": "p-customer", "participantType": "CUSTOMER"}})
}

fn message(id: u64, index: u64) -> serde_json::Value {
    json!({"eventId": id.to_string(), "eventType": "MESSAGE", "engagementId": EID, "dialogId": DID,
           "message": {"messageId": format!("00000000-0000-4000-8000-{index:012}"), "messageIndex": index,
                       "body": {"elementType": "TEXT", "elementText": {"text": format!("m{index}"), "textFormat": "PLAINTEXT"}}},
           "participant": {"participantId": "p-agent", "participantType": "AGENT"}})
}

/// The REST side of a server: create session and engagement, delete session.
/// Requests seen: method, URL, headers.
type Log = Arc<Mutex<Vec<(Method, String, Vec<(String, String)>)>>>;

fn rest_server(log: Log) -> MockHttpTransport {
    let mut http = MockHttpTransport::new();
    http.expect_send().returning(move |request: Request| {
        let headers = request
            .headers()
            .map(|(n, v)| (n.to_owned(), v.to_owned()))
            .collect();
        log.lock()
            .unwrap()
            .push((request.method, request.url.clone(), headers));
        Ok(match request.method {
            Method::Post if request.url.ends_with("/sessions") => {
                Response::new(201, body(json!({"sessionId": SID, "engagements": []})))
            }
            Method::Post if request.url.ends_with("/engagements") => Response::new(
                201,
                body(json!({"engagementId": EID, "dialogs": [{"dialogId": DID,
                    "dialogStatus": "PENDING", "participants": []}]})),
            ),
            Method::Delete => Response::new(204, Vec::new()),
            _ => Response::new(200, b"[]".to_vec()),
        })
    });
    http
}

fn builder(http: MockHttpTransport, events: Box<dyn EventTransport>) -> ClientBuilder {
    Client::builder("https://axp.example", INTEGRATION, "the-appkey")
        .token(TOKEN)
        .http_transport(Arc::new(http))
        .event_transport(events)
        .config(Config {
            poll_timeout: Duration::from_secs(5),
            ..Config::default()
        })
}

async fn next_named(events: &mut EventStream, name: &str) -> Event {
    loop {
        let e = tokio::time::timeout(Duration::from_secs(600), events.recv())
            .await
            .expect("in time")
            .expect("an event");
        if e.name() == name {
            return e.event;
        }
    }
}

#[tokio::test(start_paused = true)]
async fn connect_sends_init_with_the_headers_and_shutdown_ends_everything() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let mut polls = MockEventTransport::new();
    polls.expect_poll().never();
    let (client, events) = builder(rest_server(Arc::clone(&log)), Box::new(polls))
        .connect()
        .await
        .unwrap();
    assert_eq!(client.session_id().as_str(), SID);
    assert!(matches!(
        events.recv().await.unwrap().event,
        Event::Initialized(_)
    ));
    {
        let log = log.lock().unwrap();
        let (method, url, headers) = &log[0];
        assert_eq!(*method, Method::Post);
        assert_eq!(
            url,
            &format!("https://axp.example/sdk/digital/chat/v1/integrations/{INTEGRATION}/sessions")
        );
        assert!(headers.contains(&("Authorization".into(), format!("Bearer {TOKEN}"))));
        assert!(headers.contains(&("appkey".into(), "the-appkey".into())));
    }
    // Nothing secret in the handle's Debug.
    assert!(!format!("{client:?}").contains("first"));
    client.shutdown(None).await.unwrap();
    assert!(matches!(
        events.recv().await.unwrap().event,
        Event::Shutdown { reason: None }
    ));
    assert!(events.recv().await.is_none());
    assert_eq!(log.lock().unwrap().last().unwrap().0, Method::Delete);
    assert!(client.is_closed());
    assert_eq!(client.end_reason(), Some(crate::EndReason::Shutdown(None)));
    assert_eq!(client.retry_connection().unwrap_err().code(), "ACS-310");
    assert!(headers_have_user_agent(&log));
}

fn headers_have_user_agent(log: &Log) -> bool {
    log.lock().unwrap().iter().all(|(_, _, headers)| {
        headers
            .iter()
            .any(|(k, v)| k == "User-Agent" && v.starts_with("axp-chat-rs/"))
    })
}

#[tokio::test(start_paused = true)]
async fn a_slow_app_gets_backpressure_not_loss() {
    let polls_made = Arc::new(AtomicUsize::new(0));
    let next_index = Arc::new(AtomicU64::new(1));
    let mut polls = MockEventTransport::new();
    {
        let polls_made = Arc::clone(&polls_made);
        polls.expect_poll().returning(move |_request: Request| {
            let n = polls_made.fetch_add(1, Ordering::SeqCst) as u64;
            let mut batch = Vec::new();
            if n == 0 {
                batch.push(customer_added(1));
            }
            for _ in 0..5 {
                let i = next_index.fetch_add(1, Ordering::SeqCst);
                batch.push(message(1 + i, i));
            }
            PollOutcome::Events(body(serde_json::Value::Array(batch)))
        });
    }
    polls.expect_reset().returning(|| ());
    let (client, mut events) = builder(rest_server(Arc::default()), Box::new(polls))
        .event_capacity(2)
        .connect()
        .await
        .unwrap();
    client.create_engagement().await.unwrap();
    // The app does not read for a (virtual) minute: the driver stops taking batches.
    tokio::time::sleep(Duration::from_secs(60)).await;
    let stalled = polls_made.load(Ordering::SeqCst);
    assert!(stalled <= 3, "{stalled} polls while nobody reads");
    // Reading resumes the flow; every message arrives once, in order.
    let mut index = 0;
    while index < 40 {
        if let Event::MessageArrived(m) = next_named(&mut events, "MESSAGE_ARRIVED").await {
            index += 1;
            assert_eq!(m.message_index, index);
        }
    }
    assert!(polls_made.load(Ordering::SeqCst) > stalled);
    client.shutdown(None).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_401_on_the_stream_refreshes_once_and_resumes_with_the_new_token() {
    let bearers = Arc::new(Mutex::new(Vec::new()));
    let mut polls = MockEventTransport::new();
    {
        let bearers = Arc::clone(&bearers);
        let mut first = true;
        polls.expect_poll().returning(move |request: Request| {
            let bearer = request.headers().next().unwrap().1.to_owned();
            bearers.lock().unwrap().push(bearer);
            if std::mem::take(&mut first) {
                PollOutcome::Unauthorized
            } else {
                PollOutcome::Events(body(json!([customer_added(1)])))
            }
        });
    }
    polls.expect_reset().returning(|| ());
    let mut provider = MockTokenProvider::new();
    provider
        .expect_token()
        .times(1)
        .returning(|| Ok(TOKEN2.to_owned()));
    let (client, mut events) = builder(rest_server(Arc::default()), Box::new(polls))
        .token_provider(provider)
        .connect()
        .await
        .unwrap();
    client.create_engagement().await.unwrap();
    let failed = next_named(&mut events, "EVENT_STREAM_FAILED").await;
    assert!(
        matches!(failed, Event::EventStreamFailed(f) if f.reason == StreamFailureReason::Unauthorized)
    );
    next_named(&mut events, "EVENT_STREAM_CONNECTED").await;
    next_named(&mut events, "ENGAGEMENT_ACTIVE").await;
    let bearers = bearers.lock().unwrap().clone();
    assert_eq!(bearers[0], format!("Bearer {TOKEN}"));
    assert_eq!(bearers[1], format!("Bearer {TOKEN2}"));
    client.shutdown(None).await.unwrap();
}

/// A stream transport that never answers, and counts resets and abandoned polls.
#[derive(Default)]
struct Silent {
    resets: Arc<AtomicUsize>,
    abandoned: Arc<AtomicUsize>,
}

struct Abandon(Arc<AtomicUsize>);

impl Drop for Abandon {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[async_trait]
impl EventTransport for Silent {
    async fn poll(&mut self, request: Request) -> PollOutcome {
        assert!(matches!(request.kind, RequestKind::Poll { .. }));
        let _guard = Abandon(Arc::clone(&self.abandoned));
        std::future::pending().await
    }
    async fn reset(&mut self) {
        self.resets.fetch_add(1, Ordering::SeqCst);
    }
}

#[tokio::test(start_paused = true)]
async fn poll_timeout_and_backoff_run_on_tokios_clock() {
    let silent = Silent::default();
    let resets = Arc::clone(&silent.resets);
    let (client, mut events) = builder(rest_server(Arc::default()), Box::new(silent))
        .connect()
        .await
        .unwrap();
    client.create_engagement().await.unwrap();
    let start = tokio::time::Instant::now();
    let failed = next_named(&mut events, "EVENT_STREAM_FAILED").await;
    assert_eq!(start.elapsed(), Duration::from_secs(5));
    let Event::EventStreamFailed(f) = failed else {
        unreachable!()
    };
    assert_eq!(f.reason, StreamFailureReason::ServerUnreachable);
    assert_eq!(f.retry_after, Some(Duration::from_secs(1)));
    // The next attempt after 1–2 s of backoff, on a fresh connection.
    next_named(&mut events, "EVENT_STREAM_CONNECTING").await;
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_secs(6) && waited < Duration::from_secs(7),
        "{waited:?}"
    );
    tokio::task::yield_now().await;
    next_named(&mut events, "EVENT_STREAM_FAILED").await;
    assert!(resets.load(Ordering::SeqCst) >= 1);
    client.shutdown(None).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn shutdown_aborts_the_poll_in_flight_and_leaves_no_task() {
    let silent = Silent::default();
    let abandoned = Arc::clone(&silent.abandoned);
    let (client, mut events) = builder(rest_server(Arc::default()), Box::new(silent))
        .connect()
        .await
        .unwrap();
    client.create_engagement().await.unwrap();
    next_named(&mut events, "EVENT_STREAM_CONNECTING").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(abandoned.load(Ordering::SeqCst), 0);
    client.shutdown(None).await.unwrap();
    // The poll future was dropped before shutdown returned.
    assert_eq!(abandoned.load(Ordering::SeqCst), 1);
    assert_eq!(Arc::strong_count(&abandoned), 1);
}

#[tokio::test(start_paused = true)]
async fn provider_failure_at_connect_is_acs_305_and_no_token_is_acs_302() {
    let mut provider = MockTokenProvider::new();
    provider
        .expect_token()
        .returning(|| Err("backend down".into()));
    let err = Client::builder("https://axp.example", INTEGRATION, "k")
        .token_provider(provider)
        .connect()
        .await
        .unwrap_err();
    assert_eq!(err.code(), "ACS-305");
    let err = Client::builder("https://axp.example", INTEGRATION, "k")
        .connect()
        .await
        .unwrap_err();
    assert_eq!(err.code(), "ACS-302");
    let err = Client::builder("http://axp.example", INTEGRATION, "k")
        .token(TOKEN)
        .connect()
        .await
        .unwrap_err();
    assert_eq!(err.code(), "ACS-302");
}

#[tokio::test(start_paused = true)]
async fn retry_connection_cuts_the_backoff_short() {
    let mut polls = MockEventTransport::new();
    let mut n = 0;
    polls.expect_poll().returning(move |_request: Request| {
        n += 1;
        match n {
            1 => PollOutcome::Events(body(json!([customer_added(1)]))),
            2 => PollOutcome::Failed(TransportError::Disconnected),
            _ => PollOutcome::Events(b"[]".to_vec()),
        }
    });
    polls.expect_reset().returning(|| ());
    let (client, mut events) = builder(rest_server(Arc::default()), Box::new(polls))
        .connect()
        .await
        .unwrap();
    client.create_engagement().await.unwrap();
    next_named(&mut events, "ENGAGEMENT_ACTIVE").await;
    let failed = next_named(&mut events, "EVENT_STREAM_FAILED").await;
    assert!(
        matches!(failed, Event::EventStreamFailed(f) if f.retry_after == Some(Duration::from_secs(1)))
    );
    let start = tokio::time::Instant::now();
    client.retry_connection().unwrap();
    next_named(&mut events, "EVENT_STREAM_CONNECTED").await;
    assert!(
        start.elapsed() < Duration::from_millis(10),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(client.retry_connection().unwrap_err().code(), "ACS-318");
    client.shutdown(None).await.unwrap();
}

#[test]
fn the_handles_and_their_futures_are_send() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>(_: T) {}
    send_sync::<crate::Client>();
    send_sync::<crate::Engagement>();
    send_sync::<crate::EventStream>();
    // Type-checked, never run: a `recv` of a shared stream may move to another task.
    #[allow(dead_code)]
    fn recv_is_send(events: &crate::EventStream) {
        send(events.recv());
        send(events.recv_deadline(std::time::Instant::now()));
    }
}
