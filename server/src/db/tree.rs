//! The audit log as an RFC 6962 Merkle tree, and its signed checkpoints.
//!
//! The tree is kept as its *stored hashes* (every complete subtree's hash, numbered as
//! `tlog_tiles::stored_hash_index` numbers them), appended by [`extend`] after the entries commit:
//! the order path never waits for it. A proof or a root reads O(log n) of them in one query.

use std::cell::RefCell;
use std::collections::HashMap;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bytea};
use tlog_tiles::{Hash, HashReader};

use super::schema::{audit_checkpoints, audit_log, audit_tree};

/// Leaves read from the log per round of [`extend`].
const EXTEND_BATCH: i64 = 5_000;

/// Stored hashes read from the database, with those computed but not yet written laid over them.
pub struct StoredHashes<'a> {
    connection: RefCell<&'a mut PgConnection>,
    pending: HashMap<u64, Hash>,
    failure: RefCell<Option<diesel::result::Error>>,
}

impl<'a> StoredHashes<'a> {
    pub fn new(connection: &'a mut PgConnection) -> Self {
        StoredHashes {
            connection: RefCell::new(connection),
            pending: HashMap::new(),
            failure: RefCell::new(None),
        }
    }

    /// The database error behind a failed read, if that is why a tree operation failed.
    fn take_failure(&self) -> Option<diesel::result::Error> {
        self.failure.borrow_mut().take()
    }
}

#[derive(QueryableByName)]
struct StoredRow {
    #[diesel(sql_type = BigInt)]
    idx: i64,
    #[diesel(sql_type = Bytea)]
    hash: Vec<u8>,
}

impl HashReader for StoredHashes<'_> {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, tlog_tiles::Error> {
        let wanted: Vec<i64> = indexes
            .iter()
            .filter(|index| !self.pending.contains_key(index))
            .map(|&index| index as i64)
            .collect();
        let mut found: HashMap<u64, Hash> = HashMap::with_capacity(wanted.len());
        if !wanted.is_empty() {
            let rows: Vec<StoredRow> = match super::prepared::prepared(
                "SELECT idx, hash FROM audit_tree_hashes WHERE idx = ANY($1)",
            )
            .bind::<Array<BigInt>, _>(&wanted)
            .load(*self.connection.borrow_mut())
            {
                Ok(rows) => rows,
                Err(error) => {
                    *self.failure.borrow_mut() = Some(error);
                    return Err(tlog_tiles::Error::IndexesNotInTree);
                }
            };
            for row in rows {
                let hash: [u8; 32] = row
                    .hash
                    .try_into()
                    .map_err(|_| tlog_tiles::Error::MalformedHash)?;
                found.insert(row.idx as u64, Hash(hash));
            }
        }
        indexes
            .iter()
            .map(|index| {
                self.pending
                    .get(index)
                    .or_else(|| found.get(index))
                    .copied()
                    .ok_or(tlog_tiles::Error::IndexesNotInTree)
            })
            .collect()
    }
}

/// Why a tree question could not be answered.
#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    #[error(transparent)]
    Database(#[from] diesel::result::Error),
    /// The stored hashes do not hold what the question needs (or a size is out of range).
    #[error("the stored tree cannot answer: {0}")]
    Tree(String),
}

impl TreeError {
    fn of(error: tlog_tiles::Error, hashes: &StoredHashes<'_>) -> Self {
        match hashes.take_failure() {
            Some(database) => TreeError::Database(database),
            None => TreeError::Tree(error.to_string()),
        }
    }
}

/// How many leaves the stored hashes cover.
pub fn size(connection: &mut PgConnection) -> QueryResult<u64> {
    let size: i64 = audit_tree::table
        .select(audit_tree::size)
        .first(connection)?;
    Ok(size as u64)
}

#[derive(QueryableByName)]
struct Leaf {
    #[diesel(sql_type = BigInt)]
    seq: i64,
    #[diesel(sql_type = diesel::sql_types::Text)]
    canonical: String,
}

