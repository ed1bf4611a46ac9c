//! Authentication: API keys (random, shown once, stored as Argon2 hashes) and JWT bearer tokens
//! (HS256 issued here; RS256/EdDSA from a configured public key accepted too). A token's claims
//! are only half the proof: [`Identity::admits`] checks them against the participant as stored
//! (it exists and has the role and hub the token names), through an [`IdentityCache`] that keeps
//! an answer for at most [`IDENTITY_CACHE_TTL`]. The HTTP layer turns all of it into the
//! [`Caller`] every protected handler takes; what a caller may do is decided in [`crate::access`].

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
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
    /// The token's own id: a UUID on the tokens the exchange issues; optional, and any string,
    /// on an external issuer's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// Who issued it: `SUANLI_JWT_ISSUER` (the external issuer must use the same).
    pub iss: String,
    /// Always [`AUDIENCE`].
    pub aud: String,
    /// The participant's key epoch when the exchange issued the token: a key rotation makes
    /// every token of an earlier epoch worthless. Absent from external issuers' tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kep: Option<i32>,
}

/// The `aud` of every token the exchange issues or accepts.
pub const AUDIENCE: &str = "suanli-api";

/// A token that verified: who it speaks for, and what is checked against the stored participant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub caller: Caller,
    /// `iat`, Unix seconds.
    pub issued_at: i64,
    /// The key epoch of a token the exchange issued.
    pub key_epoch: Option<i32>,
}

/// The keys tokens are signed and checked with.
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    /// An external issuer's public key and the algorithm it signs with.
    external: Option<(DecodingKey, Algorithm)>,
    ttl_seconds: u64,
    issuer: String,
    lifetime_seconds_max: u64,
}

impl TokenKeys {
    /// Keys from the HS256 `secret` and an optional PEM public key (RS256 or EdDSA); tokens name
    /// `issuer`, live `ttl_seconds`, and no token living longer than `lifetime_seconds_max` is
    /// accepted.
    pub fn new(
        secret: &[u8],
        public_key_pem: Option<&str>,
        ttl_seconds: u64,
        issuer: &str,
        lifetime_seconds_max: u64,
    ) -> anyhow::Result<Self> {
        if ttl_seconds > lifetime_seconds_max {
            anyhow::bail!(
                "SUANLI_TOKEN_TTL_SECONDS ({ttl_seconds}) is longer than SUANLI_JWT_MAX_LIFETIME_S ({lifetime_seconds_max})"
            );
        }
        let external = match public_key_pem {
            None => None,
            Some(pem) => {
                let pem = pem.as_bytes();
                if let Ok(key) = DecodingKey::from_ed_pem(pem) {
                    Some((key, Algorithm::EdDSA))
                } else if let Ok(key) = DecodingKey::from_rsa_pem(pem) {
                    Some((key, Algorithm::RS256))
                } else {
                    anyhow::bail!(
                        "SUANLI_JWT_PUBLIC_KEY is neither an Ed25519 nor an RSA public key in PEM form"
                    );
                }
            }
        };
        Ok(TokenKeys {
            encoding: EncodingKey::from_secret(secret)?,
            decoding: DecodingKey::from_secret(secret)?,
            external,
            ttl_seconds,
            issuer: issuer.to_owned(),
            lifetime_seconds_max,
        })
    }

    /// How long issued tokens live.
    pub fn ttl_seconds(&self) -> u64 {
        self.ttl_seconds
    }

    /// Signs a token for a participant whose key epoch is `key_epoch`.
    pub fn issue(
        &self,
        participant: Uuid,
        role: ParticipantKind,
        hub: Option<String>,
        key_epoch: i32,
    ) -> Result<String, ApiError> {
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            sub: participant,
            role: role.as_str().to_owned(),
            hub,
            iat: now,
            exp: now + self.ttl_seconds as i64,
            jti: Some(Uuid::new_v4().to_string()),
            iss: self.issuer.clone(),
            aud: AUDIENCE.to_owned(),
            kep: Some(key_epoch),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(ApiError::internal)
    }

