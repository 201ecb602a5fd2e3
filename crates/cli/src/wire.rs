//! The JSON wire forms of requests and verdicts, shared with the server (`server::wire`) so a
//! request file means the same offline and over HTTP.

pub use server::wire::{now_ms, parse_time_ms, verdict_json, RequestWire};
