//! What the server answers: the AXP answers of a quiet server, and each hostility's.

use std::net::SocketAddr;

use chat_core::validate::MAX_RESPONSE_LEN;
use chat_core::wire::{
    EventMessage, MessageBody, Participant, ParticipantType, ServerEvent, ServerEventType,
};
use chat_core::{DialogId, EngagementId, MessageId, ParticipantId};

use crate::cases::{Hostility, On};

/// The session the server creates.
pub const SESSION_ID: &str = "5e55e55e-0000-4000-8000-000000000001";
/// The engagement the server creates.
pub const ENGAGEMENT_ID: &str = "e0000000-0000-4000-8000-000000000001";
/// Its dialog.
pub const DIALOG_ID: &str = "d0000000-0000-4000-8000-000000000001";

/// Events in the one batch of [`Hostility::BigBatch`], and events for unknown engagements
/// in [`Hostility::UnknownEngagements`].
pub const FLOOD: usize = 10_000;
/// Messages per poll of [`Hostility::FloodDuringCatchUp`], and its polls that bring them.
const CATCH_UP_BATCH: usize = 600;
const CATCH_UP_BATCHES: usize = 5;
/// `[` in the body of [`Hostility::DeepJson`].
pub const NESTING: usize = 100_000;
/// Bytes of header lines in [`Hostility::HugeHeaders`].
pub const HEADERS_LEN: usize = 1024 * 1024;

/// One answer of the server.
#[derive(Debug)]
pub(crate) enum Answer {
    /// A JSON body, sized by `Content-Length` on a kept-alive HTTP/1.1 connection, or (HTTP/1.0)
    /// running to the end of the connection, which then closes.
    Json {
        status: u16,
        body: String,
        http10: bool,
    },
    /// 204, kept alive.
    NoContent,
    /// A poll with nothing new: held a while, then `200 []`.
    Hold { http10: bool },
    /// A `Content-Length` past the cap, and no body: held open until the client goes.
    DeclaredPastCap { status: u16 },
    /// A chunked body of `total` bytes (then its last chunk), or endless (`None`).
    Chunked { status: u16, total: Option<usize> },
    /// These bytes, one per second.
    Slow(Vec<u8>),
    /// These bytes, then the connection closes.
    Raw(Vec<u8>),
    /// The request is read, and the connection closed without a byte of answer.
    CloseUnanswered,
    /// The request is read, and never answered: held until the client goes.
    Unanswered,
}

impl Answer {
    pub(crate) fn json(status: u16, body: impl Into<String>) -> Self {
        Self::Json {
            status,
            body: body.into(),
            http10: false,
        }
    }

    pub(crate) fn hold() -> Self {
        Self::Hold { http10: false }
    }

    /// The same answer as an HTTP/1.0 server gives it: no `Content-Length`, the end of the
    /// connection ends the body.
    pub(crate) fn http10(self) -> Self {
        match self {
            Self::Json { status, body, .. } => Self::Json {
                status,
                body,
                http10: true,
            },
            Self::Hold { .. } => Self::Hold { http10: true },
            Self::NoContent => Self::Raw(b"HTTP/1.0 204 No Content\r\n\r\n".to_vec()),
            other => other,
        }
    }
}

