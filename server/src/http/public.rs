//! Endpoints anyone may call: health, readiness, metrics, the OpenAPI document, reference data.

use actix_web::{HttpResponse, web};
use suanli_sdk::{ErrorBody, Health, Hub, Latency, Readiness, Sku};

use super::{AppState, ok};
use crate::error::ApiError;

pub fn configure(config: &mut web::ServiceConfig) {
    config
        .route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz))
        .route("/metrics", web::get().to(metrics))
        .route("/v1/openapi.json", web::get().to(openapi))
        .route("/v1/hubs", web::get().to(hubs))
        .route("/v1/hubs/latency", web::get().to(hub_latency))
        .route("/v1/skus", web::get().to(skus));
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, body = Health)))]
pub async fn healthz() -> HttpResponse {
    ok(&Health {
        status: "ok".into(),
    })
}

/// The database is reachable; says whether this node applies orders (`leader`: it holds the
/// matching lease) or another one does (`follower`: it forwards order commands to the leader),
/// and, with a read replica configured, whether the replica serves reads (`fresh`) or lags
/// (`lagging`, reads go to the primary).
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, body = Readiness), (status = 503, body = ErrorBody)))]
pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    state
        .db(|connection| Ok(crate::db::ping(connection)?))
        .await?;
    Ok(ok(&Readiness {
        status: "ready".into(),
        database: "ok".into(),
        writer: state.exchange.role().as_str().into(),
        node: state.node.clone(),
        leader: state.exchange.leader_address(),
        replica: state.replica.as_ref().map(|replica| {
            if replica.is_fresh() {
                "fresh"
            } else {
                "lagging"
            }
            .to_owned()
        }),
        replica_lag_ms: state.replica.as_ref().and_then(|replica| replica.lag_ms()),
    }))
}

/// Prometheus text format.
#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, body = String)))]
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.metrics.render())
}

/// This document.
#[utoipa::path(get, path = "/v1/openapi.json", tag = "operations", responses((status = 200)))]
pub async fn openapi() -> HttpResponse {
    ok(&super::openapi::document())
}

/// The eight national hubs with their clusters and figures (illustrative).
#[utoipa::path(get, path = "/v1/hubs", tag = "reference", responses((status = 200, body = Vec<Hub>)))]
pub async fn hubs(state: web::Data<AppState>) -> HttpResponse {
    ok(&state.reference.hubs)
}

/// Round-trip latency between hubs, ms.
#[utoipa::path(get, path = "/v1/hubs/latency", tag = "reference", responses((status = 200, body = Latency)))]
pub async fn hub_latency(state: web::Data<AppState>) -> HttpResponse {
    ok(&state.reference.latency)
}

/// Tradable SKUs with a normalised performance figure.
#[utoipa::path(get, path = "/v1/skus", tag = "reference", responses((status = 200, body = Vec<Sku>)))]
pub async fn skus(state: web::Data<AppState>) -> HttpResponse {
    ok(&state.reference.skus)
}
