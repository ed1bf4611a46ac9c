//! Hub policies: upload, list, activate, dry-run, module download; and the regulator's replay of
//! a contract's decisions.

use std::sync::Arc;

use actix_web::middleware::from_fn;
use actix_web::{HttpResponse, web};
use chrono::Utc;
use futures_util::StreamExt;
use serde::Deserialize;
use suanli_sdk::{
    DryRunRequest, ErrorBody, PolicyDecision, PolicySummary, ReplayReport, ReplayedDecision, Side,
};
use uuid::Uuid;

use super::forward::to_leader;
use super::{AppState, ok};
use crate::access::{Action, authorize};
use crate::auth::Caller;
use crate::db::{orders, policies};
use crate::error::ApiError;
use crate::exchange::policies::{fault_json, policy_input};
use crate::exchange::requests;
use crate::market::{DecisionRecord, PairFacts};
use crate::policy::{Compiled, PolicyInput, PolicyKind, UploadError};

pub fn configure(config: &mut web::ServiceConfig) {
    config
        .route("/v1/hubs/{hub}/policies", web::post().to(upload))
        .route("/v1/hubs/{hub}/policies", web::get().to(list))
        .route(
            "/v1/hubs/{hub}/policies/{digest}/activate",
            // On the leader, so that its writer hears of the change (below).
            web::post().to(activate).wrap(from_fn(to_leader)),
        )
        .route(
            "/v1/hubs/{hub}/policies/{digest}/dry-run",
            web::post().to(dry_run),
        )
        .route("/v1/policies/{digest}/module", web::get().to(module))
        .route("/v1/audit/contracts/{id}/replay", web::post().to(replay));
}

/// Query of an upload.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UploadQuery {
    /// `pricing` or `compliance`.
    pub kind: String,
}

fn known_hub<'a>(state: &'a AppState, hub: &str) -> Result<&'a str, ApiError> {
    state
        .reference
        .hub(hub)
        .map(|hub| hub.code.as_str())
        .ok_or_else(|| ApiError::not_found(format!("no hub `{hub}`")))
}

fn summary(stored: &policies::StoredPolicy) -> PolicySummary {
    PolicySummary {
        digest: stored.digest.clone(),
        kind: stored.kind.clone(),
        hub: stored.hub.clone(),
        status: if stored.active {
            "active".into()
        } else {
            "stored".into()
        },
        size_bytes: stored.size_bytes as u64,
        uploaded_at: Some(stored.uploaded_at),
    }
}

/// Uploads a policy module (raw bytes, `application/wasm`): validated, compiled under a time
/// bound, stored by digest. Not active until activated.
#[utoipa::path(post, path = "/v1/hubs/{hub}/policies", tag = "policies", params(("hub" = String, Path), UploadQuery),
    request_body(content = Vec<u8>, content_type = "application/wasm"), security(("bearer" = [])),
    responses((status = 201, body = PolicySummary), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 413, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn upload(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    query: web::Query<UploadQuery>,
    mut body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let hub = known_hub(&state, &path)?.to_owned();
    authorize(&caller, Action::ManageHubPolicies { hub: &hub })?;
    let kind = PolicyKind::parse(&query.kind).ok_or_else(|| {
        ApiError::bad_request("invalid_query", "`kind` is `pricing` or `compliance`")
    })?;
    let limit = state.policy_host.limits().module_bytes_max;
    let mut bytes = Vec::new();
    while let Some(chunk) = body.next().await {
        let chunk =
            chunk.map_err(|error| ApiError::bad_request("invalid_body", error.to_string()))?;
        if bytes.len() + chunk.len() > limit {
            return Err(ApiError::too_large(
                "module_too_large",
                format!("a policy module is at most {limit} bytes"),
            ));
        }
        bytes.extend_from_slice(&chunk);
    }
    let (owned_hub, size) = (hub.clone(), bytes.len() as u64);
    let (stored_count, stored_bytes) = state
        .db(move |connection| Ok(policies::hub_usage(connection, &owned_hub)?))
        .await?;
    let quota = &state.policy_quota;
    if stored_count >= quota.uploads_per_hub_max || stored_bytes + size > quota.hub_stored_bytes_max
    {
        return Err(ApiError::unprocessable(
            "policy_quota_reached",
            format!(
                "a hub stores at most {} policy versions and {} bytes; this hub has {stored_count} and {stored_bytes}",
                quota.uploads_per_hub_max, quota.hub_stored_bytes_max
            ),
        ));
    }
    let host = state.policy_host.clone();
    let (component, compiled) = state
        .blocking(move || host.prepare_upload(kind, &bytes).map_err(upload_error))
        .await?;
    let digest = compiled.digest.clone();
    state.compiled_policies.insert(compiled);
    let uploader = caller.id;
    let stored = state
        .db(move |connection| {
            Ok(policies::store(
                connection,
                &hub,
                kind.as_str(),
                &digest,
                &component,
                uploader,
            )?)
        })
        .await?;
    state
        .metrics
        .events
        .with_label_values(&["policy_uploaded"])
        .inc();
    let mut answer = summary(&stored);
    answer.status = "stored".into();
    Ok(HttpResponse::Created().json(answer))
}

fn upload_error(error: UploadError) -> ApiError {
    match error {
        UploadError::TooLarge(_) => ApiError::too_large("module_too_large", error.to_string()),
        UploadError::NotAComponent(_) | UploadError::Compile(_) => {
            ApiError::bad_request("invalid_module", error.to_string())
        }
        UploadError::Imports(_) => ApiError::unprocessable("policy_imports", error.to_string()),
        UploadError::WrongWorld(..) => ApiError::unprocessable("wrong_world", error.to_string()),
        UploadError::CompileTimeout(_) => {
            ApiError::unprocessable("compile_timeout", error.to_string())
        }
        UploadError::Busy(_) => ApiError::busy("compile_busy", error.to_string(), 1),
    }
}

/// Every version a hub uploaded, with which is active (that hub's operator, regulators).
#[utoipa::path(get, path = "/v1/hubs/{hub}/policies", tag = "policies", params(("hub" = String, Path)),
    security(("bearer" = [])), responses((status = 200, body = Vec<PolicySummary>), (status = 403, body = ErrorBody)))]
