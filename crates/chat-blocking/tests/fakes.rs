//! The client against fake transports (no server): the requests `init` sends, shutdown,
//! backpressure, token errors at connect, and `retry_connection` cutting a backoff short.
#![allow(clippy::unwrap_used)]

mod support;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chat_blocking::{
    BoxError, Cancel, Client, ClientBuilder, Config, Event, EventStream, EventTransport,
    HttpTransport, PollOutcome, Request, Response, StreamFailureReason, TransportError,
};
use chat_core::Method;
use serde_json::json;
use support::PATIENCE;

const SID: &str = "5e55e55e-0000-4000-8000-000000000001";
const EID: &str = "e0000000-0000-4000-8000-000000000001";
const DID: &str = "d0000000-0000-4000-8000-000000000001";
const INTEGRATION: &str = "123e4567-e89b-12d3-a456-426614174000";
/// Payload `{"exp":4000000000}`.
const TOKEN: &str = "jwt.e30.eyJleHAiOjQwMDAwMDAwMDB9.first";

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

/// Requests seen: method, URL, headers.
type Log = Arc<Mutex<Vec<(Method, String, Vec<(String, String)>)>>>;

/// The REST side of a server: create session and engagement, delete session.
struct Rest(Log);

impl HttpTransport for Rest {
    fn send(&self, request: Request) -> Result<Response, TransportError> {
        let headers = request
            .headers()
            .map(|(n, v)| (n.to_owned(), v.to_owned()))
            .collect();
        self.0
            .lock()
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
    }
}

/// An event stream answered by a closure, as a long poll's HTTP answers.
struct Polls<F>(F);

impl<F> EventTransport for Polls<F>
where
    F: FnMut(Request) -> Result<Response, TransportError> + Send + 'static,
{
    fn poll(&mut self, request: Request, _cancel: &Cancel) -> PollOutcome {
        match (self.0)(request) {
            Ok(r) => PollOutcome::from_http(r.status, r.body),
            Err(e) => PollOutcome::Failed(e),
        }
    }
}

fn builder(log: Log, events: Box<dyn EventTransport>) -> ClientBuilder {
    Client::builder("https://axp.example", INTEGRATION, "the-appkey")
        .token(TOKEN)
        .http_transport(Arc::new(Rest(log)))
        .event_transport(events)
        .config(Config {
            poll_timeout: Duration::from_secs(5),
            ..Config::default()
        })
}

fn next_named(events: &EventStream, name: &str) -> Event {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let e = events.recv_deadline(deadline).expect("an event in time");
        if e.name() == name {
            return e.event;
        }
    }
}

