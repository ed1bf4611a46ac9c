//! Money out and the statement: withdrawals, their decision by the admin, a participant's
//! ledger entries with running balances; and quotes, which price a bid without placing it.

use actix_web::middleware::from_fn;
use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use suanli_sdk::{
    ErrorBody, NewBid, NewWithdrawal, Page, Quote, StatementEntry, Withdrawal, WithdrawalPaid,
    WithdrawalRejected, WithdrawalStatus,
};
use uuid::Uuid;

use super::forward::to_leader;
use super::orders::{cursor, page};
use super::{AppState, ok};
use crate::access::{self, Action, authorize};
use crate::auth::Caller;
use crate::db::{ledger, withdrawals};
use crate::error::ApiError;
use crate::exchange::requests;
use crate::validate;

pub fn configure(config: &mut web::ServiceConfig) {
    config
        .route(
            "/v1/withdrawals",
            web::post().to(request_withdrawal).wrap(from_fn(to_leader)),
        )
        .route("/v1/withdrawals", web::get().to(list_withdrawals))
        .route("/v1/withdrawals/{id}/paid", web::post().to(mark_paid))
        .route("/v1/withdrawals/{id}/rejected", web::post().to(reject))
        .route("/v1/accounts/me/entries", web::get().to(statement))
        .route("/v1/quotes", web::post().to(quote).wrap(from_fn(to_leader)));
}

/// Query of the withdrawal list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WithdrawalListQuery {
    /// `pending`, `paid` or `rejected`.
    pub status: Option<String>,
    pub cursor: Option<String>,
    /// 1–500, default 100.
    pub limit: Option<u32>,
}

/// Query of the statement.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatementQuery {
    /// Entries made at or after this time (RFC 3339).
    pub from: Option<DateTime<Utc>>,
    /// Entries made before this time (RFC 3339).
    pub to: Option<DateTime<Utc>>,
    pub cursor: Option<String>,
    /// 1–500, default 100.
    pub limit: Option<u32>,
}

/// Asks for money to be paid out: the amount leaves `available` at once and waits, in
/// `payouts_pending`, for the admin to mark it paid or rejected.
#[utoipa::path(post, path = "/v1/withdrawals", tag = "money", request_body = NewWithdrawal, security(("bearer" = [])),
    responses((status = 201, body = Withdrawal), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn request_withdrawal(
    state: web::Data<AppState>,
    caller: Caller,
    body: web::Json<NewWithdrawal>,
) -> Result<HttpResponse, ApiError> {
    authorize(&caller, Action::Withdraw)?;
    let (role, id, hub) = (caller.role, caller.id, caller.hub.clone());
    let own = state
        .db(move |connection| Ok(ledger::own_accounts(connection, role, id, hub.as_deref())?))
        .await?
        .ok_or_else(no_account)?;
    let request = requests::withdrawal(body.into_inner(), caller.id, own)?;
    let withdrawal = state.exchange.withdraw(request).await?;
    Ok(HttpResponse::Created().json(withdrawal))
}

/// The caller's withdrawals (the admin's: everyone's), newest first.
#[utoipa::path(get, path = "/v1/withdrawals", tag = "money", params(WithdrawalListQuery), security(("bearer" = [])),
    responses((status = 200, body = Page<Withdrawal>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody)))]
pub async fn list_withdrawals(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<WithdrawalListQuery>,
) -> Result<HttpResponse, ApiError> {
    authorize(&caller, Action::ListWithdrawals)?;
    let query = query.into_inner();
    let status = match query.status.as_deref() {
        None => None,
        Some(name) => Some(WithdrawalStatus::parse(name).ok_or_else(|| {
            ApiError::bad_request(
                "invalid_status",
                "`status` is one of pending, paid, rejected",
            )
        })?),
    };
    let limit = validate::page_limit(query.limit, 100)?;
    let before = cursor(query.cursor.as_deref())?;
    let every = access::sees_every_withdrawal(&caller);
    let (role, id, hub) = (caller.role, caller.id, caller.hub.clone());
    let rows = state
        .db(move |connection| {
            // The admin sees every withdrawal; anyone else those out of its own account (a hub's
            // operators share the hub's levy account, and see each other's withdrawals from it).
            let account = if every {
                None
            } else {
                let own = ledger::own_accounts(connection, role, id, hub.as_deref())?;
                Some(own.ok_or_else(no_account)?.available)
            };
            Ok(withdrawals::list(
                connection,
                account,
                status,
                before,
                i64::from(limit),
            )?)
        })
        .await?;
    Ok(page(rows, limit, |row| row.seq, |row| row.to_wire()))
}

