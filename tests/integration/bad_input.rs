//! Bad input gets a 400 (or 413) with a code, changes nothing, and never a 500.

use reqwest::Method;
use serde_json::json;
use suanli_sdk::ParticipantKind;
use suanli_tests::TestExchange;

/// Sends `body` as raw bytes with a JSON content type and returns the status and the error code.
async fn send_raw(client: &suanli_sdk::Client, path: &str, body: Vec<u8>) -> (u16, String) {
    let response = client
        .request(Method::POST, path)
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body: serde_json::Value = response.json().await.expect("error bodies are JSON");
    (
        status,
        body["code"]
            .as_str()
            .expect("error bodies have a code")
            .to_owned(),
    )
}

#[actix_web::test]
async fn malformed_deposits_are_refused_and_change_nothing() {
    let exchange = TestExchange::start().await;
    let (buyer, _) = exchange.participant(ParticipantKind::Buyer, "Buyer").await;
    let path = format!("/v1/participants/{}/deposits", buyer.participant.id);
    let audit_before = exchange.count("SELECT count(*) FROM audit_log");
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("not JSON", b"{amount: 1".to_vec(), "invalid_body"),
        ("empty body", Vec::new(), "invalid_body"),
        (
            "JSON number for money",
            json!({"amount": 100, "reference": "r", "idempotency_key": "k"})
                .to_string()
                .into_bytes(),
            "invalid_body",
        ),
        (
            "not a decimal",
            json!({"amount": "ten", "reference": "r", "idempotency_key": "k"})
                .to_string()
                .into_bytes(),
            "invalid_body",
        ),
        (
            "negative",
            json!({"amount": "-5", "reference": "r", "idempotency_key": "k"})
                .to_string()
                .into_bytes(),
            "invalid_amount",
        ),
        (
            "zero",
            json!({"amount": "0.00", "reference": "r", "idempotency_key": "k"})
                .to_string()
                .into_bytes(),
            "invalid_amount",
        ),
        (
            "below a fen",
            json!({"amount": "1.001", "reference": "r", "idempotency_key": "k"})
                .to_string()
                .into_bytes(),
            "invalid_amount",
        ),
        (
            "huge",
            json!({"amount": "1e30", "reference": "r", "idempotency_key": "k"})
                .to_string()
                .into_bytes(),
            "invalid_body",
        ),
        (
            "too large",
            json!({"amount": "99999999999999999", "reference": "r", "idempotency_key": "k"})
                .to_string()
                .into_bytes(),
            "invalid_amount",
        ),
        (
            "missing key",
            json!({"amount": "5", "reference": "r"})
                .to_string()
                .into_bytes(),
            "invalid_body",
        ),
        (
            "empty key",
            json!({"amount": "5", "reference": "r", "idempotency_key": ""})
                .to_string()
                .into_bytes(),
            "invalid_field",
        ),
        (
            "wrong type",
            json!({"amount": "5", "reference": 7, "idempotency_key": "k"})
                .to_string()
                .into_bytes(),
            "invalid_body",
        ),
        (
            "unknown field",
            json!({"amount": "5", "reference": "r", "idempotency_key": "k", "to": "me"})
                .to_string()
                .into_bytes(),
            "invalid_body",
        ),
        ("array", b"[1,2]".to_vec(), "invalid_body"),
        (
            "NUL in text",
            json!({"amount": "5", "reference": "a\u{0}b", "idempotency_key": "k"})
                .to_string()
                .into_bytes(),
            "invalid_field",
        ),
        (
            "invalid UTF-8",
            b"{\"amount\":\"5\",\"reference\":\"\xff\",\"idempotency_key\":\"k\"}".to_vec(),
            "invalid_body",
        ),
    ];
    for (what, body, code) in cases {
        assert_eq!(
            send_raw(&exchange.admin, &path, body).await,
            (400, code.to_owned()),
            "{what}"
        );
    }
    assert_eq!(
        send_raw(
            &exchange.admin,
            "/v1/participants/not-a-uuid/deposits",
            b"{}".to_vec()
        )
        .await
        .0,
        400
    );
    assert_eq!(exchange.count("SELECT count(*) FROM deposits"), 0);
    assert_eq!(exchange.count("SELECT count(*) FROM ledger_entries"), 0);
    assert_eq!(
        exchange.count("SELECT count(*) FROM audit_log"),
        audit_before
    );
}