pub async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let hub = known_hub(&state, &path)?.to_owned();
    authorize(&caller, Action::ReadHubPolicies { hub: &hub })?;
    let stored = state
        .db(move |connection| Ok(policies::list(connection, &hub)?))
        .await?;
    Ok(ok(&stored.iter().map(summary).collect::<Vec<_>>()))
}

/// Makes a stored version the hub's active policy of its kind (that hub's operator). The module is
/// compiled first (under the compile time bound) and kept compiled: a policy that does not compile
/// is refused here with 422 `policy_does_not_compile`, so an active policy always runs. Runs on
/// the leader (a follower forwards it) and answers once the sequenced writer has taken the change
/// in under its matching lease, so every order placed after the answer is judged by the new
/// policy (the writer does not read the active policies for every batch). If the writer cannot
/// confirm that (a takeover, a full queue, a failed batch), the change is stored all the same and
/// the answer is 503 `writer_unavailable` saying so: this node's writer still reads it in its next
/// batch, a new leader when it starts, and activating again is harmless.
#[utoipa::path(post, path = "/v1/hubs/{hub}/policies/{digest}/activate", tag = "policies",
    params(("hub" = String, Path), ("digest" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = PolicySummary), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn activate(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (hub, digest) = path.into_inner();
    let hub = known_hub(&state, &hub)?.to_owned();
    authorize(&caller, Action::ManageHubPolicies { hub: &hub })?;
    let kind = stored_kind(&state, &hub, &digest).await?;
    compiled(&state, &digest, kind).await?;
    let actor = caller.id;
    let stored = state
        .db(move |connection| {
            policies::activate(connection, &hub, &digest, actor)?.ok_or_else(|| {
                ApiError::not_found("this hub has no stored policy with that digest")
            })?;
            let stored = policies::list(connection, &hub)?
                .into_iter()
                .find(|p| p.digest == digest && p.active);
            stored.ok_or_else(|| ApiError::internal("activated policy not listed"))
        })
        .await?;
    state
        .metrics
        .events
        .with_label_values(&["policy_activated"])
        .inc();
    if let Err(error) = state.exchange.policies_changed().await {
        return Err(ApiError::busy(
            "writer_unavailable",
            format!(
                "the policy is stored as active, but the matching writer could not confirm it \
                 took the change in ({}: {}); activate again to be sure orders see it",
                error.code, error.message
            ),
            1,
        ));
    }
    Ok(ok(&summary(&stored)))
}

/// The kind of the policy `digest` that `hub` uploaded (404 if it uploaded none).
async fn stored_kind(
    state: &web::Data<AppState>,
    hub: &str,
    digest: &str,
) -> Result<PolicyKind, ApiError> {
    let (owned_hub, owned_digest) = (hub.to_owned(), digest.to_owned());
    let kind = state
        .db(move |connection| {
            policies::list(connection, &owned_hub)?
                .into_iter()
                .find(|p| p.digest == owned_digest)
                .map(|p| p.kind)
                .ok_or_else(|| {
                    ApiError::not_found("this hub has no stored policy with that digest")
                })
        })
        .await?;
    PolicyKind::parse(&kind).ok_or_else(|| ApiError::internal(format!("stored policy kind {kind}")))
}

/// Loads (and compiles once) a stored policy for dry runs and replays.
async fn compiled(
    state: &web::Data<AppState>,
    digest: &str,
    kind: PolicyKind,
) -> Result<Arc<Compiled>, ApiError> {
    if let Some(policy) = state.compiled_policies.get(digest) {
        return Ok(policy);
    }
    let owned = digest.to_owned();
    let bytes = state
        .db(move |connection| {
            policies::module(connection, &owned)?
                .map(|stored| stored.bytes)
                .ok_or_else(|| ApiError::not_found("no such policy"))
        })
        .await?;
    let host = state.policy_host.clone();
    let policy = state
        .blocking(move || {
            host.compile(kind, &bytes).map_err(|error| match error {
                UploadError::Busy(_) => upload_error(error),
                other => ApiError::unprocessable(
                    "policy_does_not_compile",
                    format!("the policy does not compile: {other}"),
                ),
            })
        })
        .await?;
    state.compiled_policies.insert(policy.clone());
    Ok(policy)
}

/// Evaluates a stored policy on an offer and a bid without activating it (that hub's operator).
#[utoipa::path(post, path = "/v1/hubs/{hub}/policies/{digest}/dry-run", tag = "policies",
    params(("hub" = String, Path), ("digest" = String, Path)), request_body = DryRunRequest, security(("bearer" = [])),
    responses((status = 200, body = PolicyDecision), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
pub async fn dry_run(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
    body: web::Json<DryRunRequest>,
) -> Result<HttpResponse, ApiError> {
    let (hub, digest) = path.into_inner();
    let hub = known_hub(&state, &hub)?.to_owned();
    authorize(&caller, Action::ManageHubPolicies { hub: &hub })?;
    let kind = stored_kind(&state, &hub, &digest).await?;
    let request = body.into_inner();
    let now = Utc::now();
    let offer = requests::offer(request.offer, Uuid::nil(), &state.reference, Some(now))?;
    let bid = requests::bid(request.bid, Uuid::from_u128(1), &state.reference, Some(now))?;
    let facts = PairFacts {
        offer: &offer.spec,
        bid: &bid.spec,
        maker: request.maker.unwrap_or(Side::Offer),
        hours: bid.spec.window.len(),
        units: bid.spec.quantity.min(offer.spec.quantity),
    };
    let input = policy_input(&facts, &state.reference);
    let policy = compiled(&state, &digest, kind).await?;
    let host = state.policy_host.clone();
    let evaluated = input.clone();
    let evaluation = state
        .blocking(move || Ok(host.evaluate(&policy, &evaluated)))
        .await?;
    let (decision, fault) = match &evaluation.output {
        Ok(output) => (serde_json::to_value(output).ok(), None),
        Err(fault) => (None, Some(fault.class().to_owned())),
    };
    Ok(ok(&PolicyDecision {
        policy_digest: digest,
        kind: kind.as_str().into(),
        decision,
        fault,
        fuel_used: evaluation.fuel_used,
        input: serde_json::to_value(&input).unwrap_or_default(),
    }))
}

/// The stored bytes of a policy (regulators, and the operators of hubs that uploaded it).
#[utoipa::path(get, path = "/v1/policies/{digest}/module", tag = "policies", params(("digest" = String, Path)),
    security(("bearer" = [])), responses((status = 200, content_type = "application/wasm"), (status = 404, body = ErrorBody)))]