/// Marks a pending withdrawal paid (admin): the money has left the exchange.
#[utoipa::path(post, path = "/v1/withdrawals/{id}/paid", tag = "money", params(("id" = Uuid, Path)),
    request_body = WithdrawalPaid, security(("bearer" = [])),
    responses((status = 200, body = Withdrawal), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn mark_paid(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Uuid>,
    body: web::Json<WithdrawalPaid>,
) -> Result<HttpResponse, ApiError> {
    authorize(&caller, Action::DecideWithdrawals)?;
    let body = body.into_inner();
    validate::text("bank_reference", &body.bank_reference, 200)?;
    let decision = withdrawals::Decision::Paid {
        bank_reference: body.bank_reference,
    };
    decide(&state, caller.id, id.into_inner(), decision).await
}

/// Rejects a pending withdrawal (admin): the money goes back to `available`.
#[utoipa::path(post, path = "/v1/withdrawals/{id}/rejected", tag = "money", params(("id" = Uuid, Path)),
    request_body = WithdrawalRejected, security(("bearer" = [])),
    responses((status = 200, body = Withdrawal), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn reject(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Uuid>,
    body: web::Json<WithdrawalRejected>,
) -> Result<HttpResponse, ApiError> {
    authorize(&caller, Action::DecideWithdrawals)?;
    let body = body.into_inner();
    validate::text("reason", &body.reason, 500)?;
    let decision = withdrawals::Decision::Rejected {
        reason: body.reason,
    };
    decide(&state, caller.id, id.into_inner(), decision).await
}

fn no_account() -> ApiError {
    ApiError::forbidden("forbidden", "this participant holds no account")
}

async fn decide(
    state: &AppState,
    admin: Uuid,
    id: Uuid,
    decision: withdrawals::Decision,
) -> Result<HttpResponse, ApiError> {
    let withdrawal = state
        .db(move |connection| Ok(withdrawals::decide(connection, admin, id, &decision)?))
        .await?;
    state
        .metrics
        .events
        .with_label_values(&[match withdrawal.status {
            WithdrawalStatus::Paid => "withdrawal_paid",
            _ => "withdrawal_rejected",
        }])
        .inc();
    Ok(ok(&withdrawal))
}

/// The caller's statement, oldest first: every ledger entry on its accounts with the account's
/// balance after it.
#[utoipa::path(get, path = "/v1/accounts/me/entries", tag = "money", params(StatementQuery), security(("bearer" = [])),
    responses((status = 200, body = Page<StatementEntry>), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn statement(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<StatementQuery>,
) -> Result<HttpResponse, ApiError> {
    authorize(&caller, Action::ReadOwnAccount)?;
    let query = query.into_inner();
    validate::time_range(query.from, query.to)?;
    let limit = validate::page_limit(query.limit, 100)?;
    let after = cursor(query.cursor.as_deref())?;
    let (role, id, hub) = (caller.role, caller.id, caller.hub.clone());
    let rows = state
        .db(move |connection| {
            let own = ledger::own_accounts(connection, role, id, hub.as_deref())?
                .ok_or_else(no_account)?;
            Ok(withdrawals::statement(
                connection,
                &own.all(),
                query.from,
                query.to,
                after,
                i64::from(limit),
            )?)
        })
        .await?;
    Ok(page(rows, limit, |(id, _)| *id, |(_, entry)| entry))
}

/// What a bid would get now: the same checks, engine and active policies as `POST /v1/bids`,
/// against the current book; nothing is written and nothing is held. The body is a bid without
/// `idempotency_key` (one, if sent, is ignored).
#[utoipa::path(post, path = "/v1/quotes", tag = "orders", request_body = NewBid, security(("bearer" = [])),
    responses((status = 200, body = Quote), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn quote(
    state: web::Data<AppState>,
    caller: Caller,
    body: web::Json<serde_json::Value>,
) -> Result<HttpResponse, ApiError> {
    authorize(&caller, Action::Quote)?;
    let mut body = body.into_inner();
    let Some(fields) = body.as_object_mut() else {
        return Err(ApiError::bad_request(
            "invalid_body",
            "the body must be a JSON object: a bid without `idempotency_key`",
        ));
    };
    fields.insert("idempotency_key".into(), "quote".into());
    let bid: NewBid = serde_json::from_value(body)
        .map_err(|error| ApiError::bad_request("invalid_body", error.to_string()))?;
    let request = requests::bid(bid, caller.id, &state.reference, Some(Utc::now()))?;
    let quote: Quote = state.exchange.quote(request).await?;
    Ok(ok(&quote))
}
