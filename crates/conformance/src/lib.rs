//! Tests only (unpublished): the one conformance suite of chat-tokio and chat-blocking.
//!
//! The twins have the same API apart from `async`, so their end-to-end sequences are one
//! text: [`suite!`] expands them inside an adapter's test crate, with `.await` after every
//! call for chat-tokio and nothing for chat-blocking:
//!
//! ```text
//! // crates/chat-tokio/tests/conformance.rs
//! conformance::suite!(tokio);
//! // crates/chat-blocking/tests/conformance.rs
//! conformance::suite!(blocking);
//! ```
//!
//! Each sequence runs once per stream transport (long polling and the WebSocket) against
//! an in-process emulator ([`Server`]) that runs on a runtime of its own, so that it serves
//! the blocking client (which has none) and the async one alike. Any behaviour in which the
//! twins differ fails here for one of them.
#![forbid(unsafe_code)]

use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

pub use chat_emulator::{AgentMode, Control, Credentials};
pub use tempfile;

/// How long any awaited event or state may take.
pub const PATIENCE: Duration = Duration::from_secs(15);

/// An in-process emulator on a thread and tokio runtime of its own; shut down on drop.
pub struct Server {
    base_url: String,
    credentials: Credentials,
    control: Control,
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl Server {
    /// Starts an emulator with this agent, short long-poll holds and a quick agent.
    ///
    /// # Panics
    ///
    /// If the emulator cannot start (a test harness, where that is the right answer).
    pub fn start(agent: AgentMode) -> Self {
        let (ready_tx, ready_rx) = mpsc::channel();
        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("a runtime for the emulator");
            let emulator = runtime
                .block_on(
                    chat_emulator::Emulator::builder()
                        .hold_time(Duration::from_millis(400))
                        .agent(agent)
                        .agent_delay(Duration::from_millis(20))
                        .allow_short_token_ttl(true)
                        .ws_ping_interval(Duration::from_secs(5))
                        .start(),
                )
                .expect("the emulator starts");
            let _ = ready_tx.send((
                emulator.base_url(),
                emulator.credentials().clone(),
                emulator.control(),
            ));
            // Until the test drops its `Server` (or panics and drops it).
            let _ = stop_rx.recv();
            runtime.block_on(emulator.shutdown());
        });
        let (base_url, credentials, control) = ready_rx.recv().expect("the emulator starts");
        Self {
            base_url,
            credentials,
            control,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    /// Its base URL (`http://127.0.0.1:port`).
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Its integration id, appkey and OAuth client.
    pub fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    /// Its control API: the contact-center side and faults.
    pub fn control(&self) -> &Control {
        &self.control
    }

    /// A verified customer's chat token, valid for an hour.
    pub fn token(&self, customer: &str) -> String {
        self.control
            .mint_token(customer, true, Duration::from_secs(3600))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Expands the conformance suite for one adapter: `suite!(tokio)` in chat-tokio's tests,
/// `suite!(blocking)` in chat-blocking's. Each sequence becomes a module with one test per
/// stream transport (`long_poll`, `websocket`).
#[macro_export]
macro_rules! suite {
    (tokio) => {
        $crate::__suite!(chat_tokio, tokio::test, [async], [.await]);
    };
    (blocking) => {
        $crate::__suite!(chat_blocking, test, [], []);
    };
}

/// The suite itself: `$sdk` is the adapter crate, `$test` the test attribute, `$async` the
/// `async` of a function or block (or nothing), `$aw` what follows a call (`.await` or
/// nothing).
#[doc(hidden)]
#[macro_export]
macro_rules! __suite {
    ($sdk:ident, $test:meta, [$($async:tt)*], [$($aw:tt)*]) => {
        #[allow(dead_code, unreachable_pub, clippy::unwrap_used)]
        mod conformance_support {
            use std::time::{Duration, Instant};

            pub use $crate::{AgentMode, Server, PATIENCE};
            pub use $sdk::{
                ChatEvent, Client, ClientBuilder, Config, Event, EventStream, SessionStore,
                SqliteStore, StreamTransport,
            };

            /// A SQLite store in a directory of its own, removed with the `TempDir`.
            pub fn sqlite_store() -> (std::sync::Arc<SqliteStore>, $crate::tempfile::TempDir) {
                let dir = $crate::tempfile::tempdir().unwrap();
                let store = SqliteStore::open(dir.path().join("sessions.db")).unwrap();
                (std::sync::Arc::new(store), dir)
            }

            /// Short poll and request timeouts, so that a test never waits long.
            pub fn config() -> Config {
                Config {
                    poll_timeout: Duration::from_secs(3),
                    request_timeout: Duration::from_secs(5),
                    ..Config::default()
                }
            }

            /// A builder for `customer` without a token.
            pub fn bare(emu: &Server, transport: StreamTransport) -> ClientBuilder {
                let c = emu.credentials();
                Client::builder(emu.base_url(), &c.integration_id, &c.appkey)
                    .stream_transport(transport)
                    .config(config())
            }

            /// A builder for `customer` with a one-hour token.
            pub fn builder(emu: &Server, transport: StreamTransport, customer: &str) -> ClientBuilder {
                bare(emu, transport).token(emu.token(customer))
            }

            pub $($async)* fn connect(
                emu: &Server,
                transport: StreamTransport,
                customer: &str,
            ) -> (Client, EventStream) {
                builder(emu, transport, customer).connect() $($aw)* .expect("connects")
            }

            /// The first event matching `pred`, and every event before it; panics with what
            /// was seen if none comes in time.
            pub $($async)* fn expect(
                events: &EventStream,
                pred: impl Fn(&Event) -> bool,
            ) -> (ChatEvent, Vec<Event>) {
                let mut seen = Vec::new();
                let deadline = Instant::now() + PATIENCE;
                loop {
                    match events.recv_deadline(deadline) $($aw)* {
                        Ok(e) if pred(&e.event) => return (e, seen),
                        Ok(e) => seen.push(e.event),
                        Err(e) => panic!("no matching event ({e:?}); seen: {:?}", names(&seen)),
                    }
                }
            }

            pub fn names(events: &[Event]) -> Vec<&'static str> {
                events.iter().map(Event::name).collect()
            }

            pub fn is_active(e: &Event) -> bool {
                matches!(e, Event::EngagementActive(_))
            }

            /// A message from the contact-center side whose text contains `needle`.
            pub fn arrived_with(needle: &str) -> impl Fn(&Event) -> bool + '_ {
                move |e| {
                    matches!(e, Event::MessageArrived(m) if m.text().is_some_and(|t| t.contains(needle)))
                }
            }

            pub fn delivered_with(needle: &str) -> impl Fn(&Event) -> bool + '_ {
                move |e| {
                    matches!(e, Event::MessageDelivered(m) if m.text().is_some_and(|t| t.contains(needle)))
                }
            }
        }

        #[allow(clippy::unwrap_used)]
        mod conformance_sequences {
            use std::collections::{HashMap, HashSet};
            use std::sync::Arc;
            use std::sync::atomic::{AtomicUsize, Ordering};
            use std::time::Duration;

            use $sdk::{
                BoxError, DisconnectReason, EndReason, EngagementStatus, Error, Event,
                ParticipantType, RecvTimeoutError, ShutdownReason, StreamState, StreamTransport,
                TryRecvError,
            };

            use super::conformance_support::*;

            /// Connect: `INITIALIZED` first, the local reads answer, the stream waits for a chat;
            /// shut down: `SHUTDOWN` last, the stream ends, every command is ACS-310.
            pub $($async)* fn connect_and_shut_down(transport: StreamTransport) {
                let emu = Server::start(AgentMode::Agent);
                let (client, events) = connect(&emu, transport, "ada") $($aw)*;
                let first = events.recv() $($aw)* .expect("a first event");
                assert_eq!(first.event.name(), "INITIALIZED");
                let Event::Initialized(ctx) = &first.event else { unreachable!() };
                assert_eq!(&ctx.session_id, client.session_id());
                assert_eq!(client.user_context().session_id, ctx.session_id);
                assert!(first.engagement_id().is_none());
                // No chat yet: no stream either.
                assert_eq!(client.stream_state(), StreamState::Closed);
                assert!(!client.is_closed());
                assert_eq!(client.end_reason(), None);
                assert!(client.engagements().is_empty());
                let kept = client.resumption().unwrap();
                assert_eq!(&kept.session_id, client.session_id());

                client.shutdown(Some(ShutdownReason::UserClosed)) $($aw)* .unwrap();
                let (_, _) = expect(&events, |e| matches!(e, Event::Shutdown { .. })) $($aw)*;
                assert!(events.recv() $($aw)* .is_none());
                assert!(client.is_closed());
                assert_eq!(
                    client.closed() $($aw)*,
                    EndReason::Shutdown(Some(ShutdownReason::UserClosed))
                );
                assert_eq!(client.set_token(&emu.token("ada")).unwrap_err().code(), "ACS-310");
                let err = client.create_engagement() $($aw)* .unwrap_err();
                assert!(matches!(err, Error::Closed(_)), "{err:?}");
                assert_eq!(client.resumption().unwrap_err().code(), "ACS-310");
                assert_eq!(events.try_recv().unwrap_err(), TryRecvError::Closed);
            }

            /// `create_engagement()` with no argument, `wait_active`, send and receive with
            /// the simulated agent, a reply to a message.
            pub $($async)* fn chat_with_the_agent(transport: StreamTransport) {
                let emu = Server::start(AgentMode::Agent);
                let (client, events) = connect(&emu, transport, "bea") $($aw)*;
                let chat = client.create_engagement() $($aw)* .unwrap();
                assert_eq!(chat.info().status, EngagementStatus::Pending);
                chat.wait_active() $($aw)* .unwrap();
                assert_eq!(chat.status(), EngagementStatus::Active);
                let (active, before) = expect(&events, is_active) $($aw)*;
                assert_eq!(active.engagement_id(), Some(chat.id()));
                assert_eq!(
                    names(&before),
                    ["INITIALIZED", "EVENT_STREAM_CONNECTING", "EVENT_STREAM_CONNECTED"]
                );
                assert_eq!(client.stream_state(), StreamState::Connected);
                // The agent joins and greets.
                expect(&events, |e| matches!(e, Event::MessageArrived(_))) $($aw)*;
                assert!(
                    chat.participants()
                        .unwrap()
                        .iter()
                        .any(|p| p.participant_type == ParticipantType::Agent)
                );

                let sent = chat.send_message("Where is my parcel?") $($aw)* .unwrap();
                assert_eq!(sent.text(), Some("Where is my parcel?"));
                assert_eq!(&sent.engagement_id, chat.id());
                let (echo, _) = expect(&events, delivered_with("Where is my parcel?")) $($aw)*;
                let Event::MessageDelivered(echo) = echo.event else { unreachable!() };
                assert_eq!(echo.message_id, sent.message_id);
                expect(&events, arrived_with("Where is my parcel?")) $($aw)*;

                let reply = chat.send_reply(&sent.message_id, "About that") $($aw)* .unwrap();
                assert_eq!(reply.parent_message_id.as_ref(), Some(&sent.message_id));
                client.shutdown(None) $($aw)* .unwrap();
            }

            /// A second client of the same customer lists the chat, previews it, and
            /// `join` gives the same handle type as `create_engagement`.
            pub $($async)* fn join_from_a_second_client(transport: StreamTransport) {
                let emu = Server::start(AgentMode::Agent);
                let (first, first_events) = connect(&emu, transport, "cy") $($aw)*;
                let chat = first.create_engagement() $($aw)* .unwrap();
                chat.wait_active() $($aw)* .unwrap();
                chat.send_message("from the laptop") $($aw)* .unwrap();

                let (second, second_events) = connect(&emu, transport, "cy") $($aw)*;
                let listed = second.list_engagements() $($aw)* .unwrap();
                assert_eq!(listed.len(), 1);
                let there = &listed[0];
                assert_eq!(there.id(), chat.id());
                assert_eq!(there.info().status, EngagementStatus::Pending);
                let preview = there.transcript() $($aw)* .unwrap();
                assert!(preview.iter().any(|m| m.text() == Some("from the laptop")));
                assert_eq!(there.send_message("x") $($aw)* .unwrap_err().code(), "ACS-313");

                let joined = there.join() $($aw)* .unwrap();
                // The same handle type as `create_engagement` gives.
                fn same_type<T>(_: &T, _: &T) {}
                same_type(&joined, &chat);
                assert_eq!(joined.id(), chat.id());
                joined.wait_active() $($aw)* .unwrap();
                assert_eq!(joined.status(), EngagementStatus::Active);

                chat.send_message("typed on the laptop") $($aw)* .unwrap();
                expect(&second_events, delivered_with("typed on the laptop")) $($aw)*;
                expect(&second_events, arrived_with("typed on the laptop")) $($aw)*;
                expect(&first_events, arrived_with("typed on the laptop")) $($aw)*;
                joined.send_message("typed on the phone") $($aw)* .unwrap();
                expect(&first_events, delivered_with("typed on the phone")) $($aw)*;
                first.shutdown(None) $($aw)* .unwrap();
                second.shutdown(None) $($aw)* .unwrap();
            }

            /// The transcript is oldest first, each message once, across pages; the pager
            /// and the pages are newest first.
            pub $($async)* fn history_and_transcript(transport: StreamTransport) {
                let emu = Server::start(AgentMode::Off);
                let (client, events) = connect(&emu, transport, "dee") $($aw)*;
                let chat = client.create_engagement() $($aw)* .unwrap();
                chat.wait_active() $($aw)* .unwrap();
                let mut want = Vec::new();
                for i in 0..7 {
                    let text = format!("line {i}");
                    if i % 3 == 2 {
                        emu.control()
                            .post_message(chat.id(), ParticipantType::Agent, &text)
                            .unwrap();
                        expect(&events, arrived_with(&text)) $($aw)*;
                    } else {
                        chat.send_message(&text) $($aw)* .unwrap();
                    }
                    want.push(text);
                }
                let transcript = chat.transcript() $($aw)* .unwrap();
                let texts: Vec<&str> = transcript.iter().filter_map(|m| m.text()).collect();
                let lines: Vec<&str> = texts.iter().copied().filter(|t| t.starts_with("line ")).collect();
                assert_eq!(lines, want);
                let ids: HashSet<_> = transcript.iter().map(|m| &m.message_id).collect();
                assert_eq!(ids.len(), transcript.len(), "no message twice");

                // Pages of 2, newest first, reach the same messages.
                let mut pager = chat.history(2) $($aw)* .unwrap();
                assert_eq!(pager.page_size(), 2);
                let mut newest_first: Vec<_> = pager.items().to_vec();
                while pager.older() $($aw)* .unwrap() {
                    newest_first.extend(pager.items().iter().cloned());
                }
                assert!(!pager.has_older());
                newest_first.reverse();
                assert_eq!(newest_first, transcript);
                assert!(pager.newer());
                assert!(pager.has_newer());
                assert_eq!(chat.history(0) $($aw)* .unwrap_err().code(), "ACS-322");
                client.shutdown(None) $($aw)* .unwrap();
            }

            /// A closure is a token provider: called at connect when no token was given, and
            /// by `refresh_token`; the refreshed client goes on.
            pub $($async)* fn token_from_a_provider(transport: StreamTransport) {
                let emu = Server::start(AgentMode::Agent);
                let calls = Arc::new(AtomicUsize::new(0));
                let provider = {
                    let (control, calls) = (emu.control().clone(), Arc::clone(&calls));
                    move || {
                        calls.fetch_add(1, Ordering::SeqCst);
                        let token = control.mint_token("eve", true, Duration::from_secs(3600));
                        $($async move)* { Ok::<_, BoxError>(token) }
                    }
                };
                let (client, events) = bare(&emu, transport)
                    .token_provider(provider)
                    .connect() $($aw)*
                    .unwrap();
                assert_eq!(calls.load(Ordering::SeqCst), 1);
                assert_eq!(events.recv() $($aw)* .unwrap().event.name(), "INITIALIZED");
                client.refresh_token() $($aw)* .unwrap();
                assert_eq!(calls.load(Ordering::SeqCst), 2);
                let chat = client.create_engagement() $($aw)* .unwrap();
                chat.wait_active() $($aw)* .unwrap();
                chat.send_message("after the refresh") $($aw)* .unwrap();
                expect(&events, arrived_with("after the refresh")) $($aw)*;
                client.shutdown(None) $($aw)* .unwrap();
            }

            /// A provider's failure is `Error::TokenProvider` (ACS-305), and keeps the
            /// provider's own error as its source.
            pub $($async)* fn token_provider_error_keeps_its_source(transport: StreamTransport) {
                let emu = Server::start(AgentMode::Agent);
                let provider = move || {
                    let failed: Result<String, BoxError> =
                        Err(std::io::Error::other("backend down").into());
                    $($async move)* { failed }
                };
                let err = bare(&emu, transport)
                    .token_provider(provider)
                    .connect() $($aw)*
                    .unwrap_err();
                assert!(matches!(err, Error::TokenProvider(_)), "{err:?}");
                assert_eq!(err.code(), "ACS-305");
                let mut chain = Vec::new();
                let mut source = std::error::Error::source(&err);
                while let Some(s) = source {
                    chain.push(s.to_string());
                    source = s.source();
                }
                assert!(chain.iter().any(|s| s == "backend down"), "{chain:?}");
                let io = std::iter::successors(std::error::Error::source(&err), |s| s.source())
                    .find_map(|s| s.downcast_ref::<std::io::Error>());
                assert_eq!(io.map(std::io::Error::kind), Some(std::io::ErrorKind::Other));
            }

            /// A chat that has ended: TERMINATED, and every command on it is ACS-314.
            pub $($async)* fn an_ended_chat_refuses_commands(transport: StreamTransport) {
                let emu = Server::start(AgentMode::Agent);
                let (client, events) = connect(&emu, transport, "fay") $($aw)*;
                let chat = client.create_engagement() $($aw)* .unwrap();
                chat.wait_active() $($aw)* .unwrap();
                chat.disconnect(Some(DisconnectReason::UserClosed)) $($aw)* .unwrap();
                let (ended, _) =
                    expect(&events, |e| matches!(e, Event::EngagementTerminated(_))) $($aw)*;
                assert_eq!(ended.engagement_id(), Some(chat.id()));
                assert_eq!(chat.status(), EngagementStatus::Terminated);
                assert_eq!(chat.send_message("anyone?") $($aw)* .unwrap_err().code(), "ACS-314");
                assert_eq!(chat.participants().unwrap_err().code(), "ACS-314");
                assert_eq!(chat.wait_active() $($aw)* .unwrap_err().code(), "ACS-314");
                assert_eq!(chat.disconnect(None) $($aw)* .unwrap_err().code(), "ACS-314");
                // The session goes on.
                let next = client.create_engagement() $($aw)* .unwrap();
                next.wait_active() $($aw)* .unwrap();
                client.shutdown(None) $($aw)* .unwrap();
            }

            /// What chat-core checks before anything goes out: ACS-313 before activation,
            /// ACS-322 for an empty or too long text or a malformed token, ACS-315 for a join of a joined chat.
            pub $($async)* fn commands_checked_locally(transport: StreamTransport) {
                let emu = Server::start(AgentMode::Agent);
                let (client, _events) = connect(&emu, transport, "gus") $($aw)*;
                let chat = client.create_engagement() $($aw)* .unwrap();
                if chat.status() == EngagementStatus::Pending {
                    assert_eq!(chat.send_message("early") $($aw)* .unwrap_err().code(), "ACS-313");
                }
                chat.wait_active() $($aw)* .unwrap();
                assert_eq!(chat.send_message("") $($aw)* .unwrap_err().code(), "ACS-322");
                let long = "x".repeat(4097);
                assert_eq!(chat.send_message(&long) $($aw)* .unwrap_err().code(), "ACS-322");
                assert_eq!(chat.join() $($aw)* .unwrap_err().code(), "ACS-315");
                assert_eq!(client.set_token("not a jwt").unwrap_err().code(), "ACS-322");
                client.shutdown(None) $($aw)* .unwrap();
            }

            /// The events of several chats at once, told apart by `ChatEvent::engagement_id`,
            /// each chat's in order.
            pub $($async)* fn events_per_chat(transport: StreamTransport) {
                let emu = Server::start(AgentMode::Off);
                let (client, events) = connect(&emu, transport, "hal") $($aw)*;
                let mut chats = Vec::new();
                for _ in 0..3 {
                    let chat = client.create_engagement() $($aw)* .unwrap();
                    chat.wait_active() $($aw)* .unwrap();
                    chats.push(chat);
                }
                for j in 0..3 {
                    for (i, chat) in chats.iter().enumerate() {
                        emu.control()
                            .post_message(chat.id(), ParticipantType::Agent, &format!("chat{i} msg{j}"))
                            .unwrap();
                    }
                }
                let mut per_chat: HashMap<_, Vec<String>> = HashMap::new();
                while per_chat.values().map(Vec::len).sum::<usize>() < 9 {
                    let (e, _) = expect(&events, |e| matches!(e, Event::MessageArrived(_))) $($aw)*;
                    let id = e.engagement_id().unwrap().clone();
                    let Event::MessageArrived(m) = e.event else { unreachable!() };
                    assert_eq!(m.engagement_id, id);
                    per_chat.entry(id).or_default().push(m.text().unwrap().to_owned());
                }
                for (i, chat) in chats.iter().enumerate() {
                    let want: Vec<String> = (0..3).map(|j| format!("chat{i} msg{j}")).collect();
                    assert_eq!(per_chat[chat.id()], want);
                }
                assert_eq!(client.engagements().len(), 3);
                assert_eq!(client.engagement(chats[1].id()).unwrap().id(), chats[1].id());
                client.shutdown(None) $($aw)* .unwrap();
            }

            /// The receiver's methods: `try_recv`, `recv_timeout`, `recv_deadline`,
            /// `queued`, all the same in both clients.
            pub $($async)* fn the_event_receiver(transport: StreamTransport) {
                let emu = Server::start(AgentMode::Off);
                let (client, events) = connect(&emu, transport, "ivy") $($aw)*;
                expect(&events, |e| matches!(e, Event::Initialized(_))) $($aw)*;
                while events.try_recv().is_ok() {}
                assert_eq!(events.try_recv().unwrap_err(), TryRecvError::Empty);
                assert_eq!(events.queued(), 0);
                assert_eq!(
                    events.recv_timeout(Duration::from_millis(50)) $($aw)* .unwrap_err(),
                    RecvTimeoutError::Timeout
                );
                let past = std::time::Instant::now();
                assert_eq!(
                    events.recv_deadline(past) $($aw)* .unwrap_err(),
                    RecvTimeoutError::Timeout
                );
                let chat = client.create_engagement() $($aw)* .unwrap();
                chat.wait_active() $($aw)* .unwrap();
                // `wait_active` took no event: ENGAGEMENT_ACTIVE is still there.
                let (e, _) = expect(&events, is_active) $($aw)*;
                assert_eq!(e.engagement_id(), Some(chat.id()));
                client.shutdown(None) $($aw)* .unwrap();
                let (_, _) = expect(&events, |e| matches!(e, Event::Shutdown { .. })) $($aw)*;
                assert_eq!(
                    events.recv_timeout(Duration::from_secs(1)) $($aw)* .unwrap_err(),
                    RecvTimeoutError::Closed
                );
            }

            /// A session dropped without shutting down is resumed from its `Resumption`,
            /// and catches up what came meanwhile; once shut down it is ACS-320.
            pub $($async)* fn resume_after_a_restart(transport: StreamTransport) {
                let emu = Server::start(AgentMode::Off);
                let (client, events) = connect(&emu, transport, "jo") $($aw)*;
                let chat = client.create_engagement() $($aw)* .unwrap();
                chat.wait_active() $($aw)* .unwrap();
                chat.send_message("before the restart") $($aw)* .unwrap();
                expect(&events, delivered_with("before the restart")) $($aw)*;
                let kept = client.resumption().unwrap();
                assert_eq!(kept.active_engagements, [chat.id().clone()]);
                let id = chat.id().clone();
                drop((client, events, chat));

                emu.control()
                    .post_message(&id, ParticipantType::Agent, "while you were away")
                    .unwrap();
                let (client, events) = builder(&emu, transport, "jo")
                    .resume(kept.clone())
                    .connect() $($aw)*
                    .unwrap();
                assert_eq!(client.session_id(), &kept.session_id);
                let first = events.recv() $($aw)* .unwrap();
                let Event::Initialized(ctx) = first.event else { panic!("{first:?}") };
                assert_eq!(ctx.engagements.len(), 1);
                expect(&events, arrived_with("while you were away")) $($aw)*;
                let chat = client.engagement(&id).unwrap();
                assert_eq!(chat.status(), EngagementStatus::Active);
                let texts: Vec<String> = chat
                    .transcript() $($aw)*
                    .unwrap()
                    .iter()
                    .filter_map(|m| m.text().map(str::to_owned))
                    .collect();
                assert_eq!(texts, ["before the restart", "while you were away"]);
                client.shutdown(None) $($aw)* .unwrap();

                let err = builder(&emu, transport, "jo").resume(kept).connect() $($aw)* .unwrap_err();
                assert_eq!(err.code(), "ACS-320");
            }

            /// A session kept in a store: the next `connect` with the same key resumes it and
            /// catches up; once shut down, the store forgets it and the next is a fresh one.
            pub $($async)* fn a_stored_session_resumes_after_a_restart(transport: StreamTransport) {
                let emu = Server::start(AgentMode::Off);
                let (store, _dir) = sqlite_store();
                let stored = || builder(&emu, transport, "sam").store(store.clone(), "sam").customer("sam");
                let (client, events) = stored().connect() $($aw)* .unwrap();
                let first_session = client.session_id().clone();
                let chat = client.create_engagement() $($aw)* .unwrap();
                chat.wait_active() $($aw)* .unwrap();
                // Queued: in the client when the call returns, so `saved` covers it.
                let queued = chat.queue_message("before the restart").unwrap();
                client.saved() $($aw)* .unwrap();
                let sent = queued.delivered() $($aw)* .unwrap();
                assert_eq!(sent.text(), Some("before the restart"));
                assert!(client.pending_sends().is_empty(), "delivered");
                expect(&events, delivered_with("before the restart")) $($aw)*;
                // A queued send whose handle is dropped goes on all the same.
                drop(chat.queue_message("and this one").unwrap());
                expect(&events, delivered_with("and this one")) $($aw)*;
                let id = chat.id().clone();
                drop((client, events, chat));

                emu.control()
                    .post_message(&id, ParticipantType::Agent, "while you were away")
                    .unwrap();
                let (client, events) = stored().connect() $($aw)* .unwrap();
                assert_eq!(client.session_id(), &first_session, "resumed, not new");
                assert_eq!(
                    $sdk::stored_customer(&*store, "sam").unwrap().as_deref(),
                    Some("sam"),
                    "whose session it is, for whoever takes it over"
                );
                assert_eq!($sdk::stored_customer(&*store, "nobody").unwrap(), None);
                expect(&events, arrived_with("while you were away")) $($aw)*;
                let chat = client.engagement(&id).unwrap();
                assert_eq!(chat.status(), EngagementStatus::Active);
                chat.send_message("after the restart") $($aw)* .unwrap();
                client.shutdown(None) $($aw)* .unwrap();

                let (client, _events) = stored().connect() $($aw)* .unwrap();
                assert_ne!(client.session_id(), &first_session, "shut down: forgotten");
                assert!(client.engagements().is_empty() || client.engagement(&id).is_some());
                client.shutdown(None) $($aw)* .unwrap();
            }

            /// The server forgot the stored session (ACS-320): `connect` makes a new one,
            /// joins the chat again and fills the gap from history, without the app's help.
            pub $($async)* fn a_forgotten_stored_session_is_replaced_and_its_chat_joined_again(
                transport: StreamTransport,
            ) {
                let emu = Server::start(AgentMode::Off);
                let (store, _dir) = sqlite_store();
                let stored = || builder(&emu, transport, "tom").store(store.clone(), "tom");
                let (client, events) = stored().connect() $($aw)* .unwrap();
                let old = client.session_id().clone();
                let chat = client.create_engagement() $($aw)* .unwrap();
                chat.wait_active() $($aw)* .unwrap();
                chat.send_message("first") $($aw)* .unwrap();
                let id = chat.id().clone();
                drop((client, events, chat));

                assert!(emu.control().invalidate_session(&old));
                emu.control()
                    .post_message(&id, ParticipantType::Agent, "meanwhile")
                    .unwrap();
                let (client, events) = stored().connect() $($aw)* .unwrap();
                assert_ne!(client.session_id(), &old, "a new session");
                expect(&events, arrived_with("meanwhile")) $($aw)*;
                let chat = client.engagement(&id).expect("the chat, joined again");
                chat.wait_active() $($aw)* .unwrap();
                chat.send_message("second") $($aw)* .unwrap();
                let texts: Vec<String> = chat
                    .transcript() $($aw)*
                    .unwrap()
                    .iter()
                    .filter_map(|m| m.text().map(str::to_owned))
                    .collect();
                assert_eq!(texts, ["first", "meanwhile", "second"]);
                client.shutdown(None) $($aw)* .unwrap();
            }

            /// The server forgets a stored session while the client runs: the client makes a
            /// new one, joins the chat again and carries on; nothing the app handed over is
            /// lost, and the app only sees `INITIALIZED` again.
            pub $($async)* fn a_stored_session_forgotten_mid_chat_is_replaced_in_place(
                transport: StreamTransport,
            ) {
                let emu = Server::start(AgentMode::Off);
                let (store, _dir) = sqlite_store();
                let (client, events) = builder(&emu, transport, "val")
                    .store(store.clone(), "val")
                    .connect() $($aw)*
                    .unwrap();
                let chat = client.create_engagement() $($aw)* .unwrap();
                chat.wait_active() $($aw)* .unwrap();
                chat.send_message("before") $($aw)* .unwrap();
                expect(&events, delivered_with("before")) $($aw)*;
                assert!(emu.control().invalidate_session(client.session_id()));
                let (again, _) = expect(&events, |e| matches!(e, Event::Initialized(_))) $($aw)*;
                let Event::Initialized(ctx) = again.event else { unreachable!() };
                assert_ne!(&ctx.session_id, client.session_id(), "a new session");
                expect(&events, is_active) $($aw)*;
                emu.control()
                    .post_message(chat.id(), ParticipantType::Agent, "still there?")
                    .unwrap();
                expect(&events, arrived_with("still there?")) $($aw)*;
                chat.send_message("after") $($aw)* .unwrap();
                let texts: Vec<String> = chat
                    .transcript() $($aw)*
                    .unwrap()
                    .iter()
                    .filter_map(|m| m.text().map(str::to_owned))
                    .collect();
                assert_eq!(texts, ["before", "still there?", "after"]);
                assert_eq!(client.end_reason(), None);
                client.shutdown(None) $($aw)* .unwrap();
            }

            /// A store holding something unreadable, or a session another process holds,
            /// fails `connect` with a typed error: never a silent fresh start.
            pub $($async)* fn a_store_that_cannot_be_used_is_an_error(transport: StreamTransport) {
                let emu = Server::start(AgentMode::Off);
                let (store, _dir) = sqlite_store();
                let ttl = Duration::from_secs(60);
                let other = store.claim("uma", "another-process", ttl).unwrap();
                let err = builder(&emu, transport, "uma")
                    .store(store.clone(), "uma")
                    .connect() $($aw)*
                    .unwrap_err();
                assert!(
                    matches!(&err, Error::Store($sdk::StoreError::Held { owner, .. }) if owner == "another-process"),
                    "{err:?}"
                );
                store.save(&other.lease, "{not json").unwrap();
                store.release(&other.lease).unwrap();
                let err = builder(&emu, transport, "uma")
                    .store(store.clone(), "uma")
                    .connect() $($aw)*
                    .unwrap_err();
                assert!(matches!(&err, Error::Store($sdk::StoreError::Corrupt { .. })), "{err:?}");
                let newer = r#"{"format":99}"#;
                let claim = store.claim("uma", "another-process", ttl).unwrap();
                store.save(&claim.lease, newer).unwrap();
                store.release(&claim.lease).unwrap();
                let err = builder(&emu, transport, "uma")
                    .store(store.clone(), "uma")
                    .connect() $($aw)*
                    .unwrap_err();
                assert!(err.to_string().contains("format 99"), "{err}");
                assert!(emu.control().sessions().is_empty(), "nothing started in its place");
            }

            /// The contact center ends the chat: `ENGAGEMENT_TERMINATED` for it, the others
            /// and the stream go on.
            pub $($async)* fn the_contact_center_ends_a_chat(transport: StreamTransport) {
                let emu = Server::start(AgentMode::Off);
                let (client, events) = connect(&emu, transport, "kit") $($aw)*;
                let a = client.create_engagement() $($aw)* .unwrap();
                a.wait_active() $($aw)* .unwrap();
                let b = client.create_engagement() $($aw)* .unwrap();
                b.wait_active() $($aw)* .unwrap();
                emu.control().end_engagement(a.id()).unwrap();
                let (ended, seen) =
                    expect(&events, |e| matches!(e, Event::EngagementTerminated(_))) $($aw)*;
                assert_eq!(ended.engagement_id(), Some(a.id()));
                assert!(!names(&seen).contains(&"EVENT_STREAM_CLOSED"));
                assert_eq!(a.status(), EngagementStatus::Terminated);
                b.send_message("still here") $($aw)* .unwrap();
                let (d, _) = expect(&events, delivered_with("still here")) $($aw)*;
                assert_eq!(d.engagement_id(), Some(b.id()));
                assert_eq!(client.engagements().len(), 1);
                client.shutdown(None) $($aw)* .unwrap();
            }
        }

        $crate::__tests!(
            $sdk, $test, [$($async)*], [$($aw)*];
            a_stored_session_resumes_after_a_restart,
            a_forgotten_stored_session_is_replaced_and_its_chat_joined_again,
            a_store_that_cannot_be_used_is_an_error,
            a_stored_session_forgotten_mid_chat_is_replaced_in_place,
            connect_and_shut_down,
            chat_with_the_agent,
            join_from_a_second_client,
            history_and_transcript,
            token_from_a_provider,
            token_provider_error_keeps_its_source,
            an_ended_chat_refuses_commands,
            commands_checked_locally,
            events_per_chat,
            the_event_receiver,
            resume_after_a_restart,
            the_contact_center_ends_a_chat,
        );
    };
}

/// One module per sequence, with a test per stream transport (one sequence at a time, so
/// that the `async` and `.await` tokens repeat apart from the names).
#[doc(hidden)]
#[macro_export]
macro_rules! __tests {
    ($sdk:ident, $test:meta, [$($async:tt)*], [$($aw:tt)*]; $(,)?) => {};
    ($sdk:ident, $test:meta, [$($async:tt)*], [$($aw:tt)*]; $name:ident $(, $rest:ident)* $(,)?) => {
        mod $name {
            #[$test]
            $($async)* fn long_poll() {
                super::conformance_sequences::$name($sdk::StreamTransport::LongPoll) $($aw)*;
            }

            #[$test]
            $($async)* fn websocket() {
                super::conformance_sequences::$name($sdk::StreamTransport::WebSocket) $($aw)*;
            }
        }

        $crate::__tests!($sdk, $test, [$($async)*], [$($aw)*]; $($rest),*);
    };
}
