//! WebSocket framing (RFC 6455, section 5), without I/O: a [`Decoder`] that is fed whatever
//! pieces the connection reads and gives whole [`Message`]s, and an [`Encoder`] that writes
//! frames for either [`Role`].
//!
//! The decoder checks everything the RFC makes the receiver check: reserved bits and opcodes,
//! masking (required from a client, forbidden from a server), control frames of at most 125
//! bytes and never fragmented, continuation frames only inside a fragmented message, UTF-8 in
//! text messages and close reasons, valid close codes; and a message larger than its limit
//! ([`MAX_MESSAGE`] unless told otherwise) is refused from its frame header,
//! before its payload is read. Every refusal is a [`FrameError`], never a panic.
//!
//! Nothing here logs a payload: [`Message`]'s `Debug` shows its kind and length only.
//!
//! ```
//! use chat_net::ws::frame::{Decoder, Encoder, Message, Role};
//!
//! // A client's masked text frame, read by a server in two pieces.
//! let bytes = Encoder::new(Role::Client).text("[]");
//! let mut server = Decoder::new(Role::Server);
//! server.push(&bytes[..3]);
//! assert_eq!(server.next()?, None);
//! server.push(&bytes[3..]);
//! assert_eq!(server.next()?, Some(Message::Text("[]".to_owned())));
//! # Ok::<(), chat_net::ws::frame::FrameError>(())
//! ```

use std::fmt;

use chat_core::TransportError;

use super::MAX_MESSAGE;

/// The largest payload of a control frame (close, ping, pong).
pub const MAX_CONTROL: usize = 125;

/// Which end of the connection this is: a client masks every frame it sends and refuses masked
/// frames; a server the reverse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The end that sent the upgrade request.
    Client,
    /// The end that answered it with `101`.
    Server,
}

/// A frame's opcode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opcode {
    /// `0x0`: the next piece of a fragmented message.
    Continuation,
    /// `0x1`: a text message (UTF-8).
    Text,
    /// `0x2`: a binary message.
    Binary,
    /// `0x8`: the closing handshake.
    Close,
    /// `0x9`: a ping, answered with a pong.
    Ping,
    /// `0xA`: a pong.
    Pong,
}

impl Opcode {
    /// The opcode of these 4 bits, if one is defined.
    pub fn from_bits(bits: u8) -> Option<Self> {
        Some(match bits {
            0x0 => Self::Continuation,
            0x1 => Self::Text,
            0x2 => Self::Binary,
            0x8 => Self::Close,
            0x9 => Self::Ping,
            0xA => Self::Pong,
            _ => return None,
        })
    }

    /// Its 4 bits.
    pub fn bits(self) -> u8 {
        match self {
            Self::Continuation => 0x0,
            Self::Text => 0x1,
            Self::Binary => 0x2,
            Self::Close => 0x8,
            Self::Ping => 0x9,
            Self::Pong => 0xA,
        }
    }

    /// Whether it is a control frame's (close, ping, pong).
    pub fn is_control(self) -> bool {
        matches!(self, Self::Close | Self::Ping | Self::Pong)
    }
}

/// The code and reason of a close frame.
#[derive(Clone, PartialEq, Eq)]
pub struct CloseFrame {
    /// The close code, such as 1000 (normal) or 4401.
    pub code: u16,
    /// The reason, for people (at most 123 bytes of UTF-8).
    pub reason: String,
}

impl fmt::Debug for CloseFrame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CloseFrame")
            .field("code", &self.code)
            .field("reason_len", &self.reason.len())
            .finish()
    }
}

/// What the decoder gives: a whole data message (fragments joined) or a control frame.
///
/// `Debug` shows the kind and the length, never the payload: a frame may carry a token.
#[derive(Clone, PartialEq, Eq)]
pub enum Message {
    /// A text message.
    Text(String),
    /// A binary message.
    Binary(Vec<u8>),
    /// A ping, with its payload (to send back in the pong).
    Ping(Vec<u8>),
    /// A pong.
    Pong(Vec<u8>),
    /// A close frame: its code and reason, `None` if it had no payload (code 1005).
    Close(Option<CloseFrame>),
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Text(t) => write!(f, "Text({} bytes)", t.len()),
            Self::Binary(b) => write!(f, "Binary({} bytes)", b.len()),
            Self::Ping(b) => write!(f, "Ping({} bytes)", b.len()),
            Self::Pong(b) => write!(f, "Pong({} bytes)", b.len()),
            Self::Close(c) => f.debug_tuple("Close").field(c).finish(),
        }
    }
}

