//! The regulator's view of the audit log.

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use suanli_sdk::{AuditPage, AuditVerification, ErrorBody};

use super::{AppState, ok};
use crate::access::{Action, authorize};
use crate::auth::Caller;
use crate::db::audit;
use crate::error::ApiError;
use crate::validate;

pub fn configure(config: &mut web::ServiceConfig) {
    config
        .route("/v1/audit/log", web::get().to(log))
        .route("/v1/audit/verify", web::get().to(verify));
}

/// Query of `GET /v1/audit/log`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct LogQuery {
    /// Entries after this `seq` (0 for the start).
    pub after_seq: Option<i64>,
    /// At most this many, 1–500 (default 100).
    pub limit: Option<u32>,
}

/// Rows read per query while verifying the chain.
const VERIFY_BATCH_ROWS: i64 = 1000;

/// A page of the hash-chained audit log (regulators).
#[utoipa::path(get, path = "/v1/audit/log", tag = "audit", params(LogQuery), security(("bearer" = [])),
    responses((status = 200, body = AuditPage), (status = 403, body = ErrorBody)))]
pub async fn log(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<LogQuery>,
) -> Result<HttpResponse, ApiError> {
    authorize(&caller, Action::ReadAuditLog)?;
    let limit = validate::page_limit(query.limit, 100)?;
    let after_seq = query.after_seq.unwrap_or(0);
    if after_seq < 0 {
        return Err(ApiError::bad_request("invalid_query", "`after_seq` must not be negative"));
    }
    let items = state.db(move |connection| Ok(audit::page(connection, after_seq, i64::from(limit))?)).await?;
    let next_after_seq = if items.len() == limit as usize { items.last().map(|entry| entry.seq) } else { None };
    Ok(ok(&AuditPage { items, next_after_seq }))
}

/// Recomputes the whole chain on the server and names the first bad entry (regulators).
#[utoipa::path(get, path = "/v1/audit/verify", tag = "audit", security(("bearer" = [])),
    responses((status = 200, body = AuditVerification), (status = 403, body = ErrorBody)))]
pub async fn verify(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    authorize(&caller, Action::ReadAuditLog)?;
    let verdict = state.db(|connection| Ok(audit::verify(connection, VERIFY_BATCH_ROWS)?)).await?;
    Ok(ok(&verdict))
}
