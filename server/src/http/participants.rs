//! Tokens, participants, deposits and the caller's own account.

use actix_web::{HttpResponse, web};
use suanli_sdk::{
    Account, CreatedParticipant, Deposit, ErrorBody, NewDeposit, NewParticipant, Participant, ParticipantKind,
    TokenRequest, TokenResponse,
};
use uuid::Uuid;

use super::{AppState, ok};
use crate::access::{Action, authorize};
use crate::auth::{self, Caller};
use crate::db::{ledger, participants};
use crate::error::ApiError;
use crate::validate;

pub fn configure(config: &mut web::ServiceConfig) {
    config
        .route("/v1/auth/token", web::post().to(issue_token))
        .route("/v1/participants", web::post().to(create_participant))
        .route("/v1/participants/me", web::get().to(me))
        .route("/v1/participants/{id}/deposits", web::post().to(deposit))
        .route("/v1/accounts/me", web::get().to(account));
}

/// Longest API key accepted; anything longer is not a key and is refused before hashing.
const API_KEY_LENGTH_MAX: usize = 256;

/// Exchanges an API key for a bearer token.
#[utoipa::path(post, path = "/v1/auth/token", tag = "auth", request_body = TokenRequest,
    responses((status = 200, body = TokenResponse), (status = 401, body = ErrorBody)))]
pub async fn issue_token(
    state: web::Data<AppState>,
    body: web::Json<TokenRequest>,
) -> Result<HttpResponse, ApiError> {
    let refused = || ApiError::unauthorized("invalid_api_key", "the API key is not valid");
    let key = body.into_inner().api_key;
    if key.is_empty() || key.len() > API_KEY_LENGTH_MAX {
        return Err(refused());
    }
    let lookup_id = auth::api_key_lookup_id(&key).to_owned();
    let participant = state
        .db(move |connection| Ok(participants::by_api_key_id(connection, &lookup_id)?))
        .await?
        .ok_or_else(refused)?;
    let hash = participant.api_key_hash.clone();
    let matches = state.blocking(move || Ok(auth::api_key_matches(&key, &hash))).await?;
    if !matches {
        return Err(refused());
    }
    let wire = participant.to_wire();
    let token = state.tokens.issue(wire.id, wire.kind, wire.hub)?;
    Ok(ok(&TokenResponse {
        access_token: token,
        token_type: "Bearer".into(),
        expires_in: state.tokens.ttl_seconds(),
    }))
}

/// Creates a participant and shows its API key, once (admins only).
#[utoipa::path(post, path = "/v1/participants", tag = "participants", request_body = NewParticipant,
    security(("bearer" = [])),
    responses((status = 201, body = CreatedParticipant), (status = 400, body = ErrorBody),
              (status = 403, body = ErrorBody)))]
pub async fn create_participant(
    state: web::Data<AppState>,
    caller: Caller,
    body: web::Json<NewParticipant>,
) -> Result<HttpResponse, ApiError> {
    authorize(&caller, Action::CreateParticipant)?;
    let new = body.into_inner();
    validate::text("name", &new.name, 200)?;
    match (new.kind, new.provider_type, new.hub.as_deref()) {
        (ParticipantKind::Provider, Some(_), None) => {}
        (ParticipantKind::Provider, None, _) => {
            return Err(ApiError::bad_request("invalid_field", "a provider needs a `provider_type`"));
        }
        (ParticipantKind::HubOperator, None, Some(hub)) => {
            if state.reference.hub(hub).is_none() {
                return Err(ApiError::bad_request("unknown_hub", format!("no hub `{hub}`")));
            }
        }
        (ParticipantKind::HubOperator, _, None) => {
            return Err(ApiError::bad_request("invalid_field", "a hub operator needs a `hub`"));
        }
        (_, Some(_), _) => {
            return Err(ApiError::bad_request("invalid_field", "only providers have a `provider_type`"));
        }
        (_, None, Some(_)) => {
            return Err(ApiError::bad_request("invalid_field", "only hub operators are bound to a `hub`"));
        }
        (_, None, None) => {}
    }
    let key = state.blocking(auth::new_api_key).await?;
    let actor = caller.actor();
    let api_key = key.key.clone();
    let row = state
        .db(move |connection| {
            let new_row = participants::NewParticipantRow {
                name: &new.name,
                kind: new.kind,
                provider_type: new.provider_type,
                hub: new.hub.as_deref(),
                api_key_id: &key.key_id,
                api_key_hash: &key.hash,
            };
            Ok(participants::create(connection, &actor, &new_row)?)
        })
        .await?;
    state.metrics.events.with_label_values(&["participant_created"]).inc();
    Ok(HttpResponse::Created().json(CreatedParticipant { participant: row.to_wire(), api_key }))
}