pub async fn module(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let digest = path.into_inner();
    let stored = state
        .db(move |connection| {
            policies::module(connection, &digest)?
                .ok_or_else(|| ApiError::not_found("no such policy"))
        })
        .await?;
    let allowed = stored
        .hubs
        .iter()
        .any(|hub| authorize(&caller, Action::ReadHubPolicies { hub }).is_ok());
    if !allowed {
        return Err(ApiError::not_found("no such policy"));
    }
    Ok(HttpResponse::Ok()
        .content_type("application/wasm")
        .body(stored.bytes))
}

/// Re-executes every policy decision behind a contract against the stored modules and the stored
/// inputs, and says, decision by decision, whether the output is the same (regulators).
#[utoipa::path(post, path = "/v1/audit/contracts/{id}/replay", tag = "audit", params(("id" = Uuid, Path)),
    security(("bearer" = [])), responses((status = 200, body = ReplayReport), (status = 404, body = ErrorBody)))]
pub async fn replay(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    authorize(&caller, Action::ReadAuditLog)?;
    let id = path.into_inner();
    let contract = state
        .db(move |connection| {
            orders::contract(connection, id)?.ok_or_else(|| ApiError::not_found("no such contract"))
        })
        .await?;
    let records: Vec<DecisionRecord> =
        serde_json::from_value(contract.decisions.clone()).map_err(ApiError::internal)?;
    let mut decisions = Vec::with_capacity(records.len());
    for record in records {
        let kind =
            PolicyKind::parse(&record.kind).ok_or_else(|| ApiError::internal("recorded kind"))?;
        let input: PolicyInput = serde_json::from_str(&record.input).map_err(ApiError::internal)?;
        let policy = compiled(&state, &record.policy_digest, kind).await?;
        let host = state.policy_host.clone();
        let evaluation = state
            .blocking(move || Ok(host.evaluate(&policy, &input)))
            .await?;
        let replayed = match &evaluation.output {
            Ok(output) => output.canonical(),
            Err(fault) => fault_json(fault),
        };
        decisions.push(ReplayedDecision {
            matches: replayed == record.output,
            policy_digest: record.policy_digest,
            kind: record.kind,
            recorded: record.output,
            replayed,
        });
    }
    Ok(ok(&ReplayReport { decisions }))
}
