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
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (index, key) in keys.into_iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(&map[key], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// The canonical text of one entry's fields.
pub fn canonical_entry(seq: i64, at: &str, actor: &str, kind: &str, payload: &Value) -> String {
    canonical_json(&serde_json::json!({
        "actor": actor,
        "at": at,
        "kind": kind,
        "payload": payload,
        "seq": seq,
    }))
}

/// `sha256(prev_hash_bytes || canonical_bytes)` as lowercase hex; `None` if `prev_hash` is not
/// 64 hex digits.
pub fn chain_hash(prev_hash: &str, canonical: &str) -> Option<String> {
    let prev = hex::decode(prev_hash)
        .ok()
        .filter(|bytes| bytes.len() == 32)?;
    let mut hasher = Sha256::new();
    hasher.update(&prev);
    hasher.update(canonical.as_bytes());
    Some(hex::encode(hasher.finalize()))
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
        self.head_hash = entry.hash.clone();
        self.first_bad_seq.is_none()
    }

    fn entry_holds(&self, entry: &AuditEntry, expected_seq: i64) -> bool {
        let canonical = canonical_entry(
            entry.seq,
            &entry.at,
            &entry.actor,
            &entry.kind,
            &entry.payload,
        );
        entry.seq == expected_seq
            && entry.prev_hash == self.head_hash
            && entry.canonical == canonical
            && chain_hash(&entry.prev_hash, &entry.canonical).as_deref()
                == Some(entry.hash.as_str())
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
    fn verifier_refuses_a_gap_in_the_sequence() {
        let first = entry(1, GENESIS_HASH, json!({}));
        let third = entry(3, &first.hash, json!({}));
        let mut verifier = ChainVerifier::new();
        verifier.push(&first);
        verifier.push(&third);
        assert_eq!(verifier.finish().first_bad_seq, Some(3));
    }
}