/// Why the decoder refused what it was given. After one, the connection is unusable: close
/// it (with [`close_code`](Self::close_code) if the peer is still there).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// A message (or a frame of one) larger than the decoder's limit.
    #[error("WebSocket message too large")]
    TooLarge,
    /// A reserved bit is set (no extension was agreed).
    #[error("WebSocket frame with a reserved bit set")]
    Reserved,
    /// An opcode RFC 6455 does not define.
    #[error("WebSocket frame with an unknown opcode")]
    Opcode,
    /// A client's frame was not masked, or a server's was.
    #[error("WebSocket frame masked wrongly for its sender")]
    Masking,
    /// A control frame longer than 125 bytes, or fragmented.
    #[error("WebSocket control frame too long or fragmented")]
    Control,
    /// A continuation frame outside a fragmented message, or a new message inside one.
    #[error("WebSocket fragments out of order")]
    Fragmentation,
    /// A text message or close reason that is not UTF-8.
    #[error("WebSocket text that is not UTF-8")]
    Utf8,
    /// A close frame of one byte, or with a code that may not be sent.
    #[error("WebSocket close frame malformed")]
    Close,
}

impl FrameError {
    /// The close code that tells the peer why: 1009 (too big), 1007 (not UTF-8) or 1002
    /// (protocol error).
    pub fn close_code(self) -> u16 {
        match self {
            Self::TooLarge => 1009,
            Self::Utf8 => 1007,
            _ => 1002,
        }
    }
}

impl From<FrameError> for TransportError {
    /// Every refusal is a protocol error of the server.
    fn from(_: FrameError) -> Self {
        TransportError::Protocol
    }
}

/// Whether a close code may be sent in a close frame (RFC 6455 section 7.4, and the IANA
/// registry): 1000–1003, 1007–1014, 3000–4999.
pub fn is_valid_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// Where the decoder is.
#[derive(Debug, Clone, Copy)]
enum State {
    /// Waiting for (the rest of) a frame header.
    Header,
    /// Reading a payload: `left` bytes more, unmasked with `mask` from offset `at`.
    Payload {
        opcode: Opcode,
        fin: bool,
        mask: Option<[u8; 4]>,
        at: usize,
        left: u64,
    },
}

/// Reads messages out of the bytes a connection delivers, in whatever pieces:
/// [`push`](Self::push) what was read (or read into [`input`](Self::input)), then call
/// [`next`](Self::next) until it gives `None`.
///
/// A payload is unmasked and moved into its message as it arrives, so the input buffer holds
/// no more than one read; only a message being reassembled grows, up to the limit.
pub struct Decoder {
    role: Role,
    max_message: usize,
    /// Read and not yet consumed.
    input: Vec<u8>,
    state: State,
    /// The data message being reassembled: its opcode (text or binary) and bytes so far.
    message: Option<(Opcode, Vec<u8>)>,
    /// The payload of the control frame being read.
    control: Vec<u8>,
    /// Set by the first refusal, given again by every later call.
    failed: Option<FrameError>,
}

impl fmt::Debug for Decoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Decoder")
            .field("role", &self.role)
            .field("max_message", &self.max_message)
            .field("buffered", &self.input.len())
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

impl Decoder {
    /// A decoder for this end of the connection, refusing messages past
    /// [`MAX_MESSAGE`].
    pub fn new(role: Role) -> Self {
        Self::with_max_message(role, MAX_MESSAGE)
    }

    /// A decoder refusing messages longer than `max` bytes ([`FrameError::TooLarge`]).
    pub fn with_max_message(role: Role, max: usize) -> Self {
        Self {
            role,
            max_message: max,
            input: Vec::new(),
            state: State::Header,
            message: None,
            control: Vec::new(),
            failed: None,
        }
    }

    /// Feeds bytes read from the connection (dropped after a refusal).
    pub fn push(&mut self, bytes: &[u8]) {
        if self.failed.is_none() {
            self.input.extend_from_slice(bytes);
        }
    }

    /// The input buffer, to read into directly (append only); then call [`next`](Self::next).
    pub fn input(&mut self) -> &mut Vec<u8> {
        &mut self.input
    }

    /// Whether bytes are buffered that [`next`](Self::next) has not consumed yet (a partial
    /// frame header, typically).
    pub fn has_input(&self) -> bool {
        !self.input.is_empty()
    }

    /// The next whole message, `None` until more bytes are needed, or why the stream is
    /// refused (then every later call gives the same error).
    #[allow(clippy::should_implement_trait)] // Fallible, and not an iterator over owned input.
    pub fn next(&mut self) -> Result<Option<Message>, FrameError> {
        if let Some(e) = self.failed {
            self.input.clear();
            return Err(e);
        }
        let mut pos = 0;
        let result = self.run(&mut pos);
        self.input.drain(..pos);
        if self.input.is_empty() {
            // Waiting for the next frame holds no buffer: a process may hold thousands.
            self.input = Vec::new();
        }
        if let Err(e) = result {
            self.failed = Some(e);
            self.input = Vec::new();
            self.message = None;
            self.control = Vec::new();
        }
        result
    }

