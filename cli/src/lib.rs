//! `suanli`: the exchange from the command line, for every role. Tables for people, `--json` for
//! scripts, a progress bar on long work, and errors as one line with a non-zero exit code.
//!
//! `suanli login --api-key KEY` keeps a token in `~/.config/suanli/config.json` (mode 0600, or
//! `$SUANLI_CONFIG`); every other command uses it.
//!
//! # Layout
//! - `args`: the command line as clap reads it, and the parsers of its values;
//! - `config`: the kept login (token, address, optionally the key);
//! - `output`: standard output that ends quietly on a closed pipe, JSON or tables, times in the
//!   chosen zone;
//! - `commands`: one module per command group, and `run`, which dispatches.

/// Prints a line to standard output; a reader that went away (`suanli … | head`) ends the
/// program quietly, with success, instead of a panic.
macro_rules! out {
    () => {
        $crate::write_out(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::write_out(format_args!("{}\n", format_args!($($arg)*)))
    };
}

mod args;
mod commands;
mod config;
mod output;
mod table;

// The crate's prelude: every module starts with `use crate::*`.
use std::path::PathBuf;

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use suanli_sdk::{
    AuditFilter, CandleInterval, Client, DataClass, DryRunRequest, ExportFormat, MarketUpdate,
    NewBid, NewDelivery, NewOffer, NewWithdrawal, OrderStatus, TimeInForce, Window, WithdrawalPaid,
    WithdrawalRejected, WithdrawalStatus,
};
use uuid::Uuid;

use args::*;
use config::*;
pub(crate) use output::write_out;
use output::*;
use table::Table;

/// Runs the command line given to the process and exits non-zero, with one line on standard
/// error, if it fails.
pub fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) if !error.use_stderr() => error.exit(),
        Err(error) => {
            // One line (and clap's tip, if it has one) rather than the usage screen.
            let text = error.to_string();
            let mut lines = text.lines();
            let mut message = lines
                .next()
                .unwrap_or("error: invalid arguments")
                .to_owned();
            if let Some(tip) = lines.find(|line| line.trim_start().starts_with("tip:")) {
                message.push_str(&format!(" ({})", tip.trim()));
            }
            eprintln!("{message}; see `suanli --help`");
            std::process::exit(2);
        }
    };
    if let Err(error) = runtime.block_on(commands::run(cli)) {
        let message = match error.downcast_ref::<suanli_sdk::Error>() {
            Some(suanli_sdk::Error::Api {
                status,
                code,
                message,
            }) if status.as_u16() == 401 => {
                format!("{code}: {message} (log in with `suanli login --api-key KEY`)")
            }
            Some(suanli_sdk::Error::Api { code, message, .. }) => format!("{code}: {message}"),
            Some(suanli_sdk::Error::Transport(_)) => format!(
                "{error:#} (is the exchange running at the address `suanli login` saved, or \
                 --url / SUANLI_URL?)"
            ),
            _ => format!("{error:#}"),
        };
        eprintln!("error: {message}");
        std::process::exit(1);
    }
}
