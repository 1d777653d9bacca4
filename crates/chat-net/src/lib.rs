//! The network framing both chat adapters (`chat-tokio` and `chat-blocking`) share, free of
//! any runtime and of I/O: the [`Response`] every transport answers with and the response
//! size cap, the TLS configuration ([`tls_config_with_roots`]), the HTTP/1.1 long poll's
//! framing as a sans-IO parser ([`http1`]), and the WebSocket protocol (RFC 6455 handshake
//! and frames, client and server role) with the event stream's message codec ([`ws`]). Each
//! adapter keeps only its I/O: tokio or std sockets, tokio-rustls or rustls. Protocol rules
//! stay in `chat-core`.
//!
//! # Example
//!
//! The long poll's exchange, without a socket: the bytes to write for a request, and the
//! response parsed from what a connection reads, in whatever pieces it comes.
//!
//! ```
//! use chat_net::http1::{ResponseParser, Target};
//! use chat_net::ws::closed;
//!
//! let target = Target::parse("https://na.api.avayacloud.com/events?lastEventId=7", false)?;
//! assert_eq!((target.tls, target.port, target.path.as_str()), (true, 443, "/events?lastEventId=7"));
//!
//! let mut parser = ResponseParser::new();
//! let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n[]";
//! let (first, rest) = answer.split_at(20);
//! assert!(parser.push(first)?.is_none());
//! let response = parser.push(rest)?.expect("whole");
//! assert_eq!((response.status, response.body.as_slice()), (200, &b"[]"[..]));
//!
//! // The WebSocket's close code 4401 is the refusal long polling answers with 401.
//! assert_eq!(closed(Some(4401)), chat_core::PollOutcome::Unauthorized);
//! # Ok::<(), chat_core::TransportError>(())
//! ```
#![forbid(unsafe_code)]

pub mod http1;
mod own_connection;
mod response;
mod tls;
pub mod ws;

pub use response::{
    LongPoll, Response, append_capped, declared_len, followed_redirect, is_malformed_response,
    poll_outcome, reqwest_error, reqwest_method,
};
/// rustls's client configuration, as [`tls_config_with_roots`] builds it.
pub use rustls::ClientConfig as TlsClientConfig;
pub use tls::{TlsRootsError, default_config, is_certificate_error, tls_config_with_roots};
