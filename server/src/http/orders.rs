//! Offers, bids, contracts and the public market data.

use actix_web::middleware::from_fn;
use actix_web::{HttpResponse, web};
use serde::Deserialize;
use suanli_sdk::{
    Bid, Contract, ErrorBody, MarketBook, NewBid, NewDelivery, NewOffer, Offer, OrderStatus, Page,
    PlacedBid, PlacedOffer, Settlement, Side, Trade,
};
use uuid::Uuid;

use super::forward::to_leader;
use super::{AppState, ok};
use crate::access::{Action, authorize, listing_scope, sees_decision_inputs};
use crate::auth::Caller;
use crate::db::orders::{self, BidRow, ContractFilter, OfferRow, StoredOrder};
use crate::db::regulator;
use crate::error::ApiError;
use crate::exchange::{Placed, requests};
use crate::validate;

pub fn configure(config: &mut web::ServiceConfig) {
    config
        .route(
            "/v1/offers",
            web::post().to(place_offer).wrap(from_fn(to_leader)),
        )
        .route("/v1/offers", web::get().to(list_offers))
        .route("/v1/offers/{id}", web::get().to(get_offer))
        .route(
            "/v1/offers/{id}",
            web::delete().to(cancel_offer).wrap(from_fn(to_leader)),
        )
        .route(
            "/v1/bids",
            web::post().to(place_bid).wrap(from_fn(to_leader)),
        )
        .route("/v1/bids", web::get().to(list_bids))
        .route("/v1/bids/{id}", web::get().to(get_bid))
        .route(
            "/v1/bids/{id}",
            web::delete().to(cancel_bid).wrap(from_fn(to_leader)),
        )
        .route("/v1/contracts", web::get().to(list_contracts))
        .route("/v1/contracts/{id}", web::get().to(get_contract))
        .route(
            "/v1/contracts/{id}/delivery",
            web::post().to(report_delivery).wrap(from_fn(to_leader)),
        )
        .route("/v1/market/book", web::get().to(book))
        .route("/v1/market/trades", web::get().to(trades));
}

/// Query of the order lists.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OrderListQuery {
    pub status: Option<OrderStatus>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// 1–500, default 100.
    pub limit: Option<u32>,
}

/// Query of the contract list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ContractListQuery {
    pub hub: Option<String>,
    pub sku: Option<String>,
    pub cursor: Option<String>,
    pub limit: Option<u32>,
}

/// Query of the market endpoints.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MarketQuery {
    pub sku: Option<String>,
    pub hub: Option<String>,
    /// Trades: how many, 1–500, default 50. The book: price levels per side, 1–500, default 100.
    pub limit: Option<u32>,
}

