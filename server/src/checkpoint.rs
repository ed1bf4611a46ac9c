//! Signed checkpoints of the audit log (API.md "Signed checkpoints and proofs").
//!
//! The checkpointer extends the log's Merkle tree with the entries committed since its last run
//! (`db::tree::extend`), and when the log grew signs a checkpoint: a C2SP `tlog-checkpoint` body
//! (`tlog_tiles`) in a C2SP signed note (`signed_note`), Ed25519. Each checkpoint is stored and
//! also published into the audit log itself (`kind: "checkpoint"`), so the chain commits to it.
//! It runs on its own thread every `SUANLI_CHECKPOINT_INTERVAL_S` and once more at shutdown,
//! never on the order path.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::SigningKey;
use suanli_sdk::CheckpointKey;

use crate::db::{self, DbPool};

/// Signs notes with the exchange's Ed25519 key under its name.
struct NoteSigner {
    name: String,
    id: u32,
    key: SigningKey,
}

impl signed_note::Signer for NoteSigner {
    fn name(&self) -> &str {
        &self.name
    }
    fn key_id(&self) -> u32 {
        self.id
    }
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, signature::Error> {
        use ed25519_dalek::Signer;
        Ok(self.key.sign(message).to_bytes().to_vec())
    }
}

/// Makes checkpoints.
pub struct Checkpointer {
    signer: NoteSigner,
    origin: String,
    key: CheckpointKey,
}

/// A checkpoint just signed.
#[derive(Debug, Clone)]
pub struct Signed {
    pub tree_size: u64,
    pub note: String,
}

impl Checkpointer {
    /// A checkpointer signing with the Ed25519 key whose 32-byte seed is `seed`, for the log
    /// named `origin` (also the key's name).
    pub fn new(seed: [u8; 32], origin: &str) -> anyhow::Result<Self> {
        if !signed_note::is_key_name_valid(origin) {
            anyhow::bail!(
                "SUANLI_AUDIT_ORIGIN {origin:?} cannot name a key: it must be non-empty, without spaces or '+'"
            );
        }
        let key = SigningKey::from_bytes(&seed);
        let public = key.verifying_key();
        let verifier_key = signed_note::new_ed25519_verifier_key(origin, &public);
        let encoded = [&[0x01u8][..], public.as_bytes()].concat();
        Ok(Checkpointer {
            signer: NoteSigner {
                name: origin.to_owned(),
                id: signed_note::key_id(origin, &encoded),
                key,
            },
            origin: origin.to_owned(),
            key: CheckpointKey {
                key_name: origin.to_owned(),
                public_key: BASE64.encode(public.as_bytes()),
                verifier_key,
            },
        })
    }

    /// A checkpointer from `SUANLI_AUDIT_SIGNING_KEY`'s value (base64 of a 32-byte seed).
    pub fn from_base64(seed: &str, origin: &str) -> anyhow::Result<Self> {
        let bytes = BASE64
            .decode(seed.trim())
            .map_err(|_| anyhow::anyhow!("SUANLI_AUDIT_SIGNING_KEY is not base64"))?;
        let seed: [u8; 32] = bytes.try_into().map_err(|_| {
            anyhow::anyhow!("SUANLI_AUDIT_SIGNING_KEY must be 32 bytes (an Ed25519 seed)")
        })?;
        Self::new(seed, origin)
    }

    /// The public key, as `GET /v1/audit/checkpoint/key` publishes it.
    pub fn key(&self) -> &CheckpointKey {
        &self.key
    }

    /// The signed note of the checkpoint for a tree of `size` entries with root `root`.
    pub fn sign(&self, size: u64, root: tlog_tiles::Hash) -> anyhow::Result<String> {
        let body = tlog_tiles::Checkpoint::new(&self.origin, size, root, "")
            .map_err(|_| anyhow::anyhow!("a malformed checkpoint for {}", self.origin))?
            .to_bytes();
        let mut note = signed_note::Note::new(&body, &[])?;
        note.add_sigs(&[&self.signer])?;
        Ok(String::from_utf8(note.to_bytes())?)
    }

