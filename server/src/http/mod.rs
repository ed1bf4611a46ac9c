//! The HTTP layer: the only code that knows actix-web. Each submodule is one resource with a
//! `configure` function; handlers decode and authorize, call the store, and answer with sdk types.

pub mod audit;
mod caller;
mod console;
mod forward;
pub mod hubs;
pub mod market;
pub mod money;
pub mod openapi;
pub mod orders;
pub mod participants;
pub mod policies;
pub mod proofs;
pub mod public;
pub mod replica;

use std::net::TcpListener;
use std::time::Instant;

use actix_web::dev::{Server, Service};
use actix_web::http::StatusCode;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, ResponseError, error, web};
use futures_util::FutureExt;

use crate::auth::{IdentityCache, LoginGuard, TokenKeys};
use crate::db::DbPool;
use crate::db::reference::Reference;
use crate::error::ApiError;
use crate::exchange::Exchange;
use crate::telemetry::Metrics;

pub use forward::Forwarder;

/// What every request handler shares.
pub struct AppState {
    pub pool: DbPool,
    /// The sequenced writer that owns the order book.
    pub exchange: Exchange,
    pub tokens: TokenKeys,
    /// This node's name, as `/readyz` reports it.
    pub node: String,
    /// Hands order commands to the leader while this node follows.
    pub forwarder: Forwarder,
    /// The streaming replica for reads that may be a few seconds old, when configured.
    pub replica: Option<std::sync::Arc<replica::Replica>>,
    /// Participants' stored roles, read at most once a second per participant.
    pub identities: IdentityCache,
    /// Bounds on API-key checks and failed logins.
    pub logins: LoginGuard,
    /// The exports' own connections and slots.
    pub exports: Exports,
    /// The market stream's own connections for replays (so that subscribers resuming at once
    /// cannot take the connections every other request needs).
    pub stream_replays: DbPool,
    /// Places for reads of the public book (an aggregate over every resting order): anyone may
    /// ask, so at most [`BOOK_READS_MAX`] hold pooled connections at once.
    pub book_reads: std::sync::Arc<tokio::sync::Semaphore>,
    /// What one hub may store of policies.
    pub policy_quota: PolicyQuota,
    pub reference: Reference,
    pub metrics: Metrics,
    /// The sandbox for uploads, dry runs and replays.
    pub policy_host: std::sync::Arc<crate::policy::PolicyHost>,
    /// Compiled policies by digest, shared with the writer (which only reads it).
    pub compiled_policies: std::sync::Arc<crate::policy::Registry>,
    /// Signs checkpoints of the audit log (tests run it directly).
    pub checkpointer: std::sync::Arc<crate::checkpoint::Checkpointer>,
    /// The checkpointer's schedule: every interval, and once more at shutdown.
    pub checkpoints: std::sync::Arc<crate::checkpoint::Schedule>,
}

/// Reads of the public book that may run at once; one more waits a moment for a place, then is
/// refused with 503 `book_busy`.
pub const BOOK_READS_MAX: usize = 4;

impl AppState {
    /// Runs `work` with a pooled connection on the blocking thread pool, off the async executor.
    pub async fn db<T, F>(&self, work: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&mut crate::db::Connection) -> Result<T, ApiError> + Send + 'static,
    {
        let pool = self.pool.clone();
        web::block(move || {
            let mut connection = pool.get()?;
            work(&mut connection)
        })
        .await?
    }

    /// [`AppState::db`] on the read replica while it is fresh (`http::replica`), else on the
    /// primary: for the regulators' statistics, the audit log, candles and the price index.
    pub async fn read_db<T, F>(&self, work: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&mut crate::db::Connection) -> Result<T, ApiError> + Send + 'static,
    {
        let pool =
            replica::pool_for_read(self.replica.as_deref(), &self.pool, false, &self.metrics);
        web::block(move || {
            let mut connection = pool.get()?;
            work(&mut connection)
        })
        .await?
    }

    /// What follows the HTTP server's stop, as `suanli-server serve` ends: the writer answers
    /// its queued commands and stops, the matching lease is given up (another node takes it at
    /// once instead of after the timeout), and a last checkpoint covers everything written
    /// (waited for at most ten seconds). Blocks until then; nothing of this node then talks to
    /// PostgreSQL on its own, so the process may exit.
    pub fn finish(&self) {
        self.exchange.resign();
        self.checkpoints.stop(std::time::Duration::from_secs(10));
    }

