//! The regulator's view: the audit log and its verification, contracts with their settlements,
//! streamed exports, statistics.

use actix_web::web::Bytes;
use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use suanli_sdk::{
    AuditPage, AuditVerification, AuditedContract, ContractStatus, ErrorBody, Page, Stats,
};
use uuid::Uuid;

use super::orders::{cursor, known_codes, page};
use super::{AppState, ok};
use crate::access::{Action, authorize};
use crate::auth::Caller;
use crate::db::orders::ContractFilter;
use crate::db::{audit, invariants, regulator};
use crate::error::ApiError;
use crate::validate;

pub fn configure(config: &mut web::ServiceConfig) {
    config
        .route("/v1/audit/log", web::get().to(log))
        .route("/v1/audit/verify", web::get().to(verify))
        .route("/v1/audit/contracts", web::get().to(contracts))
        .route("/v1/audit/export", web::get().to(export))
        .route("/v1/audit/stats", web::get().to(stats));
}

/// Query of `GET /v1/audit/log`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LogQuery {
    /// Entries after this `seq` (0 for the start).
    pub after_seq: Option<i64>,
    /// At most this many, 1–500 (default 100).
    pub limit: Option<u32>,
}

/// Which contracts the regulator's listing, export and statistics cover: the same query
/// parameters on all three.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ContractSelection {
    /// Contracts made at or after this time.
    pub from: Option<DateTime<Utc>>,
    /// Contracts made before this time.
    pub to: Option<DateTime<Utc>>,
    pub hub: Option<String>,
    pub sku: Option<String>,
    /// Contracts where this participant is buyer or provider.
    pub participant: Option<Uuid>,
}

impl ContractSelection {
    /// The filter, once the hub and SKU codes are known (else 400 naming the closest) and the
    /// time range does not end before it starts.
    fn filter(self, state: &AppState) -> Result<ContractFilter, ApiError> {
        known_codes(state, self.hub.as_deref(), self.sku.as_deref())?;
        validate::time_range(self.from, self.to)?;
        Ok(ContractFilter {
            party: self.participant,
            hub: self.hub,
            sku: self.sku,
            from: self.from,
            to: self.to,
        })
    }
}

/// The page of `GET /v1/audit/contracts` (beside its [`ContractSelection`]).
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ContractsPage {
    pub cursor: Option<String>,
    pub limit: Option<u32>,
}

/// The format of `GET /v1/audit/export` (beside its [`ContractSelection`]).
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportFormatQuery {
    /// `csv` or `jsonl`.
    pub format: String,
}

/// Rows read per query while verifying the chain or exporting.
const BATCH_ROWS: i64 = 1000;
/// Export chunks in flight between the database reader and the client: bounds the memory an
/// export uses, however large.
const EXPORT_CHUNKS_IN_FLIGHT_MAX: usize = 4;

/// A page of the hash-chained audit log (regulators).
#[utoipa::path(get, path = "/v1/audit/log", tag = "audit", params(LogQuery), security(("bearer" = [])),
    responses((status = 200, body = AuditPage), (status = 403, body = ErrorBody)))]
pub async fn log(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<LogQuery>,
) -> Result<HttpResponse, ApiError> {
    authorize(&caller, Action::ReadAuditLog)?;
    let limit = validate::page_limit(query.limit, 100)?;
    let after_seq = query.after_seq.unwrap_or(0);
    if after_seq < 0 {
        return Err(ApiError::bad_request(
            "invalid_query",
            "`after_seq` must not be negative",
        ));
    }
    let items = state
        .read_db(move |connection| Ok(audit::page(connection, after_seq, i64::from(limit))?))
        .await?;
    let next_after_seq = if items.len() == limit as usize {
        items.last().map(|entry| entry.seq)
    } else {
        None
    };
    Ok(ok(&AuditPage {
        items,
        next_after_seq,
    }))
}