/// Appends the hashes of every entry not yet in the tree, in the caller's transaction, holding
/// the tree's row lock (so two nodes never extend it at once). Returns the new size.
pub fn extend(connection: &mut PgConnection) -> Result<u64, TreeError> {
    let mut size: i64 = audit_tree::table
        .select(audit_tree::size)
        .for_update()
        .first(connection)?;
    loop {
        let leaves: Vec<Leaf> = super::prepared::prepared(
            "SELECT seq, canonical FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2",
        )
        .bind::<BigInt, _>(size)
        .bind::<BigInt, _>(EXTEND_BATCH)
        .load(connection)?;
        let Some(last) = leaves.last().map(|leaf| leaf.seq) else {
            break;
        };
        let mut hashes = StoredHashes::new(connection);
        let mut new_indexes: Vec<i64> = Vec::new();
        let mut new_hashes: Vec<Vec<u8>> = Vec::new();
        for (offset, leaf) in leaves.iter().enumerate() {
            let n = (leaf.seq - 1) as u64;
            if n != size as u64 + offset as u64 {
                return Err(TreeError::Tree(format!(
                    "the log has a gap before seq {}",
                    leaf.seq
                )));
            }
            let stored = tlog_tiles::stored_hashes(n, leaf.canonical.as_bytes(), &hashes)
                .map_err(|error| TreeError::of(error, &hashes))?;
            let first = tlog_tiles::stored_hash_index(0, n);
            for (offset, hash) in stored.into_iter().enumerate() {
                let index = first + offset as u64;
                hashes.pending.insert(index, hash);
                new_indexes.push(index as i64);
                new_hashes.push(hash.0.to_vec());
            }
        }
        drop(hashes);
        super::prepared::prepared(
            "INSERT INTO audit_tree_hashes (idx, hash) SELECT * FROM unnest($1, $2)",
        )
        .bind::<Array<BigInt>, _>(&new_indexes)
        .bind::<Array<Bytea>, _>(&new_hashes)
        .execute(connection)?;
        size = last;
        diesel::update(audit_tree::table)
            .set(audit_tree::size.eq(size))
            .execute(connection)?;
    }
    Ok(size as u64)
}

/// The root of the tree of the first `tree_size` leaves (`tree_size` at most [`size`]).
pub fn root(connection: &mut PgConnection, tree_size: u64) -> Result<Hash, TreeError> {
    let hashes = StoredHashes::new(connection);
    tlog_tiles::tree_hash(tree_size, &hashes).map_err(|error| TreeError::of(error, &hashes))
}

/// The audit path of leaf `index` in the tree of `tree_size` leaves (`index < tree_size`,
/// `tree_size` at most [`size`]).
pub fn inclusion(
    connection: &mut PgConnection,
    tree_size: u64,
    index: u64,
) -> Result<Vec<Hash>, TreeError> {
    let hashes = StoredHashes::new(connection);
    tlog_tiles::prove_record(tree_size, index, &hashes)
        .map_err(|error| TreeError::of(error, &hashes))
}

/// The consistency proof from the tree of `first` leaves to the tree of `second`
/// (`1 <= first <= second`, `second` at most [`size`]).
pub fn consistency(
    connection: &mut PgConnection,
    first: u64,
    second: u64,
) -> Result<Vec<Hash>, TreeError> {
    let hashes = StoredHashes::new(connection);
    tlog_tiles::prove_tree(second, first, &hashes).map_err(|error| TreeError::of(error, &hashes))
}

/// A signed checkpoint as stored.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = audit_checkpoints)]
pub struct StoredCheckpoint {
    pub tree_size: i64,
    pub root_hash: Vec<u8>,
    pub key_name: String,
    pub note: String,
    pub signed_at: DateTime<Utc>,
}

/// The checkpoint with the largest tree.
pub fn latest_checkpoint(connection: &mut PgConnection) -> QueryResult<Option<StoredCheckpoint>> {
    audit_checkpoints::table
        .order(audit_checkpoints::tree_size.desc())
        .select(StoredCheckpoint::as_select())
        .first(connection)
        .optional()
}

/// Every checkpoint, smallest tree first.
pub fn checkpoints(connection: &mut PgConnection) -> QueryResult<Vec<StoredCheckpoint>> {
    audit_checkpoints::table
        .order(audit_checkpoints::tree_size.asc())
        .select(StoredCheckpoint::as_select())
        .load(connection)
}