    /// Checks a token's signature, algorithm, issuer, audience, expiry and lifetime and returns who
    /// it speaks for. Whether that participant still stands as the token says is
    /// [`Identity::admits`]'s question.
    pub fn verify(&self, token: &str) -> Result<Verified, ApiError> {
        let invalid = |message: &str| ApiError::unauthorized("invalid_token", message.to_owned());
        // `alg: none` and unknown algorithms fail to parse here.
        let header =
            jsonwebtoken::decode_header(token).map_err(|_| invalid("the token is malformed"))?;
        let (key, algorithm) = match header.alg {
            Algorithm::HS256 => (&self.decoding, Algorithm::HS256),
            alg => match &self.external {
                Some((key, external_alg)) if *external_alg == alg => (key, alg),
                _ => return Err(invalid("the token's algorithm is not accepted")),
            },
        };
        let mut validation = Validation::new(algorithm);
        validation.leeway = 5;
        validation.set_required_spec_claims(&["exp", "iat", "sub", "iss", "aud"]);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[AUDIENCE]);
        let data =
            jsonwebtoken::decode::<Claims>(token, key, &validation).map_err(|error| match error
                .kind()
            {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => {
                    ApiError::unauthorized("token_expired", "the token has expired")
                }
                _ => invalid("the token's signature or claims do not verify"),
            })?;
        let claims = data.claims;
        let lifetime = claims.exp.saturating_sub(claims.iat);
        if lifetime > i64::try_from(self.lifetime_seconds_max).unwrap_or(i64::MAX) {
            return Err(ApiError::unauthorized(
                "token_lifetime_too_long",
                format!(
                    "a token may live at most {} s; this one lives {lifetime} s",
                    self.lifetime_seconds_max
                ),
            ));
        }
        if claims.iat
            > chrono::Utc::now().timestamp() + i64::try_from(validation.leeway).unwrap_or(0)
        {
            return Err(invalid("the token was issued in the future"));
        }
        let role = ParticipantKind::parse(&claims.role)
            .ok_or_else(|| invalid("the token's role is unknown"))?;
        if role == ParticipantKind::HubOperator && claims.hub.is_none() {
            return Err(invalid("a hub operator's token must name its hub"));
        }
        Ok(Verified {
            caller: Caller {
                id: claims.sub,
                role,
                hub: claims.hub,
            },
            issued_at: claims.iat,
            key_epoch: claims.kep,
        })
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
    pub suspended: bool,
    /// Key rotations so far.
    pub key_epoch: i32,
    /// When the key last changed, Unix seconds (rounded down).
    pub credentials_changed_at: i64,
}

