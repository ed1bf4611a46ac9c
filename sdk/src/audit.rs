//! The audit log's hash chain, computed the same way by the server that writes it and by any
//! client that wants to check it without trusting the server.
//!
//! `canonical` is the JSON object `{"actor","at","kind","payload","seq"}` with object keys sorted
//! (by their UTF-8 bytes) at every depth and no insignificant whitespace;
//! `hash = sha256(prev_hash_bytes || canonical_bytes)`; the first entry's `prev_hash` is 32 zero
//! bytes.

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::types::{AuditEntry, AuditVerification};

/// The `prev_hash` of the first entry: 32 zero bytes, as hex.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Writes `value` as canonical JSON: keys sorted at every depth, no whitespace.
///
/// Sorting is done here rather than relying on `serde_json`'s map order, which a feature flag
/// elsewhere in a dependency tree could change.
pub fn canonical_json(value: &Value) -> String {
    let mut out = Vec::new();
    write_canonical(value, &mut out);
    String::from_utf8(out).expect("JSON text is UTF-8")
}

fn write_canonical(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Object(map) => {
            out.push(b'{');
            // Already in order unless a feature flag made the map keep insertion order.
            if map.keys().is_sorted() {
                for (index, (key, item)) in map.iter().enumerate() {
                    write_member(index, key, item, out);
                }
            } else {
                let mut members: Vec<(&String, &Value)> = map.iter().collect();
                members.sort_by_key(|(key, _)| *key);
                for (index, (key, item)) in members.into_iter().enumerate() {
                    write_member(index, key, item, out);
                }
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(b',');
                }
                write_canonical(item, out);
            }
            out.push(b']');
        }
        Value::String(text) => write_str(text, out),
        scalar => write_json(scalar, out),
    }
}

fn write_member(index: usize, key: &str, item: &Value, out: &mut Vec<u8>) {
    if index > 0 {
        out.push(b',');
    }
    write_str(key, out);
    out.push(b':');
    write_canonical(item, out);
}

/// A string as `serde_json` writes it: quoted, with `"`, `\\` and control characters escaped.
/// Most strings (codes, ids, decimals, times) need no escape and are copied as they are.
fn write_str(text: &str, out: &mut Vec<u8>) {
    // Without early exit, so that the compiler checks many bytes per instruction.
    let plain = text.bytes().fold(true, |plain, byte| {
        plain & (byte >= 0x20) & (byte != b'"') & (byte != b'\\')
    });
    if plain {
        out.reserve(text.len() + 2);
        out.push(b'"');
        out.extend_from_slice(text.as_bytes());
        out.push(b'"');
    } else {
        write_json(text, out);
    }
}

/// A string, number, boolean or null as `serde_json` writes it (compact, escaped).
fn write_json<T: serde::Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) {
    serde_json::to_writer(out, value).expect("a JSON scalar writes into memory");
}

/// The canonical text of one entry's fields.
pub fn canonical_entry(seq: i64, at: &str, actor: &str, kind: &str, payload: &Value) -> String {
    let mut out = Vec::with_capacity(256);
    write_canonical_entry(seq, at, actor, kind, payload, &mut out);
    String::from_utf8(out).expect("JSON text is UTF-8")
}

/// The canonical text of one entry's fields but its sequence number: everything up to and
/// including `"seq":`. The entry's canonical text is this, then `seq` in decimal, then `}` (as
/// the exchange's database completes it when it appends a batch's entries to the chain).
pub fn canonical_entry_prefix(at: &str, actor: &str, kind: &str, payload: &Value) -> String {
    let mut out = Vec::with_capacity(256);
    write_canonical_prefix(at, actor, kind, payload, &mut out);
    String::from_utf8(out).expect("JSON text is UTF-8")
}