/// The participant the token speaks for.
#[utoipa::path(get, path = "/v1/participants/me", tag = "participants", security(("bearer" = [])),
    responses((status = 200, body = Participant), (status = 401, body = ErrorBody)))]
pub async fn me(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    let id = caller.id;
    let row = state
        .db(move |connection| Ok(participants::get(connection, id)?))
        .await?
        .ok_or_else(|| ApiError::not_found("the token's participant does not exist"))?;
    Ok(ok(&row.to_wire()))
}

/// Credits a buyer's available balance (admins only). Idempotent on `idempotency_key`.
#[utoipa::path(post, path = "/v1/participants/{id}/deposits", tag = "participants",
    params(("id" = Uuid, Path, description = "the buyer")), request_body = NewDeposit,
    security(("bearer" = [])),
    responses((status = 201, body = Deposit), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn deposit(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
    body: web::Json<NewDeposit>,
) -> Result<HttpResponse, ApiError> {
    authorize(&caller, Action::Deposit)?;
    let participant = path.into_inner();
    let mut new = body.into_inner();
    new.amount = validate::positive_cny("amount", new.amount, validate::DEPOSIT_AMOUNT_CNY_MAX)?;
    validate::text("reference", &new.reference, 200)?;
    validate::text("idempotency_key", &new.idempotency_key, 200)?;
    let admin = caller.id;
    let deposit = state
        .db(move |connection| match ledger::deposit(connection, admin, participant, &new) {
            // Two identical requests raced on the key: the loser now finds the winner's deposit.
            Err(error) if error.code == "idempotency_conflict" && error.message.contains("concurrently") => {
                ledger::deposit(connection, admin, participant, &new)
            }
            other => other,
        })
        .await?;
    state.metrics.events.with_label_values(&["deposit"]).inc();
    Ok(HttpResponse::Created().json(deposit))
}

/// The caller's money. Buyers see available and held; a provider's `available` is what it has
/// been paid; a hub operator's is its hub's levies.
#[utoipa::path(get, path = "/v1/accounts/me", tag = "participants", security(("bearer" = [])),
    responses((status = 200, body = Account), (status = 403, body = ErrorBody)))]
pub async fn account(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    authorize(&caller, Action::ReadOwnAccount)?;
    let (available, held) = state
        .db(move |connection| {
            Ok(match (caller.role, caller.hub.as_deref()) {
                (ParticipantKind::Buyer, _) => (
                    ledger::participant_balance(connection, caller.id, ledger::kind::BUYER_AVAILABLE)?,
                    ledger::participant_balance(connection, caller.id, ledger::kind::BUYER_HELD)?,
                ),
                (ParticipantKind::HubOperator, Some(hub)) => {
                    (ledger::hub_levy_balance(connection, hub)?, Default::default())
                }
                _ => (
                    ledger::participant_balance(connection, caller.id, ledger::kind::PROVIDER)?,
                    Default::default(),
                ),
            })
        })
        .await?;
    Ok(ok(&Account { available, held, currency: "CNY".into() }))
}
