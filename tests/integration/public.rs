//! Reference data and operational endpoints, without a token.

use std::collections::BTreeSet;

use suanli_sdk::{ComputeClass, Tier};
use suanli_tests::{TestExchange, new_bid, window};

#[actix_web::test]
async fn reference_data_has_every_hub_cluster_and_sku() {
    let exchange = TestExchange::start().await;
    let hubs = exchange.anonymous.hubs().await.unwrap();
    let codes: BTreeSet<&str> = hubs.iter().map(|hub| hub.code.as_str()).collect();
    assert_eq!(
        codes,
        BTreeSet::from(["bth", "yrd", "gba", "cy", "nmg", "gz", "gs", "nx"])
    );
    assert_eq!(hubs.iter().filter(|hub| hub.tier == Tier::West).count(), 4);
    assert_eq!(hubs.iter().map(|hub| hub.clusters.len()).sum::<usize>(), 10);
    let yrd = hubs.iter().find(|hub| hub.code == "yrd").unwrap();
    let clusters: Vec<&str> = yrd.clusters.iter().map(|c| c.code.as_str()).collect();
    assert_eq!(clusters, ["wuhu", "yrd-eco-green"]);
    assert_eq!(yrd.pue.to_string(), "1.25");

    let latency = exchange.anonymous.hub_latency().await.unwrap();
    for from in &codes {
        for to in &codes {
            assert_eq!(
                latency.ms[*from][*to], latency.ms[*to][*from],
                "{from}->{to} is symmetric"
            );
        }
        assert_eq!(latency.ms[*from][*from], 1);
    }
    assert_eq!(latency.ms["gs"]["nx"], 6);

    let skus = exchange.anonymous.skus().await.unwrap();
    let sku_codes: BTreeSet<&str> = skus.iter().map(|sku| sku.code.as_str()).collect();
    for code in [
        "cpu.general.vcpu",
        "ai.ascend-910b",
        "ai.metax-c500",
        "ai.mthreads-s4000",
        "ai.nvidia-h20",
        "hpc.node",
    ] {
        assert!(sku_codes.contains(code), "{code}");
    }
    let ascend = skus
        .iter()
        .find(|sku| sku.code == "ai.ascend-910b")
        .unwrap();
    assert_eq!(
        (ascend.class, ascend.unit.as_str()),
        (ComputeClass::Intelligent, "card-hour")
    );
    assert_eq!(ascend.perf_fp16_tflops.unwrap().to_string(), "320");
}

#[actix_web::test]
async fn health_readiness_metrics_and_openapi_are_served() {
    let exchange = TestExchange::start().await;
    exchange
        .participant(suanli_sdk::ParticipantKind::Buyer, "Buyer")
        .await;
    assert_eq!(exchange.anonymous.healthz().await.unwrap().status, "ok");
    assert_eq!(exchange.anonymous.readyz().await.unwrap().status, "ready");

    let metrics = exchange
        .anonymous
        .request(reqwest::Method::GET, "/metrics")
        .send()
        .await
        .unwrap();
    assert_eq!(metrics.status(), 200);
    let text = metrics.text().await.unwrap();
    assert!(
        text.contains(
            "suanli_http_requests_total{method=\"GET\",route=\"/readyz\",status=\"200\"} 1"
        ),
        "{text}"
    );
    assert!(
        text.contains("suanli_events_total{kind=\"participant_created\"} 1"),
        "{text}"
    );

    // A bid is a batch, and its commit is timed (the expiry ticker commits batches of its own
    // meanwhile, so the count grows by at least one).
    let before = exchange.metric("suanli_batch_commit_seconds_count").await;
    let (_, buyer) = exchange.funded_buyer("Metered buyer", "1000").await;
    buyer
        .place_bid(&new_bid("ai.metax-c500", 1, window(1, 2), "10"))
        .await
        .unwrap();
    assert!(exchange.metric("suanli_batch_commit_seconds_count").await > before);
    assert!(exchange.metric("suanli_batch_commit_seconds_sum").await > 0.0);

    let document: serde_json::Value = exchange
        .anonymous
        .request(reqwest::Method::GET, "/v1/openapi.json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(document["openapi"].as_str().unwrap().starts_with("3."));
    let paths = document["paths"].as_object().unwrap();
    for path in [
        "/healthz",
        "/readyz",
        "/metrics",
        "/v1/hubs",
        "/v1/hubs/latency",
        "/v1/skus",
        "/v1/auth/token",
        "/v1/participants",
        "/v1/participants/me",
        "/v1/participants/{id}/deposits",
        "/v1/accounts/me",
        "/v1/audit/log",
        "/v1/audit/verify",
    ] {
        assert!(paths.contains_key(path), "openapi lacks {path}");
    }
    assert!(document["components"]["schemas"]["NewDeposit"].is_object());
}

#[actix_web::test]
async fn readiness_fails_when_the_database_is_gone() {
    let exchange = TestExchange::start().await;
    let mut connection = exchange.server_sql();
    // The database's name: the URL's path, without its query.
    let path = exchange.database_url.split('?').next().unwrap();
    let database = path.rsplit('/').next().unwrap().to_owned();
    // Close every connection the server holds and refuse new ones.
    diesel::RunQueryDsl::execute(
        diesel::sql_query(format!(
            "ALTER DATABASE {database} WITH ALLOW_CONNECTIONS false"
        )),
        &mut connection,
    )
    .unwrap();
    diesel::RunQueryDsl::execute(
        diesel::sql_query(format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{database}' AND pid <> pg_backend_pid()"
        )),
        &mut connection,
    )
    .unwrap();
    let (status, code) = crate::code_of(exchange.anonymous.readyz().await);
    assert_eq!((status, code.as_str()), (503, "unavailable"));
    assert_eq!(exchange.anonymous.healthz().await.unwrap().status, "ok");
    diesel::RunQueryDsl::execute(
        diesel::sql_query(format!(
            "ALTER DATABASE {database} WITH ALLOW_CONNECTIONS true"
        )),
        &mut connection,
    )
    .unwrap();
}
