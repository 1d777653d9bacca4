//! The token parser: `chat_core::Token::parse` on any text. Driver and invariants:
//! crates/chat-core/tests/fuzz_token.rs.
#![no_main]

#[path = "../../crates/chat-core/tests/fuzz_token.rs"]
mod driver;

libfuzzer_sys::fuzz_target!(|data: &[u8]| driver::run(data));