#[test]
fn connect_sends_init_with_the_headers_and_shutdown_ends_everything() {
    let log = Log::default();
    let never = Polls(|_: Request| -> Result<Response, TransportError> {
        panic!("no poll before an engagement")
    });
    let (client, events) = builder(Arc::clone(&log), Box::new(never))
        .connect()
        .unwrap();
    assert_eq!(client.session_id().as_str(), SID);
    assert!(matches!(
        events.recv().unwrap().event,
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
    // Nothing secret in the handles' Debug.
    for debug in [format!("{client:?}"), format!("{events:?}")] {
        assert!(
            !debug.contains("first") && !debug.contains("the-appkey"),
            "{debug}"
        );
    }
    client.shutdown(None).unwrap();
    assert!(matches!(
        events.recv().unwrap().event,
        Event::Shutdown { reason: None }
    ));
    assert!(events.recv().is_none());
    assert_eq!(log.lock().unwrap().last().unwrap().0, Method::Delete);
    assert!(client.is_closed());
    assert_eq!(client.retry_connection().unwrap_err().code(), "ACS-310");
}

#[test]
fn a_slow_app_gets_backpressure_not_loss() {
    let polls_made = Arc::new(AtomicUsize::new(0));
    let next_index = Arc::new(AtomicU64::new(1));
    let polls = {
        let polls_made = Arc::clone(&polls_made);
        Polls(move |_: Request| {
            let n = polls_made.fetch_add(1, Ordering::SeqCst) as u64;
            let mut batch = Vec::new();
            if n == 0 {
                batch.push(customer_added(1));
            }
            for _ in 0..5 {
                let i = next_index.fetch_add(1, Ordering::SeqCst);
                batch.push(message(1 + i, i));
            }
            Ok(Response::new(200, body(serde_json::Value::Array(batch))))
        })
    };
    let (client, events) = builder(Log::default(), Box::new(polls))
        .event_capacity(2)
        .connect()
        .unwrap();
    client.create_engagement().unwrap();
    // The client is driven for a while, but nobody takes events: it stops taking batches.
    events.run_until(Instant::now() + Duration::from_millis(300));
    let stalled = polls_made.load(Ordering::SeqCst);
    assert!(stalled <= 3, "{stalled} polls while nobody reads");
    // Reading resumes the flow; every message arrives once, in order.
    let mut index = 0;
    while index < 40 {
        if let Event::MessageArrived(m) = next_named(&events, "MESSAGE_ARRIVED") {
            index += 1;
            assert_eq!(m.message_index, index);
        }
    }
    assert!(polls_made.load(Ordering::SeqCst) > stalled);
    client.shutdown(None).unwrap();
}

#[test]
fn provider_failure_at_connect_is_acs_305_and_no_token_is_acs_302() {
    let provider = || -> Result<String, BoxError> { Err("backend down".into()) };
    let err = Client::builder("https://axp.example", INTEGRATION, "k")
        .token_provider(provider)
        .connect()
        .unwrap_err();
    assert_eq!(err.code(), "ACS-305");
    assert!(err.to_string().contains("backend down"), "{err}");
    // A provider that panics is an error too, not a panic of the caller.
    let provider = || -> Result<String, BoxError> { panic!("the provider's bug") };
    let err = Client::builder("https://axp.example", INTEGRATION, "k")
        .token_provider(provider)
        .connect()
        .unwrap_err();
    assert_eq!(err.code(), "ACS-305");
    // An expired token from the provider.
    let provider = || -> Result<String, BoxError> { Ok("jwt.e30.eyJleHAiOjF9.old".to_owned()) };
    let err = Client::builder("https://axp.example", INTEGRATION, "k")
        .token_provider(provider)
        .connect()
        .unwrap_err();
    assert_eq!(err.code(), "ACS-305");
    let err = Client::builder("https://axp.example", INTEGRATION, "k")
        .connect()
        .unwrap_err();
    assert_eq!(err.code(), "ACS-302");
    let err = Client::builder("http://axp.example", INTEGRATION, "k")
        .token(TOKEN)
        .connect()
        .unwrap_err();
    assert_eq!(err.code(), "ACS-302");
}

#[test]
fn retry_connection_cuts_the_backoff_short() {
    let mut n = 0;
    let polls = Polls(move |_: Request| {
        n += 1;
        match n {
            1 => Ok(Response::new(200, body(json!([customer_added(1)])))),
            2 => Err(TransportError::Disconnected),
            // A held poll: the server has nothing new.
            _ => {
                std::thread::sleep(Duration::from_millis(20));
                Ok(Response::new(200, b"[]".to_vec()))
            }
        }
    });
    let (client, events) = builder(Log::default(), Box::new(polls)).connect().unwrap();
    client.create_engagement().unwrap();
    next_named(&events, "ENGAGEMENT_ACTIVE");
    let failed = next_named(&events, "EVENT_STREAM_FAILED");
    assert!(
        matches!(failed, Event::EventStreamFailed(ref f)
            if f.retry_after == Some(Duration::from_secs(1))
                && f.reason == StreamFailureReason::ServerUnreachable),
        "{failed:?}"
    );
    let start = Instant::now();
    client.retry_connection().unwrap();
    next_named(&events, "EVENT_STREAM_CONNECTED");
    // The backoff was 1 to 2 s.
    assert!(
        start.elapsed() < Duration::from_millis(900),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(client.retry_connection().unwrap_err().code(), "ACS-318");
    client.shutdown(None).unwrap();
}
