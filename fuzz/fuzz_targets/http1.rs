//! The HTTP/1.1 long poll's response parser fed arbitrary bytes, in pieces of any size.
//! Driver and invariants: crates/chat-net/tests/fuzz_http1.rs.
#![no_main]

#[path = "../../crates/chat-net/tests/fuzz_http1.rs"]
mod driver;

libfuzzer_sys::fuzz_target!(|data: &[u8]| driver::run(data));
