//! The Suanli client library: the wire types of the REST API, typed errors carrying the server's
//! error code, an HTTP client, and an audit-chain verifier that needs no trust in the server.
//!
//! # Layout
//! - [`types`]: every request and response body of API.md. The server maps its own state to
//!   these; it never defines a second copy.
//! - [`error`]: [`Error`], with [`Error::Api`] carrying the server's snake_case `code`.
//! - [`client`]: [`Client`], one async method per operation.
//! - [`audit`]: the canonical JSON form and hash chain of the audit log, and [`audit::ChainVerifier`]
//!   that recomputes it from downloaded entries.
//!
//! The sdk depends on neither diesel, actix-web nor wasmtime, so that clients stay light.

pub mod audit;
pub mod client;
pub mod error;
pub mod types;

pub use client::{AuditFilter, Client, ExportFormat};
pub use error::Error;
pub use types::*;
