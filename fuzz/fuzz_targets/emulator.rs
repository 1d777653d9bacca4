//! The emulator's router, in process: arbitrary request bodies at every endpoint. Driver and
//! invariants: crates/chat-emulator/tests/api/fuzz_requests.rs.
#![no_main]

#[path = "../../crates/chat-emulator/tests/api/fuzz_requests.rs"]
mod driver;

libfuzzer_sys::fuzz_target!(|data: &[u8]| driver::run(data));
