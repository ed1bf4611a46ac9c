//! Turning an order as a client sent it into an order the engine can take: every check of
//! SPEC §4 that needs no database, with a clear error for each. Pure: time is an argument.

use chrono::{DateTime, Timelike, Utc};
use rust_decimal::Decimal;
use suanli_sdk::audit::canonical_json;
use suanli_sdk::{DataClass, NewBid, NewOffer, TimeInForce, Window};
use uuid::Uuid;

use crate::db::reference::Reference;
use crate::error::ApiError;
use crate::market::{BidSpec, Hours, HubId, HubSet, OfferSpec, SkuId, money};
use crate::validate;

/// Longest delivery window: 90 days.
pub const WINDOW_HOURS_MAX: i64 = 2160;
/// Most units one order may carry.
pub const QUANTITY_MAX: u32 = 1_000_000;
/// Highest price accepted, CNY per unit-hour.
pub const PRICE_MAX: Decimal = Decimal::from_parts(1_000_000, 0, 0, false, 0);
/// Most SKUs one bid may accept.
pub const BID_SKUS_MAX: usize = 16;
/// Largest `attributes` object of an offer, as JSON bytes.
pub const ATTRIBUTES_BYTES_MAX: usize = 4096;
/// Largest latency bound a bid may name, ms: far above any hub-to-hub figure, far inside every
/// column that keeps it.
pub const LATENCY_MS_MAX: u32 = 60_000;
/// Windows and expiries lie within these years (UTC).
pub const YEAR_MIN: i32 = 2000;
pub const YEAR_MAX: i32 = 2999;

/// A checked offer, ready for the engine and the store.
#[derive(Debug, Clone)]
pub struct OfferRequest {
    pub spec: OfferSpec,
    pub window: Window,
    pub attributes: serde_json::Map<String, serde_json::Value>,
    pub idempotency_key: String,
    /// SHA-256 of the canonical request, to tell a retry from a different order with a reused key.
    pub request_hash: String,
    /// The hash of the request with its price as written, when that differs: what was stored for
    /// orders placed before prices were normalised for hashing, so that their retries still match.
    pub request_hash_as_written: Option<String>,
}

/// A checked bid, ready for the engine and the store.
#[derive(Debug, Clone)]
pub struct BidRequest {
    pub spec: BidSpec,
    pub window: Window,
    pub sku_codes: Vec<String>,
    pub hub_codes: Vec<String>,
    pub requested_hubs: Option<Vec<String>>,
    pub data_origin: Option<String>,
    pub max_latency_ms: Option<u32>,
    pub expires_at: Option<DateTime<Utc>>,
    pub idempotency_key: String,
    pub request_hash: String,
    /// As [`OfferRequest::request_hash_as_written`].
    pub request_hash_as_written: Option<String>,
    /// Hubs the bid asked for (or all) that `max_latency_ms` ruled out.
    pub latency_excluded: HubSet,
}

impl BidRequest {
    /// All the money the bid holds when placed.
    pub fn hold(&self) -> Decimal {
        self.spec.unit_hold * Decimal::from(self.spec.quantity)
    }
}