/// Recomputes the whole chain on the server, names the first bad entry, and checks the ledger and
/// book invariants (regulators).
#[utoipa::path(get, path = "/v1/audit/verify", tag = "audit", security(("bearer" = [])),
    responses((status = 200, body = AuditVerification), (status = 403, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn verify(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    authorize(&caller, Action::ReadAuditLog)?;
    // A verification reads the whole log and every table the invariants cover: like an export,
    // it runs on the exports' own few connections and takes one of their places, so that
    // regulators verifying at once never starve the rest of the API.
    let slot = state.exports.place("verify_busy")?;
    let pool = state.exports.pool.clone();
    let verdict = web::block(move || -> Result<_, ApiError> {
        let _slot = slot;
        let mut connection = pool.get()?;
        // One snapshot: batches committing during the walk are not half seen.
        Ok(crate::db::in_snapshot(&mut connection, |connection| {
            let mut verdict = audit::verify(connection, BATCH_ROWS)?;
            verdict.invariants = invariants::check_within(connection)?;
            verdict.ok &= verdict.invariants.iter().all(|check| check.ok);
            Ok::<_, crate::db::StoreError>(verdict)
        })?)
    })
    .await??;
    Ok(ok(&verdict))
}

/// Contracts with their settlements, newest first, by time, hub, SKU and participant.
#[utoipa::path(get, path = "/v1/audit/contracts", tag = "audit", params(ContractSelection, ContractsPage), security(("bearer" = [])),
    responses((status = 200, body = Page<AuditedContract>), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn contracts(
    state: web::Data<AppState>,
    caller: Caller,
    selection: web::Query<ContractSelection>,
    page_query: web::Query<ContractsPage>,
) -> Result<HttpResponse, ApiError> {
    authorize(&caller, Action::ReadAuditLog)?;
    let limit = validate::page_limit(page_query.limit, 100)?;
    let before = cursor(page_query.cursor.as_deref())?;
    let filter = selection.into_inner().filter(&state)?;
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
    Ok(page(rows, limit, |(seq, _)| *seq, |(_, contract)| contract))
}

/// Every contract (with its settlement) made in `[from, to)`, oldest first, streamed as CSV or
/// JSON Lines: the server never holds more than a few thousand rows at once.
#[utoipa::path(get, path = "/v1/audit/export", tag = "audit", params(ExportFormatQuery, ContractSelection), security(("bearer" = [])),
    responses((status = 200, description = "text/csv or application/x-ndjson"), (status = 400, body = ErrorBody)))]
pub async fn export(
    state: web::Data<AppState>,
    caller: Caller,
    format: web::Query<ExportFormatQuery>,
    selection: web::Query<ContractSelection>,
) -> Result<HttpResponse, ApiError> {
    authorize(&caller, Action::ReadAuditLog)?;
    let (csv, content_type) = match format.format.as_str() {
        "csv" => (true, "text/csv; charset=utf-8"),
        "jsonl" => (false, "application/x-ndjson"),
        _ => {
            return Err(ApiError::bad_request(
                "invalid_query",
                "`format` is `csv` or `jsonl`",
            ));
        }
    };
    let filter = selection.into_inner().filter(&state)?;
    // Exports run on their own few connections, so that long or stalled ones never starve the
    // rest of the API; one more than they allow is refused at once.
    let slot = state.exports.place("exports_busy")?;
    // Take the connection before answering, off the async executor, so an outage is a 503.
    let pool = super::replica::pool_for_read(
        state.replica.as_deref(),
        &state.exports.pool,
        true,
        &state.metrics,
    );
    let connection = web::block(move || pool.get()).await??;
    let stall_max = state.exports.stall_max;
    let (sender, receiver) =
        tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(EXPORT_CHUNKS_IN_FLIGHT_MAX);
    actix_web::rt::task::spawn_blocking(move || {
        export_rows(connection, filter, csv, &Chunks { sender, stall_max });
        drop(slot);
    });
    let body = futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|chunk| (chunk, receiver))
    });
    Ok(HttpResponse::Ok()
        .content_type(content_type)
        .streaming(body))
}

/// Where an export's chunks go: to a client that must keep reading.
struct Chunks {
    sender: tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
    /// How long the client may leave a chunk unread before the export is abandoned.
    stall_max: std::time::Duration,
}