/// [`canonical_entry`] into `out`: the five keys in their sorted order, written directly.
fn write_canonical_entry(
    seq: i64,
    at: &str,
    actor: &str,
    kind: &str,
    payload: &Value,
    out: &mut Vec<u8>,
) {
    write_canonical_prefix(at, actor, kind, payload, out);
    write_json(&seq, out);
    out.push(b'}');
}

/// [`canonical_entry_prefix`] into `out`.
fn write_canonical_prefix(at: &str, actor: &str, kind: &str, payload: &Value, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"actor\":");
    write_str(actor, out);
    out.extend_from_slice(b",\"at\":");
    write_str(at, out);
    out.extend_from_slice(b",\"kind\":");
    write_str(kind, out);
    out.extend_from_slice(b",\"payload\":");
    write_canonical(payload, out);
    out.extend_from_slice(b",\"seq\":");
}

/// `sha256(prev_hash_bytes || canonical_bytes)` as lowercase hex; `None` if `prev_hash` is not
/// 64 hex digits.
pub fn chain_hash(prev_hash: &str, canonical: &str) -> Option<String> {
    chain_digest(prev_hash, canonical.as_bytes()).map(hex::encode)
}

/// `sha256(prev_hash_bytes || canonical)`; `None` if `prev_hash` is not 64 hex digits.
fn chain_digest(prev_hash: &str, canonical: &[u8]) -> Option<[u8; 32]> {
    let mut prev = [0u8; 32];
    hex::decode_to_slice(prev_hash, &mut prev).ok()?;
    let mut hasher = Sha256::new();
    hasher.update(prev);
    hasher.update(canonical);
    Some(hasher.finalize().into())
}

/// Checks a log entry by entry, in order, and remembers the first entry that does not hold.
///
/// Feed it every entry from `seq` 1 upwards ([`ChainVerifier::push`]), then call
/// [`ChainVerifier::finish`]. An entry is bad when its `seq` is not the next one, its `prev_hash`
/// is not the previous entry's hash, its `canonical` text is not the canonical form of its own
/// fields, or its `hash` does not recompute.
#[derive(Debug)]
pub struct ChainVerifier {
    entries: u64,
    head_hash: String,
    first_bad_seq: Option<i64>,
    /// The canonical text recomputed for the entry at hand (kept, so that checking allocates
    /// nothing per entry).
    canonical: Vec<u8>,
    /// `head_hash` as bytes, as computed here (only used while every entry so far held).
    head_digest: [u8; 32],
    /// How many threads may check one page ([`ChainVerifier::push_page`]).
    threads: usize,
}

impl Default for ChainVerifier {
    fn default() -> Self {
        Self::new()
    }
}

impl ChainVerifier {
    /// A verifier expecting the first entry next.
    pub fn new() -> Self {
        ChainVerifier {
            entries: 0,
            head_hash: GENESIS_HASH.to_owned(),
            first_bad_seq: None,
            canonical: Vec::with_capacity(1024),
            head_digest: [0; 32],
            threads: std::thread::available_parallelism()
                .map_or(1, std::num::NonZeroUsize::get)
                .min(PAGE_THREADS_MAX),
        }
    }

    /// Checks the next entry. Returns `false` once any entry so far was bad.
    pub fn push(&mut self, entry: &AuditEntry) -> bool {
        let expected_seq = self.entries as i64 + 1;
        self.entries += 1;
        if self.first_bad_seq.is_none() && !self.entry_holds(entry, expected_seq) {
            self.first_bad_seq = Some(entry.seq);
        }
        // Continue from the entry's stated hash so one bad entry is not blamed on the next.
        self.head_hash.clear();
        self.head_hash.push_str(&entry.hash);
        self.first_bad_seq.is_none()
    }

    fn entry_holds(&mut self, entry: &AuditEntry, expected_seq: i64) -> bool {
        match entry_digest(
            entry,
            expected_seq,
            &self.head_hash,
            &self.head_digest,
            &mut self.canonical,
        ) {
            Some(digest) => {
                self.head_digest = digest;
                true
            }
            None => false,
        }
    }

