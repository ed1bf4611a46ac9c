//! Price history for everyone: candles per SKU and hub, and the price index.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, TimeDelta, Utc};
use serde::Deserialize;
use suanli_sdk::{Candle, CandleInterval, ErrorBody, MarketIndex};

use super::orders::known_codes;
use super::{AppState, ok};
use crate::db::market;
use crate::error::ApiError;
use crate::validate;

/// Most candles one request may span.
pub const CANDLES_MAX: i64 = 1_000;

pub fn configure(config: &mut web::ServiceConfig) {
    config
        .route("/v1/market/candles", web::get().to(candles))
        .route("/v1/market/index", web::get().to(index));
}

/// Query of the candles.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CandlesQuery {
    /// The SKU (required).
    pub sku: Option<String>,
    /// A hub; absent: all hubs together.
    pub hub: Option<String>,
    /// `1h` (default) or `1d` (UTC days).
    pub interval: Option<String>,
    /// Candles starting at or after this time (default: 168 intervals before `to`).
    pub from: Option<DateTime<Utc>>,
    /// Candles starting before this time (default: the end of the current interval).
    pub to: Option<DateTime<Utc>>,
}

/// Query of the index.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct IndexQuery {
    /// The SKU (required).
    pub sku: Option<String>,
}

fn required_sku(state: &AppState, sku: Option<String>) -> Result<String, ApiError> {
    let sku = sku.ok_or_else(|| ApiError::bad_request("invalid_query", "`sku` is required"))?;
    known_codes(state, None, Some(&sku))?;
    Ok(sku)
}

/// Candles of a SKU, oldest first: per interval with contracts, open, high, low, close and the
/// unit-hour-weighted average price (`vwap`) of its contracts, their unit-hours, notional and
/// count. At most 1,000 intervals per request.
#[utoipa::path(get, path = "/v1/market/candles", tag = "market", params(CandlesQuery),
    responses((status = 200, body = Vec<Candle>), (status = 400, body = ErrorBody)))]
pub async fn candles(
    state: web::Data<AppState>,
    query: web::Query<CandlesQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let sku = required_sku(&state, query.sku)?;
    known_codes(&state, query.hub.as_deref(), None)?;
    let interval = match query.interval.as_deref() {
        None => CandleInterval::Hour,
        Some(name) => CandleInterval::parse(name)
            .ok_or_else(|| ApiError::bad_request("invalid_query", "`interval` is `1h` or `1d`"))?,
    };
    validate::time_range(query.from, query.to)?;
    let length = TimeDelta::seconds(interval.seconds());
    // By default the 168 intervals up to and including the current one.
    let to = query
        .to
        .unwrap_or_else(|| market::interval_start(interval, Utc::now()) + length);
    let from = query.from.unwrap_or(to - length * 168);
    validate::time_range(Some(from), Some(to))?;
    if (to - from).num_seconds() > interval.seconds() * CANDLES_MAX {
        return Err(ApiError::bad_request(
            "range_too_long",
            format!("at most {CANDLES_MAX} intervals per request; narrow `from`–`to`"),
        ));
    }
    let hub = query.hub;
    let candles = state
        .db(move |connection| {
            Ok(market::candles(
                connection,
                &sku,
                hub.as_deref(),
                interval,
                from,
                to,
                CANDLES_MAX,
            )?)
        })
        .await?;
    Ok(ok(&candles))
}

/// The price index of a SKU: nationally and per hub, the unit-hour-weighted average unit price of
/// its contracts in the last 24 hours and the last 7 days.
#[utoipa::path(get, path = "/v1/market/index", tag = "market", params(IndexQuery),
    responses((status = 200, body = MarketIndex), (status = 400, body = ErrorBody)))]
pub async fn index(
    state: web::Data<AppState>,
    query: web::Query<IndexQuery>,
) -> Result<HttpResponse, ApiError> {
    let sku = required_sku(&state, query.into_inner().sku)?;
    let now = Utc::now();
    let index = state
        .db(move |connection| Ok(market::index(connection, &sku, now)?))
        .await?;
    Ok(ok(&index))
}
