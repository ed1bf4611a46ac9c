//! How fast a regulator's machine checks the audit chain, once it has the entries: builds a chain
//! of entries shaped like the exchange's (a bid accepted, ~400 bytes of payload each) in memory,
//! then times `ChainVerifier` over all of it (canonical form recomputed, SHA-256 recomputed, links
//! followed), entry by entry on one thread, then page by page on up to eight cores, then page by
//! page as the sdk's client checks what it downloads: each page just parsed from its JSON text.
//! Downloading is not counted; the third run times the check alone and prints the parsing beside
//! it.
//!
//! `cargo run --release -p suanli-sdk --example chain_verification -- [entries]` (default 1,000,000)

use std::time::Instant;

use serde_json::json;
use suanli_sdk::audit::{ChainVerifier, GENESIS_HASH, canonical_entry, chain_hash};
use suanli_sdk::types::AuditEntry;

fn main() {
    let entries: i64 = std::env::args()
        .nth(1)
        .map(|n| n.parse().expect("a number of entries"))
        .unwrap_or(1_000_000);
    let built = Instant::now();
    let mut chain = Vec::with_capacity(entries as usize);
    let mut prev_hash = GENESIS_HASH.to_owned();
    for seq in 1..=entries {
        let at = format!(
            "2026-11-29T12:{:02}:{:02}.{:06}Z",
            seq / 60 % 60,
            seq % 60,
            seq % 1_000_000
        );
        let payload = json!({
            "bid_id": format!("0b7a3c1e-5d2f-4a8b-9c6d-{seq:012}"),
            "buyer_id": "5f0c2a9e-1b3d-4e7f-8a6c-2d4b9e0f1a3c",
            "skus": ["ai.nvidia-h20"],
            "quantity": 1 + seq % 8,
            "window": {"start": "2026-11-29T14:00:00Z", "end": "2026-11-29T18:00:00Z"},
            "limit_price": "10.5",
            "hubs": ["ningxia", "gansu", "guizhou", "inner-mongolia"],
            "min_fill": 1,
            "hold": "42.00",
            "time_in_force": "GTC",
        });
        let canonical = canonical_entry(seq, &at, "system", "bid_accepted", &payload);
        let hash = chain_hash(&prev_hash, &canonical).expect("a 64-digit hash");
        chain.push(AuditEntry {
            seq,
            at,
            actor: "system".into(),
            kind: "bid_accepted".into(),
            payload,
            canonical,
            prev_hash: std::mem::replace(&mut prev_hash, hash.clone()),
            hash,
        });
    }
    println!(
        "built {entries} entries in {:.2} s",
        built.elapsed().as_secs_f64()
    );
    let started = Instant::now();
    let mut verifier = ChainVerifier::new();
    for entry in &chain {
        verifier.push(entry);
    }
    report(verifier, started, "one thread, entry by entry");
    // As `Client::verify_audit_chain` checks what it downloads: a page (the API's largest,
    // 500 entries) at a time, the machine's cores sharing each page.
    let started = Instant::now();
    let mut verifier = ChainVerifier::new();
    for page in chain.chunks(500) {
        verifier.push_page(page);
    }
    // As many threads as `ChainVerifier::push_page` uses: one a core, at most eight.
    let threads = std::thread::available_parallelism()
        .map_or(1, std::num::NonZeroUsize::get)
        .min(8);
    report(
        verifier,
        started,
        &format!("pages of 500 entries, {threads} threads"),
    );
    // The two runs above read a million entries built seconds earlier, ~2 GB spread over the
    // heap, so much of their time is the memory's. The client parses a page and checks it at
    // once, while the page's ~1 MB was just written: the same check, each page just parsed from
    // its JSON text. Only the check is timed (parsing is part of downloading); the parsing's time is
    // printed beside it.
    let pages: Vec<String> = chain
        .chunks(500)
        .map(|page| serde_json::to_string(page).expect("entries serialize"))
        .collect();
    drop(chain);
    let mut verifier = ChainVerifier::new();
    let mut checking = std::time::Duration::ZERO;
    let mut parsing = std::time::Duration::ZERO;
    for text in &pages {
        let parse_start = Instant::now();
        let page: Vec<AuditEntry> = serde_json::from_str(text).expect("a page parses");
        let check_start = Instant::now();
        verifier.push_page(&page);
        checking += check_start.elapsed();
        parsing += check_start - parse_start;
    }
    let verdict = verifier.finish();
    assert!(verdict.ok, "the chain holds");
    println!(
        "verified {} entries in {:.2} s: {:.0} entries/s (each page of 500 checked as soon as it \
         is parsed, as the client does, {threads} threads; parsing the pages took {:.2} s more)",
        verdict.entries,
        checking.as_secs_f64(),
        verdict.entries as f64 / checking.as_secs_f64(),
        parsing.as_secs_f64()
    );
}

fn report(verifier: ChainVerifier, started: Instant, how: &str) {
    let verdict = verifier.finish();
    let elapsed = started.elapsed().as_secs_f64();
    assert!(verdict.ok, "the chain holds");
    println!(
        "verified {} entries in {elapsed:.2} s: {:.0} entries/s ({how})",
        verdict.entries,
        verdict.entries as f64 / elapsed
    );
}
