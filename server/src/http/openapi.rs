//! The OpenAPI 3 document, generated from the handlers' annotations and the sdk's types.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{audit, console, hubs, market, money, orders, participants, policies, proofs, public};

/// The whole API as served at `/v1/openapi.json`: the generated document, completed where the
/// annotations cannot say it (see [`complete`]).
pub fn document() -> serde_json::Value {
    let mut document = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
    complete(&mut document);
    document
}

/// What every secured operation may also answer, and the bodies that are not JSON.
fn complete(document: &mut serde_json::Value) {
    let error = |description: &str| {
        serde_json::json!({
            "description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
        })
    };
    let Some(paths) = document["paths"].as_object_mut() else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        let Some(operations) = item.as_object_mut() else {
            continue;
        };
        for (method, operation) in operations.iter_mut() {
            let secured = operation
                .get("security")
                .and_then(|security| security.as_array())
                .is_some_and(|security| !security.is_empty());
            if let Some(responses) = operation["responses"].as_object_mut().filter(|_| secured) {
                responses
                    .entry("401")
                    .or_insert_with(|| error("no valid token: missing, expired, revoked, or for a participant that is gone, suspended or changed"));
                responses
                    .entry("403")
                    .or_insert_with(|| error("the caller's role may not do this"));
            }
            if path == "/v1/hubs/{hub}/policies" && method == "post" {
                operation["requestBody"] = serde_json::json!({
                    "description": "the policy module: a WebAssembly component (or a core module with wit-bindgen's type section)",
                    "required": true,
                    "content": {"application/wasm": {"schema": {"type": "string", "format": "binary"}}}
                });
            }
            if path == "/v1/quotes" && method == "post" {
                operation["requestBody"]["description"] = serde_json::json!(
                    "a bid (`NewBid`) without `idempotency_key`: one, if sent, is ignored"
                );
                operation["requestBody"]["content"]["application/json"]["schema"] =
                    serde_json::json!({"$ref": "#/components/schemas/NewQuote"});
            }
        }
    }
    // The quote's body: the bid's schema with `idempotency_key` left out.
    let schemas = &mut document["components"]["schemas"];
    let mut quote = schemas["NewBid"].clone();
    if let Some(fields) = quote.as_object_mut() {
        if let Some(properties) = fields.get_mut("properties").and_then(|p| p.as_object_mut()) {
            properties.remove("idempotency_key");
        }
        if let Some(required) = fields.get_mut("required").and_then(|r| r.as_array_mut()) {
            required.retain(|name| name != "idempotency_key");
        }
        fields.insert(
            "description".into(),
            serde_json::json!("A bid to quote: `NewBid` without `idempotency_key`."),
        );
    }
    schemas["NewQuote"] = quote;
}

/// The whole API, as its handlers' annotations describe it.
#[derive(OpenApi)]
#[openapi(
    info(title = "Suanli exchange", description = "Compute capacity exchange: REST API v1."),
    paths(
        console::index, console::asset,
        public::healthz, public::readyz, public::metrics, public::openapi,
        public::hubs, public::hub_latency, public::skus,
        participants::issue_token, participants::create_participant, participants::me,
        participants::rotate_key, participants::suspend, participants::reinstate,
        participants::deposit, participants::account,
        orders::place_offer, orders::list_offers, orders::get_offer, orders::cancel_offer,
        orders::place_bid, orders::list_bids, orders::get_bid, orders::cancel_bid,
        orders::list_contracts, orders::get_contract, orders::report_delivery, orders::book, orders::trades,
        audit::log, audit::verify, audit::contracts, audit::export, audit::stats,
        proofs::checkpoint, proofs::checkpoint_key, proofs::inclusion, proofs::consistency, proofs::contract_proof,
        policies::upload, policies::list, policies::activate, policies::dry_run, policies::module, policies::replay,
        money::request_withdrawal, money::list_withdrawals, money::mark_paid, money::reject, money::statement,
        money::quote, hubs::contracts, hubs::decisions, hubs::faults, market::candles, market::index, market::stream,
    ),
    modifiers(&BearerAuth),
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}
