//! Whole-system tests: each starts the real server on 127.0.0.1 with a fresh database and drives
//! it through the sdk, as a user would.

mod audit;
mod auth;
mod bad_input;
mod cli;
mod cluster;
mod console;
mod crash;
mod demo;
mod identity;
mod isolation;
mod market_data;
mod market_stream;
mod money;
mod money_out;
mod orders;
mod participants;
mod policies;
mod proofs;
mod public;
mod quotes;
mod retry;
mod settlement;
mod tidy;

use suanli_sdk::Error;

/// The server's error code of a failed call, or a panic naming what came back instead.
pub fn code_of<T: std::fmt::Debug>(result: Result<T, Error>) -> (u16, String) {
    match result {
        Err(Error::Api { status, code, .. }) => (status.as_u16(), code),
        other => panic!("expected an API error, got {other:?}"),
    }
}
