//! Checking the exchange's signed checkpoints and Merkle proofs without trusting the exchange.
//!
//! The audit log is an RFC 6962 Merkle tree: leaf `i` is the entry with `seq = i + 1`, its hash
//! `SHA-256(0x00 || canonical)`, an inner node `SHA-256(0x01 || left || right)`. A checkpoint is a
//! C2SP signed note (`signed_note`) whose text is a C2SP tlog checkpoint (`tlog_tiles`): origin,
//! tree size, base64 root hash. Inclusion and consistency proofs are checked here with the
//! algorithms of RFC 9162 §2.1.3.2 and §2.1.4.2, written from the RFC (the server builds proofs
//! with another implementation, so the two check each other in the tests).

use sha2::{Digest, Sha256};
use signed_note::{Note, StandardVerifier, VerifierList};

use crate::types::{AuditEntry, ContractProof};

/// A SHA-256 hash.
pub type Hash = [u8; 32];

/// Why a checkpoint or proof was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    #[error("the verifier key is malformed: {0}")]
    BadKey(String),
    #[error("the checkpoint is not a well-formed signed note: {0}")]
    MalformedCheckpoint(String),
    #[error("the checkpoint is not signed by the pinned key: {0}")]
    BadSignature(String),
    #[error("a hash is not 32 bytes of hex or base64: {0}")]
    MalformedHash(String),
    #[error("leaf {index} is not in a tree of {size}")]
    OutOfRange { index: u64, size: u64 },
    #[error("the inclusion proof does not lead to the root")]
    InclusionFailed,
    #[error("the consistency proof does not link the two trees")]
    ConsistencyFailed,
    #[error("the proof is for tree size {proof}, the checkpoint for {checkpoint}")]
    SizeMismatch { proof: u64, checkpoint: u64 },
    #[error("entry {seq}: {detail}")]
    BadEntry { seq: i64, detail: String },
    #[error("not the proof of the contract asked for: {0}")]
    WrongContract(String),
    #[error("the checkpoint's origin {origin} is not the key's name {key_name}")]
    WrongOrigin { origin: String, key_name: String },
}

/// `SHA-256(0x00 || data)`: the hash of a leaf.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([0u8]);
    hasher.update(data);
    hasher.finalize().into()
}

/// `SHA-256(0x01 || left || right)`: the hash of an inner node.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([1u8]);
    hasher.update(left);
    hasher.update(right);
    hasher.finalize().into()
}

/// The root of the tree over `leaves` (RFC 6962 §2.1 `MTH`), computed from all of them: what a
/// regulator holding the whole log recomputes.
pub fn root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => Sha256::digest([]).into(),
        1 => leaves[0],
        n => {
            let k = largest_power_of_two_below(n as u64) as usize;
            node_hash(&root(&leaves[..k]), &root(&leaves[k..]))
        }
    }
}

/// The largest power of two smaller than `n` (`n >= 2`).
fn largest_power_of_two_below(n: u64) -> u64 {
    1 << (63 - (n - 1).leading_zeros())
}

