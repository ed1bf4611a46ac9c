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
//! - [`proof`]: signed checkpoints and RFC 6962 inclusion and consistency proofs, checked against
//!   a pinned key.
//!
//! The sdk depends on neither diesel, actix-web nor wasmtime, so that clients stay light.
//!
//! # Idempotency and retries
//! Every create carries an `idempotency_key` in its body: make one per logical request (for
//! example `uuid::Uuid::new_v4().to_string()`) and keep it. The client retries reads and keyed
//! creates on transient failures (no connection, a connection cut before the answer, 502, 503)
//! with the same body, so the same key; the server answers a repeat with the original. A 4xx is
//! never retried.
//!
//! ```no_run
//! # async fn example() -> Result<(), suanli_sdk::Error> {
//! let exchange = suanli_sdk::Client::new("http://127.0.0.1:8080");
//! let buyer = exchange.login("sk_…").await?;
//! let hubs = exchange.hubs().await?;
//! let account = buyer.account().await?;
//! println!("{} hubs; {} CNY available", hubs.len(), account.available);
//! # Ok(())
//! # }
//! ```

pub mod audit;
pub mod client;
pub mod decimal;
pub mod error;
pub mod paged;
pub mod proof;
pub mod stream;
pub mod types;

pub use client::{AuditFilter, Client, ExportFormat};
pub use error::Error;
pub use paged::Paged;
pub use stream::MarketStream;
pub use types::*;