pub(crate) fn created_session() -> Answer {
    Answer::json(
        201,
        format!(r#"{{"sessionId":"{SESSION_ID}","engagements":[]}}"#),
    )
}

pub(crate) fn created_engagement() -> Answer {
    Answer::json(
        201,
        format!(
            r#"{{"engagementId":"{ENGAGEMENT_ID}","dialogs":[{{"dialogId":"{DIALOG_ID}","dialogStatus":"PENDING","participants":[]}}]}}"#
        ),
    )
}

/// The history, as the hostility has it.
pub(crate) fn history(h: Hostility) -> Answer {
    match h {
        Hostility::FloodDuringCatchUp => Answer::Unanswered,
        _ => empty_history(),
    }
}

fn empty_history() -> Answer {
    Answer::json(
        200,
        r#"{"messages":[],"pagination":{"pageNumber":1,"pageSize":50},"links":{"next":""}}"#,
    )
}

/// The answer of hostility `h` to its `n`-th poll (counting probes; 0 for the first), or to
/// the session's creation (`on` [`On::Connect`]), to a request for `path`; `other` is the
/// other host.
pub(crate) fn hostile(h: Hostility, on: On, n: usize, path: &str, other: SocketAddr) -> Answer {
    let status = match on {
        On::Connect => 201,
        On::Poll => 200,
    };
    let batch = |n: usize| match batches(h).into_iter().nth(n) {
        Some(events) => Answer::json(200, to_json(&events)),
        None => Answer::hold(),
    };
    match h {
        Hostility::DeclaredPastCap => Answer::DeclaredPastCap { status },
        Hostility::ChunkedPastCap => Answer::Chunked {
            status,
            total: Some(MAX_RESPONSE_LEN + 64 * 1024),
        },
        Hostility::EndlessChunked => Answer::Chunked {
            status,
            total: None,
        },
        Hostility::OneBytePerSecond => {
            let body = match on {
                On::Connect => format!(r#"{{"sessionId":"{SESSION_ID}","engagements":[]}}"#),
                On::Poll => "[]".to_owned(),
            };
            Answer::Slow(
                format!(
                    "HTTP/1.1 {status} OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                    body.len()
                )
                .into_bytes(),
            )
        }
        Hostility::InvalidJson => match on {
            On::Connect => Answer::json(status, r#"{"sessionId":"5e55e55e-0000-4000"#),
            On::Poll => Answer::json(status, r#"[{"eventId":"e1","eventType":"MESSAGE","#),
        },
        Hostility::DeepJson => Answer::json(status, "[".repeat(NESTING)),
        Hostility::RedirectElsewhere => Answer::Raw(
            format!(
                "HTTP/1.1 307 Temporary Redirect\r\nlocation: http://{other}{path}\r\ncontent-length: 0\r\n\r\n"
            )
            .into_bytes(),
        ),
        Hostility::HugeHeaders => {
            let mut head = format!("HTTP/1.1 {status} OK\r\n").into_bytes();
            let value = "x".repeat(64 * 1024 - 16);
            for i in 0..HEADERS_LEN / (64 * 1024) {
                head.extend_from_slice(format!("x-filler-{i:02}: {value}\r\n").as_bytes());
            }
            head.extend_from_slice(b"content-length: 2\r\n\r\n[]");
            Answer::Raw(head)
        }
        Hostility::UntrustedTls => match on {
            On::Connect => created_session(),
            On::Poll => Answer::hold(),
        },
        Hostility::Http10 => batch(n).http10(),
        Hostility::FloodDuringCatchUp => match n {
            // Cut after its first byte: a broken stream, not sent again.
            1 => Answer::Raw(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n[".to_vec()),
            0 => batch(0),
            n => batch(n - 1),
        },
        Hostility::ClosedAsNextPollGoesOut => match n {
            0 => batch(0),
            1 => Answer::CloseUnanswered,
            n => batch(n - 1),
        },
        Hostility::BigBatch
        | Hostility::DuplicateIds
        | Hostility::IndexBackwards
        | Hostility::UnknownEngagements => batch(n),
    }
}

fn to_json(events: &[ServerEvent]) -> String {
    serde_json::to_string(events).unwrap_or_else(|_| "[]".to_owned())
}

/// A `MESSAGE` event from the agent.
fn message(
    event_id: &str,
    engagement: &str,
    index: u64,
    message_id: &str,
    text: &str,
) -> ServerEvent {
    let mut e = ServerEvent::new(event_id, ServerEventType::Message);
    e.engagement_id = Some(EngagementId::new(engagement));
    e.dialog_id = Some(DialogId::new(if engagement == ENGAGEMENT_ID {
        DIALOG_ID
    } else {
        "d-unknown"
    }));
    e.participant = Some(agent());
    e.message = Some(EventMessage {
        message_id: MessageId::new(message_id),
        parent_message_id: None,
        message_index: index,
        received_at: None,
        last_updated_at: None,
        body: MessageBody::plain_text(text),
    });
    e
}

fn agent() -> Participant {
    Participant {
        participant_id: ParticipantId::new("agent-1"),
        participant_type: ParticipantType::Agent,
        display_name: Some("Agent".to_owned()),
    }
}

/// The batches of the hostilities that answer with events, poll after poll.
fn batches(h: Hostility) -> Vec<Vec<ServerEvent>> {
    let known = ENGAGEMENT_ID;
    match h {
        Hostility::BigBatch => vec![
            (1..=FLOOD as u64)
                .map(|i| {
                    message(
                        &format!("e{i}"),
                        known,
                        i,
                        &format!("m{i}"),
                        &format!("m{i}"),
                    )
                })
                .collect(),
        ],
        // Event ids going down, one id twice in a batch (with another message: only the id
        // says it is a repeat), then the whole batch delivered again with one new event.
        Hostility::DuplicateIds => vec![
            vec![
                message("e9", known, 1, "a", "one"),
                message("e8", known, 2, "b", "two"),
                message("e8", known, 10, "dup", "the same event id again"),
                message("e7", known, 3, "c", "three"),
            ],
            vec![
                message("e9", known, 1, "a", "one"),
                message("e8", known, 2, "b", "two"),
                message("e7", known, 3, "c", "three"),
                message("e6", known, 4, "d", "four"),
            ],
        ],
        // A new message below the last index (late), then repeats of known messages with the
        // same and a lower index, all under new event ids.
        Hostility::IndexBackwards => vec![
            vec![
                message("e1", known, 5, "a", "five"),
                message("e2", known, 6, "b", "six"),
            ],
            vec![
                message("e3", known, 4, "c", "four, late"),
                message("e4", known, 5, "a", "five"),
                message("e5", known, 3, "b", "six"),
                message("e6", known, 7, "f", "seven"),
            ],
        ],
        Hostility::UnknownEngagements => {
            let mut flood: Vec<ServerEvent> = (0..FLOOD)
                .map(|i| {
                    let engagement = format!("unknown-{i}");
                    let id = format!("u{i}");
                    match i % 4 {
                        0 => message(&id, &engagement, 1, &id, "not yours"),
                        kind => {
                            let t = match kind {
                                1 => ServerEventType::ParticipantAdded,
                                2 => ServerEventType::ParticipantDisconnected,
                                _ => ServerEventType::EngagementError,
                            };
                            let mut e = ServerEvent::new(id, t);
                            e.engagement_id = Some(EngagementId::new(engagement));
                            e.participant = Some(agent());
                            e
                        }
                    }
                })
                .collect();
            flood.push(message("k1", known, 1, "k1", "yours"));
            vec![flood]
        }
        Hostility::FloodDuringCatchUp => {
            let mut batches = vec![vec![message("e0", known, 1, "c1", "first")]];
            for b in 0..CATCH_UP_BATCHES {
                batches.push(
                    (0..CATCH_UP_BATCH)
                        .map(|i| {
                            let index = (2 + b * CATCH_UP_BATCH + i) as u64;
                            let id = format!("c{index}");
                            message(&format!("e{index}"), known, index, &id, &id)
                        })
                        .collect(),
                );
            }
            batches
        }
        Hostility::Http10 => vec![
            vec![message("e1", known, 1, "h1", "over HTTP/1.0")],
            vec![message("e2", known, 2, "h2", "on a new connection")],
        ],
        Hostility::ClosedAsNextPollGoesOut => vec![
            vec![message("e1", known, 1, "k1", "before the close")],
            vec![message("e2", known, 2, "k2", "after the close")],
        ],
        _ => Vec::new(),
    }
}

/// The texts the application must see, in order, for a hostility that answers with events.
pub(crate) fn expected_texts(h: Hostility) -> Vec<String> {
    match h {
        Hostility::BigBatch => (1..=FLOOD).map(|i| format!("m{i}")).collect(),
        Hostility::DuplicateIds => ["one", "two", "three", "four"].map(String::from).to_vec(),
        Hostility::IndexBackwards => ["five", "six", "four, late", "seven"]
            .map(String::from)
            .to_vec(),
        Hostility::UnknownEngagements => vec!["yours".to_owned()],
        Hostility::FloodDuringCatchUp => std::iter::once("first".to_owned())
            .chain((2..2 + CATCH_UP_BATCHES * CATCH_UP_BATCH).map(|i| format!("c{i}")))
            .collect(),
        Hostility::Http10 => vec!["over HTTP/1.0".to_owned(), "on a new connection".to_owned()],
        Hostility::ClosedAsNextPollGoesOut => {
            vec!["before the close".to_owned(), "after the close".to_owned()]
        }
        _ => Vec::new(),
    }
}

/// How many texts [`expected_texts`] gives, without making them.
pub(crate) fn expected_count(h: Hostility) -> usize {
    match h {
        Hostility::BigBatch => FLOOD,
        h => expected_texts(h).len(),
    }
}

/// The most events one batch of `h` holds.
pub(crate) fn largest_batch(h: Hostility) -> usize {
    batches(h).iter().map(Vec::len).max().unwrap_or(0)
}