impl Chunks {
    /// Hands a chunk on; false if the client went away or stopped reading for too long.
    fn send(&self, chunk: Result<Bytes, std::io::Error>) -> bool {
        use tokio::sync::mpsc::error::TrySendError;
        let started = std::time::Instant::now();
        let mut chunk = chunk;
        loop {
            match self.sender.try_send(chunk) {
                Ok(()) => return true,
                Err(TrySendError::Closed(_)) => return false,
                Err(TrySendError::Full(back)) => {
                    if started.elapsed() >= self.stall_max {
                        tracing::warn!(
                            stall_ms = self.stall_max.as_millis() as u64,
                            "an export's client stopped reading; export abandoned"
                        );
                        return false;
                    }
                    chunk = back;
                    // The reader is a client over the network: look again shortly.
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
            }
        }
    }
}

fn export_rows(
    mut connection: crate::db::PooledConnection,
    filter: ContractFilter,
    csv: bool,
    chunks: &Chunks,
) {
    if csv && !chunks.send(Ok(Bytes::from(format!("{CSV_HEADER}\r\n")))) {
        return;
    }
    let result = regulator::for_each_batch(&mut connection, &filter, BATCH_ROWS, |rows| {
        let mut chunk = String::new();
        for (_, contract) in rows {
            if csv {
                csv_row(contract, &mut chunk);
            } else {
                chunk.push_str(&serde_json::to_string(contract).unwrap_or_default());
                chunk.push('\n');
            }
        }
        // A failed send means the client went away or stopped reading: stop reading too.
        chunks.send(Ok(Bytes::from(chunk)))
    });
    if let Err(error) = result {
        tracing::error!(%error, "export failed");
        chunks.send(Err(std::io::Error::other("export failed")));
    }
}

const CSV_HEADER: &str = "contract_id,created_at,bid_id,offer_id,buyer_id,provider_id,hub,cluster,sku,data_origin,\
units,window_start,window_end,hours,unit_price,notional,levy_bps,maker,status,delivered_unit_hours,charged,refunded,\
provider_paid,exchange_fee,hub_levy,settled_at";

fn csv_row(audited: &AuditedContract, out: &mut String) {
    let c = &audited.contract;
    let s = audited.settlement.as_ref();
    let fields: [String; 26] = [
        c.id.to_string(),
        c.created_at.to_rfc3339(),
        c.bid_id.to_string(),
        c.offer_id.to_string(),
        c.buyer_id.to_string(),
        c.provider_id.to_string(),
        c.hub.clone(),
        c.cluster.clone(),
        c.sku.clone(),
        audited.data_origin.clone().unwrap_or_default(),
        c.units.to_string(),
        c.window.start.to_rfc3339(),
        c.window.end.to_rfc3339(),
        c.hours.to_string(),
        c.unit_price.to_string(),
        c.notional.to_string(),
        c.levy_bps.to_string(),
        c.maker.as_str().to_owned(),
        if s.is_some() {
            ContractStatus::Settled
        } else {
            ContractStatus::Active
        }
        .as_str()
        .to_owned(),
        s.map(|s| s.delivered_unit_hours.to_string())
            .unwrap_or_default(),
        s.map(|s| s.charged.to_string()).unwrap_or_default(),
        s.map(|s| s.refunded.to_string()).unwrap_or_default(),
        s.map(|s| s.provider_paid.to_string()).unwrap_or_default(),
        s.map(|s| s.exchange_fee.to_string()).unwrap_or_default(),
        s.map(|s| s.hub_levy.to_string()).unwrap_or_default(),
        s.map(|s| s.settled_at.to_rfc3339()).unwrap_or_default(),
    ];
    for (index, field) in fields.iter().enumerate() {
        if index > 0 {
            out.push(',');
        }
        csv_field(field, out);
    }
    out.push_str("\r\n");
}

/// RFC 4180: a field with a comma, quote or line break is quoted, its quotes doubled.
fn csv_field(field: &str, out: &mut String) {
    if field.contains([',', '"', '\r', '\n']) {
        out.push('"');
        out.push_str(&field.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(field);
    }
}

/// Volume and value by hub, SKU and class, east→west flows, green share of delivered compute.
#[utoipa::path(get, path = "/v1/audit/stats", tag = "audit", params(ContractSelection), security(("bearer" = [])),
    responses((status = 200, body = Stats), (status = 403, body = ErrorBody)))]
pub async fn stats(
    state: web::Data<AppState>,
    caller: Caller,
    selection: web::Query<ContractSelection>,
) -> Result<HttpResponse, ApiError> {
    authorize(&caller, Action::ReadAuditLog)?;
    let filter = selection.into_inner().filter(&state)?;
    let stats = state
        .read_db(move |connection| Ok(regulator::stats(connection, &filter)?))
        .await?;
    Ok(ok(&stats))
}

#[cfg(test)]
mod tests {
    use super::csv_field;

    #[test]
    fn csv_fields_are_quoted_when_they_must_be() {
        for (field, expected) in [
            ("plain", "plain"),
            ("a,b", "\"a,b\""),
            ("say \"hi\"", "\"say \"\"hi\"\"\""),
            ("two\nlines", "\"two\nlines\""),
        ] {
            let mut out = String::new();
            csv_field(field, &mut out);
            assert_eq!(out, expected);
        }
    }
}
