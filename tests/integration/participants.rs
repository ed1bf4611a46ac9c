//! Creating participants: every kind, the rules each kind has, and the key shown once.

use suanli_sdk::{NewParticipant, ParticipantKind, ProviderType};
use suanli_tests::TestExchange;

use crate::code_of;

fn new(
    name: &str,
    kind: ParticipantKind,
    provider_type: Option<ProviderType>,
    hub: Option<&str>,
) -> NewParticipant {
    NewParticipant {
        name: name.into(),
        kind,
        provider_type,
        hub: hub.map(str::to_owned),
    }
}

#[actix_web::test]
async fn admins_create_every_kind_of_participant() {
    let exchange = TestExchange::start().await;
    let cases = [
        new(
            "China Mobile",
            ParticipantKind::Provider,
            Some(ProviderType::TelecomOperator),
            None,
        ),
        new(
            "Sugon",
            ParticipantKind::Provider,
            Some(ProviderType::ComputeProvider),
            None,
        ),
        new(
            "Alibaba Cloud",
            ParticipantKind::Provider,
            Some(ProviderType::CloudVendor),
            None,
        ),
        new("Model Lab", ParticipantKind::Buyer, None, None),
        new("Gansu hub", ParticipantKind::HubOperator, None, Some("gs")),
        new("Regulator", ParticipantKind::Regulator, None, None),
    ];
    for case in &cases {
        let (created, client) = exchange.participant_from(case).await;
        assert!(created.api_key.starts_with("sk_"), "{}", created.api_key);
        let me = client.me().await.unwrap();
        assert_eq!(me, created.participant);
        assert_eq!(
            (
                me.name.as_str(),
                me.kind,
                me.provider_type,
                me.hub.as_deref()
            ),
            (
                case.name.as_str(),
                case.kind,
                case.provider_type,
                case.hub.as_deref()
            )
        );
        // The key is stored only as a slow hash.
        let secret = created.api_key.rsplit('_').next().unwrap();
        assert_eq!(
            exchange.count(&format!(
                "SELECT count(*) FROM participants WHERE api_key_hash LIKE '%{secret}%'"
            )),
            0
        );
        assert_eq!(
            exchange.count(&format!(
                "SELECT count(*) FROM participants WHERE id = '{}' AND api_key_hash LIKE '$argon2id$%'",
                me.id
            )),
            1
        );
    }
    // The bootstrap admin and the six above; admins come only from configuration (identity.rs).
    assert_eq!(
        exchange.count("SELECT count(*) FROM audit_log WHERE kind = 'participant_created'"),
        7
    );
}

#[actix_web::test]
async fn each_kind_gets_exactly_the_fields_it_needs() {
    let exchange = TestExchange::start().await;
    let refused = [
        new("P", ParticipantKind::Provider, None, None),
        new("H", ParticipantKind::HubOperator, None, None),
        new("H", ParticipantKind::HubOperator, None, Some("atlantis")),
        new(
            "B",
            ParticipantKind::Buyer,
            Some(ProviderType::CloudVendor),
            None,
        ),
        new("B", ParticipantKind::Buyer, None, Some("nx")),
        new(
            "P",
            ParticipantKind::Provider,
            Some(ProviderType::CloudVendor),
            Some("nx"),
        ),
        new("", ParticipantKind::Buyer, None, None),
        new("bad\u{0}name", ParticipantKind::Buyer, None, None),
        new(&"x".repeat(201), ParticipantKind::Buyer, None, None),
    ];
    let before = exchange.count("SELECT count(*) FROM participants");
    for case in &refused {
        let (status, _) = code_of(exchange.admin.create_participant(case).await);
        assert_eq!(status, 400, "{case:?}");
    }
    assert_eq!(exchange.count("SELECT count(*) FROM participants"), before);
}

#[actix_web::test]
async fn the_bootstrap_admin_key_is_the_configured_one() {
    let exchange = TestExchange::start().await;
    let me = exchange.admin.me().await.unwrap();
    assert_eq!(me.kind, ParticipantKind::Admin);
    // Starting again with the same key keeps the same admin; a new key replaces the old one.
    let mut connection = exchange.sql();
    suanli_server::app::ensure_bootstrap_admin(&mut connection, &exchange.admin_api_key).unwrap();
    assert_eq!(
        exchange.count("SELECT count(*) FROM participants WHERE kind = 'admin'"),
        1
    );
    // A server started with a new key gives the admin that key; the old one no longer works.
    let restarted = exchange
        .start_another(|config| config.admin_api_key = Some("rotated-key".into()))
        .await;
    assert_eq!(
        code_of(exchange.anonymous.token(&exchange.admin_api_key).await).0,
        401
    );
    let rotated = restarted.anonymous.login("rotated-key").await.unwrap();
    assert_eq!(rotated.me().await.unwrap().id, me.id);
    assert_eq!(
        restarted.count("SELECT count(*) FROM participants WHERE kind = 'admin'"),
        1
    );
}
