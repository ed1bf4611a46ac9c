//! Authentication: API keys (random, shown once, stored as Argon2 hashes) and JWT bearer tokens
//! (HS256 issued here; RS256/EdDSA from a configured public key accepted too). A token's claims
//! are only half the proof: [`Identity::admits`] checks them against the participant as stored
//! (it exists and has the role and hub the token names), through an [`IdentityCache`] that keeps
//! an answer for at most [`IDENTITY_CACHE_TTL`]. The HTTP layer turns all of it into the
//! [`Caller`] every protected handler takes; what a caller may do is decided in [`crate::access`].

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::Rng;
use serde::{Deserialize, Serialize};
use suanli_sdk::ParticipantKind;
use uuid::Uuid;

use crate::error::ApiError;

/// The claims of every token the exchange issues or accepts.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// The participant id.
    pub sub: Uuid,
    /// The participant's kind.
    pub role: String,
    /// The hub a hub operator is bound to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hub: Option<String>,
    pub iat: i64,
    pub exp: i64,
    pub jti: Uuid,
}

/// The keys tokens are signed and checked with.
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    /// An external issuer's public key and the algorithm it signs with.
    external: Option<(DecodingKey, Algorithm)>,
    ttl_seconds: u64,
}

impl TokenKeys {
    /// Keys from the HS256 `secret` and an optional PEM public key (RS256 or EdDSA).
    pub fn new(secret: &[u8], public_key_pem: Option<&str>, ttl_seconds: u64) -> anyhow::Result<Self> {
        let external = match public_key_pem {
            None => None,
            Some(pem) => {
                let pem = pem.as_bytes();
                if let Ok(key) = DecodingKey::from_ed_pem(pem) {
                    Some((key, Algorithm::EdDSA))
                } else if let Ok(key) = DecodingKey::from_rsa_pem(pem) {
                    Some((key, Algorithm::RS256))
                } else {
                    anyhow::bail!("SUANLI_JWT_PUBLIC_KEY is neither an Ed25519 nor an RSA public key in PEM form");
                }
            }
        };
        Ok(TokenKeys {
            encoding: EncodingKey::from_secret(secret)?,
            decoding: DecodingKey::from_secret(secret)?,
            external,
            ttl_seconds,
        })
    }

    /// How long issued tokens live.
    pub fn ttl_seconds(&self) -> u64 {
        self.ttl_seconds
    }

    /// Signs a token for a participant.
    pub fn issue(&self, participant: Uuid, role: ParticipantKind, hub: Option<String>) -> Result<String, ApiError> {
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            sub: participant,
            role: role.as_str().to_owned(),
            hub,
            iat: now,
            exp: now + self.ttl_seconds as i64,
            jti: Uuid::new_v4(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding).map_err(ApiError::internal)
    }

    /// Checks a token's signature, algorithm and expiry and returns who it speaks for.
    pub fn verify(&self, token: &str) -> Result<Caller, ApiError> {
        let invalid = |message: &str| ApiError::unauthorized("invalid_token", message.to_owned());
        // `alg: none` and unknown algorithms fail to parse here.
        let header = jsonwebtoken::decode_header(token).map_err(|_| invalid("the token is malformed"))?;
        let (key, algorithm) = match header.alg {
            Algorithm::HS256 => (&self.decoding, Algorithm::HS256),
            alg => match &self.external {
                Some((key, external_alg)) if *external_alg == alg => (key, alg),
                _ => return Err(invalid("the token's algorithm is not accepted")),
            },
        };
        let mut validation = Validation::new(algorithm);
        validation.leeway = 5;
        validation.set_required_spec_claims(&["exp", "iat", "sub"]);
        let data = jsonwebtoken::decode::<Claims>(token, key, &validation).map_err(|error| match error.kind() {
            jsonwebtoken::errors::ErrorKind::ExpiredSignature => {
                ApiError::unauthorized("token_expired", "the token has expired")
            }
            _ => invalid("the token's signature or claims do not verify"),
        })?;
        let claims = data.claims;
        let role = ParticipantKind::parse(&claims.role).ok_or_else(|| invalid("the token's role is unknown"))?;
        if role == ParticipantKind::HubOperator && claims.hub.is_none() {
            return Err(invalid("a hub operator's token must name its hub"));
        }
        Ok(Caller { id: claims.sub, role, hub: claims.hub })
    }
}

/// Who is making a request, as proven by its bearer token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub id: Uuid,
    pub role: ParticipantKind,
    /// The hub of a hub operator.
    pub hub: Option<String>,
}

impl Caller {
    /// The caller's id as the audit log's `actor`.
    pub fn actor(&self) -> String {
        self.id.to_string()
    }
}

/// A participant as stored: what a token is checked against on every request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub kind: ParticipantKind,
    pub hub: Option<String>,
}

impl Identity {
    /// Whether `claimed` (from a verified token) speaks for this participant as it is now: the
    /// role and the hub must be the stored ones. A validly signed token naming another role is
    /// refused (401), never trusted.
    pub fn admits(&self, claimed: &Caller) -> Result<(), ApiError> {
        if self.kind != claimed.role || self.hub != claimed.hub {
            return Err(ApiError::unauthorized(
                "role_mismatch",
                "the token's role or hub is not the participant's; log in again",
            ));
        }
        Ok(())
    }
}