#[actix_web::test]
async fn oversized_bodies_get_413_and_wrong_content_types_400() {
    let exchange = TestExchange::start().await;
    let big = json!({"name": "x".repeat(100_000), "kind": "buyer"})
        .to_string()
        .into_bytes();
    assert_eq!(
        send_raw(&exchange.admin, "/v1/participants", big).await,
        (413, "body_too_large".to_owned())
    );
    let response = exchange
        .admin
        .request(Method::POST, "/v1/participants")
        .header("Content-Type", "text/plain")
        .body(r#"{"name":"x","kind":"buyer"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(exchange.count("SELECT count(*) FROM participants"), 1);
}

#[actix_web::test]
async fn no_garbage_makes_the_server_answer_500() {
    let exchange = TestExchange::start().await;
    let (buyer, _) = exchange.participant(ParticipantKind::Buyer, "Buyer").await;
    let bodies: Vec<Vec<u8>> = vec![
        b"null".to_vec(),
        b"\"string\"".to_vec(),
        b"{\"kind\":\"emperor\",\"name\":\"x\"}".to_vec(),
        b"{\"api_key\":null}".to_vec(),
        b"{\"api_key\":\"\\u0000\"}".to_vec(),
        format!("{{\"api_key\":\"{}\"}}", "k".repeat(10_000)).into_bytes(),
        b"{\"amount\":\"NaN\",\"reference\":\"r\",\"idempotency_key\":\"k\"}".to_vec(),
        b"{\"amount\":\"-0\",\"reference\":\"r\",\"idempotency_key\":\"k\"}".to_vec(),
        vec![0xff, 0xfe, 0x00],
        b"{".repeat(10_000),
    ];
    let deposit_path = format!("/v1/participants/{}/deposits", buyer.participant.id);
    for path in ["/v1/auth/token", "/v1/participants", deposit_path.as_str()] {
        for body in &bodies {
            let (status, _) = send_raw(&exchange.admin, path, body.clone()).await;
            assert!(
                (400..500).contains(&status),
                "{path} answered {status} to {:?}",
                String::from_utf8_lossy(body)
            );
        }
    }
    assert_eq!(exchange.anonymous.healthz().await.unwrap().status, "ok");
    assert_eq!(exchange.count("SELECT count(*) FROM deposits"), 0);
}

#[actix_web::test]
async fn a_known_path_under_another_method_is_405_and_an_unknown_path_404() {
    let exchange = TestExchange::start().await;
    let send = |method: reqwest::Method, path: &str| {
        exchange
            .anonymous
            .request(method, path)
            .header("Authorization", "Bearer x")
            .send()
    };
    let response = send(reqwest::Method::PUT, "/v1/offers").await.unwrap();
    assert_eq!(response.status(), 405);
    assert_eq!(response.headers()["allow"], "GET, POST");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["code"], "method_not_allowed", "{body}");
    let id = uuid::Uuid::new_v4();
    let response = send(reqwest::Method::PATCH, &format!("/v1/bids/{id}"))
        .await
        .unwrap();
    assert_eq!(
        (
            response.status().as_u16(),
            response.headers()["allow"].to_str().unwrap()
        ),
        (405, "DELETE, GET")
    );
    // The path as routed (escapes decoded), and the console's pages, answer the same way.
    for (method, path, allow) in [
        (reqwest::Method::PUT, "/v1/%6Fffers", "GET, POST"),
        (reqwest::Method::POST, "/", "GET"),
        (reqwest::Method::DELETE, "/console/app.js", "GET"),
    ] {
        let response = send(method, path).await.unwrap();
        assert_eq!(
            (
                response.status().as_u16(),
                response.headers()["allow"].to_str().unwrap()
            ),
            (405, allow),
            "{path}"
        );
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["code"], "method_not_allowed", "{path}: {body}");
    }
    for path in ["/v1/offer", "/v1/offers/x/y", "/nothing"] {
        let response = send(reqwest::Method::GET, path).await.unwrap();
        assert_eq!(response.status(), 404, "{path}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["code"], "not_found", "{path}: {body}");
    }
}

#[actix_web::test]
async fn an_empty_query_parameter_is_a_parameter_not_given() {
    let exchange = TestExchange::start().await;
    let (_, buyer) = exchange.participant(ParticipantKind::Buyer, "Buyer").await;
    // As API.md writes the parameters each path takes.
    for path in [
        "/v1/market/trades?sku=&hub=&limit=",
        "/v1/market/book?sku=&hub=",
        "/v1/market/candles?sku=ai.ascend-910b&hub=&interval=1h",
    ] {
        let response = exchange
            .anonymous
            .request(reqwest::Method::GET, path)
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            200,
            "{path}: {}",
            response.text().await.unwrap()
        );
    }
    let response = buyer
        .request(reqwest::Method::GET, "/v1/bids?status=&cursor=&limit=")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    // A value given is still checked.
    let response = buyer
        .request(reqwest::Method::GET, "/v1/bids?status=&limit=0")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
}
