//! Integration tests: a plain HTTP client against an in-process emulator.
#![allow(clippy::unwrap_used, missing_docs, unreachable_pub)]

mod auth;
mod chat;
mod common;
mod connections;
mod control;
mod faults;
mod fuzz_requests;
mod limits;
mod random_bodies;
mod security;
mod tls;
mod ws;