    /// Checks the next entries, in order: the same verdict as [`ChainVerifier::push`] for each of
    /// them, with the machine's cores sharing a long page. An entry's check needs only its own
    /// fields and the previous entry's stated hash, so the page is cut into runs checked side by
    /// side. Returns `false` once any entry so far was bad.
    pub fn push_page(&mut self, entries: &[AuditEntry]) -> bool {
        let threads = self.threads;
        if threads < 2 || entries.len() < PARALLEL_PAGE_MIN || self.first_bad_seq.is_some() {
            for entry in entries {
                self.push(entry);
            }
            return self.first_bad_seq.is_none();
        }
        let Some(last) = entries.last() else {
            return true;
        };
        let first_seq = self.entries as i64 + 1;
        let run = entries.len().div_ceil(threads);
        let head_hash = self.head_hash.as_str();
        let first_bad = std::thread::scope(|scope| {
            let workers: Vec<_> = entries
                .chunks(run)
                .enumerate()
                .map(|(index, chunk)| {
                    let start = index * run;
                    let prev_hash = match start {
                        0 => head_hash,
                        _ => entries[start - 1].hash.as_str(),
                    };
                    let check = move || {
                        first_bad_in(chunk, first_seq + start as i64, prev_hash)
                            .map(|at| start + at)
                    };
                    // A thread the system refuses: that run is checked here instead.
                    std::thread::Builder::new()
                        .spawn_scoped(scope, check)
                        .map_err(|_| check())
                })
                .collect();
            workers
                .into_iter()
                .filter_map(|worker| match worker {
                    Ok(thread) => thread
                        .join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
                    Err(checked_here) => checked_here,
                })
                .min()
        });
        self.entries += entries.len() as u64;
        match first_bad {
            Some(index) => self.first_bad_seq = Some(entries[index].seq),
            // Every entry held, so the last one's hash is the 64 hex digits computed for it.
            None => {
                let _ = hex::decode_to_slice(&last.hash, &mut self.head_digest);
            }
        }
        self.head_hash.clear();
        self.head_hash.push_str(&last.hash);
        self.first_bad_seq.is_none()
    }

    /// The verdict over every entry pushed.
    pub fn finish(self) -> AuditVerification {
        AuditVerification {
            ok: self.first_bad_seq.is_none(),
            entries: self.entries,
            head_hash: self.head_hash,
            first_bad_seq: self.first_bad_seq,
            invariants: Vec::new(),
        }
    }
}

/// At most this many threads check one page.
const PAGE_THREADS_MAX: usize = 8;

/// Pages shorter than this are checked on the calling thread (starting threads would cost more).
const PARALLEL_PAGE_MIN: usize = 256;

/// The digest `entry` is checked to have, when it holds: its `seq` is `expected_seq`, its
/// `prev_hash` is `prev_hash` (whose bytes are `prev_digest`), its `canonical` text is the
/// canonical form of its fields (recomputed into `canonical`) and its `hash` recomputes.
fn entry_digest(
    entry: &AuditEntry,
    expected_seq: i64,
    prev_hash: &str,
    prev_digest: &[u8; 32],
    canonical: &mut Vec<u8>,
) -> Option<[u8; 32]> {
    if entry.seq != expected_seq || entry.prev_hash != prev_hash {
        return None;
    }
    canonical.clear();
    write_canonical_entry(
        entry.seq,
        &entry.at,
        &entry.actor,
        &entry.kind,
        &entry.payload,
        canonical,
    );
    if entry.canonical.as_bytes() != canonical.as_slice() {
        return None;
    }
    let mut hasher = Sha256::new();
    hasher.update(prev_digest);
    hasher.update(&canonical);
    let digest: [u8; 32] = hasher.finalize().into();
    let mut hex_digest = [0u8; 64];
    hex::encode_to_slice(digest, &mut hex_digest).expect("64 hex digits for 32 bytes");
    (entry.hash.as_bytes() == hex_digest).then_some(digest)
}

