//! Market data for everyone: candles per SKU and hub, the price index, and the live stream of
//! trades and book changes.

use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, TimeDelta, Utc};
use serde::Deserialize;
use suanli_sdk::{Candle, CandleInterval, ErrorBody, MarketIndex};

use super::orders::known_codes;
use super::{AppState, ok};
use crate::db::{market, stream};
use crate::error::ApiError;
use crate::exchange::feed::Subscription;
use crate::validate;

/// Most candles one request may span.
pub const CANDLES_MAX: i64 = 1_000;

pub fn configure(config: &mut web::ServiceConfig) {
    config
        .route("/v1/market/candles", web::get().to(candles))
        .route("/v1/market/index", web::get().to(index))
        .route("/v1/market/stream", web::get().to(self::stream));
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
        .read_db(move |connection| {
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
        .read_db(move |connection| Ok(market::index(connection, &sku, now)?))
        .await?;
    Ok(ok(&index))
}

/// Events one replay query reads from the database.
const REPLAY_PAGE: i64 = 500;

/// The live market: Server-Sent Events of trades (`event: trade`, a contract without its
/// parties) and changed price levels (`event: book`), each with an `id`. A client that sends
/// `Last-Event-ID` first gets every event after that id from the database, then the live ones,
/// without a gap or a repeat (across restarts too); a client that sends none starts at the
/// newest event, whose id the stream sends first. A comment line every 15 s keeps an idle
/// connection open. A subscriber that falls the whole server buffer behind is sent a comment
/// saying so and cut off; it resumes with `Last-Event-ID`.
#[utoipa::path(get, path = "/v1/market/stream", tag = "market",
    params(("Last-Event-ID" = Option<i64>, Header, description = "resume after this event id")),
    responses(
        (status = 200, description = "`text/event-stream`: `id`, `event: trade` (data: MarketTrade) or `event: book` (data: BookChange)",
         content_type = "text/event-stream", body = String),
        (status = 400, body = ErrorBody),
        (status = 503, description = "too many subscribers (`stream_busy`); retry later", body = ErrorBody)))]
pub async fn stream(
    state: web::Data<AppState>,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let resume = match request.headers().get("last-event-id") {
        None => None,
        Some(value) => Some(
            value
                .to_str()
                .ok()
                .and_then(|text| text.trim().parse::<i64>().ok())
                .filter(|id| *id >= 0)
                .ok_or_else(|| {
                    ApiError::bad_request(
                        "invalid_header",
                        "`Last-Event-ID` is an event id the stream sent (a whole number)",
                    )
                })?,
        ),
    };
    // Subscribe before reading the database: every event committed from here on arrives live,
    // every earlier one is in the database, and ids already sent are skipped.
    let subscription = state.exchange.feed().subscribe().ok_or_else(|| {
        ApiError::busy(
            "stream_busy",
            "the market stream has all the subscribers it takes; retry shortly",
            5,
        )
    })?;
    let newest = replay(&state, stream::newest).await?;
    let opening = match resume {
        Some(after) if after > newest => {
            return Err(ApiError::bad_request(
                "invalid_header",
                format!("`Last-Event-ID` {after} is after the newest event ({newest})"),
            ));
        }
        Some(_) => ": suanli market stream\n\n".to_owned(),
        // Where this subscriber starts, so that a reconnection resumes from there.
        None => format!(": suanli market stream\nid: {newest}\n\n"),
    };
    let heartbeat = state.exchange.feed().heartbeat;
    let subscriber = Subscriber {
        state: state.clone(),
        subscription,
        last: resume.unwrap_or(newest),
        phase: if resume.is_some() {
            Phase::Replay
        } else {
            Phase::Live
        },
        heartbeat: {
            let mut interval =
                tokio::time::interval_at(tokio::time::Instant::now() + heartbeat, heartbeat);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            interval
        },
    };
    let opening = futures_util::stream::iter([Ok::<_, std::io::Error>(Bytes::from(opening))]);
    let events = futures_util::stream::unfold(subscriber, Subscriber::next_chunk);
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("cache-control", "no-cache"))
        .insert_header(("x-accel-buffering", "no"))
        .streaming(futures_util::StreamExt::chain(opening, events)))
}

