//! The session state machine fed arbitrary commands, answers, batches, failures and time
//! steps. Driver and invariants: crates/chat-core/tests/fuzz_session.rs.
#![no_main]

#[path = "../../crates/chat-core/tests/support/mod.rs"]
mod support;

#[path = "../../crates/chat-core/tests/fuzz_session.rs"]
mod driver;

libfuzzer_sys::fuzz_target!(|data: &[u8]| driver::run(data));
