//! The [`Caller`] extractor: the bearer token, verified, and then checked against the participant
//! as stored (it exists, and has the role and hub the token names), so that a validly signed
//! token can never act for a participant that does not exist or in a role it does not have.

use std::future::Future;
use std::pin::Pin;

use actix_web::{FromRequest, HttpRequest, dev::Payload, web};
use suanli_sdk::ParticipantKind;

use super::AppState;
use crate::auth::{Caller, Identity};
use crate::db::participants;
use crate::error::ApiError;

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = request.app_data::<web::Data<AppState>>().cloned();
        let verified = bearer_token(request).and_then(|token| match &state {
            Some(state) => state.tokens.verify(token),
            None => Err(ApiError::internal("application state missing")),
        });
        Box::pin(async move {
            let verified = verified?;
            let state = state.ok_or_else(|| ApiError::internal("application state missing"))?;
            let identity = match state.identities.get(verified.caller.id) {
                Some(identity) => identity,
                None => {
                    let id = verified.caller.id;
                    let generation = state.identities.generation();
                    let row = state
                        .db(move |connection| Ok(participants::get(connection, id)?))
                        .await?;
                    let row = row.ok_or_else(|| {
                        ApiError::unauthorized(
                            "unknown_participant",
                            "the token names no participant of this exchange",
                        )
                    })?;
                    let kind = ParticipantKind::parse(&row.kind).ok_or_else(|| {
                        ApiError::internal(format!("participant {id} has kind {}", row.kind))
                    })?;
                    let identity = Identity {
                        kind,
                        hub: row.hub,
                        suspended: row.suspended_at.is_some(),
                        key_epoch: row.key_epoch,
                        credentials_changed_at: row.credentials_changed_at.timestamp(),
                    };
                    state.identities.put(id, identity.clone(), generation);
                    identity
                }
            };
            identity.admits(&verified)?;
            Ok(verified.caller)
        })
    }
}

fn bearer_token(request: &HttpRequest) -> Result<&str, ApiError> {
    let header = request
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .ok_or_else(|| {
            ApiError::unauthorized(
                "missing_token",
                "send an `Authorization: Bearer <token>` header",
            )
        })?;
    header
        .to_str()
        .ok()
        .and_then(|value| {
            // The scheme's name is case-insensitive (RFC 9110 §11.1).
            let (scheme, token) = value.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then_some(token)
        })
        .map(str::trim)
        .ok_or_else(|| {
            ApiError::unauthorized(
                "invalid_token",
                "the Authorization header is not `Bearer <token>`",
            )
        })
}