/// Stores a checkpoint; a second one for the same size (another node's) is kept out.
pub fn insert_checkpoint(
    connection: &mut PgConnection,
    tree_size: u64,
    root: &Hash,
    key_name: &str,
    note: &str,
) -> QueryResult<bool> {
    let inserted = diesel::insert_into(audit_checkpoints::table)
        .values((
            audit_checkpoints::tree_size.eq(tree_size as i64),
            audit_checkpoints::root_hash.eq(root.0.to_vec()),
            audit_checkpoints::key_name.eq(key_name),
            audit_checkpoints::note.eq(note),
        ))
        .on_conflict_do_nothing()
        .execute(connection)?;
    Ok(inserted == 1)
}

/// The seqs of a contract's audit entries (its creation and settlement), in order.
pub fn contract_entry_seqs(
    connection: &mut PgConnection,
    contract_id: uuid::Uuid,
) -> QueryResult<Vec<i64>> {
    use diesel::dsl::sql;
    audit_log::table
        .filter(
            sql::<diesel::sql_types::Bool>(
                "payload ? 'contract_id' AND payload ->> 'contract_id' = ",
            )
            .bind::<diesel::sql_types::Text, _>(contract_id.to_string()),
        )
        .order(audit_log::seq.asc())
        .select(audit_log::seq)
        .load(connection)
}

/// Recomputes the whole tree from the log's entries and compares it with the stored hashes and
/// every checkpoint's root: what `suanli-server check` runs. Returns the problems found.
pub fn check(connection: &mut PgConnection) -> QueryResult<Vec<String>> {
    let mut problems = Vec::new();
    let stored_size = size(connection)?;
    let mut leaves: Vec<[u8; 32]> = Vec::new();
    let mut after = 0i64;
    loop {
        let rows: Vec<Leaf> = super::prepared::prepared(
            "SELECT seq, canonical FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2",
        )
        .bind::<BigInt, _>(after)
        .bind::<BigInt, _>(10_000i64)
        .load(connection)?;
        let Some(last) = rows.last().map(|row| row.seq) else {
            break;
        };
        leaves.extend(
            rows.iter()
                .map(|row| suanli_sdk::proof::leaf_hash(row.canonical.as_bytes())),
        );
        after = last;
    }
    if (leaves.len() as u64) < stored_size {
        problems.push(format!(
            "the tree covers {stored_size} entries but the log holds {}",
            leaves.len()
        ));
    }
    for checkpoint in checkpoints(connection)? {
        // The signed text must say what its row says (a row's root changed behind the note, or
        // a note swapped in, is caught here; the signature itself is the client's to check).
        let body = signed_note::Note::from_bytes(checkpoint.note.as_bytes())
            .ok()
            .and_then(|note| tlog_tiles::Checkpoint::from_bytes(note.text()).ok());
        match body {
            Some(body)
                if body.size() == checkpoint.tree_size as u64
                    && body.hash().0.as_slice() == checkpoint.root_hash.as_slice() => {}
            _ => problems.push(format!(
                "checkpoint of size {}: its signed note does not say the size and root stored with it",
                checkpoint.tree_size
            )),
        }
        let size = checkpoint.tree_size as usize;
        if size > leaves.len() {
            problems.push(format!(
                "checkpoint of size {size} is larger than the log ({} entries)",
                leaves.len()
            ));
            continue;
        }
        let recomputed = sdk_root(&leaves[..size]);
        if recomputed.as_slice() != checkpoint.root_hash.as_slice() {
            problems.push(format!(
                "checkpoint of size {size} (signed {}) does not match the log: an entry at or before seq {size} was altered",
                checkpoint.signed_at.to_rfc3339()
            ));
        }
    }
    if stored_size > 0 && (leaves.len() as u64) >= stored_size {
        match root(connection, stored_size) {
            Ok(stored) if stored.0 == sdk_root(&leaves[..stored_size as usize]) => {}
            Ok(_) => problems.push(format!(
                "the stored tree of {stored_size} entries does not match the log"
            )),
            Err(error) => problems.push(format!("the stored tree cannot be read: {error}")),
        }
    }
    Ok(problems)
}

fn sdk_root(leaves: &[[u8; 32]]) -> [u8; 32] {
    suanli_sdk::proof::root(leaves)
}
