//! The conformance suite (crates/conformance): the same end-to-end sequences as
//! chat-blocking's, written once.

conformance::suite!(tokio);