/// Checks an offer from `provider`; with `now`, also that its window has not started before the
/// current hour. Placement passes `None`: the writer checks that itself, after it has looked the
/// idempotency key up, so that a retry arriving after the window started still gets the original
/// order back (SPEC §4) rather than `window_started`.
pub fn offer(
    new: NewOffer,
    provider: Uuid,
    reference: &Reference,
    now: Option<DateTime<Utc>>,
) -> Result<OfferRequest, ApiError> {
    let mut new = new;
    let (request_hash, request_hash_as_written) =
        order_hashes(&mut new, |offer| &mut offer.ask_price);
    validate::text("idempotency_key", &new.idempotency_key, 200)?;
    let hub = reference.hub_of_cluster(&new.cluster).ok_or_else(|| {
        let hint = validate::did_you_mean(
            &new.cluster,
            reference
                .hubs
                .iter()
                .flat_map(|hub| hub.clusters.iter().map(|cluster| cluster.code.as_str())),
        );
        ApiError::bad_request(
            "unknown_cluster",
            format!("no cluster `{}`{hint}", new.cluster),
        )
    })?;
    let hub_id = reference
        .hub_id(&hub.code)
        .expect("a cluster's hub is a hub");
    let sku = reference
        .sku_id(&new.sku)
        .ok_or_else(|| unknown_sku(reference, &new.sku))?;
    let hours = window(new.window, now)?;
    quantity(new.quantity)?;
    let ask_price = price("ask_price", new.ask_price)?;
    if new.green_share > 100 {
        return Err(ApiError::bad_request(
            "invalid_field",
            "`green_share` is a percentage, 0 to 100",
        ));
    }
    let attributes = new.attributes.unwrap_or_default();
    if serde_json::to_vec(&attributes).map_or(usize::MAX, |bytes| bytes.len())
        > ATTRIBUTES_BYTES_MAX
    {
        return Err(ApiError::bad_request(
            "invalid_field",
            format!("`attributes` is larger than {ATTRIBUTES_BYTES_MAX} bytes"),
        ));
    }
    if !json_is_storable(&serde_json::Value::Object(attributes.clone())) {
        return Err(ApiError::bad_request(
            "invalid_field",
            "`attributes` contains control characters",
        ));
    }
    Ok(OfferRequest {
        spec: OfferSpec {
            id: Uuid::new_v4(),
            provider,
            hub: hub_id,
            cluster: new.cluster,
            sku,
            quantity: new.quantity,
            window: hours,
            ask_price,
            green_share: new.green_share,
            attributes: attribute_pairs(&attributes),
        },
        window: new.window,
        attributes,
        idempotency_key: new.idempotency_key,
        request_hash,
        request_hash_as_written,
    })
}

/// A withdrawal, checked: from `account` (a buyer's available account when `buyer`).
#[derive(Debug, Clone)]
pub struct WithdrawalRequest {
    pub id: Uuid,
    pub participant: Uuid,
    pub account: Uuid,
    pub buyer: bool,
    pub amount: Decimal,
    pub destination: String,
    pub idempotency_key: String,
    pub request_hash: String,
}

/// Checks a withdrawal by `participant` out of its available account.
pub fn withdrawal(
    new: suanli_sdk::NewWithdrawal,
    participant: Uuid,
    own: crate::db::ledger::OwnAccounts,
) -> Result<WithdrawalRequest, ApiError> {
    let (account, buyer) = (own.available, own.held.is_some());
    // `100` and `100.00` are the same request.
    let request_hash = hash_of(&suanli_sdk::NewWithdrawal {
        amount: new.amount.normalize(),
        ..new.clone()
    });
    validate::text("idempotency_key", &new.idempotency_key, 200)?;
    validate::text("destination", &new.destination, 200)?;
    let amount = validate::positive_cny("amount", new.amount, validate::DEPOSIT_AMOUNT_CNY_MAX)?;
    Ok(WithdrawalRequest {
        id: Uuid::new_v4(),
        participant,
        account,
        buyer,
        amount,
        destination: new.destination,
        idempotency_key: new.idempotency_key,
        request_hash,
    })
}

