//! Tokens: issued from API keys, used, and refused when expired, tampered, unsigned, signed with
//! the wrong key, or carrying the wrong role.

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;
use suanli_sdk::{NewDeposit, ParticipantKind};
use suanli_tests::TestExchange;
use uuid::Uuid;

use crate::code_of;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures");

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!("{FIXTURES}/{name}")).unwrap()
}

fn claims(sub: Uuid, role: &str, exp_offset_seconds: i64) -> serde_json::Value {
    let now = chrono::Utc::now().timestamp();
    json!({
        "sub": sub, "role": role, "iat": now, "exp": now + exp_offset_seconds, "jti": Uuid::new_v4(),
        "iss": "suanli", "aud": "suanli-api",
    })
}

fn hs256(secret: &str, claims: &serde_json::Value) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()).unwrap(),
    )
    .unwrap()
}

fn secret(exchange: &TestExchange) -> String {
    exchange.config.jwt_secret.clone().unwrap()
}

#[actix_web::test]
async fn an_api_key_buys_a_token_that_identifies_its_participant() {
    let exchange = TestExchange::start().await;
    let (buyer, _) = exchange
        .participant(ParticipantKind::Buyer, "Buyer One")
        .await;
    let token = exchange.anonymous.token(&buyer.api_key).await.unwrap();
    assert_eq!(token.token_type, "Bearer");
    assert_eq!(token.expires_in, 3600);

    let me = exchange
        .anonymous
        .with_token(&token.access_token)
        .me()
        .await
        .unwrap();
    assert_eq!(me.id, buyer.participant.id);
    assert_eq!(me.kind, ParticipantKind::Buyer);
    // The scheme's name is case-insensitive.
    for scheme in ["bearer", "BEARER", "BeArEr"] {
        let response = exchange
            .anonymous
            .request(reqwest::Method::GET, "/v1/participants/me")
            .header("Authorization", format!("{scheme} {}", token.access_token))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{scheme}");
    }

    let claims = jsonwebtoken::dangerous::insecure_decode::<serde_json::Value>(&token.access_token)
        .unwrap()
        .claims;
    assert_eq!(claims["sub"], json!(buyer.participant.id));
    assert_eq!(claims["role"], "buyer");
    for claim in ["iat", "exp", "jti"] {
        assert!(claims.get(claim).is_some(), "token lacks {claim}");
    }
}

#[actix_web::test]
async fn a_hub_operator_token_names_its_hub() {
    let exchange = TestExchange::start().await;
    let (operator, client) = exchange
        .participant(ParticipantKind::HubOperator, "Ningxia ops")
        .await;
    let me = client.me().await.unwrap();
    assert_eq!(
        (me.id, me.hub.as_deref()),
        (operator.participant.id, Some("nx"))
    );
    let claims = jsonwebtoken::dangerous::insecure_decode::<serde_json::Value>(
        client.bearer_token().unwrap(),
    )
    .unwrap()
    .claims;
    assert_eq!(claims["hub"], "nx");
}

#[actix_web::test]
async fn wrong_api_keys_get_no_token() {
    let exchange = TestExchange::start().await;
    let (buyer, _) = exchange.participant(ParticipantKind::Buyer, "Buyer").await;
    let mut wrong = buyer.api_key.clone();
    wrong.replace_range(wrong.len() - 4.., "0000");
    for key in [wrong.as_str(), "nonsense", "", "sk_0000000000000000_00"] {
        assert_eq!(
            code_of(exchange.anonymous.token(key).await),
            (401, "invalid_api_key".into()),
            "{key}"
        );
    }
}

