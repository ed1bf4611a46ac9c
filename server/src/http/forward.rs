//! Order commands on a follower (README "Several nodes"): every route that goes through
//! the sequenced writer is wrapped in [`to_leader`], which lets the request through on the leader
//! and hands it, as it came (method, path, query, headers, body), to the leader's advertised
//! address on a follower, answering with the leader's answer unchanged. The leader authenticates
//! and authorizes it, exactly as if the client had called it.
//!
//! Failure modes, all answered 503 `writer_unavailable` with `Retry-After` (the client retries
//! with the same idempotency key, which never makes a duplicate; a policy activation has none,
//! and activating again is harmless):
//! - nobody holds the lease for a moment (a takeover under way);
//! - the leader does not answer within `SUANLI_FORWARD_TIMEOUT_MS` (dead, or paused) — the
//!   command may still have been applied, which the retry finds;
//! - the request was forwarded already (a node never forwards twice: two nodes that both believe
//!   the other leads cannot bounce a request between them).

use std::time::Duration;

use actix_web::body::BoxBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpResponse, web};
use futures_util::StreamExt;

use super::AppState;
use crate::error::ApiError;
use crate::exchange::Route;

/// Marks a forwarded request, with the forwarding node's name.
const FORWARDED_BY: &str = "x-suanli-forwarded-by";

/// Headers that belong to one connection, never passed on (RFC 9110 §7.6.1), and those the
/// forwarding client sets itself.
const NOT_PASSED_ON: [&str; 11] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
    // Answers come back uncompressed, and are compressed again (or not) for the client here.
    "accept-encoding",
];

/// The header names a `Connection` header lists (RFC 9110 §7.6.1: they belong to that one
/// connection), lowercased.
fn named_in_connection<'a>(values: impl Iterator<Item = &'a str>) -> Vec<String> {
    values
        .flat_map(|value| value.split(','))
        .map(|name| name.trim().to_ascii_lowercase())
        .filter(|name| !name.is_empty())
        .collect()
}

/// The HTTP client followers forward with.
pub struct Forwarder {
    client: reqwest::Client,
    /// The largest body passed on; a larger one is refused here as the leader would refuse it.
    body_bytes_max: usize,
}

impl Forwarder {
    /// A client that waits at most `timeout` for the leader's answer.
    pub fn new(timeout: Duration, body_bytes_max: usize) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(1).min(timeout))
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Forwarder {
            client,
            body_bytes_max,
        })
    }
}

/// Lets the request through on the leader; on a follower, answers with the leader's answer.
pub async fn to_leader(
    mut request: ServiceRequest,
    next: Next<BoxBody>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let Some(state) = request.app_data::<web::Data<AppState>>().cloned() else {
        return next
            .call(request)
            .await
            .map(ServiceResponse::map_into_boxed_body);
    };
    let address = match state.exchange.route() {
        Route::Here => {
            return next
                .call(request)
                .await
                .map(ServiceResponse::map_into_boxed_body);
        }
        Route::Leader(address) if !request.headers().contains_key(FORWARDED_BY) => address,
        Route::Leader(_) | Route::Nobody => {
            return Ok(request.error_response(ApiError::busy(
                "writer_unavailable",
                "no node applies orders at this moment (a takeover is under way); retry with the \
                 same idempotency key",
                1,
            )));
        }
    };
    let body = match read_body(&mut request, state.forwarder.body_bytes_max).await {
        Ok(body) => body,
        Err(error) => return Ok(request.error_response(error)),
    };
    let answer = forward(&state, &request, &address, body).await;
    let label = if answer.is_ok() {
        "forwarded"
    } else {
        "forward_failed"
    };
    state.metrics.events.with_label_values(&[label]).inc();
    Ok(match answer {
        Ok(response) => request.into_response(response),
        Err(error) => request.error_response(error),
    })
}

/// The request's body, refused beyond `bytes_max` (413, as the leader would).
async fn read_body(request: &mut ServiceRequest, bytes_max: usize) -> Result<Vec<u8>, ApiError> {
    let mut payload = request.take_payload();
    let mut body = Vec::new();
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|error| ApiError::bad_request("invalid_body", error.to_string()))?;
        if body.len() + chunk.len() > bytes_max {
            return Err(ApiError::too_large(
                "body_too_large",
                format!("the body is larger than {bytes_max} bytes"),
            ));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Sends the request to the leader at `address` and turns its answer into ours.
async fn forward(
    state: &AppState,
    request: &ServiceRequest,
    address: &str,
    body: Vec<u8>,
) -> Result<HttpResponse, ApiError> {
    let unanswered = |why: String| {
        ApiError::busy(
            "writer_unavailable",
            format!(
                "the node that applies orders did not answer ({why}); retry with the same \
                 idempotency key"
            ),
            1,
        )
    };
    let path = request
        .uri()
        .path_and_query()
        .map_or_else(|| request.path(), |path| path.as_str());
    let method = reqwest::Method::from_bytes(request.method().as_str().as_bytes())
        .map_err(|error| ApiError::bad_request("invalid_method", error.to_string()))?;
    let mut outgoing = state
        .forwarder
        .client
        .request(method, format!("{address}{path}"))
        .header(FORWARDED_BY, state.node.as_str())
        .body(body);
    let connection_scoped = named_in_connection(
        request
            .headers()
            .get_all("connection")
            .filter_map(|value| value.to_str().ok()),
    );
    for (name, value) in request.headers() {
        let name = name.as_str();
        if !NOT_PASSED_ON.contains(&name)
            && name != FORWARDED_BY
            && !connection_scoped.iter().any(|scoped| scoped == name)
        {
            outgoing = outgoing.header(name, value.as_bytes());
        }
    }
    let answer = outgoing
        .send()
        .await
        .map_err(|error| unanswered(error.to_string()))?;
    let status = StatusCode::from_u16(answer.status().as_u16())
        .map_err(|error| unanswered(error.to_string()))?;
    let mut response = HttpResponse::build(status);
    let connection_scoped = named_in_connection(
        answer
            .headers()
            .get_all("connection")
            .iter()
            .filter_map(|value| value.to_str().ok()),
    );
    for (name, value) in answer.headers() {
        if NOT_PASSED_ON.contains(&name.as_str())
            || connection_scoped
                .iter()
                .any(|scoped| scoped == name.as_str())
        {
            continue;
        }
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_str().as_bytes()),
            HeaderValue::from_bytes(value.as_bytes()),
        ) {
            response.append_header((name, value));
        }
    }
    let body = answer
        .bytes()
        .await
        .map_err(|error| unanswered(error.to_string()))?;
    Ok(response.body(body.to_vec()))
}
