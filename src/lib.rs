//! minyi (民意): the backend of a WeChat mini-program with which health bureaus and hospitals
//! let the public judge their services — votes in selection campaigns (最美医生评选), ratings of
//! units (网络评议), SMS callback surveys (短信回访), opinions and complaints.
//!
//! The map, outside in (arrows point inward: `http` → `app` → `domain`):

/// Use cases; no HTTP types.
pub mod app;
/// Settings: defaults → `minyi.toml` → environment, validated at start.
pub mod config;
/// Hot counters (Redis, memory).
pub mod counters;
/// Command-line entry points that are more than a line: the demo seed.
pub mod demo;
/// Pure types and rules; no I/O.
pub mod domain;
/// The HTTP edge: handlers by audience, errors, extractors, OpenAPI.
pub mod http;
/// Clients for outside services (WeChat).
pub mod integrations;
/// Wiring of the parts into a running server.
pub mod startup;
/// The relational ledger (PostgreSQL, SQLite).
pub mod store;
/// Logging and metrics set-up.
pub mod telemetry;