/// Checks a bid from `buyer`, and works out the hubs it may run in; with `now`, also that its
/// window has not started before the current hour and that a GTD expiry lies ahead. Placement
/// passes `None`: the writer checks both itself, after it has looked the idempotency key up (see
/// [`offer`]).
pub fn bid(
    new: NewBid,
    buyer: Uuid,
    reference: &Reference,
    now: Option<DateTime<Utc>>,
) -> Result<BidRequest, ApiError> {
    let mut new = new;
    let (request_hash, request_hash_as_written) =
        order_hashes(&mut new, |bid| &mut bid.limit_price);
    validate::text("idempotency_key", &new.idempotency_key, 200)?;
    let skus = bid_skus(reference, &new.skus)?;
    let hours = window(new.window, now)?;
    quantity(new.quantity)?;
    let limit_price = price("limit_price", new.limit_price)?;
    let min_green_share = new.min_green_share.unwrap_or(0);
    if min_green_share > 100 {
        return Err(ApiError::bad_request(
            "invalid_field",
            "`min_green_share` is a percentage, 0 to 100",
        ));
    }
    let time_in_force = new.time_in_force.unwrap_or_default();
    let expires_at = expiry(time_in_force, new.expires_at, now)?;
    let min_fill = new.min_fill.unwrap_or(1);
    if min_fill == 0 || min_fill > new.quantity {
        return Err(ApiError::bad_request(
            "invalid_field",
            "`min_fill` must be between 1 and `quantity`",
        ));
    }
    let places = bid_places(reference, &new)?;
    let unit_hold = money::unit_hold(limit_price, hours.len());
    if unit_hold * Decimal::from(new.quantity) > validate::DEPOSIT_AMOUNT_CNY_MAX {
        return Err(ApiError::unprocessable(
            "order_too_large",
            "the bid would hold more than 10^12 CNY",
        ));
    }
    Ok(BidRequest {
        spec: BidSpec {
            id: Uuid::new_v4(),
            buyer,
            skus,
            hubs: places.eligible,
            data_origin: places.data_origin,
            max_latency_ms: new.max_latency_ms,
            quantity: new.quantity,
            window: hours,
            limit_price,
            min_green_share,
            data_class: new.data_class.unwrap_or(DataClass::General),
            time_in_force,
            expires_at: expires_at.map(|at| at.timestamp()),
            min_fill,
            unit_hold,
        },
        window: new.window,
        sku_codes: new.skus,
        hub_codes: places
            .eligible
            .iter()
            .map(|hub| reference.hub_by_id(hub).code.clone())
            .collect(),
        requested_hubs: new.hubs,
        data_origin: new.data_origin,
        max_latency_ms: new.max_latency_ms,
        expires_at,
        idempotency_key: new.idempotency_key,
        request_hash,
        request_hash_as_written,
        latency_excluded: HubSet(places.asked.0 & !places.eligible.0),
    })
}

/// The SKUs a bid accepts, as ids: 1 to [`BID_SKUS_MAX`] known codes, none twice.
fn bid_skus(reference: &Reference, codes: &[String]) -> Result<Vec<SkuId>, ApiError> {
    if codes.is_empty() || codes.len() > BID_SKUS_MAX {
        return Err(ApiError::bad_request(
            "invalid_field",
            format!("`skus` must name 1 to {BID_SKUS_MAX} SKUs"),
        ));
    }
    let mut skus = Vec::with_capacity(codes.len());
    for code in codes {
        let sku = reference
            .sku_id(code)
            .ok_or_else(|| unknown_sku(reference, code))?;
        if skus.contains(&sku) {
            return Err(ApiError::bad_request(
                "invalid_field",
                format!("`skus` names `{code}` twice"),
            ));
        }
        skus.push(sku);
    }
    Ok(skus)
}

/// When a bid expires: only a GTD bid has (and must have) an expiry; with `now`, in the future.
fn expiry(
    time_in_force: TimeInForce,
    expires_at: Option<DateTime<Utc>>,
    now: Option<DateTime<Utc>>,
) -> Result<Option<DateTime<Utc>>, ApiError> {
    match (time_in_force, expires_at) {
        (TimeInForce::Gtd, None) => Err(ApiError::bad_request(
            "invalid_field",
            "a GTD bid needs `expires_at`",
        )),
        (TimeInForce::Gtd, Some(at)) if !within_years(at) => Err(ApiError::bad_request(
            "invalid_field",
            format!("`expires_at` must lie in the years {YEAR_MIN}–{YEAR_MAX}"),
        )),
        (TimeInForce::Gtd, Some(at)) if now.is_some_and(|now| at <= now) => Err(
            ApiError::unprocessable("expiry_passed", "`expires_at` is not in the future"),
        ),
        (TimeInForce::Gtd, Some(at)) => Ok(Some(at)),
        (_, Some(_)) => Err(ApiError::bad_request(
            "invalid_field",
            "only GTD bids take `expires_at`",
        )),
        (_, None) => Ok(None),
    }
}