    /// Extends the tree with the entries committed since the last run and, when the log grew
    /// beyond the last checkpoint (and that checkpoint's own entry), signs, stores and publishes
    /// a new checkpoint, all in one transaction.
    pub fn run(&self, connection: &mut db::Connection) -> anyhow::Result<Option<Signed>> {
        db::transaction(connection, |connection| {
            let size = db::tree::extend(connection)?;
            let latest = db::tree::latest_checkpoint(connection)?;
            if let Some(latest) = &latest
                && suanli_sdk::proof::verify_checkpoint(&latest.note, &self.key.verifier_key)
                    .is_err()
            {
                anyhow::bail!(
                    "the checkpoints in this database were signed by another key: set SUANLI_AUDIT_SIGNING_KEY to the key that signed them (every node of one exchange shares it)"
                );
            }
            let last = latest.map_or(0, |c| c.tree_size as u64);
            // The last checkpoint's own entry follows it: that alone is no news.
            if size == 0 || (last > 0 && size <= last + 1) {
                return Ok(None);
            }
            let root = db::tree::root(connection, size)?;
            let note = self.sign(size, root)?;
            if db::tree::insert_checkpoint(connection, size, &root, &self.signer.name, &note)? {
                db::audit::append(
                    connection,
                    "exchange",
                    "checkpoint",
                    serde_json::json!({
                        "origin": self.origin,
                        "tree_size": size,
                        "root_hash": hex::encode(root.0),
                        "key_name": self.signer.name,
                    }),
                )?;
            }
            Ok(Some(Signed {
                tree_size: size,
                note,
            }))
        })
    }
}

/// Runs `checkpointer` every `interval` on a thread of its own, with connections from `pool`,
/// until the returned handle is stopped (which runs it once more).
pub fn spawn(checkpointer: Arc<Checkpointer>, pool: DbPool, interval: Duration) -> Schedule {
    let (stop, stopped) = std::sync::mpsc::channel::<std::sync::mpsc::Sender<()>>();
    let thread = std::thread::Builder::new()
        .name("suanli-checkpointer".into())
        .spawn(move || {
            let run = || match pool.get() {
                Ok(mut connection) => {
                    if let Err(error) = checkpointer.run(&mut connection) {
                        tracing::warn!(%error, "checkpoint failed; trying again at the next interval");
                    }
                }
                Err(error) => tracing::warn!(%error, "no connection for the checkpoint"),
            };
            loop {
                match stopped.recv_timeout(interval) {
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => run(),
                    Ok(done) => {
                        run();
                        let _ = done.send(());
                        return;
                    }
                    Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return,
                }
            }
        });
    if let Err(error) = &thread {
        tracing::error!(%error, "the checkpointer thread did not start");
    }
    Schedule { stop }
}

/// The checkpointer's thread.
pub struct Schedule {
    stop: std::sync::mpsc::Sender<std::sync::mpsc::Sender<()>>,
}

impl Schedule {
    /// Signs a last checkpoint and stops (waiting at most `wait` for it).
    pub fn stop(&self, wait: Duration) {
        let (done, finished) = std::sync::mpsc::channel();
        if self.stop.send(done).is_ok() {
            let _ = finished.recv_timeout(wait);
        }
    }
}

#[cfg(test)]
mod tests {
    //! The server's proofs (`tlog_tiles`, from stored hashes) checked by the sdk's verifier
    //! (written from RFC 9162): two implementations checking each other.

    use std::cell::RefCell;

    use suanli_sdk::proof::{self, ProofError};
    use tlog_tiles::{Hash, HashReader};

    use super::*;

    /// Stored hashes in memory, as `db::tree` keeps them in a table.
    #[derive(Default)]
    struct Memory {
        hashes: RefCell<Vec<Hash>>,
        leaves: Vec<[u8; 32]>,
    }

    impl HashReader for Memory {
        fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, tlog_tiles::Error> {
            let hashes = self.hashes.borrow();
            indexes
                .iter()
                .map(|&index| {
                    hashes
                        .get(index as usize)
                        .copied()
                        .ok_or(tlog_tiles::Error::IndexesNotInTree)
                })
                .collect()
        }
    }

    impl Memory {
        fn with_leaves(n: u64) -> Self {
            let mut memory = Memory::default();
            for i in 0..n {
                memory.append(format!("{{\"seq\":{}}}", i + 1).as_bytes());
            }
            memory
        }

        fn append(&mut self, data: &[u8]) {
            let n = self.leaves.len() as u64;
            let stored = tlog_tiles::stored_hashes(n, data, &*self).unwrap();
            assert_eq!(
                self.hashes.borrow().len() as u64,
                tlog_tiles::stored_hash_index(0, n)
            );
            self.hashes.borrow_mut().extend(stored);
            self.leaves.push(proof::leaf_hash(data));
        }

        fn root(&self, size: u64) -> [u8; 32] {
            tlog_tiles::tree_hash(size, self).unwrap().0
        }

        fn inclusion(&self, size: u64, index: u64) -> Vec<[u8; 32]> {
            tlog_tiles::prove_record(size, index, self)
                .unwrap()
                .into_iter()
                .map(|hash| hash.0)
                .collect()
        }

        fn consistency(&self, first: u64, second: u64) -> Vec<[u8; 32]> {
            tlog_tiles::prove_tree(second, first, self)
                .unwrap()
                .into_iter()
                .map(|hash| hash.0)
                .collect()
        }
    }

