//! The client's side of one event-stream WebSocket, without I/O: what a poll sends, what each
//! frame the server sends means for the poll, and the choice of `StreamTransport::Auto`.
//! Every adapter's `WebSocketTransport` and `AutoTransport` is a loop over these with its own
//! sockets.

use std::time::Duration;

use chat_core::{PollOutcome, Request, TransportError};

use super::frame::{Decoder, Encoder, Message, Role};
use super::handshake::Upgrade;
use super::{AutoMode, WsCursor, batch, closed};
use crate::Response;

/// The state of one upgraded connection: the frame codec and what the server was told.
#[derive(Debug)]
pub struct ClientSocket {
    decoder: Decoder,
    encoder: Encoder,
    /// The cursor and token the server knows.
    cursor: WsCursor,
}

/// What a poll does next on its socket, from [`ClientSocket::step`].
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// No whole frame yet: read more bytes and [`push`](ClientSocket::push) them (or answer
    /// [`idle`](super::idle) once the hold time is over).
    Read,
    /// Send these bytes (the pong of a ping), then step again.
    Send(Vec<u8>),
    /// The poll is over with this outcome; send the farewell first if there is one (the
    /// closing handshake's answer, or the close frame of a refused frame), within a short
    /// wait: the peer may be gone.
    End {
        /// How the poll ended.
        outcome: PollOutcome,
        /// The close frame to send, best effort.
        farewell: Option<Vec<u8>>,
    },
}

/// How an upgrade attempt ended, when the server answered.
#[derive(Debug)]
pub enum Upgraded {
    /// The connection now carries frames.
    Yes,
    /// The server answered with a plain HTTP status.
    Refused(Response),
}

/// An upgraded connection: an adapter's stream and the protocol's state.
#[derive(Debug)]
pub struct Connection<S> {
    /// The adapter's socket (plain or TLS).
    pub stream: S,
    /// The frame codec and what the server was told.
    pub socket: ClientSocket,
}

/// The server's answer to the upgrade this poll asked for on this stream: the connection if
/// it upgraded (the stream and the socket's state), and how the attempt ended.
pub fn accept<S>(
    upgrade: Upgrade,
    request: &Request,
    stream: S,
) -> (Option<Connection<S>>, Upgraded) {
    match upgrade {
        Upgrade::Accepted { rest } => {
            let mut decoder = Decoder::new(Role::Client);
            decoder.push(&rest);
            let socket = ClientSocket {
                decoder,
                encoder: Encoder::new(Role::Client),
                cursor: WsCursor::upgraded(request),
            };
            (Some(Connection { stream, socket }), Upgraded::Yes)
        }
        Upgrade::Refused(response) => (None, Upgraded::Refused(response)),
    }
}

/// `StreamTransport::Auto`'s parts: the WebSocket transport `W` tried first, the
/// long-polling fallback `L`, the decision, and how long the upgrade may take.
#[derive(Debug)]
pub struct Auto<W, L> {
    /// The WebSocket transport.
    pub ws: W,
    /// The long-polling fallback.
    pub long_poll: L,
    /// The decision so far.
    pub mode: AutoMode,
    /// How long the first upgrade may take.
    pub upgrade_timeout: Duration,
}

impl<W, L> Auto<W, L> {
    /// This WebSocket first, then this long-polling transport; the upgrade may take
    /// `upgrade_timeout` at most.
    pub fn new(ws: W, long_poll: L, upgrade_timeout: Duration) -> Self {
        let mode = AutoMode::Undecided;
        Self {
            ws,
            long_poll,
            mode,
            upgrade_timeout,
        }
    }

    /// Whether the WebSocket was chosen (`Some(true)`), long polling (`Some(false)`), or not
    /// yet decided.
    pub fn uses_websocket(&self) -> Option<bool> {
        self.mode.uses_websocket()
    }

    /// The long-polling transport it falls back to.
    pub fn fallback(&self) -> &L {
        &self.long_poll
    }
}

/// An upgrade attempt's failure to get an answer: the connection's end before one is a
/// failure to connect.
pub fn upgrade_failed(e: TransportError) -> TransportError {
    match e {
        TransportError::Disconnected => TransportError::Connect,
        e => e,
    }
}

/// The poll's outcome if the upgrade it needed did not happen: the refusal or the failure.
pub fn unless_upgraded(attempt: Result<Upgraded, TransportError>) -> Option<PollOutcome> {
    match attempt {
        Ok(Upgraded::Yes) => None,
        Ok(Upgraded::Refused(r)) => Some(PollOutcome::from_http(r.status, r.body)),
        Err(e) => Some(PollOutcome::Failed(e)),
    }
}

impl ClientSocket {
    /// The text frame a poll sends before waiting, if the server must be told anything (a
    /// cursor that moved, a new token).
    pub fn outgoing(&mut self, request: &Request) -> Option<Vec<u8>> {
        let text = self.cursor.outgoing_for(request)?;
        Some(self.encoder.text(&text))
    }

    /// Bytes read from the socket.
    pub fn push(&mut self, bytes: &[u8]) {
        self.decoder.push(bytes);
    }