    fn run(&mut self, pos: &mut usize) -> Result<Option<Message>, FrameError> {
        loop {
            match self.state {
                State::Header => {
                    let Some((header, len)) = self.header(&self.input[*pos..])? else {
                        return Ok(None);
                    };
                    *pos += len;
                    if let State::Payload { opcode, left, .. } = header {
                        if opcode.is_control() {
                            // At most 125: checked with the header.
                            self.control = Vec::with_capacity(usize::try_from(left).unwrap_or(0));
                        } else if opcode != Opcode::Continuation {
                            // Not the announced length: a header alone must not reserve
                            // megabytes.
                            let reserve = usize::try_from(left).map_or(0, |l| l.min(64 * 1024));
                            self.message = Some((opcode, Vec::with_capacity(reserve)));
                        }
                    }
                    self.state = header;
                }
                State::Payload {
                    opcode,
                    fin,
                    mask,
                    at,
                    left,
                } => {
                    let unread = &self.input[*pos..];
                    // `left` fits in usize: it was checked against the limit.
                    let take = usize::try_from(left).map_or(unread.len(), |l| l.min(unread.len()));
                    let target = if opcode.is_control() {
                        &mut self.control
                    } else {
                        match &mut self.message {
                            Some((_, bytes)) => bytes,
                            None => return Err(FrameError::Fragmentation),
                        }
                    };
                    let start = target.len();
                    target.extend_from_slice(&unread[..take]);
                    if let Some(mask) = mask {
                        for (i, b) in target[start..].iter_mut().enumerate() {
                            *b ^= mask[(at + i) % 4];
                        }
                    }
                    *pos += take;
                    let left = left - take as u64;
                    if left > 0 {
                        self.state = State::Payload {
                            opcode,
                            fin,
                            mask,
                            at: (at + take) % 4,
                            left,
                        };
                        return Ok(None);
                    }
                    self.state = State::Header;
                    if opcode.is_control() {
                        let payload = std::mem::take(&mut self.control);
                        return control(opcode, payload).map(Some);
                    }
                    if fin {
                        return finish(self.message.take()).map(Some);
                    }
                }
            }
        }
    }

    /// Parses a frame header at the start of `buf`: the payload state and the header's
    /// length, `None` if it is not whole yet.
    fn header(&self, buf: &[u8]) -> Result<Option<(State, usize)>, FrameError> {
        let [b0, b1, ..] = *buf else {
            return Ok(None);
        };
        if b0 & 0x70 != 0 {
            return Err(FrameError::Reserved);
        }
        let fin = b0 & 0x80 != 0;
        let opcode = Opcode::from_bits(b0 & 0x0F).ok_or(FrameError::Opcode)?;
        let masked = b1 & 0x80 != 0;
        if masked != (self.role == Role::Server) {
            return Err(FrameError::Masking);
        }
        let len7 = b1 & 0x7F;
        if opcode.is_control() && (!fin || usize::from(len7) > MAX_CONTROL) {
            return Err(FrameError::Control);
        }
        let ext = match len7 {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        let need = 2 + ext + if masked { 4 } else { 0 };
        if buf.len() < need {
            return Ok(None);
        }
        let len = match ext {
            2 => u64::from(u16::from_be_bytes([buf[2], buf[3]])),
            8 => {
                let mut be = [0u8; 8];
                be.copy_from_slice(&buf[2..10]);
                u64::from_be_bytes(be)
            }
            _ => u64::from(len7),
        };
        let mask = masked.then(|| {
            let at = 2 + ext;
            [buf[at], buf[at + 1], buf[at + 2], buf[at + 3]]
        });
        match opcode {
            Opcode::Continuation => {
                let Some((_, bytes)) = &self.message else {
                    return Err(FrameError::Fragmentation);
                };
                if len > (self.max_message - bytes.len().min(self.max_message)) as u64 {
                    return Err(FrameError::TooLarge);
                }
            }
            Opcode::Text | Opcode::Binary => {
                if self.message.is_some() {
                    return Err(FrameError::Fragmentation);
                }
                if len > self.max_message as u64 {
                    return Err(FrameError::TooLarge);
                }
            }
            Opcode::Close | Opcode::Ping | Opcode::Pong => {}
        }
        Ok(Some((
            State::Payload {
                opcode,
                fin,
                mask,
                at: 0,
                left: len,
            },
            need,
        )))
    }
}

/// A whole control frame as a message.
fn control(opcode: Opcode, payload: Vec<u8>) -> Result<Message, FrameError> {
    Ok(match opcode {
        Opcode::Ping => Message::Ping(payload),
        Opcode::Pong => Message::Pong(payload),
        _ => Message::Close(close_frame(&payload)?),
    })
}

/// A close frame's payload: nothing, or a valid code and a UTF-8 reason.
fn close_frame(payload: &[u8]) -> Result<Option<CloseFrame>, FrameError> {
    match payload {
        [] => Ok(None),
        [_] => Err(FrameError::Close),
        [hi, lo, reason @ ..] => {
            let code = u16::from_be_bytes([*hi, *lo]);
            if !is_valid_close_code(code) {
                return Err(FrameError::Close);
            }
            let reason = std::str::from_utf8(reason).map_err(|_| FrameError::Utf8)?;
            Ok(Some(CloseFrame {
                code,
                reason: reason.to_owned(),
            }))
        }
    }
}

/// A reassembled data message.
fn finish(message: Option<(Opcode, Vec<u8>)>) -> Result<Message, FrameError> {
    match message {
        Some((Opcode::Text, bytes)) => String::from_utf8(bytes)
            .map(Message::Text)
            .map_err(|_| FrameError::Utf8),
        Some((_, bytes)) => Ok(Message::Binary(bytes)),
        None => Err(FrameError::Fragmentation),
    }
}

/// Writes frames for one end of a connection: a client's masked with a fresh random key per
/// frame, a server's unmasked. Every frame it writes is whole (FIN set).
pub struct Encoder {
    role: Role,
    /// Masking keys need to be unpredictable to whatever sits between the ends (RFC 6455
    /// section 10.3), not secret: a generator seeded from the operating system.
    rng: fastrand::Rng,
}

impl fmt::Debug for Encoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Encoder")
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

impl Encoder {
    /// An encoder for this end of the connection.
    pub fn new(role: Role) -> Self {
        let rng = match super::handshake::random::<8>() {
            Some(seed) => fastrand::Rng::with_seed(u64::from_be_bytes(seed)),
            None => fastrand::Rng::new(),
        };
        Self { role, rng }
    }

