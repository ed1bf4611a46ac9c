//! Benchmark of the matching engine alone: commands per second on one core, on a realistic mix
//! (see `support/mod.rs`): a book of about 100,000 resting orders takes 1,000,000 commands.
//! Run with `cargo run --release -p suanli-server --example engine_throughput`; the same mix,
//! command by command under criterion: `cargo bench -p suanli-server --bench engine`.
//!
//! The fills, cancels and final book it prints depend only on the seed: a change to the engine
//! that should not change matching must leave them exactly as they were.

mod support;

use std::time::Instant;

use support::Tally;

fn main() {
    let (mut book, mut commands) = support::start(7);
    let (offers, bids) = book.engine.resting();
    println!("book: {offers} resting offers, {bids} resting bids");

    const COMMANDS: usize = 1_000_000;
    // Commands are made before the clock starts: only the engine is timed.
    let commands: Vec<_> = (0..COMMANDS).map(|_| commands.next_command()).collect();
    let mut tally = Tally::default();
    let started = Instant::now();
    for command in commands {
        book.apply(command, &mut tally);
    }
    let elapsed = started.elapsed();
    let (offers, bids) = book.engine.resting();
    println!(
        "{COMMANDS} commands in {:.3} s: {:.0} commands/s on one core ({} fills, {} cancels; \
         book now {offers} offers, {bids} bids)",
        elapsed.as_secs_f64(),
        COMMANDS as f64 / elapsed.as_secs_f64(),
        tally.fills,
        tally.cancels,
    );
}