    /// The decoder's input buffer, to read into without a buffer of one's own.
    pub fn input(&mut self) -> &mut Vec<u8> {
        self.decoder.input()
    }

    /// Whether bytes are waiting to be decoded.
    pub fn has_input(&self) -> bool {
        self.decoder.has_input()
    }

    /// Decodes what was read, as far as it goes: a pushed text message is a batch of events,
    /// a close frame the refusal its code stands for, a binary message or a bad frame a
    /// protocol error; pings are answered.
    pub fn step(&mut self) -> Step {
        let message = match self.decoder.next() {
            Ok(Some(message)) => message,
            Ok(None) => return Step::Read,
            Err(e) => {
                tracing::debug!(error = %e, "WebSocket frame refused");
                let farewell = Some(self.encoder.close(Some((e.close_code(), ""))));
                let outcome = PollOutcome::Failed(e.into());
                return Step::End { outcome, farewell };
            }
        };
        let (outcome, farewell) = match message {
            Message::Text(text) => (batch(text), None),
            Message::Binary(_) => (PollOutcome::Failed(TransportError::Protocol), None),
            Message::Pong(_) => return self.step(),
            Message::Ping(_) => match self.encoder.answer(&message) {
                Some(pong) => return Step::Send(pong),
                None => return self.step(),
            },
            Message::Close(ref frame) => {
                let code = frame.as_ref().map(|f| f.code);
                tracing::debug!(?code, "WebSocket closed by the server");
                // The closing handshake's answer, if the server still listens.
                (closed(code), self.encoder.answer(&message))
            }
        };
        Step::End { outcome, farewell }
    }

    /// The close frame to send when the client drops the connection.
    pub fn close(&mut self) -> Vec<u8> {
        self.encoder.close(None)
    }
}

/// Where `StreamTransport::Auto` sends a poll, from [`AutoMode::route`] and
/// [`AutoMode::decide`].
#[derive(Debug, PartialEq, Eq)]
pub enum AutoRoute {
    /// Over the WebSocket (decided, or just upgraded).
    WebSocket,
    /// Through the long-polling fallback.
    LongPoll,
    /// Nowhere: the poll is answered with this, still undecided (a refusal about the
    /// session or the token).
    Answer(PollOutcome),
}

impl AutoMode {
    /// Where the next poll goes once decided; `None` while undecided: try the upgrade, then
    /// [`decide`](Self::decide).
    pub fn route(self) -> Option<AutoRoute> {
        match self {
            Self::WebSocket => Some(AutoRoute::WebSocket),
            Self::LongPoll => Some(AutoRoute::LongPoll),
            Self::Undecided => None,
        }
    }

    /// Decides after the first upgrade attempt (`None`: no answer in time): the WebSocket
    /// if the server upgraded, a refusal about the session or token passed on undecided, and
    /// long polling for good otherwise (a plain `200`, a `400`, no answer).
    pub fn decide(&mut self, attempt: Option<&Upgraded>) -> AutoRoute {
        match attempt {
            Some(Upgraded::Yes) => {
                tracing::debug!("event stream: WebSocket");
                *self = Self::WebSocket;
                AutoRoute::WebSocket
            }
            Some(Upgraded::Refused(r)) if Self::passes_on(r.status) => {
                AutoRoute::Answer(PollOutcome::from_http(r.status, r.body.clone()))
            }
            _ => {
                tracing::debug!("event stream: WebSocket refused, long polling");
                *self = Self::LongPoll;
                AutoRoute::LongPoll
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::ws::frame::Encoder;

    fn socket() -> ClientSocket {
        let request = crate::ws::handshake::tests::poll_request("http://127.0.0.1:1");
        let (connection, _) = accept(Upgrade::Accepted { rest: Vec::new() }, &request, ());
        connection.unwrap().socket
    }

    #[test]
    fn frames_end_the_poll_as_they_mean() {
        let mut server = Encoder::new(Role::Server);
        let mut s = socket();
        assert_eq!(s.step(), Step::Read);
        s.push(&server.ping(b"hi"));
        s.push(&server.text("[1]"));
        assert!(matches!(s.step(), Step::Send(_)), "a ping is answered");
        let end = s.step();
        let batch = PollOutcome::Events(b"[1]".to_vec());
        assert_eq!(
            end,
            Step::End {
                outcome: batch,
                farewell: None
            }
        );
        s.push(&server.close(Some((4404, "gone"))));
        match s.step() {
            Step::End { outcome, farewell } => {
                assert_eq!(outcome, PollOutcome::SessionGone);
                assert!(farewell.is_some(), "the closing handshake is answered");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn auto_decides_once() {
        let mut mode = AutoMode::default();
        assert_eq!(mode.route(), None);
        let refused = Upgraded::Refused(Response::new(401, Vec::new()));
        assert_eq!(
            mode.decide(Some(&refused)),
            AutoRoute::Answer(PollOutcome::Unauthorized)
        );
        assert_eq!(mode.route(), None, "still undecided");
        assert_eq!(mode.decide(None), AutoRoute::LongPoll);
        assert_eq!(mode.route(), Some(AutoRoute::LongPoll));
    }
}