    /// Appends one whole frame of this opcode and payload to `out`. A control frame's payload
    /// past 125 bytes is refused ([`FrameError::Control`]).
    pub fn encode(
        &mut self,
        opcode: Opcode,
        payload: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), FrameError> {
        if opcode.is_control() && payload.len() > MAX_CONTROL {
            return Err(FrameError::Control);
        }
        let masked = self.role == Role::Client;
        out.reserve(payload.len() + 14);
        out.push(0x80 | opcode.bits());
        let mask_bit = if masked { 0x80 } else { 0 };
        match payload.len() {
            n @ 0..=125 => out.push(mask_bit | n as u8),
            n @ 126..=0xFFFF => {
                out.push(mask_bit | 126);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                out.push(mask_bit | 127);
                out.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        if masked {
            let mask = self.rng.u32(..).to_be_bytes();
            out.extend_from_slice(&mask);
            out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        } else {
            out.extend_from_slice(payload);
        }
        Ok(())
    }

    /// A text frame.
    pub fn text(&mut self, text: &str) -> Vec<u8> {
        let mut out = Vec::new();
        // Only control frames have a length limit.
        let _ = self.encode(Opcode::Text, text.as_bytes(), &mut out);
        out
    }

    /// A ping frame (the payload cut to 125 bytes).
    pub fn ping(&mut self, payload: &[u8]) -> Vec<u8> {
        self.control(Opcode::Ping, payload)
    }

    /// A pong frame (the payload cut to 125 bytes).
    pub fn pong(&mut self, payload: &[u8]) -> Vec<u8> {
        self.control(Opcode::Pong, payload)
    }

    fn control(&mut self, opcode: Opcode, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let payload = &payload[..payload.len().min(MAX_CONTROL)];
        let _ = self.encode(opcode, payload, &mut out);
        out
    }

    /// A close frame: with this code and reason (cut to 123 bytes, on a character boundary),
    /// or without a payload for `None`. A code that may not be sent (such as 1005) is
    /// replaced by 1000.
    pub fn close(&mut self, frame: Option<(u16, &str)>) -> Vec<u8> {
        let mut payload = Vec::new();
        if let Some((code, reason)) = frame {
            let code = if is_valid_close_code(code) {
                code
            } else {
                1000
            };
            payload.extend_from_slice(&code.to_be_bytes());
            let mut end = reason.len().min(MAX_CONTROL - 2);
            while !reason.is_char_boundary(end) {
                end -= 1;
            }
            payload.extend_from_slice(&reason.as_bytes()[..end]);
        }
        self.control(Opcode::Close, &payload)
    }

    /// What to send back for a message, if anything: a pong with a ping's payload, and the
    /// closing handshake's answer to a close frame (the same code, or none).
    pub fn answer(&mut self, message: &Message) -> Option<Vec<u8>> {
        match message {
            Message::Ping(payload) => Some(self.pong(payload)),
            Message::Close(frame) => Some(self.close(frame.as_ref().map(|f| (f.code, "")))),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests;