impl Identity {
    /// Whether a verified token speaks for this participant as it is now: not suspended, the
    /// stored role and hub, and issued under the current key (the exchange's tokens carry the key
    /// epoch; an external issuer's must be issued in a second after the last key change's). Anything else is a
    /// 401, never trusted.
    pub fn admits(&self, token: &Verified) -> Result<(), ApiError> {
        if self.suspended {
            return Err(ApiError::unauthorized(
                "participant_suspended",
                "this participant is suspended",
            ));
        }
        if self.kind != token.caller.role || self.hub != token.caller.hub {
            return Err(ApiError::unauthorized(
                "role_mismatch",
                "the token's role or hub is not the participant's; log in again",
            ));
        }
        let current = match token.key_epoch {
            Some(epoch) => epoch == self.key_epoch,
            // `iat` counts whole seconds and the change is kept to the second below it: a token
            // of the change's own second may have been issued before it, so it is refused.
            None => token.issued_at > self.credentials_changed_at,
        };
        if !current {
            return Err(ApiError::unauthorized(
                "token_revoked",
                "the API key changed since this token was issued; log in again",
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
///
/// A read that began before a change must not put the old identity back after the change
/// forgot it: [`IdentityCache::forget`] moves a generation on, and [`IdentityCache::put`] keeps
/// an identity only if the generation did not move since [`IdentityCache::generation`] was read.
#[derive(Default)]
pub struct IdentityCache {
    inner: Mutex<IdentityEntries>,
}

#[derive(Default)]
struct IdentityEntries {
    entries: HashMap<Uuid, (Identity, Instant)>,
    generation: u64,
}

impl IdentityCache {
    /// The identity of `participant` if it was read less than [`IDENTITY_CACHE_TTL`] ago.
    pub fn get(&self, participant: Uuid) -> Option<Identity> {
        let inner = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        inner
            .entries
            .get(&participant)
            .filter(|(_, read_at)| read_at.elapsed() < IDENTITY_CACHE_TTL)
            .map(|(identity, _)| identity.clone())
    }

    /// The generation to hand to [`IdentityCache::put`]: read it before reading the database.
    pub fn generation(&self) -> u64 {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .generation
    }

    /// Keeps an identity read from the database, unless something was forgotten since `generation`.
    pub fn put(&self, participant: Uuid, identity: Identity, generation: u64) {
        let mut inner = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if inner.generation != generation {
            return;
        }
        if inner.entries.len() >= IDENTITY_CACHE_ENTRIES_MAX {
            inner.entries.clear();
        }
        inner
            .entries
            .insert(participant, (identity, Instant::now()));
    }

    /// Forgets a participant at once (its role, keys or standing changed).
    pub fn forget(&self, participant: Uuid) {
        let mut inner = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        inner.entries.remove(&participant);
        inner.generation += 1;
    }
}

/// What keeps logins from being a memory and CPU sink: API-key hashing (Argon2, about 19 MiB and
/// tens of milliseconds each) runs on a few threads of its own with a bounded queue, so memory is
/// bounded by those threads' arenas, whatever the flood; and failed logins are counted per client
/// address and per key id.
pub struct LoginGuard {
    jobs: Mutex<std::sync::mpsc::Sender<HashingJob>>,
    /// Jobs queued or running, in all and per holder.
    pending: std::sync::Arc<Mutex<Pending>>,
    pending_max: usize,
    failures: Mutex<HashMap<String, (u32, Instant)>>,
    failures_max: u32,
    window: Duration,
    /// SHA-256 of the bootstrap admin's key (`SUANLI_ADMIN_API_KEY`): a free-form key that does
    /// not match it costs no Argon2 work.
    bootstrap_key_sha256: Option<[u8; 32]>,
}

type HashingJob = Box<dyn FnOnce() + Send>;

/// The hashing jobs queued or running: in all, and for each holder (a key id logging in, a
/// participant rotating its key). A holder has an entry only while it has a job, so there are
/// never more entries than jobs.
#[derive(Debug, Default)]
struct Pending {
    total: usize,
    by_holder: HashMap<String, usize>,
}

/// Most hashing jobs one holder may have queued or running at once: one participant logging in
/// (or rotating) in a loop takes this many places of the queue, never everyone's.
pub const HASHING_PER_HOLDER_MAX: usize = 2;

/// Most (address or key id) failure counters kept; beyond it the oldest windows are dropped.
const LOGIN_FAILURE_ENTRIES_MAX: usize = 100_000;

impl LoginGuard {
    /// Starts `hashing_threads` threads for key hashing; at most `queue_max` more jobs may wait.
    pub fn new(
        hashing_threads: usize,
        queue_max: usize,
        failures_max: u32,
        window: Duration,
        bootstrap_key: Option<&str>,
    ) -> anyhow::Result<Self> {
        use sha2::Digest;
        let (sender, receiver) = std::sync::mpsc::channel::<HashingJob>();
        let receiver = std::sync::Arc::new(Mutex::new(receiver));
        for index in 0..hashing_threads.max(1) {
            let receiver = receiver.clone();
            std::thread::Builder::new()
                .name(format!("suanli-key-hashing-{index}"))
                .spawn(move || {
                    loop {
                        let job = receiver
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .recv();
                        match job {
                            // A job that panics must not take the thread (and its place in the pool) with it.
                            Ok(job) => {
                                drop(std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)))
                            }
                            Err(_) => return,
                        }
                    }
                })?;
        }
        Ok(LoginGuard {
            jobs: Mutex::new(sender),
            pending: Default::default(),
            pending_max: hashing_threads.max(1) + queue_max,
            failures: Mutex::default(),
            failures_max,
            window,
            bootstrap_key_sha256: bootstrap_key
                .map(|key| sha2::Sha256::digest(key.as_bytes()).into()),
        })
    }

    /// Whether a free-form key can be the bootstrap admin's at all (without Argon2).
    pub fn may_be_bootstrap_key(&self, key: &str) -> bool {
        use sha2::Digest;
        self.bootstrap_key_sha256.is_some_and(|expected| {
            <[u8; 32]>::from(sha2::Sha256::digest(key.as_bytes())) == expected
        })
    }

    /// Refuses (429) a login from `subjects` (client address, key id) that failed too often lately.
    pub fn check(&self, subjects: &[String]) -> Result<(), ApiError> {
        let failures = self
            .failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for subject in subjects {
            if let Some((count, since)) = failures.get(subject) {
                let age = since.elapsed();
                if *count >= self.failures_max && age < self.window {
                    let retry_after = (self.window - age).as_secs().max(1);
                    return Err(ApiError {
                        retry_after_s: Some(u32::try_from(retry_after).unwrap_or(u32::MAX)),
                        ..ApiError::too_many_requests(
                            "too_many_failures",
                            "too many failed logins; try again later",
                        )
                    });
                }
            }
        }
        Ok(())
    }

    /// Counts a failed login against each of `subjects`.
    pub fn failed(&self, subjects: &[String]) {
        let mut failures = self
            .failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if failures.len() >= LOGIN_FAILURE_ENTRIES_MAX {
            let window = self.window;
            failures.retain(|_, (_, since)| since.elapsed() < window);
            if failures.len() >= LOGIN_FAILURE_ENTRIES_MAX {
                failures.clear();
            }
        }
        for subject in subjects {
            let entry = failures
                .entry(subject.clone())
                .or_insert((0, Instant::now()));
            if entry.1.elapsed() >= self.window {
                *entry = (0, Instant::now());
            }
            entry.0 = entry.0.saturating_add(1);
        }
    }

    /// Runs `work` (Argon2) for `holder` (whose key is checked or made: `key:<id>` for a login,
    /// `participant:<id>` for a rotation, one of its own for each participant the admin creates)
    /// on the hashing threads and waits for it. Refuses at
    /// once when the holder already has [`HASHING_PER_HOLDER_MAX`] jobs queued or running (429
    /// `too_many_logins`: its own flood waits, nobody else's login), or when the queue is full
    /// (503 `login_busy`).
    pub async fn hashing<T: Send + 'static>(
        &self,
        holder: String,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        {
            let mut pending = self
                .pending
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if pending.by_holder.get(&holder).copied().unwrap_or(0) >= HASHING_PER_HOLDER_MAX {
                return Err(ApiError {
                    retry_after_s: Some(1),
                    ..ApiError::too_many_requests(
                        "too_many_logins",
                        "this key is already being checked; wait for that answer",
                    )
                });
            }
            if pending.total >= self.pending_max {
                return Err(ApiError::busy(
                    "login_busy",
                    "too many API keys are being checked; retry shortly",
                    1,
                ));
            }
            pending.total += 1;
            *pending.by_holder.entry(holder.clone()).or_default() += 1;
        }
        /// Gives the queue place back however the job ends (done, panicked, or never run).
        struct Place(std::sync::Arc<Mutex<Pending>>, String);
        impl Drop for Place {
            fn drop(&mut self) {
                let mut pending = self
                    .0
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                pending.total -= 1;
                if let Some(count) = pending.by_holder.get_mut(&self.1) {
                    *count -= 1;
                    if *count == 0 {
                        pending.by_holder.remove(&self.1);
                    }
                }
            }
        }
        let (reply, answer) = tokio::sync::oneshot::channel();
        let pending = Place(self.pending.clone(), holder);
        let job: HashingJob = Box::new(move || {
            let answer = work();
            // The place is free before the answer leaves (and when `work` panics, as the job
            // unwinds).
            drop(pending);
            let _ = reply.send(answer);
        });
        let sent = self
            .jobs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .send(job);
        if sent.is_err() {
            return Err(ApiError::unavailable("key hashing is not running"));
        }
        answer
            .await
            .map_err(|_| ApiError::unavailable("key hashing stopped"))
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
        .map(|hash| {
            Argon2::default()
                .verify_password(key.as_bytes(), &hash)
                .is_ok()
        })
        .unwrap_or(false)
}

/// The lookup id of an API key: the id part of keys made by [`new_api_key`], or the bootstrap
/// admin's fixed id for any other form of key.
pub fn api_key_lookup_id(key: &str) -> &str {
    let mut parts = key.splitn(3, '_');
    match (parts.next(), parts.next(), parts.next()) {
        (Some("sk"), Some(id), Some(secret))
            if id.len() == 16
                && secret.len() == 64
                && id.bytes().all(|b| b.is_ascii_hexdigit()) =>
        {
            id
        }
        _ => crate::db::participants::BOOTSTRAP_ADMIN_KEY_ID,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One holder flooding the hashing queue is refused beyond its share (429) while others still
    /// get places, until the queue itself is full (503); places come back as jobs end.
    #[tokio::test]
    async fn one_holder_cannot_take_the_whole_hashing_queue() {
        let guard =
            std::sync::Arc::new(LoginGuard::new(1, 4, 5, Duration::from_secs(60), None).unwrap());
        let (release, released) = std::sync::mpsc::channel::<()>();
        let released = std::sync::Arc::new(Mutex::new(released));
        // A job that holds its place until released (the one hashing thread runs them in turn).
        let held = |holder: &str| {
            let (guard, released, holder) = (guard.clone(), released.clone(), holder.to_owned());
            tokio::spawn(async move {
                guard
                    .hashing(holder, move || {
                        let _ = released.lock().unwrap().recv();
                    })
                    .await
            })
        };
        let mut jobs = Vec::new();
        for holder in ["key:a", "key:a", "key:b", "key:b", "key:c"] {
            jobs.push(held(holder));
        }
        // The spawned requests take their places (the runtime runs on this one thread).
        tokio::task::yield_now().await;
        let refused = guard.hashing("key:a".into(), || ()).await.unwrap_err();
        assert_eq!(
            (refused.code, refused.retry_after_s),
            ("too_many_logins", Some(1))
        );
        assert_eq!(
            guard.hashing("key:d".into(), || ()).await.unwrap_err().code,
            "login_busy",
            "five places in all"
        );
        for _ in 0..jobs.len() {
            release.send(()).unwrap();
        }
        for job in jobs {
            job.await.unwrap().unwrap();
        }
        assert!(guard.hashing("key:a".into(), || ()).await.is_ok());
        let pending = guard.pending.lock().unwrap();
        assert_eq!((pending.total, pending.by_holder.len()), (0, 0));
    }

    #[test]
    fn made_keys_are_found_by_their_id_and_verify_against_their_hash() {
        let made = new_api_key().unwrap();
        assert_eq!(api_key_lookup_id(&made.key), made.key_id);
        assert!(api_key_matches(&made.key, &made.hash));
        assert!(!api_key_matches(&format!("{}x", made.key), &made.hash));
        assert!(
            !made.hash.contains(&made.key[20..]),
            "the secret must not be stored"
        );
    }

    #[test]
    fn free_form_keys_belong_to_the_bootstrap_admin() {
        assert_eq!(api_key_lookup_id("my-admin-key"), "bootstrap-admin");
        assert_eq!(api_key_lookup_id("sk_short_x"), "bootstrap-admin");
    }

    #[test]
    fn issued_tokens_verify_and_tampered_ones_do_not() {
        let keys = TokenKeys::new(b"secret", None, 60, "suanli", 86_400).unwrap();
        let id = Uuid::new_v4();
        let token = keys.issue(id, ParticipantKind::Buyer, None, 3).unwrap();
        let verified = keys.verify(&token).unwrap();
        assert_eq!(
            verified.caller,
            Caller {
                id,
                role: ParticipantKind::Buyer,
                hub: None
            }
        );
        assert_eq!(verified.key_epoch, Some(3));

        let other = TokenKeys::new(b"other secret", None, 60, "suanli", 86_400).unwrap();
        assert_eq!(other.verify(&token).unwrap_err().code, "invalid_token");
        // Change one character in the middle of the signature.
        let mut tampered: Vec<char> = token.chars().collect();
        let index = tampered.len() - 10;
        tampered[index] = if tampered[index] == 'A' { 'B' } else { 'A' };
        let tampered: String = tampered.into_iter().collect();
        assert_eq!(keys.verify(&tampered).unwrap_err().code, "invalid_token");
        let elsewhere = TokenKeys::new(b"secret", None, 60, "another-exchange", 86_400).unwrap();
        assert_eq!(
            elsewhere.verify(&token).unwrap_err().code,
            "invalid_token",
            "another issuer"
        );
    }

    #[test]
    fn a_token_stands_only_while_its_participant_does() {
        let id = Uuid::new_v4();
        let token = |epoch, issued_at| Verified {
            caller: Caller {
                id,
                role: ParticipantKind::Provider,
                hub: None,
            },
            issued_at,
            key_epoch: epoch,
        };
        let stored = Identity {
            kind: ParticipantKind::Provider,
            hub: None,
            suspended: false,
            key_epoch: 2,
            credentials_changed_at: 1000,
        };
        assert!(stored.admits(&token(Some(2), 0)).is_ok());
        assert_eq!(
            stored.admits(&token(Some(1), 2000)).unwrap_err().code,
            "token_revoked"
        );
        assert!(
            stored.admits(&token(None, 1001)).is_ok(),
            "an external token issued after the change"
        );
        assert_eq!(
            stored.admits(&token(None, 1000)).unwrap_err().code,
            "token_revoked",
            "an external token of the change's own second may be from before it"
        );
        assert_eq!(
            stored.admits(&token(None, 999)).unwrap_err().code,
            "token_revoked"
        );
        let suspended = Identity {
            suspended: true,
            ..stored.clone()
        };
        assert_eq!(
            suspended.admits(&token(Some(2), 0)).unwrap_err().code,
            "participant_suspended"
        );
        let buyer = Identity {
            kind: ParticipantKind::Buyer,
            ..stored
        };
        assert_eq!(
            buyer.admits(&token(Some(2), 0)).unwrap_err().code,
            "role_mismatch"
        );
    }
}