    /// Runs CPU-heavy `work` (password hashing) on the blocking thread pool.
    pub async fn blocking<T, F>(&self, work: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce() -> Result<T, ApiError> + Send + 'static,
    {
        web::block(work).await?
    }
}

/// Streamed exports run on their own few connections: `slots` of them at once, each abandoned
/// when its client leaves a chunk unread for `stall_max`.
pub struct Exports {
    pub pool: DbPool,
    pub slots: std::sync::Arc<tokio::sync::Semaphore>,
    pub stall_max: std::time::Duration,
}

impl Exports {
    /// One of the places for a long audit read (an export or a chain verification), or a 503
    /// with `code` at once when all are taken.
    pub fn place(&self, code: &'static str) -> Result<tokio::sync::OwnedSemaphorePermit, ApiError> {
        self.slots.clone().try_acquire_owned().map_err(|_| {
            ApiError::busy(
                code,
                "the exchange's long audit reads (exports, verifications) are all running; retry shortly",
                5,
            )
        })
    }
}

/// What one hub may store of policies: versions and bytes, all versions together.
pub struct PolicyQuota {
    pub uploads_per_hub_max: u64,
    pub hub_stored_bytes_max: u64,
}

/// Limits of the HTTP layer.
#[derive(Debug, Clone, Copy)]
pub struct HttpLimits {
    /// Largest JSON body, in bytes; larger ones get a 413.
    pub json_body_bytes_max: usize,
    pub workers: usize,
    /// How long a connection may take none of the bytes sent to it (its receive window closed)
    /// before the kernel closes it: what a client that stops reading holds, and for how long.
    pub send_stall: std::time::Duration,
}

impl HttpLimits {
    pub fn from_config(config: &crate::config::Config) -> Self {
        HttpLimits {
            json_body_bytes_max: config.http_json_body_bytes_max,
            workers: config.http_workers,
            send_stall: std::time::Duration::from_millis(config.http_send_stall_ms.max(1)),
        }
    }
}

/// Registers every route, the JSON error handlers and the fallback 404.
pub fn configure(limits: HttpLimits) -> impl Fn(&mut web::ServiceConfig) + Clone {
    move |config: &mut web::ServiceConfig| {
        config
            .app_data(
                web::JsonConfig::default()
                    .limit(limits.json_body_bytes_max)
                    .error_handler(json_error),
            )
            .app_data(web::QueryConfig::default().error_handler(query_error))
            .app_data(web::PathConfig::default().error_handler(path_error))
            .configure(console::configure)
            .configure(public::configure)
            .configure(participants::configure)
            .configure(orders::configure)
            .configure(policies::configure)
            .configure(audit::configure)
            .configure(proofs::configure)
            .configure(money::configure)
            .configure(hubs::configure)
            .configure(market::configure);
    }
}

/// Stops the server: ends the market stream's subscriptions first (they would never end by
/// themselves), then stops taking connections and, if `graceful`, waits for requests in flight.
pub async fn stop(state: &AppState, handle: &actix_web::dev::ServerHandle, graceful: bool) {
    state.exchange.feed().close();
    handle.stop(graceful).await;
}

/// Builds the server on an already bound listener (bind port 0 to let the OS pick). It does not
/// handle signals itself: whoever runs it calls [`stop`] (the command line does on SIGINT and
/// SIGTERM).
pub fn server(
    listener: TcpListener,
    state: web::Data<AppState>,
    limits: HttpLimits,
) -> std::io::Result<Server> {
    // Inherited by every accepted connection (TCP_USER_TIMEOUT also covers data held back by a
    // zero receive window).
    socket2::SockRef::from(&listener).set_tcp_user_timeout(Some(limits.send_stall))?;
    let routes = configure(limits);
    let server = HttpServer::new(move || {
        let metrics = state.metrics.clone();
        App::new()
            .app_data(state.clone())
            .configure(routes.clone())
            .default_service(web::to(not_found))
            .wrap_fn(|mut request, service| {
                if let Some(query) = without_empty_parameters(request.query_string()) {
                    let path = request.path().to_owned();
                    let target = if query.is_empty() {
                        path
                    } else {
                        format!("{path}?{query}")
                    };
                    if let Ok(uri) = target.parse() {
                        request.head_mut().uri = uri;
                    }
                }
                service.call(request)
            })
            .wrap_fn(move |request, service| {
                let started = Instant::now();
                let metrics = metrics.clone();
                service.call(request).map(move |result| {
                    if let Ok(response) = &result {
                        let request = response.request();
                        let route = request
                            .match_pattern()
                            .unwrap_or_else(|| "unmatched".to_owned());
                        let method = method_label(request.method());
                        let status = response.status().as_u16().to_string();
                        metrics
                            .http_requests
                            .with_label_values(&[method, &route, &status])
                            .inc();
                        metrics
                            .http_request_seconds
                            .with_label_values(&[method, &route])
                            .observe(started.elapsed().as_secs_f64());
                    }
                    result
                })
            })
    })
    .workers(limits.workers.max(1))
    .disable_signals()
    .listen(listener)?
    .run();
    Ok(server)
}

/// The method as a metrics label, from a fixed set: a client inventing methods must not invent
/// time series.
fn method_label(method: &actix_web::http::Method) -> &'static str {
    use actix_web::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// No route matched: 405 with the `Allow` header when the path is a route's under another method,
/// else 404.
pub(super) async fn not_found(request: HttpRequest) -> Result<HttpResponse, ApiError> {
    // The path as the router matched it (percent-escapes decoded), not as it was written.
    let allowed = methods_of(request.match_info().as_str());
    if !allowed.is_empty() {
        return Ok(HttpResponse::MethodNotAllowed()
            .insert_header((actix_web::http::header::ALLOW, allowed.join(", ")))
            .json(suanli_sdk::ErrorBody {
                code: "method_not_allowed".into(),
                message: format!(
                    "{} {} is not served; this path takes {}",
                    request.method(),
                    request.path(),
                    allowed.join(", ")
                ),
            }));
    }
    Err(ApiError::not_found(format!(
        "no route for {} {}",
        request.method(),
        request.path()
    )))
}

/// The methods the routes of `path` take (upper case), from the OpenAPI document, which names
/// every mounted route (the tidy test checks it); empty when no route has this path.
fn methods_of(path: &str) -> Vec<String> {
    static ROUTES: std::sync::OnceLock<Vec<(Vec<String>, Vec<String>)>> =
        std::sync::OnceLock::new();
    let routes = ROUTES.get_or_init(|| {
        let document = openapi::document();
        let Some(paths) = document["paths"].as_object() else {
            return Vec::new();
        };
        paths
            .iter()
            .map(|(template, item)| {
                let segments = template.split('/').map(str::to_owned).collect();
                let methods = item
                    .as_object()
                    .map(|operations| operations.keys().map(|m| m.to_uppercase()).collect())
                    .unwrap_or_default();
                (segments, methods)
            })
            .collect()
    });
    let segments: Vec<&str> = path.split('/').collect();
    let mut methods: Vec<String> = routes
        .iter()
        .filter(|(template, _)| {
            template.len() == segments.len()
                && template.iter().zip(&segments).all(|(part, given)| {
                    (part.starts_with('{') && part.ends_with('}') && !given.is_empty())
                        || part == given
                })
        })
        .flat_map(|(_, methods)| methods.iter().cloned())
        .collect();
    methods.sort_unstable();
    methods.dedup();
    methods
}

/// The query string without its parameters that have no value (`?sku=&hub=`, as API.md writes
/// the parameters a path takes): an empty parameter means the parameter is not given. `None` when
/// nothing is dropped.
fn without_empty_parameters(query: &str) -> Option<String> {
    if query.is_empty() {
        return None;
    }
    let kept: Vec<&str> = query
        .split('&')
        .filter(|part| {
            part.split_once('=')
                .is_some_and(|(_, value)| !value.is_empty())
        })
        .collect();
    let dropped = query.split('&').count() != kept.len();
    dropped.then(|| kept.join("&"))
}

fn json_error(error: error::JsonPayloadError, _: &HttpRequest) -> actix_web::Error {
    let api_error = match &error {
        error::JsonPayloadError::OverflowKnownLength { .. }
        | error::JsonPayloadError::Overflow { .. } => {
            ApiError::too_large("body_too_large", error.to_string())
        }
        error::JsonPayloadError::ContentType => ApiError::bad_request(
            "invalid_content_type",
            "send the body as `Content-Type: application/json`",
        ),
        error::JsonPayloadError::Deserialize(cause) => {
            ApiError::bad_request("invalid_body", cause.to_string())
        }
        _ => ApiError::bad_request("invalid_body", error.to_string()),
    };
    api_error.into()
}

fn query_error(error: error::QueryPayloadError, _: &HttpRequest) -> actix_web::Error {
    ApiError::bad_request("invalid_query", error.to_string()).into()
}

fn path_error(error: error::PathError, _: &HttpRequest) -> actix_web::Error {
    ApiError::bad_request("invalid_path", error.to_string()).into()
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.kind.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        if let Some(seconds) = self.retry_after_s {
            response.insert_header((actix_web::http::header::RETRY_AFTER, seconds.to_string()));
        }
        response.json(suanli_sdk::ErrorBody {
            code: self.code.to_owned(),
            message: self.message.clone(),
        })
    }
}

impl From<actix_web::error::BlockingError> for ApiError {
    fn from(error: actix_web::error::BlockingError) -> Self {
        ApiError::internal(format!("blocking pool: {error}"))
    }
}

/// A 200 answer with a JSON body.
pub fn ok<T: serde::Serialize>(body: &T) -> HttpResponse {
    HttpResponse::Ok().json(body)
}
