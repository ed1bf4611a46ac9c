//! The hub operator's view of its own hub: contracts made there, every policy decision taken for
//! it, and its policies' faults. Regulators see every hub's.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use suanli_sdk::{Contract, ErrorBody, HubDecision, HubFault, Page};

use super::AppState;
use super::orders::{cursor, page};
use crate::access::{Action, authorize};
use crate::auth::Caller;
use crate::db::orders::ContractFilter;
use crate::db::{policies, regulator};
use crate::error::ApiError;
use crate::validate;

pub fn configure(config: &mut web::ServiceConfig) {
    config
        .route("/v1/hubs/{hub}/contracts", web::get().to(contracts))
        .route("/v1/hubs/{hub}/decisions", web::get().to(decisions))
        .route("/v1/hubs/{hub}/faults", web::get().to(faults));
}

/// Query of a hub's contracts.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HubContractsQuery {
    /// Contracts made at or after this time (RFC 3339).
    pub from: Option<DateTime<Utc>>,
    /// Contracts made before this time (RFC 3339).
    pub to: Option<DateTime<Utc>>,
    pub cursor: Option<String>,
    /// 1–500, default 100.
    pub limit: Option<u32>,
}

/// Query of a hub's decisions.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HubDecisionsQuery {
    /// `pricing` or `compliance`.
    pub kind: Option<String>,
    /// `allowed`, `denied`, `quoted`, `rejected` or `fault`.
    pub outcome: Option<String>,
    pub cursor: Option<String>,
    /// 1–500, default 100.
    pub limit: Option<u32>,
}

/// Query of a hub's faults.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HubFaultsQuery {
    pub cursor: Option<String>,
    /// 1–500, default 100.
    pub limit: Option<u32>,
}

/// The hub named in the path, if it exists, once the caller may see it.
fn hub_for(state: &AppState, caller: &Caller, hub: &str) -> Result<String, ApiError> {
    let hub = state
        .reference
        .hub(hub)
        .ok_or_else(|| ApiError::not_found(format!("no hub `{hub}`")))?
        .code
        .clone();
    authorize(caller, Action::ReadHubActivity { hub: &hub })?;
    Ok(hub)
}

/// Contracts made in the hub, newest first.
#[utoipa::path(get, path = "/v1/hubs/{hub}/contracts", tag = "hubs", operation_id = "hub_contracts", params(("hub" = String, Path), HubContractsQuery),
    security(("bearer" = [])),
    responses((status = 200, body = Page<Contract>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn contracts(
    state: web::Data<AppState>,
    caller: Caller,
    hub: web::Path<String>,
    query: web::Query<HubContractsQuery>,
) -> Result<HttpResponse, ApiError> {
    let hub = hub_for(&state, &caller, &hub)?;
    let query = query.into_inner();
    validate::time_range(query.from, query.to)?;
    let limit = validate::page_limit(query.limit, 100)?;
    let before = cursor(query.cursor.as_deref())?;
    let filter = ContractFilter {
        hub: Some(hub),
        from: query.from,
        to: query.to,
        ..Default::default()
    };
    let rows = state
        .db(move |connection| {
            Ok(regulator::audited_contracts(
                connection,
                &filter,
                before,
                true,
                i64::from(limit),
            )?)
        })
        .await?;
    Ok(page(
        rows,
        limit,
        |(seq, _)| *seq,
        |(_, audited)| audited.contract,
    ))
}

/// Every policy decision taken for the hub while matching, newest first.
#[utoipa::path(get, path = "/v1/hubs/{hub}/decisions", tag = "hubs", operation_id = "hub_decisions", params(("hub" = String, Path), HubDecisionsQuery),
    security(("bearer" = [])),
    responses((status = 200, body = Page<HubDecision>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn decisions(
    state: web::Data<AppState>,
    caller: Caller,
    hub: web::Path<String>,
    query: web::Query<HubDecisionsQuery>,
) -> Result<HttpResponse, ApiError> {
    let hub = hub_for(&state, &caller, &hub)?;
    let query = query.into_inner();
    if let Some(kind) = query.kind.as_deref()
        && !matches!(kind, "pricing" | "compliance")
    {
        return Err(ApiError::bad_request(
            "invalid_kind",
            "`kind` is pricing or compliance",
        ));
    }
    if let Some(outcome) = query.outcome.as_deref()
        && !matches!(
            outcome,
            "allowed" | "denied" | "quoted" | "rejected" | "fault"
        )
    {
        return Err(ApiError::bad_request(
            "invalid_outcome",
            "`outcome` is one of allowed, denied, quoted, rejected, fault",
        ));
    }
    let limit = validate::page_limit(query.limit, 100)?;
    let before = cursor(query.cursor.as_deref())?;
    let rows = state
        .db(move |connection| {
            Ok(policies::hub_decisions(
                connection,
                &hub,
                query.kind.as_deref(),
                query.outcome.as_deref(),
                before,
                i64::from(limit),
            )?)
        })
        .await?;
    Ok(page(rows, limit, |row| row.id, |row| row))
}

/// The hub's policy faults, newest first.
#[utoipa::path(get, path = "/v1/hubs/{hub}/faults", tag = "hubs", operation_id = "hub_faults", params(("hub" = String, Path), HubFaultsQuery),
    security(("bearer" = [])),
    responses((status = 200, body = Page<HubFault>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn faults(
    state: web::Data<AppState>,
    caller: Caller,
    hub: web::Path<String>,
    query: web::Query<HubFaultsQuery>,
) -> Result<HttpResponse, ApiError> {
    let hub = hub_for(&state, &caller, &hub)?;
    let query = query.into_inner();
    let limit = validate::page_limit(query.limit, 100)?;
    let before = cursor(query.cursor.as_deref())?;
    let rows = state
        .db(move |connection| {
            Ok(policies::hub_faults(
                connection,
                &hub,
                before,
                i64::from(limit),
            )?)
        })
        .await?;
    Ok(page(rows, limit, |row| row.id, |row| row))
}
