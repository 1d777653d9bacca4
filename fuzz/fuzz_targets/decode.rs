//! Server answers: every wire type chat-core decodes, and the answer to each kind of
//! request. Driver and invariants: crates/chat-core/tests/fuzz_decode.rs.
#![no_main]

#[path = "../../crates/chat-core/tests/support/mod.rs"]
mod support;

#[path = "../../crates/chat-core/tests/fuzz_decode.rs"]
mod driver;

libfuzzer_sys::fuzz_target!(|data: &[u8]| driver::run(data));