    #[test]
    fn every_leaf_of_every_tree_up_to_70_is_proven_and_every_pair_of_sizes_is_consistent() {
        let memory = Memory::with_leaves(70);
        for size in 1..=70u64 {
            let root = memory.root(size);
            assert_eq!(root, proof::root(&memory.leaves[..size as usize]));
            for index in 0..size {
                let path = memory.inclusion(size, index);
                proof::verify_inclusion(&memory.leaves[index as usize], index, size, &path, &root)
                    .unwrap_or_else(|error| panic!("leaf {index} of {size}: {error}"));
            }
            for first in 1..=size {
                let proof_hashes = memory.consistency(first, size);
                proof::verify_consistency(first, size, &proof_hashes, &memory.root(first), &root)
                    .unwrap_or_else(|error| panic!("{first} → {size}: {error}"));
            }
        }
    }

    #[test]
    fn proofs_hold_in_random_trees_up_to_100k_entries() {
        let memory = Memory::with_leaves(100_000);
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = |below: u64| {
            // xorshift: a fixed sequence, so a failure repeats.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % below
        };
        for _ in 0..300 {
            let size = 1 + next(100_000);
            let index = next(size);
            let root = memory.root(size);
            let path = memory.inclusion(size, index);
            assert!(path.len() <= 17, "{} hashes for {size}", path.len());
            proof::verify_inclusion(&memory.leaves[index as usize], index, size, &path, &root)
                .unwrap();
            let first = 1 + next(size);
            let proof_hashes = memory.consistency(first, size);
            proof::verify_consistency(first, size, &proof_hashes, &memory.root(first), &root)
                .unwrap();
        }
    }

    #[test]
    fn forged_roots_truncated_proofs_and_dropped_entries_are_refused() {
        let memory = Memory::with_leaves(45);
        let (size, index) = (45u64, 17u64);
        let root = memory.root(size);
        let path = memory.inclusion(size, index);
        let leaf = memory.leaves[index as usize];
        let forged = proof::leaf_hash(b"forged");
        assert_eq!(
            proof::verify_inclusion(&leaf, index, size, &path, &forged),
            Err(ProofError::InclusionFailed)
        );
        assert!(
            proof::verify_inclusion(&leaf, index, size, &path[..path.len() - 1], &root).is_err()
        );
        assert!(proof::verify_inclusion(&leaf, index + 1, size, &path, &root).is_err());
        assert!(proof::verify_inclusion(&forged, index, size, &path, &root).is_err());
        // A log that silently dropped entry 5: its tree is not the one checkpointed.
        let mut dropped = Memory::default();
        for i in (0..45u64).filter(|&i| i != 5) {
            dropped.append(format!("{{\"seq\":{}}}", i + 1).as_bytes());
        }
        dropped.append(b"{\"seq\":46}");
        let dropped_root = dropped.root(45);
        assert_ne!(dropped_root, root);
        assert!(
            proof::verify_inclusion(&leaf, index, size, &dropped.inclusion(45, index), &root)
                .is_err()
        );
        let consistency = dropped.consistency(20, 45);
        assert!(
            proof::verify_consistency(20, 45, &consistency, &memory.root(20), &dropped_root)
                .is_err()
        );
        // A consistency proof cut short, or between trees in the wrong order.
        let consistency = memory.consistency(20, 45);
        assert!(
            proof::verify_consistency(20, 45, &consistency[1..], &memory.root(20), &root).is_err()
        );
        assert!(proof::verify_consistency(45, 20, &consistency, &root, &memory.root(20)).is_err());
    }

    #[test]
    fn a_checkpoint_verifies_only_under_its_own_key() {
        let ours = Checkpointer::new([7; 32], "suanli.test/log").unwrap();
        let theirs = Checkpointer::new([8; 32], "suanli.test/log").unwrap();
        let memory = Memory::with_leaves(10);
        let root = Hash(memory.root(10));
        let note = ours.sign(10, root).unwrap();
        assert!(note.starts_with("suanli.test/log\n10\n"), "{note}");
        assert!(note.contains("\n\n— suanli.test/log "), "{note}");
        let verified = proof::verify_checkpoint(&note, &ours.key().verifier_key).unwrap();
        assert_eq!((verified.tree_size, verified.root_hash), (10, root.0));
        assert!(matches!(
            proof::verify_checkpoint(&note, &theirs.key().verifier_key),
            Err(ProofError::BadSignature(_))
        ));
        // One changed character of the body (the size) breaks the signature.
        let altered = note.replacen("\n10\n", "\n11\n", 1);
        assert!(proof::verify_checkpoint(&altered, &ours.key().verifier_key).is_err());
        assert!(matches!(
            proof::verify_checkpoint(&note, "not a key"),
            Err(ProofError::BadKey(_))
        ));
    }
}
