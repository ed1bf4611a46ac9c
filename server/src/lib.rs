//! The Suanli exchange server: REST API, ledger and audit log on PostgreSQL.
//!
//! # Layout
//! - [`http`]: actix-web only. One module per resource; [`http::server`] runs on a bound
//!   listener so tests can use port 0.
//! - [`auth`]: API keys and JWTs; [`access`]: what each role may do, in one place.
//! - [`db`]: diesel only. The store functions, the ledger, the hash-chained audit log.
//! - [`validate`]: input checks that need no database.
//! - [`app`]: wiring: configuration → database → state → server, and the demo.
//! - [`pg_private`]: a private PostgreSQL cluster when no `DATABASE_URL` is configured (and a
//!   streaming replica of it); [`cluster`]: several nodes, a primary and a replica on one machine.
//! - [`config`], [`error`], [`telemetry`].

pub mod access;
pub mod app;
pub mod auth;
pub mod checkpoint;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod db;
pub mod error;
pub mod exchange;
pub mod http;
pub mod market;
pub mod pg_private;
pub mod policy;
pub mod rules;
pub mod telemetry;
pub mod validate;
