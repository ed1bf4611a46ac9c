//! The OpenAPI 3 document, generated from the handlers' annotations and the sdk's types.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{audit, hubs, money, orders, participants, policies, public};

/// The whole API; served at `/v1/openapi.json`.
#[derive(OpenApi)]
#[openapi(
    info(title = "Suanli exchange", description = "Compute capacity exchange: REST API v1."),
    paths(
        public::healthz, public::readyz, public::metrics, public::openapi,
        public::hubs, public::hub_latency, public::skus,
        participants::issue_token, participants::create_participant, participants::me,
        participants::deposit, participants::account,
        orders::place_offer, orders::list_offers, orders::get_offer, orders::cancel_offer,
        orders::place_bid, orders::list_bids, orders::get_bid, orders::cancel_bid,
        orders::list_contracts, orders::get_contract, orders::report_delivery, orders::book, orders::trades,
        audit::log, audit::verify, audit::contracts, audit::export, audit::stats,
        policies::upload, policies::list, policies::activate, policies::dry_run, policies::module, policies::replay,
        money::request_withdrawal, money::list_withdrawals, money::mark_paid, money::reject, money::statement,
        money::quote, hubs::contracts, hubs::decisions, hubs::faults,
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