/// Where a bid may run.
struct BidPlaces {
    /// The hubs it named (all when it named none).
    asked: HubSet,
    /// Those of them within `max_latency_ms` of its data's origin.
    eligible: HubSet,
    data_origin: Option<HubId>,
}

/// Resolves a bid's hubs and data origin, and keeps the hubs its latency bound allows.
fn bid_places(reference: &Reference, new: &NewBid) -> Result<BidPlaces, ApiError> {
    let data_origin = match &new.data_origin {
        Some(code) => Some(
            reference
                .hub_id(code)
                .ok_or_else(|| unknown_hub(reference, code))?,
        ),
        None => None,
    };
    if new.max_latency_ms.is_some() && data_origin.is_none() {
        return Err(ApiError::bad_request(
            "invalid_field",
            "`max_latency_ms` needs a `data_origin`",
        ));
    }
    if new
        .max_latency_ms
        .is_some_and(|ms| ms == 0 || ms > LATENCY_MS_MAX)
    {
        return Err(ApiError::bad_request(
            "invalid_field",
            format!("`max_latency_ms` must be 1 to {LATENCY_MS_MAX}"),
        ));
    }
    let mut asked = HubSet::default();
    match &new.hubs {
        Some(codes) if codes.is_empty() => {
            return Err(ApiError::bad_request(
                "invalid_field",
                "`hubs`, when given, must name at least one hub",
            ));
        }
        Some(codes) => {
            for code in codes {
                let hub = reference
                    .hub_id(code)
                    .ok_or_else(|| unknown_hub(reference, code))?;
                if asked.contains(hub) {
                    return Err(ApiError::bad_request(
                        "invalid_field",
                        format!("`hubs` names `{code}` twice"),
                    ));
                }
                asked = asked.with(hub);
            }
        }
        None => {
            for index in 0..reference.hubs.len() {
                asked = asked.with(index as u8);
            }
        }
    }
    let mut eligible = asked;
    if let (Some(origin), Some(bound)) = (&new.data_origin, new.max_latency_ms) {
        for hub in asked.iter() {
            let code = &reference.hub_by_id(hub).code;
            if reference
                .latency_ms(origin, code)
                .is_none_or(|latency| latency > bound)
            {
                eligible = HubSet(eligible.0 & !(1 << hub));
            }
        }
    }
    if eligible.is_empty() {
        return Err(ApiError::unprocessable(
            "no_eligible_hub",
            "no hub satisfies `hubs` and `max_latency_ms`",
        ));
    }
    Ok(BidPlaces {
        asked,
        eligible,
        data_origin,
    })
}

/// An order's request hash with its price normalised (`15` and `15.00` are the same order, as for
/// withdrawals), leaving the price normalised in `order`; and, when normalising changed it, the
/// hash of the order as written (see [`OfferRequest::request_hash_as_written`]).
fn order_hashes<T: serde::Serialize>(
    order: &mut T,
    price: fn(&mut T) -> &mut Decimal,
) -> (String, Option<String>) {
    let written = *price(order);
    let normalised = written.normalize();
    let as_written = (normalised.scale() != written.scale()).then(|| hash_of(order));
    *price(order) = normalised;
    (hash_of(order), as_written)
}

fn hash_of(body: &impl serde::Serialize) -> String {
    use sha2::{Digest, Sha256};
    let value = serde_json::to_value(body).unwrap_or_default();
    hex::encode(Sha256::digest(canonical_json(&value).as_bytes()))
}