/// Lists capacity (providers). Matching happens at once; the answer carries the contracts made.
#[utoipa::path(post, path = "/v1/offers", tag = "orders", request_body = NewOffer, security(("bearer" = [])),
    responses((status = 201, body = PlacedOffer), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn place_offer(
    state: web::Data<AppState>,
    caller: Caller,
    body: web::Json<NewOffer>,
) -> Result<HttpResponse, ApiError> {
    authorize(&caller, Action::PlaceOffer)?;
    // The window is checked against the clock by the writer, after a retry is recognised.
    let request = requests::offer(body.into_inner(), caller.id, &state.reference, None)?;
    let placed = match state.exchange.place_offer(request).await? {
        Placed::New(placed) => placed,
        Placed::Existing(id) => {
            state
                .db(move |connection| {
                    let offer = OfferRow::load(connection, id)?
                        .ok_or_else(|| ApiError::not_found("no such offer"))?;
                    let contracts = orders::contracts_taken_by(connection, OfferRow::SIDE, id)?;
                    Ok(PlacedOffer {
                        offer: offer.to_wire(),
                        contracts: contracts.iter().map(|c| c.to_party_wire()).collect(),
                    })
                })
                .await?
        }
    };
    Ok(HttpResponse::Created().json(placed))
}

/// Bids for capacity (buyers): holds `limit × quantity × hours` first, then matches at once.
#[utoipa::path(post, path = "/v1/bids", tag = "orders", request_body = NewBid, security(("bearer" = [])),
    responses((status = 201, body = PlacedBid), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn place_bid(
    state: web::Data<AppState>,
    caller: Caller,
    body: web::Json<NewBid>,
) -> Result<HttpResponse, ApiError> {
    authorize(&caller, Action::PlaceBid)?;
    // The window and a GTD expiry are checked against the clock by the writer, after a retry is
    // recognised.
    let request = requests::bid(body.into_inner(), caller.id, &state.reference, None)?;
    let placed = match state.exchange.place_bid(request).await? {
        Placed::New(placed) => placed,
        Placed::Existing(id) => {
            state
                .db(move |connection| {
                    let bid = BidRow::load(connection, id)?
                        .ok_or_else(|| ApiError::not_found("no such bid"))?;
                    let contracts = orders::contracts_taken_by(connection, BidRow::SIDE, id)?;
                    let bid = bid.to_wire();
                    Ok(PlacedBid {
                        reasons: bid.reasons.clone(),
                        bid,
                        contracts: contracts.iter().map(|c| c.to_party_wire()).collect(),
                    })
                })
                .await?
        }
    };
    Ok(HttpResponse::Created().json(placed))
}

/// One offer (its provider, regulators).
#[utoipa::path(get, path = "/v1/offers/{id}", tag = "orders", params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, body = Offer), (status = 404, body = ErrorBody)))]
pub async fn get_offer(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    get_order::<OfferRow>(&state, &caller, path.into_inner()).await
}

/// One bid (its buyer, regulators).
#[utoipa::path(get, path = "/v1/bids/{id}", tag = "orders", params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, body = Bid), (status = 404, body = ErrorBody)))]
pub async fn get_bid(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    get_order::<BidRow>(&state, &caller, path.into_inner()).await
}

/// Cancels the unfilled part of an offer (its provider).
#[utoipa::path(delete, path = "/v1/offers/{id}", tag = "orders", params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, body = Offer), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn cancel_offer(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    cancel_order::<OfferRow>(&state, &caller, path.into_inner()).await
}

/// Cancels the unfilled part of a bid and releases its hold (its buyer).
#[utoipa::path(delete, path = "/v1/bids/{id}", tag = "orders", params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, body = Bid), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn cancel_bid(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    cancel_order::<BidRow>(&state, &caller, path.into_inner()).await
}

/// The caller's offers, newest first (regulators: everyone's).
#[utoipa::path(get, path = "/v1/offers", tag = "orders", params(OrderListQuery), security(("bearer" = [])),
    responses((status = 200, body = Page<Offer>), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list_offers(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<OrderListQuery>,
) -> Result<HttpResponse, ApiError> {
    list_orders::<OfferRow>(&state, &caller, &query).await
}

/// The caller's bids, newest first (regulators: everyone's).
#[utoipa::path(get, path = "/v1/bids", tag = "orders", params(OrderListQuery), security(("bearer" = [])),
    responses((status = 200, body = Page<Bid>), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list_bids(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<OrderListQuery>,
) -> Result<HttpResponse, ApiError> {
    list_orders::<BidRow>(&state, &caller, &query).await
}

/// One contract (its buyer and provider, regulators).
#[utoipa::path(get, path = "/v1/contracts/{id}", tag = "contracts", params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, body = Contract), (status = 404, body = ErrorBody)))]
pub async fn get_contract(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let contract = readable_contract(&state, &caller, path.into_inner()).await?;
    Ok(ok(&if sees_decision_inputs(&caller) {
        contract.to_wire()
    } else {
        contract.to_party_wire()
    }))
}

/// Contract `id`, if the caller may read it (one of its parties, or a regulator).
pub(super) async fn readable_contract(
    state: &web::Data<AppState>,
    caller: &Caller,
    id: Uuid,
) -> Result<orders::ContractRow, ApiError> {
    let contract = state
        .db(move |connection| {
            orders::contract(connection, id)?.ok_or_else(|| ApiError::not_found("no such contract"))
        })
        .await?;
    authorize(
        caller,
        Action::Read {
            party: contract.buyer_id,
            other_party: Some(contract.provider_id),
        },
    )?;
    Ok(contract)
}

/// The caller's contracts, newest first (regulators: everyone's), by hub and SKU.
#[utoipa::path(get, path = "/v1/contracts", tag = "contracts", params(ContractListQuery), security(("bearer" = [])),
    responses((status = 200, body = Page<Contract>), (status = 400, body = ErrorBody)))]