#[actix_web::test]
async fn requests_without_a_usable_token_are_refused_with_401() {
    let exchange = TestExchange::start().await;
    let (buyer, client) = exchange.participant(ParticipantKind::Buyer, "Buyer").await;
    let id = buyer.participant.id;
    let good = client.bearer_token().unwrap().to_owned();

    assert_eq!(
        code_of(exchange.anonymous.me().await),
        (401, "missing_token".into())
    );

    let expired = hs256(&secret(&exchange), &claims(id, "buyer", -3600));
    assert_eq!(
        code_of(exchange.anonymous.with_token(expired).me().await),
        (401, "token_expired".into())
    );

    // Tampered: the payload now says admin, the signature is the buyer's.
    let mut parts: Vec<String> = good.split('.').map(str::to_owned).collect();
    let forged_payload = hs256("irrelevant", &claims(id, "admin", 3600));
    parts[1] = forged_payload.split('.').nth(1).unwrap().to_owned();
    let tampered = parts.join(".");
    assert_eq!(
        code_of(exchange.anonymous.with_token(tampered).me().await),
        (401, "invalid_token".into())
    );

    // `alg: none`, unsigned.
    let header = base64_url(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = base64_url(claims(id, "admin", 3600).to_string().as_bytes());
    let unsigned = format!("{header}.{payload}.");
    assert_eq!(
        code_of(exchange.anonymous.with_token(unsigned).me().await),
        (401, "invalid_token".into())
    );

    let wrong_secret = hs256("not the exchange's secret", &claims(id, "buyer", 3600));
    assert_eq!(
        code_of(exchange.anonymous.with_token(wrong_secret).me().await),
        (401, "invalid_token".into())
    );

    // An EdDSA token when no public key is configured.
    let key = EncodingKey::from_ed_pem(fixture("ed25519-private.pem").as_bytes()).unwrap();
    let eddsa = jsonwebtoken::encode(
        &Header::new(Algorithm::EdDSA),
        &claims(id, "buyer", 3600),
        &key,
    )
    .unwrap();
    assert_eq!(
        code_of(exchange.anonymous.with_token(eddsa).me().await),
        (401, "invalid_token".into())
    );

    for header in ["Basic abc", "Bearer", "Bearer not.a.jwt"] {
        let response = exchange
            .anonymous
            .request(reqwest::Method::GET, "/v1/participants/me")
            .header("Authorization", header)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "{header}");
    }
}

/// Base64url without padding, as JWTs use.
fn base64_url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

#[actix_web::test]
async fn tokens_from_a_configured_external_issuer_are_accepted_and_strangers_are_not() {
    for (public, private, algorithm) in [
        (
            "ed25519-public.pem",
            "ed25519-private.pem",
            Algorithm::EdDSA,
        ),
        ("rsa-public.pem", "rsa-private.pem", Algorithm::RS256),
    ] {
        let exchange =
            TestExchange::start_with(|config| config.jwt_public_key = Some(fixture(public))).await;
        let (regulator, _) = exchange
            .participant(ParticipantKind::Regulator, "Regulator")
            .await;
        let claims = claims(regulator.participant.id, "regulator", 600);
        let key = match algorithm {
            Algorithm::EdDSA => EncodingKey::from_ed_pem(fixture(private).as_bytes()).unwrap(),
            _ => EncodingKey::from_rsa_pem(fixture(private).as_bytes()).unwrap(),
        };
        let token = jsonwebtoken::encode(&Header::new(algorithm), &claims, &key).unwrap();
        let client = exchange.anonymous.with_token(token);
        assert_eq!(
            client.me().await.unwrap().id,
            regulator.participant.id,
            "{algorithm:?}"
        );
        assert!(client.audit_verify().await.unwrap().ok);

        // Identity providers issue token ids of their own shape, or none: both are accepted.
        for jti in [json!("idp-7f3a"), serde_json::Value::Null] {
            let mut claims = claims.clone();
            match jti {
                serde_json::Value::Null => claims.as_object_mut().unwrap().remove("jti"),
                jti => claims.as_object_mut().unwrap().insert("jti".into(), jti),
            };
            let token = jsonwebtoken::encode(&Header::new(algorithm), &claims, &key).unwrap();
            assert_eq!(
                exchange.anonymous.with_token(token).me().await.unwrap().id,
                regulator.participant.id,
                "{algorithm:?} {claims}"
            );
        }

        if algorithm == Algorithm::EdDSA {
            let stranger =
                EncodingKey::from_ed_pem(fixture("ed25519-other-private.pem").as_bytes()).unwrap();
            let token = jsonwebtoken::encode(&Header::new(algorithm), &claims, &stranger).unwrap();
            assert_eq!(
                code_of(exchange.anonymous.with_token(token).me().await),
                (401, "invalid_token".into())
            );
        }
    }
}