/// How long a participant's stored identity is trusted without asking the database again.
pub const IDENTITY_CACHE_TTL: Duration = Duration::from_secs(1);
/// Most identities kept; beyond it the cache starts afresh (a bound, not an eviction policy).
const IDENTITY_CACHE_ENTRIES_MAX: usize = 100_000;

/// Recently read identities by participant id, each trusted for [`IDENTITY_CACHE_TTL`].
#[derive(Default)]
pub struct IdentityCache {
    entries: Mutex<HashMap<Uuid, (Identity, Instant)>>,
}

impl IdentityCache {
    /// The identity of `participant` if it was read less than [`IDENTITY_CACHE_TTL`] ago.
    pub fn get(&self, participant: Uuid) -> Option<Identity> {
        let entries = self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        entries
            .get(&participant)
            .filter(|(_, read_at)| read_at.elapsed() < IDENTITY_CACHE_TTL)
            .map(|(identity, _)| identity.clone())
    }

    /// Keeps an identity just read from the database.
    pub fn put(&self, participant: Uuid, identity: Identity) {
        let mut entries = self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if entries.len() >= IDENTITY_CACHE_ENTRIES_MAX {
            entries.clear();
        }
        entries.insert(participant, (identity, Instant::now()));
    }

    /// Forgets a participant at once (its role, keys or standing changed).
    pub fn forget(&self, participant: Uuid) {
        self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&participant);
    }
}

/// A freshly made API key: the text shown once, its lookup id, and what is stored.
pub struct NewApiKey {
    pub key: String,
    pub key_id: String,
    pub hash: String,
}

/// Makes a random API key `sk_<16 hex id>_<64 hex secret>` and its Argon2 hash. Slow on
/// purpose (tens of milliseconds): call it off the async executor.
pub fn new_api_key() -> Result<NewApiKey, ApiError> {
    let mut rng = rand::rng();
    let key_id = hex::encode(rng.random::<[u8; 8]>());
    let secret = hex::encode(rng.random::<[u8; 32]>());
    let key = format!("sk_{key_id}_{secret}");
    let hash = hash_api_key(&key)?;
    Ok(NewApiKey { key, key_id, hash })
}

/// The Argon2id hash (PHC string) of an API key.
pub fn hash_api_key(key: &str) -> Result<String, ApiError> {
    let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>()).map_err(ApiError::internal)?;
    Argon2::default()
        .hash_password(key.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(ApiError::internal)
}

/// Whether `key` matches a stored hash. Slow on purpose.
pub fn api_key_matches(key: &str, stored_hash: &str) -> bool {
    PasswordHash::new(stored_hash)
        .map(|hash| Argon2::default().verify_password(key.as_bytes(), &hash).is_ok())
        .unwrap_or(false)
}

/// The lookup id of an API key: the id part of keys made by [`new_api_key`], or the bootstrap
/// admin's fixed id for any other form of key.
pub fn api_key_lookup_id(key: &str) -> &str {
    let mut parts = key.splitn(3, '_');
    match (parts.next(), parts.next(), parts.next()) {
        (Some("sk"), Some(id), Some(secret))
            if id.len() == 16 && secret.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()) =>
        {
            id
        }
        _ => crate::db::participants::BOOTSTRAP_ADMIN_KEY_ID,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_keys_are_found_by_their_id_and_verify_against_their_hash() {
        let made = new_api_key().unwrap();
        assert_eq!(api_key_lookup_id(&made.key), made.key_id);
        assert!(api_key_matches(&made.key, &made.hash));
        assert!(!api_key_matches(&format!("{}x", made.key), &made.hash));
        assert!(!made.hash.contains(&made.key[20..]), "the secret must not be stored");
    }

    #[test]
    fn free_form_keys_belong_to_the_bootstrap_admin() {
        assert_eq!(api_key_lookup_id("my-admin-key"), "bootstrap-admin");
        assert_eq!(api_key_lookup_id("sk_short_x"), "bootstrap-admin");
    }

    #[test]
    fn issued_tokens_verify_and_tampered_ones_do_not() {
        let keys = TokenKeys::new(b"secret", None, 60).unwrap();
        let id = Uuid::new_v4();
        let token = keys.issue(id, ParticipantKind::Buyer, None).unwrap();
        assert_eq!(keys.verify(&token).unwrap(), Caller { id, role: ParticipantKind::Buyer, hub: None });

        let other = TokenKeys::new(b"other secret", None, 60).unwrap();
        assert_eq!(other.verify(&token).unwrap_err().code, "invalid_token");
        // Change one character in the middle of the signature.
        let mut tampered: Vec<char> = token.chars().collect();
        let index = tampered.len() - 10;
        tampered[index] = if tampered[index] == 'A' { 'B' } else { 'A' };
        let tampered: String = tampered.into_iter().collect();
        assert_eq!(keys.verify(&tampered).unwrap_err().code, "invalid_token");
    }
}
