//! Tokens, participants, deposits and the caller's own account.

use actix_web::middleware::from_fn;
use actix_web::{HttpRequest, HttpResponse, web};
use suanli_sdk::{
    Account, CreatedParticipant, Deposit, ErrorBody, NewDeposit, NewParticipant, Participant,
    ParticipantKind, Suspension, TokenRequest, TokenResponse,
};
use uuid::Uuid;

use super::forward::to_leader;
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
        .route("/v1/participants/me/keys", web::post().to(rotate_key))
        .route(
            "/v1/participants/{id}/suspend",
            web::post().to(suspend).wrap(from_fn(to_leader)),
        )
        .route("/v1/participants/{id}/reinstate", web::post().to(reinstate))
        .route("/v1/participants/{id}/deposits", web::post().to(deposit))
        .route("/v1/accounts/me", web::get().to(account));
}

/// Longest API key accepted; anything longer is not a key and is refused before hashing.
const API_KEY_LENGTH_MAX: usize = 256;

/// Exchanges an API key for a bearer token. A key whose id is unknown costs no Argon2 work; key
/// checks run a few at a time (beyond the queue: 503 `login_busy`); a client address or key id
/// that failed too often lately gets 429 `too_many_failures`; a suspended participant's key is
/// refused with 401 `participant_suspended`.
#[utoipa::path(post, path = "/v1/auth/token", tag = "auth", request_body = TokenRequest,
    responses((status = 200, body = TokenResponse), (status = 401, body = ErrorBody), (status = 429, body = ErrorBody),
              (status = 503, body = ErrorBody)))]
pub async fn issue_token(
    state: web::Data<AppState>,
    request: HttpRequest,
    body: web::Json<TokenRequest>,
) -> Result<HttpResponse, ApiError> {
    let refused = || ApiError::unauthorized("invalid_api_key", "the API key is not valid");
    let key = body.into_inner().api_key;
    if key.is_empty() || key.len() > API_KEY_LENGTH_MAX {
        return Err(refused());
    }
    let lookup_id = auth::api_key_lookup_id(&key).to_owned();
    let address = request
        .peer_addr()
        .map_or_else(|| "unknown".to_owned(), |address| address.ip().to_string());
    let subjects = [format!("address:{address}"), format!("key:{lookup_id}")];
    state.logins.check(&subjects)?;
    // A key that names no real key id counts against its address only: garbage must not lock a
    // real key (the admin's above all) out.
    let fail = |state: &AppState, key_is_real: bool| {
        state.logins.failed(if key_is_real {
            &subjects[..]
        } else {
            &subjects[..1]
        });
        refused()
    };
    if lookup_id == participants::BOOTSTRAP_ADMIN_KEY_ID && !state.logins.may_be_bootstrap_key(&key)
    {
        return Err(fail(&state, false));
    }
    let owned_id = lookup_id.clone();
    let Some(participant) = state
        .db(move |connection| Ok(participants::by_api_key_id(connection, &owned_id)?))
        .await?
    else {
        return Err(fail(&state, false));
    };
    let hash = participant.api_key_hash.clone();
    let matches = state
        .logins
        .hashing(subjects[1].clone(), move || {
            auth::api_key_matches(&key, &hash)
        })
        .await?;
    if !matches {
        return Err(fail(&state, true));
    }
    if participant.suspended_at.is_some() {
        return Err(ApiError::unauthorized(
            "participant_suspended",
            "this participant is suspended",
        ));
    }
    let wire = participant.to_wire();
    let token = state
        .tokens
        .issue(wire.id, wire.kind, wire.hub, participant.key_epoch)?;
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
    if new.kind == ParticipantKind::Admin {
        return Err(ApiError::bad_request(
            "invalid_field",
            "admins are not created here: the exchange's admin comes from SUANLI_ADMIN_API_KEY",
        ));
    }
    match (new.kind, new.provider_type, new.hub.as_deref()) {
        (ParticipantKind::Provider, Some(_), None) => {}
        (ParticipantKind::Provider, None, _) => {
            return Err(ApiError::bad_request(
                "invalid_field",
                "a provider needs a `provider_type`",
            ));
        }
        (ParticipantKind::HubOperator, None, Some(hub)) => {
            if state.reference.hub(hub).is_none() {
                return Err(ApiError::bad_request(
                    "unknown_hub",
                    format!("no hub `{hub}`"),
                ));
            }
        }
        (ParticipantKind::HubOperator, _, None) => {
            return Err(ApiError::bad_request(
                "invalid_field",
                "a hub operator needs a `hub`",
            ));
        }
        (_, Some(_), _) => {
            return Err(ApiError::bad_request(
                "invalid_field",
                "only providers have a `provider_type`",
            ));
        }
        (_, None, Some(_)) => {
            return Err(ApiError::bad_request(
                "invalid_field",
                "only hub operators are bound to a `hub`",
            ));
        }
        (_, None, None) => {}
    }
    // The admin is trusted with the queue: each creation holds its own place.
    let key = state
        .logins
        .hashing(format!("creation:{}", Uuid::new_v4()), auth::new_api_key)
        .await??;
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
    state
        .metrics
        .events
        .with_label_values(&["participant_created"])
        .inc();
    Ok(HttpResponse::Created().json(CreatedParticipant {
        participant: row.to_wire(),
        api_key,
    }))
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

/// A new API key for the caller, shown once: the old key and every token issued before stop
/// working at once.
#[utoipa::path(post, path = "/v1/participants/me/keys", tag = "participants", security(("bearer" = [])),
    responses((status = 201, body = CreatedParticipant), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn rotate_key(
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    authorize(&caller, Action::RotateOwnKey)?;
    let key = state
        .logins
        .hashing(format!("participant:{}", caller.id), auth::new_api_key)
        .await??;
    let (id, actor, api_key) = (caller.id, caller.actor(), key.key.clone());
    let row = state
        .db(move |connection| {
            participants::rotate_key(connection, &actor, id, &key.key_id, &key.hash)?;
            participants::get(connection, id)?
                .ok_or_else(|| ApiError::not_found("no such participant"))
        })
        .await?;
    state.identities.forget(id);
    state
        .metrics
        .events
        .with_label_values(&["api_key_rotated"])
        .inc();
    Ok(HttpResponse::Created().json(CreatedParticipant {
        participant: row.to_wire(),
        api_key,
    }))
}

/// Suspends a participant (admins only): its tokens and key are refused with 401
/// `participant_suspended` from then on, and its resting orders are cancelled (holds released).
#[utoipa::path(post, path = "/v1/participants/{id}/suspend", tag = "participants", params(("id" = Uuid, Path)),
    request_body = Suspension, security(("bearer" = [])),
    responses((status = 200, body = Participant), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody)))]