#[actix_web::test]
async fn roles_only_do_what_their_role_allows() {
    let exchange = TestExchange::start().await;
    let (buyer, buyer_client) = exchange.participant(ParticipantKind::Buyer, "Buyer").await;
    let (_, provider) = exchange
        .participant(ParticipantKind::Provider, "Provider")
        .await;
    let (_, regulator) = exchange
        .participant(ParticipantKind::Regulator, "Regulator")
        .await;
    let new_buyer = suanli_sdk::NewParticipant {
        name: "Sneaky".into(),
        kind: ParticipantKind::Admin,
        provider_type: None,
        hub: None,
    };
    let deposit = NewDeposit {
        amount: "100".parse().unwrap(),
        reference: "r".into(),
        idempotency_key: "k".into(),
    };

    assert_eq!(
        code_of(buyer_client.create_participant(&new_buyer).await).0,
        403
    );
    assert_eq!(
        code_of(buyer_client.deposit(buyer.participant.id, &deposit).await).0,
        403
    );
    assert_eq!(
        code_of(provider.deposit(buyer.participant.id, &deposit).await).0,
        403
    );
    // A regulator reads everything and writes nothing.
    assert_eq!(
        code_of(regulator.deposit(buyer.participant.id, &deposit).await).0,
        403
    );
    assert_eq!(
        code_of(regulator.create_participant(&new_buyer).await).0,
        403
    );
    assert_eq!(code_of(regulator.account().await).0, 403);
    assert_eq!(
        code_of(buyer_client.audit_log(0, 10).await),
        (403, "forbidden".into())
    );
    assert_eq!(code_of(provider.audit_verify().await).0, 403);
    // Offers are listed by providers and regulators, bids by buyers and regulators.
    assert_eq!(
        code_of(buyer_client.offers(None, None, 10).await),
        (403, "forbidden".into())
    );
    assert_eq!(
        code_of(provider.bids(None, None, 10).await),
        (403, "forbidden".into())
    );
    assert!(provider.offers(None, None, 10).await.is_ok());
    assert!(buyer_client.bids(None, None, 10).await.is_ok());
    assert!(regulator.offers(None, None, 10).await.is_ok());
    assert!(regulator.bids(None, None, 10).await.is_ok());

    // A token that claims a role its signer never gave is a forgery: refused, not obeyed.
    let forged = hs256("guess", &claims(buyer.participant.id, "admin", 600));
    assert_eq!(
        code_of(
            exchange
                .anonymous
                .with_token(forged)
                .create_participant(&new_buyer)
                .await
        )
        .0,
        401
    );
    assert_eq!(
        exchange.count("SELECT count(*) FROM participants WHERE name = 'Sneaky'"),
        0
    );
    assert_eq!(exchange.count("SELECT count(*) FROM deposits"), 0);
}

#[actix_web::test]
async fn a_participant_sees_only_its_own_account() {
    let exchange = TestExchange::start().await;
    let (alice, alice_client) = exchange.participant(ParticipantKind::Buyer, "Alice").await;
    let (_, bob_client) = exchange.participant(ParticipantKind::Buyer, "Bob").await;
    let deposit = NewDeposit {
        amount: "2500.50".parse().unwrap(),
        reference: "wire 1".into(),
        idempotency_key: "a1".into(),
    };
    exchange
        .admin
        .deposit(alice.participant.id, &deposit)
        .await
        .unwrap();

    assert_eq!(
        alice_client.account().await.unwrap().available.to_string(),
        "2500.5"
    );
    let bob = bob_client.account().await.unwrap();
    assert!(bob.available.is_zero() && bob.held.is_zero(), "{bob:?}");

    // Bob cannot make a token that speaks for Alice: it would need the exchange's secret.
    let as_alice = hs256("bob's guess", &claims(alice.participant.id, "buyer", 600));
    assert_eq!(
        code_of(exchange.anonymous.with_token(as_alice).account().await).0,
        401
    );
}