pub async fn list_contracts(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<ContractListQuery>,
) -> Result<HttpResponse, ApiError> {
    authorize(&caller, Action::ListOwnOrEverything)?;
    let query = query.into_inner();
    known_codes(&state, query.hub.as_deref(), query.sku.as_deref())?;
    let limit = validate::page_limit(query.limit, 100)?;
    let before = cursor(query.cursor.as_deref())?;
    let party = listing_scope(&caller);
    let filter = ContractFilter {
        party,
        hub: query.hub,
        sku: query.sku,
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
        |(_, audited)| match party {
            // A party sees the decisions without the other side's order.
            Some(_) => orders::for_party(audited.contract),
            None => audited.contract,
        },
    ))
}

/// The provider reports delivery, which settles the contract, exactly once.
#[utoipa::path(post, path = "/v1/contracts/{id}/delivery", tag = "contracts", params(("id" = Uuid, Path)),
    request_body = NewDelivery, security(("bearer" = [])),
    responses((status = 200, body = Settlement), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn report_delivery(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
    body: web::Json<NewDelivery>,
) -> Result<HttpResponse, ApiError> {
    authorize(&caller, Action::ReportDelivery)?;
    let id = path.into_inner();
    let delivery = body.into_inner();
    validate::text("idempotency_key", &delivery.idempotency_key, 200)?;
    let started = std::time::Instant::now();
    let settlement = state.exchange.settle(caller.id, id, delivery).await?;
    state
        .metrics
        .settlement_seconds
        .observe(started.elapsed().as_secs_f64());
    Ok(ok(&settlement))
}

/// Resting offers and bids aggregated by price (public).
#[utoipa::path(get, path = "/v1/market/book", tag = "market", params(MarketQuery),
    responses((status = 200, body = MarketBook), (status = 400, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn book(
    state: web::Data<AppState>,
    query: web::Query<MarketQuery>,
) -> Result<HttpResponse, ApiError> {
    let MarketQuery { sku, hub, limit } = query.into_inner();
    known_codes(&state, hub.as_deref(), sku.as_deref())?;
    let levels = validate::page_limit(limit, 100)?;
    let (hub_filter, sku_filter) = (hub.clone(), sku.clone());
    // Public and a scan of the resting orders: a few at once, so that a flood of book reads holds
    // a few of the pool's connections, never all of them. A read waits a moment for a place; the
    // place goes with the query, and is given back when the query ends, even if the client has
    // gone.
    let place = tokio::time::timeout(BOOK_PLACE_WAIT, state.book_reads.clone().acquire_owned())
        .await
        .ok()
        .and_then(Result::ok)
        .ok_or_else(|| {
            ApiError::busy(
                "book_busy",
                "the book is being read by many at once; retry shortly",
                1,
            )
        })?;
    let (offers, bids) = state
        .db(move |connection| {
            let _place = place;
            Ok(orders::book(
                connection,
                hub_filter.as_deref(),
                sku_filter.as_deref(),
                i64::from(levels),
            )?)
        })
        .await?;
    Ok(ok(&MarketBook {
        sku,
        hub,
        offers,
        bids,
    }))
}

/// How long a read of the public book waits for one of the places ([`super::BOOK_READS_MAX`]).
const BOOK_PLACE_WAIT: std::time::Duration = std::time::Duration::from_millis(250);

/// Recent contracts without participant ids (public).
#[utoipa::path(get, path = "/v1/market/trades", tag = "market", params(MarketQuery),
    responses((status = 200, body = Vec<Trade>), (status = 400, body = ErrorBody)))]
pub async fn trades(
    state: web::Data<AppState>,
    query: web::Query<MarketQuery>,
) -> Result<HttpResponse, ApiError> {
    let MarketQuery { sku, hub, limit } = query.into_inner();
    known_codes(&state, hub.as_deref(), sku.as_deref())?;
    let limit = validate::page_limit(limit, 50)?;
    let trades = state
        .db(move |connection| {
            Ok(orders::trades(
                connection,
                hub.as_deref(),
                sku.as_deref(),
                i64::from(limit),
            )?)
        })
        .await?;
    Ok(ok(&trades))
}

/// One order, shown to its owner and regulators.
async fn get_order<O: StoredOrder>(
    state: &AppState,
    caller: &Caller,
    id: Uuid,
) -> Result<HttpResponse, ApiError> {
    let order = load_order::<O>(state, id).await?;
    authorize(
        caller,
        Action::Read {
            party: order.owner(),
            other_party: None,
        },
    )?;
    Ok(ok(&order.to_wire()))
}

/// Cancels the unfilled part of its owner's resting order; answers the order as it is then.
async fn cancel_order<O: StoredOrder>(
    state: &AppState,
    caller: &Caller,
    id: Uuid,
) -> Result<HttpResponse, ApiError> {
    let order = load_order::<O>(state, id).await?;
    authorize(
        caller,
        Action::Cancel {
            owner: order.owner(),
        },
    )?;
    ensure_resting(order.status())?;
    state
        .exchange
        .cancel(caller.id, O::SIDE, order.seq() as u64)
        .await?;
    Ok(ok(&load_order::<O>(state, id).await?.to_wire()))
}

/// A page of the caller's orders of one side, newest first (regulators: everyone's).
async fn list_orders<O: StoredOrder>(
    state: &AppState,
    caller: &Caller,
    query: &OrderListQuery,
) -> Result<HttpResponse, ApiError> {
    authorize(
        caller,
        match O::SIDE {
            Side::Offer => Action::ListOffers,
            Side::Bid => Action::ListBids,
        },
    )?;
    let owner = listing_scope(caller);
    let limit = validate::page_limit(query.limit, 100)?;
    let before = cursor(query.cursor.as_deref())?;
    let status = query.status;
    let rows = state
        .db(move |connection| {
            Ok(O::list(
                connection,
                owner,
                status,
                before,
                i64::from(limit),
            )?)
        })
        .await?;
    Ok(page(rows, limit, O::seq, |row| row.to_wire()))
}

async fn load_order<O: StoredOrder>(state: &AppState, id: Uuid) -> Result<O, ApiError> {
    state
        .db(move |connection| {
            O::load(connection, id)?.ok_or_else(|| ApiError::not_found("no such order"))
        })
        .await
}

fn ensure_resting(status: OrderStatus) -> Result<(), ApiError> {
    if status.is_resting() {
        Ok(())
    } else {
        Err(ApiError::conflict(
            "order_not_open",
            format!(
                "the order is {}; only resting orders can be cancelled",
                status.as_str()
            ),
        ))
    }
}

pub fn cursor(cursor: Option<&str>) -> Result<Option<i64>, ApiError> {
    match cursor {
        None | Some("") => Ok(None),
        Some(text) => text
            .parse::<i64>()
            .ok()
            .filter(|seq| *seq > 0)
            .map(Some)
            .ok_or_else(|| {
                ApiError::bad_request("invalid_cursor", "`cursor` is not one this server gave out")
            }),
    }
}

/// One page of a list: `rows` as the API shows them, with the cursor of the next page when the
/// page is full (`seq_of` gives a row's position in the list).
pub fn page<R, T>(
    rows: Vec<R>,
    limit: u32,
    seq_of: impl Fn(&R) -> i64,
    wire: impl FnMut(R) -> T,
) -> HttpResponse
where
    T: serde::Serialize,
{
    let next_cursor = if rows.len() == limit as usize {
        rows.last().map(|row| seq_of(row).to_string())
    } else {
        None
    };
    ok(&Page {
        items: rows.into_iter().map(wire).collect::<Vec<T>>(),
        next_cursor,
    })
}

pub fn known_codes(state: &AppState, hub: Option<&str>, sku: Option<&str>) -> Result<(), ApiError> {
    if let Some(hub) = hub {
        state
            .reference
            .hub(hub)
            .ok_or_else(|| requests::unknown_hub(&state.reference, hub))?;
    }
    if let Some(sku) = sku {
        state
            .reference
            .sku(sku)
            .ok_or_else(|| requests::unknown_sku(&state.reference, sku))?;
    }
    Ok(())
}
