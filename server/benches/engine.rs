//! The matching engine under criterion, command by command, on the mix of
//! `examples/support/mod.rs`: the example's starting book after 200,000 commands (so popular
//! offers are partly sold, hour by hour), then each measured command is the mix's next.
//!
//! `cargo bench -p suanli-server --bench engine`

#[path = "../examples/support/mod.rs"]
mod support;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use suanli_server::market::BuiltInRules;
use support::{Book, Command, Commands, NOW, Tally};

fn warmed() -> (Book, Commands) {
    let (mut book, mut commands) = support::start(7);
    let mut tally = Tally::default();
    for _ in 0..200_000 {
        book.apply(commands.next_command(), &mut tally);
    }
    (book, commands)
}

fn engine(c: &mut Criterion) {
    let mut group = c.benchmark_group("engine");
    let (mut book, mut commands) = warmed();
    let mut tally = Tally::default();
    group.bench_function("mixed command (55% bids, 35% offers, 10% cancels)", |b| {
        b.iter_batched(
            || commands.next_command(),
            |command| book.apply(command, &mut tally),
            BatchSize::SmallInput,
        )
    });
    // A quote changes nothing, so every iteration sees the same book.
    let (book, mut commands) = warmed();
    let bids: Vec<_> = std::iter::from_fn(|| Some(commands.next_command()))
        .filter_map(|command| match command {
            Command::Bid(spec) => Some(spec),
            _ => None,
        })
        .take(1024)
        .collect();
    let mut next = 0;
    group.bench_function("quote of an incoming bid", |b| {
        b.iter(|| {
            next = (next + 1) % bids.len();
            book.engine.quote_bid(&bids[next], NOW, &mut BuiltInRules)
        })
    });
    group.finish();
}

criterion_group!(benches, engine);
criterion_main!(benches);