pub async fn suspend(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
    body: web::Json<Suspension>,
) -> Result<HttpResponse, ApiError> {
    authorize(&caller, Action::ManageParticipants)?;
    let id = path.into_inner();
    let reason = body.into_inner().reason;
    validate::text("reason", &reason, 500)?;
    let row = load_participant(&state, id).await?;
    if row.kind == ParticipantKind::Admin.as_str() {
        return Err(ApiError::unprocessable(
            "admin_not_suspendable",
            "the admin's standing comes from configuration",
        ));
    }
    if row.suspended_at.is_some() {
        return Err(ApiError::conflict(
            "already_suspended",
            "the participant is suspended already",
        ));
    }
    state.exchange.suspend(id, reason, caller.actor()).await?;
    state.identities.forget(id);
    state
        .metrics
        .events
        .with_label_values(&["participant_suspended"])
        .inc();
    Ok(ok(&load_participant(&state, id).await?.to_wire()))
}

/// Lifts a suspension (admins only).
#[utoipa::path(post, path = "/v1/participants/{id}/reinstate", tag = "participants", params(("id" = Uuid, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = Participant), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody)))]
pub async fn reinstate(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    authorize(&caller, Action::ManageParticipants)?;
    let id = path.into_inner();
    load_participant(&state, id).await?;
    let actor = caller.actor();
    let reinstated = state
        .db(move |connection| Ok(participants::reinstate(connection, &actor, id)?))
        .await?;
    if !reinstated {
        return Err(ApiError::conflict(
            "not_suspended",
            "the participant is not suspended",
        ));
    }
    state.identities.forget(id);
    state
        .metrics
        .events
        .with_label_values(&["participant_reinstated"])
        .inc();
    Ok(ok(&load_participant(&state, id).await?.to_wire()))
}

async fn load_participant(
    state: &AppState,
    id: Uuid,
) -> Result<participants::ParticipantRow, ApiError> {
    state
        .db(move |connection| {
            participants::get(connection, id)?
                .ok_or_else(|| ApiError::not_found("no such participant"))
        })
        .await
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
        .db(move |connection| Ok(ledger::deposit(connection, admin, participant, &new)?))
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
            let own =
                ledger::own_accounts(connection, caller.role, caller.id, caller.hub.as_deref())?
                    .ok_or_else(|| {
                        ApiError::forbidden("forbidden", "this participant holds no account")
                    })?;
            Ok(ledger::balances_of(connection, &own)?)
        })
        .await?;
    Ok(ok(&Account {
        available,
        held,
        currency: "CNY".into(),
    }))
}