/// Runs a read on the market stream's own connections, off the async executor.
async fn replay<T, F>(state: &AppState, read: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&mut crate::db::Connection) -> Result<T, crate::db::StoreError> + Send + 'static,
{
    let pool = state.stream_replays.clone();
    web::block(move || -> Result<T, ApiError> {
        let mut connection = pool.get()?;
        Ok(read(&mut connection)?)
    })
    .await?
}

/// Where a subscriber is.
enum Phase {
    /// Reading the events after `last` from the database.
    Replay,
    /// Taking events from the live feed.
    Live,
    /// Cut off, failed or shut down: the stream ends.
    Ended,
}

/// One market stream connection.
struct Subscriber {
    state: web::Data<AppState>,
    subscription: Subscription,
    /// The id of the last event sent (or the one to resume after).
    last: i64,
    phase: Phase,
    heartbeat: tokio::time::Interval,
}

impl Subscriber {
    /// The next bytes to send; `None` ends the stream.
    async fn next_chunk(mut self) -> Option<(Result<Bytes, std::io::Error>, Self)> {
        use tokio::sync::broadcast::error::RecvError;
        loop {
            match self.phase {
                Phase::Ended => return None,
                Phase::Replay if *self.subscription.closing.borrow() => {
                    return Some(self.end("the exchange is shutting down"));
                }
                Phase::Replay => {
                    let after = self.last;
                    let page = replay(&self.state, move |connection| {
                        stream::after(connection, after, REPLAY_PAGE)
                    })
                    .await;
                    let Ok(events) = page else {
                        return Some(self.end("the database did not answer"));
                    };
                    if (events.len() as i64) < REPLAY_PAGE {
                        self.phase = Phase::Live;
                    }
                    let mut chunk = String::new();
                    self.push(&mut chunk, &events);
                    if !chunk.is_empty() {
                        return Some((Ok(Bytes::from(chunk)), self));
                    }
                }
                Phase::Live => {
                    tokio::select! {
                        received = self.subscription.events.recv() => match received {
                            Ok(batch) => {
                                let Some(last) = batch.events.last() else { continue };
                                if batch.events[0].id > self.last {
                                    // The common case: the whole batch, as formatted once.
                                    self.last = last.id;
                                    return Some((Ok(batch.text.clone()), self));
                                }
                                let mut chunk = String::new();
                                self.push(&mut chunk, &batch.events);
                                if !chunk.is_empty() {
                                    return Some((Ok(Bytes::from(chunk)), self));
                                }
                            }
                            Err(RecvError::Lagged(missed)) => {
                                let reason = format!(
                                    "this subscriber fell {missed} batches behind (cut off)"
                                );
                                return Some(self.end(&reason));
                            }
                            Err(RecvError::Closed) => return None,
                        },
                        _ = self.subscription.closing.changed() => {
                            return Some(self.end("the exchange is shutting down"));
                        }
                        _ = self.heartbeat.tick() => {
                            return Some((Ok(Bytes::from_static(b": heartbeat\n\n")), self));
                        }
                    }
                }
            }
        }
    }

    /// Appends the events after the last one sent.
    fn push(&mut self, chunk: &mut String, events: &[stream::StreamEvent]) {
        for event in events {
            if event.id > self.last {
                crate::exchange::feed::sse_text(chunk, event);
                self.last = event.id;
            }
        }
    }

    /// The last words of a stream: why it ends, and where to resume.
    fn end(mut self, why: &str) -> (Result<Bytes, std::io::Error>, Self) {
        self.phase = Phase::Ended;
        let text = format!(": {why}; resume with Last-Event-ID {}\n\n", self.last);
        (Ok(Bytes::from(text)), self)
    }
}