fn window(window: Window, now: Option<DateTime<Utc>>) -> Result<Hours, ApiError> {
    let on_the_hour =
        |at: DateTime<Utc>| at.minute() == 0 && at.second() == 0 && at.nanosecond() == 0;
    if !on_the_hour(window.start) || !on_the_hour(window.end) {
        return Err(ApiError::bad_request(
            "invalid_window",
            "a window starts and ends on a whole UTC hour",
        ));
    }
    if !within_years(window.start) || !within_years(window.end) {
        return Err(ApiError::bad_request(
            "invalid_window",
            format!("a window lies in the years {YEAR_MIN}–{YEAR_MAX}"),
        ));
    }
    let hours = Hours {
        start: window.start.timestamp() / 3600,
        end: window.end.timestamp() / 3600,
    };
    if hours.is_empty() {
        return Err(ApiError::bad_request(
            "invalid_window",
            "a window ends after it starts",
        ));
    }
    if hours.end - hours.start > WINDOW_HOURS_MAX {
        return Err(ApiError::unprocessable(
            "window_too_long",
            format!("a window is at most {WINDOW_HOURS_MAX} hours"),
        ));
    }
    if let Some(now) = now {
        crate::rules::window::check_start(hours.start, now.timestamp())?;
    }
    Ok(hours)
}

fn within_years(at: DateTime<Utc>) -> bool {
    use chrono::Datelike;
    (YEAR_MIN..=YEAR_MAX).contains(&at.year())
}

fn quantity(quantity: u32) -> Result<(), ApiError> {
    if quantity == 0 || quantity > QUANTITY_MAX {
        return Err(ApiError::bad_request(
            "invalid_quantity",
            format!("`quantity` must be 1 to {QUANTITY_MAX} units"),
        ));
    }
    Ok(())
}

fn price(field: &str, price: Decimal) -> Result<Decimal, ApiError> {
    let price = price.normalize();
    if price <= Decimal::ZERO || price.scale() > 6 || price > PRICE_MAX {
        return Err(ApiError::bad_request(
            "invalid_price",
            format!(
                "`{field}` must be > 0, at most {PRICE_MAX} CNY, with at most 6 fractional digits"
            ),
        ));
    }
    Ok(price)
}

/// 400 `unknown_sku`, with the closest SKU code.
pub fn unknown_sku(reference: &Reference, code: &str) -> ApiError {
    let hint = validate::did_you_mean(code, reference.skus.iter().map(|sku| sku.code.as_str()));
    ApiError::bad_request("unknown_sku", format!("no SKU `{code}`{hint}"))
}

/// 400 `unknown_hub`, with the closest hub code.
pub fn unknown_hub(reference: &Reference, code: &str) -> ApiError {
    let hint = validate::did_you_mean(code, reference.hubs.iter().map(|hub| hub.code.as_str()));
    ApiError::bad_request("unknown_hub", format!("no hub `{code}`{hint}"))
}

/// An offer's attributes as text pairs: strings as they are, anything else as its JSON text.
pub fn attribute_pairs(
    attributes: &serde_json::Map<String, serde_json::Value>,
) -> Vec<(String, String)> {
    attributes
        .iter()
        .map(|(key, value)| {
            let text = match value {
                serde_json::Value::String(text) => text.clone(),
                other => other.to_string(),
            };
            (key.clone(), text)
        })
        .collect()
}

/// Whether PostgreSQL's jsonb can store the value (no NUL characters anywhere).
fn json_is_storable(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::String(text) => !text.contains('\u{0}'),
        serde_json::Value::Array(items) => items.iter().all(json_is_storable),
        serde_json::Value::Object(map) => map
            .iter()
            .all(|(key, value)| !key.contains('\u{0}') && json_is_storable(value)),
        _ => true,
    }
}
