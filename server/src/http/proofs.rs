//! Signed checkpoints and Merkle proofs of the audit log (API.md "Signed checkpoints and proofs"):
//! the latest checkpoint, its public key, inclusion and consistency proofs, and a contract's
//! entries with their proofs.

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use suanli_sdk::{
    CheckpointKey, ConsistencyProof, ContractProof, ErrorBody, InclusionProof, ProvenEntry,
};
use uuid::Uuid;

use super::{AppState, ok};
use crate::access::{Action, authorize};
use crate::auth::Caller;
use crate::db::audit;
use crate::db::tree::{self, TreeError};
use crate::error::ApiError;

pub fn configure(config: &mut web::ServiceConfig) {
    config
        .route("/v1/audit/checkpoint", web::get().to(checkpoint))
        .route("/v1/audit/checkpoint/key", web::get().to(checkpoint_key))
        .route("/v1/audit/proof/inclusion", web::get().to(inclusion))
        .route("/v1/audit/proof/consistency", web::get().to(consistency))
        .route("/v1/contracts/{id}/proof", web::get().to(contract_proof));
}

fn tree_error(error: TreeError) -> ApiError {
    match error {
        TreeError::Database(error) => error.into(),
        TreeError::Tree(message) => ApiError::internal(message),
    }
}

/// `requested`, or the latest checkpoint's size when absent; refused when the tree does not reach
/// it yet.
fn built_size(
    connection: &mut crate::db::Connection,
    requested: Option<u64>,
) -> Result<u64, ApiError> {
    let size = match requested {
        Some(size) => size,
        None => {
            tree::latest_checkpoint(connection)?
                .ok_or_else(no_checkpoint)?
                .tree_size as u64
        }
    };
    let built = tree::size(connection)?;
    if size > built {
        return Err(ApiError::not_found(format!(
            "the tree covers {built} entries so far; a tree of {size} is not built yet"
        )));
    }
    Ok(size)
}

fn no_checkpoint() -> ApiError {
    ApiError::not_found(
        "no checkpoint has been signed yet: the log is empty or the first one is due",
    )
}

/// The latest signed checkpoint: a C2SP signed note (origin, tree size, base64 root hash, a blank
/// line, the Ed25519 signature line), regulators.
#[utoipa::path(get, path = "/v1/audit/checkpoint", tag = "audit", security(("bearer" = [])),
    responses((status = 200, description = "the signed note", content_type = "text/plain", body = String),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn checkpoint(
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    authorize(&caller, Action::ReadAuditLog)?;
    let latest = state
        .db(|connection| Ok(tree::latest_checkpoint(connection)?))
        .await?
        .ok_or_else(no_checkpoint)?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body(latest.note))
}

/// The key checkpoints are signed with (public): its name, the base64 Ed25519 public key, and the
/// note verifier key string to pin.
#[utoipa::path(get, path = "/v1/audit/checkpoint/key", tag = "audit",
    responses((status = 200, body = CheckpointKey)))]
pub async fn checkpoint_key(state: web::Data<AppState>) -> HttpResponse {
    ok(state.checkpointer.key())
}

/// Query of an inclusion proof.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InclusionQuery {
    /// The entry's `seq`.
    pub seq: i64,
    /// The tree's size (default: the latest checkpoint's).
    pub tree_size: Option<u64>,
}

/// The proof that entry `seq` is in the tree of `tree_size` entries (regulators).
#[utoipa::path(get, path = "/v1/audit/proof/inclusion", tag = "audit", params(InclusionQuery),
    security(("bearer" = [])),
    responses((status = 200, body = InclusionProof), (status = 400, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn inclusion(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<InclusionQuery>,
) -> Result<HttpResponse, ApiError> {
    authorize(&caller, Action::ReadAuditLog)?;
    let InclusionQuery { seq, tree_size } = query.into_inner();
    let proof = state
        .db(move |connection| {
            let tree_size = built_size(connection, tree_size)?;
            if seq < 1 || seq as u64 > tree_size {
                return Err(ApiError::bad_request(
                    "invalid_seq",
                    format!("seq must be between 1 and tree_size ({tree_size})"),
                ));
            }
            let index = seq as u64 - 1;
            let path = tree::inclusion(connection, tree_size, index).map_err(tree_error)?;
            let root = tree::root(connection, tree_size).map_err(tree_error)?;
            Ok(InclusionProof {
                leaf_index: index,
                tree_size,
                root_hash: hex::encode(root.0),
                audit_path: path.iter().map(|hash| hex::encode(hash.0)).collect(),
            })
        })
        .await?;
    Ok(ok(&proof))
}

/// Query of a consistency proof.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ConsistencyQuery {
    /// The earlier tree's size (at least 1).
    pub first: u64,
    /// The later tree's size (default: the latest checkpoint's).
    pub second: Option<u64>,
}

/// The proof that the tree of `second` entries extends the tree of `first` (regulators).
#[utoipa::path(get, path = "/v1/audit/proof/consistency", tag = "audit", params(ConsistencyQuery),
    security(("bearer" = [])),
    responses((status = 200, body = ConsistencyProof), (status = 400, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn consistency(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<ConsistencyQuery>,
) -> Result<HttpResponse, ApiError> {
    authorize(&caller, Action::ReadAuditLog)?;
    let ConsistencyQuery { first, second } = query.into_inner();
    let proof = state
        .db(move |connection| {
            let second = built_size(connection, second)?;
            if first < 1 || first > second {
                return Err(ApiError::bad_request(
                    "invalid_tree_sizes",
                    format!("first must be between 1 and second ({second})"),
                ));
            }
            let proof = tree::consistency(connection, first, second).map_err(tree_error)?;
            Ok(ConsistencyProof {
                first,
                second,
                first_root_hash: hex::encode(tree::root(connection, first).map_err(tree_error)?.0),
                second_root_hash: hex::encode(
                    tree::root(connection, second).map_err(tree_error)?.0,
                ),
                proof: proof.iter().map(|hash| hex::encode(hash.0)).collect(),
            })
        })
        .await?;
    Ok(ok(&proof))
}

/// A contract's audit entries (its creation, its settlement) with inclusion proofs against the
/// latest checkpoint, and that checkpoint (its parties, regulators).
#[utoipa::path(get, path = "/v1/contracts/{id}/proof", tag = "contracts",
    params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, body = ContractProof), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
pub async fn contract_proof(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    super::orders::readable_contract(&state, &caller, id).await?;
    let proof = state
        .db(move |connection| {
            let checkpoint = tree::latest_checkpoint(connection)?.ok_or_else(no_checkpoint)?;
            let tree_size = checkpoint.tree_size as u64;
            let seqs = tree::contract_entry_seqs(connection, id)?;
            let mut entries = Vec::new();
            let mut pending = Vec::new();
            for seq in seqs {
                let entry = audit::page(connection, seq - 1, 1)?
                    .pop()
                    .ok_or_else(|| ApiError::internal(format!("entry {seq} vanished")))?;
                if seq as u64 <= tree_size {
                    let index = seq as u64 - 1;
                    let path = tree::inclusion(connection, tree_size, index).map_err(tree_error)?;
                    entries.push(ProvenEntry {
                        entry,
                        leaf_index: index,
                        audit_path: path.iter().map(|hash| hex::encode(hash.0)).collect(),
                    });
                } else {
                    pending.push(entry);
                }
            }
            Ok(ContractProof {
                contract_id: id,
                checkpoint: checkpoint.note,
                tree_size,
                root_hash: hex::encode(&checkpoint.root_hash),
                entries,
                pending,
            })
        })
        .await?;
    Ok(ok(&proof))
}