/// RFC 9162 §2.1.3.2: `path` proves that the leaf with hash `leaf` is leaf `index` of the tree of
/// `size` leaves whose root is `root`.
pub fn verify_inclusion(
    leaf: &Hash,
    index: u64,
    size: u64,
    path: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::OutOfRange { index, size });
    }
    let (mut f, mut s) = (index, size - 1);
    let mut r = *leaf;
    for p in path {
        if s == 0 {
            return Err(ProofError::InclusionFailed);
        }
        if f & 1 == 1 || f == s {
            r = node_hash(p, &r);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    if s == 0 && r == *root {
        Ok(())
    } else {
        Err(ProofError::InclusionFailed)
    }
}

/// RFC 9162 §2.1.4.2: `proof` shows that the tree of `second` leaves with root `second_root`
/// extends the tree of `first` leaves with root `first_root` (the same first leaves, unchanged).
pub fn verify_consistency(
    first: u64,
    second: u64,
    proof: &[Hash],
    first_root: &Hash,
    second_root: &Hash,
) -> Result<(), ProofError> {
    if first == 0 || first > second {
        return Err(ProofError::ConsistencyFailed);
    }
    if first == second {
        return if proof.is_empty() && first_root == second_root {
            Ok(())
        } else {
            Err(ProofError::ConsistencyFailed)
        };
    }
    if proof.is_empty() {
        return Err(ProofError::ConsistencyFailed);
    }
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if first.is_power_of_two() {
        path.push(*first_root);
    }
    path.extend_from_slice(proof);
    let (mut f, mut s) = (first - 1, second - 1);
    while f & 1 == 1 {
        f >>= 1;
        s >>= 1;
    }
    let (mut fr, mut sr) = (path[0], path[0]);
    for c in &path[1..] {
        if s == 0 {
            return Err(ProofError::ConsistencyFailed);
        }
        if f & 1 == 1 || f == s {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        f >>= 1;
        s >>= 1;
    }
    if fr == *first_root && sr == *second_root && s == 0 {
        Ok(())
    } else {
        Err(ProofError::ConsistencyFailed)
    }
}

/// A checkpoint whose signature verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedCheckpoint {
    pub origin: String,
    pub tree_size: u64,
    pub root_hash: Hash,
    /// The whole signed note, as served (to keep and compare later).
    pub note: String,
}

/// Checks that `note` is a checkpoint signed by the key `verifier_key` (the note verifier key
/// string `<name>+<hex key hash>+<base64(0x01 ‖ key)>` that `GET /v1/audit/checkpoint/key`
/// publishes and a regulator pins), and reads it.
pub fn verify_checkpoint(note: &str, verifier_key: &str) -> Result<VerifiedCheckpoint, ProofError> {
    let verifier = StandardVerifier::new(verifier_key.trim())
        .map_err(|error| ProofError::BadKey(error.to_string()))?;
    let key_name = signed_note::Verifier::name(&verifier).to_owned();
    let parsed = Note::from_bytes(note.as_bytes())
        .map_err(|error| ProofError::MalformedCheckpoint(error.to_string()))?;
    parsed
        .verify(&VerifierList::new(vec![Box::new(verifier)]))
        .map_err(|error| ProofError::BadSignature(error.to_string()))?;
    let checkpoint = tlog_tiles::Checkpoint::from_bytes(parsed.text())
        .map_err(|error| ProofError::MalformedCheckpoint(error.to_string()))?;
    // The exchange names its key after its log: a checkpoint of another log is not this one's.
    if checkpoint.origin() != key_name {
        return Err(ProofError::WrongOrigin {
            origin: checkpoint.origin().to_owned(),
            key_name,
        });
    }
    Ok(VerifiedCheckpoint {
        origin: checkpoint.origin().to_owned(),
        tree_size: checkpoint.size(),
        root_hash: checkpoint.hash().0,
        note: note.to_owned(),
    })
}

/// A 32-byte hash from lowercase hex.
pub fn parse_hex_hash(text: &str) -> Result<Hash, ProofError> {
    let bytes = hex::decode(text).map_err(|_| ProofError::MalformedHash(text.to_owned()))?;
    bytes
        .try_into()
        .map_err(|_| ProofError::MalformedHash(text.to_owned()))
}

/// The leaf hash of an audit entry, after checking that its `canonical` text is its own fields.
pub fn entry_leaf_hash(entry: &AuditEntry) -> Result<Hash, ProofError> {
    let own = crate::audit::canonical_entry(
        entry.seq,
        &entry.at,
        &entry.actor,
        &entry.kind,
        &entry.payload,
    );
    if own != entry.canonical {
        return Err(ProofError::BadEntry {
            seq: entry.seq,
            detail: "its canonical text is not its own fields".into(),
        });
    }
    Ok(leaf_hash(entry.canonical.as_bytes()))
}

/// What a contract's proof showed: the checkpoint (signature verified) and the entries proven
/// included in it.
#[derive(Debug, Clone)]
pub struct VerifiedContractProof {
    pub checkpoint: VerifiedCheckpoint,
    /// Seqs of the contract's entries proven to be in the checkpoint's tree.
    pub proven: Vec<i64>,
    /// Seqs of the contract's entries newer than the checkpoint (not provable yet).
    pub pending: Vec<i64>,
}

/// Checks a contract's proof (`GET /v1/contracts/{id}/proof`) against the pinned key: the
/// checkpoint's signature, then each entry's inclusion in that checkpoint's tree.
pub fn verify_contract_proof(
    proof: &ContractProof,
    contract_id: uuid::Uuid,
    verifier_key: &str,
) -> Result<VerifiedContractProof, ProofError> {
    let checkpoint = verify_checkpoint(&proof.checkpoint, verifier_key)?;
    if proof.contract_id != contract_id {
        return Err(ProofError::WrongContract(proof.contract_id.to_string()));
    }
    // Every entry is this contract's, and its creation is among them (proven or pending).
    let entries = proof
        .entries
        .iter()
        .map(|item| &item.entry)
        .chain(proof.pending.iter());
    let mut created = false;
    for entry in entries {
        if entry.payload["contract_id"].as_str() != Some(contract_id.to_string().as_str()) {
            return Err(ProofError::BadEntry {
                seq: entry.seq,
                detail: "not an entry of this contract".into(),
            });
        }
        created |= entry.kind == "contract_created";
    }
    if !created {
        return Err(ProofError::WrongContract(
            "the contract's creation entry is missing".into(),
        ));
    }
    let mut proven = Vec::new();
    for item in &proof.entries {
        let seq = item.entry.seq;
        let index = u64::try_from(seq - 1).map_err(|_| ProofError::BadEntry {
            seq,
            detail: "seq starts at 1".into(),
        })?;
        if item.leaf_index != index {
            return Err(ProofError::BadEntry {
                seq,
                detail: format!("served as leaf {}", item.leaf_index),
            });
        }
        let path = item
            .audit_path
            .iter()
            .map(|hash| parse_hex_hash(hash))
            .collect::<Result<Vec<_>, _>>()?;
        let leaf = entry_leaf_hash(&item.entry)?;
        verify_inclusion(
            &leaf,
            index,
            checkpoint.tree_size,
            &path,
            &checkpoint.root_hash,
        )?;
        proven.push(seq);
    }
    Ok(VerifiedContractProof {
        checkpoint,
        proven,
        pending: proof.pending.iter().map(|entry| entry.seq).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(n: usize) -> Vec<Hash> {
        (0..n)
            .map(|i| leaf_hash(format!("entry {i}").as_bytes()))
            .collect()
    }

    /// RFC 6962 §2.1.1 `PATH(m, D[n])`, straight from the definition.
    fn path(m: usize, leaves: &[Hash]) -> Vec<Hash> {
        let n = leaves.len();
        if n <= 1 {
            return vec![];
        }
        let k = largest_power_of_two_below(n as u64) as usize;
        if m < k {
            let mut proof = path(m, &leaves[..k]);
            proof.push(root(&leaves[k..]));
            proof
        } else {
            let mut proof = path(m - k, &leaves[k..]);
            proof.push(root(&leaves[..k]));
            proof
        }
    }

    /// RFC 6962 §2.1.2 `PROOF(m, D[n])`.
    fn consistency(m: usize, leaves: &[Hash]) -> Vec<Hash> {
        fn subproof(m: usize, leaves: &[Hash], complete: bool) -> Vec<Hash> {
            let n = leaves.len();
            if m == n {
                return if complete { vec![] } else { vec![root(leaves)] };
            }
            let k = largest_power_of_two_below(n as u64) as usize;
            if m <= k {
                let mut proof = subproof(m, &leaves[..k], complete);
                proof.push(root(&leaves[k..]));
                proof
            } else {
                let mut proof = subproof(m - k, &leaves[k..], false);
                proof.push(root(&leaves[..k]));
                proof
            }
        }
        subproof(m, leaves, true)
    }

    #[test]
    fn the_definitions_proofs_verify_and_altered_ones_do_not() {
        for n in 1..=40 {
            let all = leaves(n);
            let top = root(&all);
            for m in 0..n {
                let proof = path(m, &all);
                verify_inclusion(&all[m], m as u64, n as u64, &proof, &top).unwrap();
                assert!(verify_inclusion(&all[m], m as u64 + 1, n as u64, &proof, &top).is_err());
                if let Some((_, shorter)) = proof.split_last() {
                    assert!(verify_inclusion(&all[m], m as u64, n as u64, shorter, &top).is_err());
                }
            }
            for m in 1..=n {
                let proof = consistency(m, &all);
                let old = root(&all[..m]);
                verify_consistency(m as u64, n as u64, &proof, &old, &top).unwrap();
                if m < n {
                    let forged = leaf_hash(b"forged");
                    assert!(verify_consistency(m as u64, n as u64, &proof, &forged, &top).is_err());
                }
            }
        }
    }
}