/// The index of the first entry of a run that does not hold, the run starting at `first_seq`
/// after an entry whose stated hash is `prev_hash`.
fn first_bad_in(entries: &[AuditEntry], first_seq: i64, prev_hash: &str) -> Option<usize> {
    let mut canonical = Vec::with_capacity(1024);
    let mut prev_digest = [0u8; 32];
    if hex::decode_to_slice(prev_hash, &mut prev_digest).is_err() {
        // The entry before is bad itself (its hash is not 64 hex digits), so this one cannot
        // follow it: the verdict names that earlier entry, found by the run that holds it.
        return (!entries.is_empty()).then_some(0);
    }
    let mut prev_hash = prev_hash;
    for (index, entry) in entries.iter().enumerate() {
        let expected_seq = first_seq + index as i64;
        match entry_digest(entry, expected_seq, prev_hash, &prev_digest, &mut canonical) {
            Some(digest) => prev_digest = digest,
            None => return Some(index),
        }
        prev_hash = &entry.hash;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry(seq: i64, prev_hash: &str, payload: Value) -> AuditEntry {
        let at = "2026-11-28T13:00:00.000000Z";
        let canonical = canonical_entry(seq, at, "system", "test", &payload);
        let hash = chain_hash(prev_hash, &canonical).unwrap();
        AuditEntry {
            seq,
            at: at.into(),
            actor: "system".into(),
            kind: "test".into(),
            payload,
            canonical,
            prev_hash: prev_hash.into(),
            hash,
        }
    }

    #[test]
    fn canonical_json_sorts_keys_at_every_depth_without_whitespace() {
        let value = json!({"b": 1, "a": {"z": [1, {"y": "x", "c": null}], "a": true}, "é": "ü"});
        assert_eq!(
            canonical_json(&value),
            r#"{"a":{"a":true,"z":[1,{"c":null,"y":"x"}]},"b":1,"é":"ü"}"#
        );
    }

    #[test]
    fn an_entry_written_directly_equals_the_canonical_form_of_its_object() {
        for payload in [
            json!({}),
            json!({"z": "quote \" and \\ and \u{1}", "a": [1, 2.5, -3, null, true], "m": {"b": 1, "a": 2}}),
            json!({"é": "ü", "e": "\n"}),
        ] {
            for (seq, actor) in [(1, "system"), (i64::MAX, "participant:\"x\"")] {
                let at = "2026-11-30T03:00:00.000001Z";
                let object = json!({
                    "actor": actor, "at": at, "kind": "k", "payload": payload, "seq": seq,
                });
                assert_eq!(
                    canonical_entry(seq, at, actor, "k", &payload),
                    canonical_json(&object)
                );
                // What the exchange's database completes with the entry's `seq`.
                assert_eq!(
                    format!(
                        "{}{seq}}}",
                        canonical_entry_prefix(at, actor, "k", &payload)
                    ),
                    canonical_json(&object)
                );
            }
        }
    }

    #[test]
    fn chain_hash_matches_a_hash_computed_by_hand() {
        // sha256 of 32 zero bytes followed by "{}", computed with `printf` and `sha256sum`.
        assert_eq!(
            chain_hash(GENESIS_HASH, "{}").unwrap(),
            "fb1634c4e6cd4b1f1afe3ce2d6ef080f7ac5d1f357d723ad4dfca782733b62db"
        );
        assert_eq!(chain_hash("zz", "{}"), None);
    }

    #[test]
    fn verifier_accepts_a_good_chain_and_names_the_first_bad_entry() {
        let first = entry(1, GENESIS_HASH, json!({"n": 1}));
        let second = entry(2, &first.hash, json!({"n": 2}));
        let third = entry(3, &second.hash, json!({"n": 3}));

        let mut verifier = ChainVerifier::new();
        for e in [&first, &second, &third] {
            verifier.push(e);
        }
        let verdict = verifier.finish();
        assert!(verdict.ok);
        assert_eq!(verdict.entries, 3);
        assert_eq!(verdict.head_hash, third.hash);

        let mut tampered = second.clone();
        tampered.payload = json!({"n": 20});
        let mut verifier = ChainVerifier::new();
        for e in [&first, &tampered, &third] {
            verifier.push(e);
        }
        let verdict = verifier.finish();
        assert!(!verdict.ok);
        assert_eq!(verdict.first_bad_seq, Some(2));
    }

    #[test]
    fn strings_are_written_as_serde_json_writes_them() {
        let mut texts: Vec<String> = (0u8..=0x7f)
            .map(|byte| char::from(byte).to_string())
            .collect();
        texts.extend(["", "plain", "é中\u{2028}\u{7f}", "a\"b\\c\u{1f}d\ne"].map(String::from));
        for text in texts {
            let mut out = Vec::new();
            write_str(&text, &mut out);
            assert_eq!(
                String::from_utf8(out).unwrap(),
                serde_json::to_string(&text).unwrap(),
                "{text:?}"
            );
        }
    }

    /// A page checked side by side gives the verdict of its entries pushed one by one, whatever
    /// is wrong and wherever, across page boundaries.
    #[test]
    fn a_page_checked_in_parallel_gives_the_verdict_of_entries_pushed_one_by_one() {
        let mut chain = vec![entry(1, GENESIS_HASH, json!({"n": 1}))];
        for seq in 2..=1_500 {
            let prev = chain.last().unwrap().hash.clone();
            chain.push(entry(
                seq,
                &prev,
                json!({"n": seq, "text": "quote \" here"}),
            ));
        }
        type Tamper = fn(&mut AuditEntry);
        let tampers: [(&str, Tamper); 5] = [
            ("payload", |e| e.payload = json!({"n": -1})),
            ("prev_hash", |e| e.prev_hash = "ab".repeat(32)),
            ("hash not hex", |e| e.hash = "zz".into()),
            ("seq", |e| e.seq += 1),
            ("canonical", |e| e.canonical.push(' ')),
        ];
        let verdict_of = |entries: &[AuditEntry], page: Option<usize>| {
            let mut verifier = ChainVerifier::new();
            // Side by side however many cores this machine has.
            verifier.threads = 3;
            match page {
                None => entries.iter().for_each(|e| {
                    verifier.push(e);
                }),
                Some(size) => entries.chunks(size).for_each(|p| {
                    verifier.push_page(p);
                }),
            }
            let verdict = verifier.finish();
            (
                verdict.ok,
                verdict.entries,
                verdict.head_hash,
                verdict.first_bad_seq,
            )
        };
        let whole = verdict_of(&chain, None);
        assert!(whole.0);
        for page in [300, 1_000, 1_500] {
            assert_eq!(verdict_of(&chain, Some(page)), whole, "page {page}");
        }
        for at in [0, 1, 374, 375, 750, 999, 1_000, 1_499] {
            for (what, tamper) in tampers {
                let mut bad = chain.clone();
                tamper(&mut bad[at]);
                let one_by_one = verdict_of(&bad, None);
                assert!(!one_by_one.0, "{what} at {at}");
                for page in [300, 1_000, 1_500] {
                    assert_eq!(
                        verdict_of(&bad, Some(page)),
                        one_by_one,
                        "{what} at {at}, page {page}"
                    );
                }
            }
        }
    }

    #[test]
    fn verifier_refuses_a_gap_in_the_sequence() {
        let first = entry(1, GENESIS_HASH, json!({}));
        let third = entry(3, &first.hash, json!({}));
        let mut verifier = ChainVerifier::new();
        verifier.push(&first);
        verifier.push(&third);
        assert_eq!(verifier.finish().first_bad_seq, Some(3));
    }
}
