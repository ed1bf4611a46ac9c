//! Hub policies in the WebAssembly sandbox: hostile modules contained, uploads validated, and
//! active policies pricing and screening real matches, with decision records that replay.

use std::sync::Arc;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use suanli_sdk::{DataClass, DryRunRequest, NewParticipant, ParticipantKind};
use suanli_server::policy::{Fault, Pair, PolicyHost, PolicyKind, PolicyOutput, SandboxLimits};
use suanli_tests::{TestExchange, new_bid, new_offer, policy_component, window};

use crate::isolation::{activate, texts};

const SKU: &str = "ai.metax-c500";

/// A policy input for the host, made the way matching makes one.
fn input(mode: Option<&str>) -> suanli_server::policy::PolicyInput {
    let mut offer = new_offer("zhongwei", SKU, 2, window(1, 10), "10");
    if let Some(mode) = mode {
        offer.attributes = Some(
            serde_json::json!({"mode": mode})
                .as_object()
                .unwrap()
                .clone(),
        );
    }
    serde_json::from_value(serde_json::json!({
        "offer": {"id": "0193e0a4-0000-7000-8000-000000000001", "provider": "0193e0a4-0000-7000-8000-000000000002", "cluster": "zhongwei", "hub": "nx", "sku": SKU, "sku_class": "intelligent",
                  "quantity": 2, "window_start": 0, "window_end": 36000, "ask_price": "10", "green_share": 60,
                  "attributes": offer.attributes.map(|a| a.into_iter().map(|(k, v)| (k, v.as_str().unwrap().to_owned())).collect::<Vec<_>>()).unwrap_or_default()},
        "bid": {"id": "0193e0a4-0000-7000-8000-000000000003", "buyer": "0193e0a4-0000-7000-8000-000000000004", "skus": [SKU], "quantity": 1, "window_start": 3600, "window_end": 7200,
                "limit_price": "14", "data_origin": null, "max_latency_ms": null, "min_green_share": 0, "data_class": "general"},
        "offer_hub": {"code": "nx", "tier": "west", "region": "west", "renewable_share": 50, "carbon_g_per_kwh": 480, "pue": "1.2"},
        "origin_hub": null, "maker": "offer", "hours": 1, "units": 1, "latency_ms": null
    }))
    .unwrap()
}

#[test]
fn hostile_policies_are_contained_and_classified_and_the_next_evaluation_succeeds() {
    let host = PolicyHost::new(SandboxLimits::default()).unwrap();
    let (_, hostile) = host
        .prepare_upload(PolicyKind::Pricing, &policy_component("hostile"))
        .unwrap();
    let (_, good) = host
        .prepare_upload(PolicyKind::Pricing, &policy_component("west-green-pricing"))
        .unwrap();
    let cases = [
        ("loop", Fault::OutOfFuel),
        ("memory", Fault::Memory),
        ("recursion", Fault::StackOverflow),
        ("garbage", Fault::BadOutput(String::new())),
        ("oversized", Fault::OversizedOutput(4096)),
        ("trap", Fault::Trap(String::new())),
    ];
    for (mode, expected) in cases {
        let evaluation = host.evaluate(&hostile, &input(Some(mode)));
        let fault = evaluation.output.expect_err(mode);
        assert_eq!(fault.class(), expected.class(), "{mode}: {fault}");
        // The engine stays healthy: a good policy answers right after.
        let next = host.evaluate(&good, &input(None));
        assert!(
            matches!(next.output, Ok(PolicyOutput::Quote { .. })),
            "after {mode}: {next:?}"
        );
    }
    let quiet = host.evaluate(&hostile, &input(None));
    assert_eq!(
        quiet.output,
        Ok(PolicyOutput::Quote {
            unit_price: "10".into(),
            levy_bps: 0
        })
    );
    assert!(quiet.fuel_used > 0);

    // With fuel to spare, the wall-clock deadline stops the loop.
    let patient = PolicyHost::new(SandboxLimits {
        fuel_max: u64::MAX / 4,
        deadline_ms: 20,
        ..SandboxLimits::default()
    })
    .unwrap();
    let (_, hostile) = patient
        .prepare_upload(PolicyKind::Pricing, &policy_component("hostile"))
        .unwrap();
    let started = std::time::Instant::now();
    assert_eq!(
        patient.evaluate(&hostile, &input(Some("loop"))).output,
        Err(Fault::Deadline)
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
}

#[test]
fn policies_built_against_any_version_of_the_interface_decide() {
    let host = PolicyHost::new(SandboxLimits::default()).unwrap();
    let (_, current) = host
        .prepare_upload(PolicyKind::Pricing, &policy_component("west-green-pricing"))
        .unwrap();
    let (_, previous) = host
        .prepare_upload(PolicyKind::Pricing, &policy_component("float-pricing"))
        .unwrap();
    let (_, compliance) = host
        .prepare_upload(PolicyKind::Compliance, &policy_component("data-residency"))
        .unwrap();
    let (_, one_per_call) = host
        .prepare_upload(PolicyKind::Compliance, &policy_component("qualification"))
        .unwrap();
    assert_eq!(
        (
            current.interface_version(),
            previous.interface_version(),
            compliance.interface_version(),
            one_per_call.interface_version()
        ),
        ("0.3.0", "0.1.0", "0.3.0", "0.2.0")
    );
    assert_eq!(
        host.evaluate(&one_per_call, &input(None)).output,
        Ok(PolicyOutput::Allow)
    );
    // Ask 10, limit 14, green share 60 %, a daytime window: the same facts reach both versions
    // (0.2 as millionths and enums, 0.1 as strings), and each prices them by its own rule.
    let quote = |policy| match host.evaluate(policy, &input(None)).output {
        Ok(PolicyOutput::Quote {
            unit_price,
            levy_bps,
        }) => (unit_price, levy_bps),
        other => panic!("{other:?}"),
    };
    // West green: provider share 2, less 30 % for 60 % green: 11.4.
    assert_eq!(quote(&current), ("11.4".into(), 50));
    // Float pricing: 4 × 0.5 × (1 − √0.6 / 2) = 1.225404 (in millionths) to the provider.
    assert_eq!(quote(&previous), ("11.225404".into(), 50));
    assert_eq!(
        host.evaluate(&compliance, &input(None)).output,
        Ok(PolicyOutput::Allow)
    );
    // A fact the exchange never produces, such as an id that is not a UUID, cannot be put in
    // the interface of versions 0.2 and 0.3: a `bad_input` fault, closed like any other, and the
    // policy never starts (no fuel). Version 0.1 carries ids as strings and still decides.
    let mut odd = input(None);
    odd.offer.id = "o".into();
    let evaluation = host.evaluate(&current, &odd);
    assert_eq!(
        evaluation.output.map_err(|fault| fault.class()),
        Err("bad_input")
    );
    assert_eq!(evaluation.fuel_used, 0);
    assert!(host.evaluate(&previous, &odd).output.is_ok());
}

#[test]
fn a_batch_call_answers_each_pair_as_a_call_of_one_would_and_faults_as_a_whole() {
    let host = PolicyHost::new(SandboxLimits::default()).unwrap();
    let compile = |kind, name| {
        host.prepare_upload(kind, &policy_component(name))
            .unwrap()
            .1
    };
    let west = compile(PolicyKind::Pricing, "west-green-pricing");
    let hostile = compile(PolicyKind::Pricing, "hostile");
    let one_per_call = compile(PolicyKind::Compliance, "qualification");
    // Pairs that differ in limit, units and window, and one the interface cannot carry.
    let pairs: Vec<_> = (0..6)
        .map(|index| {
            let mut pair = input(None);
            pair.bid.limit_price = format!("{}.5", 11 + index);
            pair.units = 1 + index % 3;
            pair.bid.window_start = i64::from(index) * 3600;
            pair.bid.window_end = pair.bid.window_start + 7200;
            if index == 4 {
                pair.offer.id = "not-a-uuid".into();
            }
            Pair::new(pair)
        })
        .collect();
    let refs: Vec<_> = pairs.iter().collect();
    let limits = host.limits();
    for policy in [&west, &one_per_call] {
        let batch = host.evaluate_batch_within(policy, &refs, limits.fuel_max, limits.deadline_ms);
        let one_by_one: Vec<_> = pairs
            .iter()
            .map(|pair| host.evaluate(policy, pair.input()).output)
            .collect();
        assert_eq!(batch.outputs.as_ref(), Ok(&one_by_one));
        assert_eq!(
            one_by_one[4].as_ref().map_err(Fault::class),
            Err("bad_input")
        );
        assert!(one_by_one.iter().filter(|output| output.is_ok()).count() == 5);
        assert!(batch.fuel_used > 0);
    }
    // The quotes differ pair by pair: each answer is its own pair's.
    let quotes: std::collections::HashSet<_> = host
        .evaluate_batch_within(&west, &refs, limits.fuel_max, limits.deadline_ms)
        .outputs
        .unwrap()
        .into_iter()
        .filter_map(|output| output.ok().map(|output| format!("{output:?}")))
        .collect();
    assert_eq!(quotes.len(), 5);

    // One pair that traps stops the whole call: the batch is one sandbox instance. The caller
    // evaluates the pairs one by one then, and only the bad one fails.
    let mixed = [input(None), input(Some("trap")), input(None)].map(Pair::new);
    let mixed: Vec<_> = mixed.iter().collect();
    let batch = host.evaluate_batch_within(&hostile, &mixed, limits.fuel_max, limits.deadline_ms);
    assert_eq!(batch.outputs.map_err(|fault| fault.class()), Err("trap"));
    // Fuel and the deadline bound the whole call.
    let spinning = [input(None), input(Some("loop"))].map(Pair::new);
    let spinning: Vec<_> = spinning.iter().collect();
    let batch = host.evaluate_batch_within(&hostile, &spinning, 1_000_000, limits.deadline_ms);
    assert_eq!(
        batch.outputs.map_err(|fault| fault.class()),
        Err("out_of_fuel")
    );
    assert_eq!(batch.fuel_used, 1_000_000);
}

#[test]
fn evaluations_are_pure_functions_of_module_and_input() {
    let host: Arc<PolicyHost> = PolicyHost::new(SandboxLimits::default()).unwrap();
    let (_, policy) = host
        .prepare_upload(PolicyKind::Pricing, &policy_component("east-peak-pricing"))
        .unwrap();
    let first = host.evaluate(&policy, &input(None));
    for _ in 0..20 {
        assert_eq!(host.evaluate(&policy, &input(None)), first);
    }
}

pub(crate) async fn upload(
    client: &suanli_sdk::Client,
    hub: &str,
    kind: &str,
    bytes: Vec<u8>,
) -> (u16, serde_json::Value) {
    let response = client
        .request(
            reqwest::Method::POST,
            &format!("/v1/hubs/{hub}/policies?kind={kind}"),
        )
        .header("Content-Type", "application/wasm")
        .body(bytes)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

pub(crate) async fn operator(exchange: &TestExchange, hub: &str) -> suanli_sdk::Client {
    let new = NewParticipant {
        name: format!("{hub} operator"),
        kind: ParticipantKind::HubOperator,
        provider_type: None,
        hub: Some(hub.into()),
    };
    exchange.participant_from(&new).await.1
}

#[actix_web::test]
async fn uploads_that_are_not_clean_policies_are_refused() {
    let exchange =
        TestExchange::start_with(|config| config.policy_module_bytes_max = 200_000).await;
    let ningxia = operator(&exchange, "nx").await;
    let imports_wasi =
        wat::parse_str(r#"(component (import "wasi:clocks/wall-clock@0.2.0" (instance)))"#)
            .unwrap();
    let cases: Vec<(&str, &str, Vec<u8>, u16, &str)> = vec![
        ("imports", "pricing", imports_wasi, 422, "policy_imports"),
        (
            "core module without types",
            "pricing",
            wat::parse_str("(module)").unwrap(),
            400,
            "invalid_module",
        ),
        (
            "not wasm",
            "pricing",
            b"#!/bin/sh\necho hi\n".to_vec(),
            400,
            "invalid_module",
        ),
        (
            "too large",
            "pricing",
            vec![0u8; 300_000],
            413,
            "module_too_large",
        ),
        (
            "wrong world",
            "compliance",
            policy_component("east-peak-pricing"),
            422,
            "wrong_world",
        ),
        (
            "unknown kind",
            "surcharge",
            policy_component("east-peak-pricing"),
            400,
            "invalid_query",
        ),
    ];
    for (what, kind, bytes, status, code) in cases {
        let (got_status, body) = upload(&ningxia, "nx", kind, bytes).await;
        assert_eq!(
            (got_status, body["code"].as_str().unwrap()),
            (status, code),
            "{what}: {body}"
        );
    }
    // Memory shared between threads could make a decision depend on scheduling: the engine is
    // built without threads, so such a module does not compile and is refused, saying why.
    let shared_memory = wat::parse_str("(component (core module (memory 1 1 shared)))").unwrap();
    let (status, body) = upload(&ningxia, "nx", "pricing", shared_memory).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("invalid_module")),
        "{body}"
    );
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("threads") || message.contains("shared"),
        "{message}"
    );
    assert_eq!(exchange.count("SELECT count(*) FROM policy_modules"), 0);
    assert_eq!(exchange.anonymous.healthz().await.unwrap().status, "ok");
}

#[actix_web::test]
async fn orders_never_read_the_active_policies_and_an_activation_reaches_the_next_order() {
    // No expiry ticks: the writer reads the active policies when it starts and when an
    // activation tells it to, never for a batch of orders.
    let exchange = TestExchange::start_with(|config| config.expiry_tick_ms = 3_600_000).await;
    let ningxia = operator(&exchange, "nx").await;
    let (_, provider) = exchange
        .participant(ParticipantKind::Provider, "Ningxia Cloud")
        .await;
    let (_, buyer) = exchange.funded_buyer("Buyer", "10000").await;
    let (status, stored) = upload(
        &ningxia,
        "nx",
        "pricing",
        policy_component("west-green-pricing"),
    )
    .await;
    assert_eq!(status, 201, "{stored}");
    let digest = stored["digest"].as_str().unwrap().to_owned();
    let mut offer = new_offer("zhongwei", SKU, 4, window(1, 40), "10");
    offer.green_share = 60;
    provider.place_offer(&offer).await.unwrap();

    // Another session holds the active policies locked: orders trade on, because no batch of
    // orders reads them (the generous bound only keeps a regression from hanging the suite).
    use diesel::RunQueryDsl;
    let mut lock = exchange.sql();
    diesel::sql_query("BEGIN").execute(&mut lock).unwrap();
    diesel::sql_query("LOCK TABLE active_policies IN ACCESS EXCLUSIVE MODE")
        .execute(&mut lock)
        .unwrap();
    let bid = |key: &str| {
        let mut bid = new_bid(SKU, 1, window(2, 25), "14");
        bid.idempotency_key = key.into();
        bid
    };
    let unlocked = actix_web::rt::time::timeout(
        std::time::Duration::from_secs(30),
        buyer.place_bid(&bid("while-locked")),
    )
    .await
    .expect("a bid waited for the active policies' lock")
    .unwrap();
    assert_eq!(unlocked.contracts[0].unit_price.to_string(), "10");
    diesel::sql_query("COMMIT").execute(&mut lock).unwrap();

    // The activation answers once the writer has taken it in: the very next bid is priced by
    // the policy (spread 4, green 60 %: 10 + 2 × 0.7).
    let activated = ningxia
        .request(
            reqwest::Method::POST,
            &format!("/v1/hubs/nx/policies/{digest}/activate"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(activated.status(), 200);
    let next = buyer.place_bid(&bid("next")).await.unwrap();
    assert_eq!(
        (
            next.contracts[0].unit_price.to_string(),
            next.contracts[0].decisions.len()
        ),
        ("11.4".into(), 1)
    );
}

#[actix_web::test]
async fn an_operator_uploads_dry_runs_and_activates_a_policy_and_prices_change() {
    let exchange = TestExchange::start().await;
    let ningxia = operator(&exchange, "nx").await;
    let beijing = operator(&exchange, "bth").await;
    let (_, regulator) = exchange
        .participant(ParticipantKind::Regulator, "Regulator")
        .await;
    let (_, provider) = exchange
        .participant(ParticipantKind::Provider, "Ningxia Cloud")
        .await;
    let (_, buyer) = exchange.funded_buyer("Buyer", "10000").await;

    let (status, stored) = upload(
        &ningxia,
        "nx",
        "pricing",
        policy_component("west-green-pricing"),
    )
    .await;
    assert_eq!(status, 201, "{stored}");
    assert_eq!(stored["status"], "stored");
    let digest = stored["digest"].as_str().unwrap().to_owned();
    assert_eq!(digest.len(), 64);
    // Another hub's operator may not touch it; a regulator may look.
    assert_eq!(
        upload(
            &beijing,
            "nx",
            "pricing",
            policy_component("west-green-pricing")
        )
        .await
        .0,
        403
    );
    let activate_path = format!("/v1/hubs/nx/policies/{digest}/activate");
    assert_eq!(
        beijing
            .request(reqwest::Method::POST, &activate_path)
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
    let listed: Vec<suanli_sdk::PolicySummary> = regulator
        .request(reqwest::Method::GET, "/v1/hubs/nx/policies")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!((listed.len(), listed[0].status.as_str()), (1, "stored"));
    let module = regulator
        .request(
            reqwest::Method::GET,
            &format!("/v1/policies/{digest}/module"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        module.bytes().await.unwrap().to_vec(),
        policy_component("west-green-pricing")
    );

    // A dry run prices without activating: spread 4, green 60 % → 10 + 2 × (1 - 0.3) = 11.4
    // (a window of more than a day is never all-night, so no night discount applies).
    let mut offer = new_offer("zhongwei", SKU, 2, window(1, 40), "10");
    offer.green_share = 60;
    let bid = new_bid(SKU, 1, window(2, 25), "14");
    let dry_run = DryRunRequest {
        offer: offer.clone(),
        bid: bid.clone(),
        maker: None,
    };
    let decision: suanli_sdk::PolicyDecision = ningxia
        .request(
            reqwest::Method::POST,
            &format!("/v1/hubs/nx/policies/{digest}/dry-run"),
        )
        .json(&dry_run)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        decision.decision.as_ref().unwrap()["unit_price"],
        "11.4",
        "{decision:?}"
    );
    assert!(decision.fuel_used > 0);

    // Before activation the built-in rule prices at the ask.
    provider.place_offer(&offer).await.unwrap();
    let before = buyer.place_bid(&bid).await.unwrap();
    assert_eq!(
        (
            before.contracts[0].unit_price.to_string(),
            before.contracts[0].decisions.len()
        ),
        ("10".into(), 0)
    );

    let activated: suanli_sdk::PolicySummary = ningxia
        .request(reqwest::Method::POST, &activate_path)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(activated.status, "active");
    let mut second = bid.clone();
    second.idempotency_key = "second".into();
    let after = buyer.place_bid(&second).await.unwrap();
    let contract = &after.contracts[0];
    assert_eq!(
        (contract.unit_price.to_string(), contract.levy_bps),
        ("11.4".into(), 50)
    );
    assert_eq!(contract.decisions.len(), 1);
    assert_eq!(contract.decisions[0]["policy_digest"], digest.as_str());
    assert_eq!(contract.decisions[0]["kind"], "pricing");

    let replay = regulator.replay_contract(contract.id).await.unwrap();
    assert_eq!(replay.decisions.len(), 1);
    assert!(
        replay.decisions.iter().all(|decision| decision.matches),
        "{replay:?}"
    );
    for kind in ["policy_uploaded", "policy_activated"] {
        assert_eq!(
            exchange.count(&format!(
                "SELECT count(*) FROM audit_log WHERE kind = '{kind}'"
            )),
            1,
            "{kind}"
        );
    }
}

#[actix_web::test]
async fn a_residency_policy_keeps_important_data_in_its_region() {
    let exchange = TestExchange::start().await;
    let beijing = operator(&exchange, "bth").await;
    let (_, provider) = exchange
        .participant(ParticipantKind::Provider, "Provider")
        .await;
    let (_, buyer) = exchange.funded_buyer("Beijing lab", "10000").await;
    let (_, regulator) = exchange
        .participant(ParticipantKind::Regulator, "Regulator")
        .await;
    let (_, stored) = upload(
        &beijing,
        "bth",
        "compliance",
        policy_component("data-residency"),
    )
    .await;
    let digest = stored["digest"].as_str().unwrap();
    beijing
        .request(
            reqwest::Method::POST,
            &format!("/v1/hubs/bth/policies/{digest}/activate"),
        )
        .send()
        .await
        .unwrap();

    // Ningxia (west region) is cheaper than Inner Mongolia (north region, like Beijing).
    provider
        .place_offer(&new_offer("zhongwei", SKU, 2, window(1, 10), "5"))
        .await
        .unwrap();
    provider
        .place_offer(&new_offer("helinger", SKU, 2, window(1, 10), "8"))
        .await
        .unwrap();
    let mut bid = new_bid(SKU, 1, window(2, 2), "10");
    bid.data_origin = Some("bth".into());
    bid.data_class = Some(DataClass::Important);
    bid.max_latency_ms = Some(60);
    let placed = buyer.place_bid(&bid).await.unwrap();
    assert_eq!(placed.contracts.len(), 1);
    assert_eq!(
        placed.contracts[0].hub, "nmg",
        "important data stays in the north"
    );
    assert_eq!(placed.contracts[0].decisions[0]["kind"], "compliance");
    // The parties see the decisions without their inputs, which hold the other side's order
    // (here the bid's limit); the regulator reads them.
    let id = placed.contracts[0].id;
    let provider_sees = provider.contract(id).await.unwrap();
    let provider_lists = provider
        .contracts(None, None, None, 10)
        .await
        .unwrap()
        .items;
    for decisions in [
        &placed.contracts[0].decisions,
        &provider_sees.decisions,
        &provider_lists[0].decisions,
    ] {
        assert!(
            !decisions.is_empty() && decisions.iter().all(|d| d.get("input").is_none()),
            "{decisions:?}"
        );
    }
    let recorded = regulator.contract(id).await.unwrap();
    let listed = regulator
        .contracts(None, None, None, 10)
        .await
        .unwrap()
        .items;
    assert_eq!(listed[0].decisions, recorded.decisions);
    // The policy saw the bid as the buyer placed it: its origin and its latency bound.
    let input: serde_json::Value =
        serde_json::from_str(recorded.decisions[0]["input"].as_str().unwrap()).unwrap();
    assert_eq!(
        (
            &input["bid"]["data_origin"],
            &input["bid"]["max_latency_ms"]
        ),
        (&serde_json::json!("bth"), &serde_json::json!(60))
    );

    // General data from the same origin may go west, to the cheaper offer.
    let mut general = bid.clone();
    general.idempotency_key = "general".into();
    general.data_class = Some(DataClass::General);
    assert_eq!(
        buyer.place_bid(&general).await.unwrap().contracts[0].hub,
        "nx"
    );

    let replay = regulator
        .replay_contract(placed.contracts[0].id)
        .await
        .unwrap();
    assert!(
        !replay.decisions.is_empty() && replay.decisions.iter().all(|d| d.matches),
        "{replay:?}"
    );
}

#[actix_web::test]
async fn a_faulting_policy_fails_closed_and_is_recorded() {
    // Each fault classified as itself: hub budgets wide enough that neither evaluation is cut
    // short by them on a busy machine (budgets have their own tests, in isolation.rs).
    let exchange = TestExchange::start_with(|config| {
        config.policy_hub_order_fuel_max = 1_000_000_000;
        config.policy_hub_order_wall_ms_max = 10_000;
        config.policy_hub_batch_wall_ms_max = 10_000;
        config.policy_deadline_ms = 10_000;
    })
    .await;
    let ningxia = operator(&exchange, "nx").await;
    let (_, provider) = exchange
        .participant(ParticipantKind::Provider, "Provider")
        .await;
    let (_, buyer) = exchange.funded_buyer("Buyer", "10000").await;
    let (_, stored) = upload(&ningxia, "nx", "pricing", policy_component("hostile")).await;
    let digest = stored["digest"].as_str().unwrap();
    ningxia
        .request(
            reqwest::Method::POST,
            &format!("/v1/hubs/nx/policies/{digest}/activate"),
        )
        .send()
        .await
        .unwrap();

    for mode in ["loop", "below-ask"] {
        let mut offer = new_offer("zhongwei", SKU, 1, window(1, 10), "10");
        offer.attributes = Some(
            serde_json::json!({"mode": mode})
                .as_object()
                .unwrap()
                .clone(),
        );
        provider.place_offer(&offer).await.unwrap();
    }
    let placed = buyer
        .place_bid(&new_bid(SKU, 1, window(2, 2), "12"))
        .await
        .unwrap();
    assert!(
        placed.contracts.is_empty(),
        "no trade with a faulting policy"
    );
    let classes: Vec<String> = {
        use diesel::RunQueryDsl;
        #[derive(diesel::QueryableByName)]
        struct Class {
            #[diesel(sql_type = diesel::sql_types::Text)]
            class: String,
        }
        diesel::sql_query("SELECT class FROM policy_faults ORDER BY class")
            .load::<Class>(&mut exchange.sql())
            .unwrap()
            .into_iter()
            .map(|row| row.class)
            .collect()
    };
    assert_eq!(classes, ["out_of_fuel", "price_below_ask"]);
    // The bid rests; a well-behaved offer in the same hub still trades with it.
    let good = provider
        .place_offer(&new_offer("zhongwei", SKU, 1, window(1, 10), "10"))
        .await
        .unwrap();
    assert_eq!(good.contracts.len(), 1);
    assert_eq!(good.contracts[0].bid_id, placed.bid.id);
    assert_eq!(exchange.anonymous.readyz().await.unwrap().status, "ready");
}

/// A `/metrics` counter's value (0 if absent).
async fn metric(exchange: &TestExchange, series: &str) -> u64 {
    exchange.metric(series).await as u64
}

/// Places one-unit offers of `provider` in `cluster` at these asks over the next ten hours, each
/// with the hostile policy's `mode` when it has one.
async fn place_offers(
    provider: &suanli_sdk::Client,
    cluster: &str,
    offers: &[(&str, Option<&str>)],
) {
    for (ask, mode) in offers {
        let mut offer = new_offer(cluster, SKU, 1, window(1, 10), ask);
        offer.attributes = mode.map(|mode| {
            serde_json::json!({"mode": mode})
                .as_object()
                .unwrap()
                .clone()
        });
        provider.place_offer(&offer).await.unwrap();
    }
}

/// `buyer`'s bid for `units` in `hub` alone, at most 12 CNY.
async fn bid_in(buyer: &suanli_sdk::Client, hub: &str, units: u32) -> suanli_sdk::PlacedBid {
    let mut bid = new_bid(SKU, units, window(2, 2), "12");
    bid.hubs = Some(vec![hub.into()]);
    buyer.place_bid(&bid).await.unwrap()
}

/// The unit prices of a placed bid's contracts, sorted.
fn prices_of(placed: &suanli_sdk::PlacedBid) -> Vec<String> {
    let mut prices: Vec<String> = placed
        .contracts
        .iter()
        .map(|contract| contract.unit_price.to_string())
        .collect();
    prices.sort();
    prices
}

#[actix_web::test]
async fn a_hub_decides_an_orders_candidates_in_one_call_and_a_bad_pair_fails_alone() {
    // Every batch call has one of its pairs evaluated again alone. Budgets are counted in fuel
    // (wall-clock bounds far away), so that what runs out is the same on any machine.
    let exchange = TestExchange::start_with(|config| {
        config.policy_batch_check_every = 1;
        config.policy_hub_order_fuel_max = 100_000_000;
        config.policy_hub_order_wall_ms_max = 10_000;
        config.policy_hub_batch_wall_ms_max = 10_000;
        config.policy_deadline_ms = 10_000;
    })
    .await;
    let ningxia = operator(&exchange, "nx").await;
    let guizhou = operator(&exchange, "gz").await;
    let (_, regulator) = exchange
        .participant(ParticipantKind::Regulator, "Regulator")
        .await;
    let (_, provider) = exchange
        .participant(ParticipantKind::Provider, "Provider")
        .await;
    let (_, buyer) = exchange.funded_buyer("Buyer", "10000").await;
    activate(&ningxia, "nx", "pricing", "west-green-pricing").await;
    activate(&ningxia, "nx", "compliance", "data-residency").await;
    for ask in ["10", "10.1", "10.2", "10.3"] {
        let mut offer = new_offer("zhongwei", SKU, 1, window(1, 10), ask);
        offer.green_share = 60;
        provider.place_offer(&offer).await.unwrap();
    }
    let (batched, batches) = (
        metric(&exchange, "suanli_policy_decisions_total{call=\"batch\"}").await,
        metric(&exchange, "suanli_policy_batch_calls_total").await,
    );
    // Four candidates in one hub: its compliance policy is called once for all four, then its
    // pricing policy once; each pair's decisions are recorded and replay one by one.
    let placed = buyer
        .place_bid(&new_bid(SKU, 4, window(2, 2), "12"))
        .await
        .unwrap();
    assert_eq!(placed.contracts.len(), 4, "{placed:?}");
    assert_eq!(
        (
            metric(&exchange, "suanli_policy_decisions_total{call=\"batch\"}").await - batched,
            metric(&exchange, "suanli_policy_batch_calls_total").await - batches
        ),
        (8, 2)
    );
    let mut prices = Vec::new();
    for contract in &placed.contracts {
        assert_eq!(contract.decisions.len(), 2, "{contract:?}");
        let replay = regulator.replay_contract(contract.id).await.unwrap();
        assert!(
            replay.decisions.len() == 2 && replay.decisions.iter().all(|d| d.matches),
            "{replay:?}"
        );
        prices.push(contract.unit_price.to_string());
    }
    prices.sort();
    // Each pair priced by its own ask: spread × 0.5 × (1 − 0.3) to the provider, at night or not.
    assert_eq!(prices.len(), 4);
    assert!(
        prices.windows(2).all(|pair| pair[0] < pair[1]),
        "{prices:?}"
    );

    // In Guizhou a policy traps on one pair: the batch call fails as a whole (recorded), the
    // pairs are evaluated one by one, and only the bad one fails.
    activate(&guizhou, "gz", "pricing", "hostile").await;
    let offers = [("10", None), ("10.1", Some("trap")), ("10.2", None)];
    place_offers(&provider, "guian", &offers).await;
    let single = metric(&exchange, "suanli_policy_decisions_total{call=\"single\"}").await;
    let placed = bid_in(&buyer, "gz", 3).await;
    assert_eq!(prices_of(&placed), ["10", "10.2"], "{placed:?}");
    assert!(
        placed
            .reasons
            .iter()
            .any(|reason| reason.code == "policy_fault"),
        "{placed:?}"
    );
    assert_eq!(
        metric(&exchange, "suanli_policy_decisions_total{call=\"single\"}").await - single,
        3
    );
    let faults_in = |hub: &str, column: &str| {
        texts(
            &exchange,
            &format!("SELECT {column} AS text FROM policy_faults WHERE hub = '{hub}' ORDER BY id"),
        )
    };
    let messages = faults_in("gz", "message");
    assert_eq!(faults_in("gz", "class"), ["trap", "trap"], "{messages:?}");
    assert!(
        messages[0].starts_with("a batch call of 3 pairs"),
        "{messages:?}"
    );

    // In Gansu the last pair loops: the batch call gets half of the hub's budget for the order
    // and runs out of fuel; the pairs are then priced one by one with the other half, and the
    // two good ones trade.
    let gansu = operator(&exchange, "gs").await;
    activate(&gansu, "gs", "pricing", "hostile").await;
    let offers = [("10", None), ("10.1", None), ("10.2", Some("loop"))];
    place_offers(&provider, "qingyang", &offers).await;
    let placed = bid_in(&buyer, "gs", 3).await;
    assert_eq!(prices_of(&placed), ["10", "10.1"], "{placed:?}");
    assert_eq!(faults_in("gs", "class"), ["out_of_fuel", "out_of_fuel"]);

    // In Beijing a policy prices each pair by the pairs it saw before in the same call (the
    // first as alone, the later ones higher). Every call is checked, one pair from the last
    // back, so within three bids a later pair is checked: its answers differ, that call's
    // decisions are discarded, every pair is priced alone, and the policy is never called with a
    // batch again. Until then the unchecked calls' later pairs trade at the batch's prices.
    let beijing = operator(&exchange, "bth").await;
    activate(&beijing, "bth", "pricing", "hostile").await;
    let caught = || {
        texts(
            &exchange,
            "SELECT message AS text FROM policy_faults WHERE hub = 'bth' AND class = 'batch_mismatch'",
        )
    };
    let neighbours = [
        ("10", Some("neighbours")),
        ("10.1", Some("neighbours")),
        ("10.2", Some("neighbours")),
    ];
    let mut bids = 0;
    while caught().is_empty() && bids < 3 {
        let single = metric(&exchange, "suanli_policy_decisions_total{call=\"single\"}").await;
        place_offers(&provider, "zhangjiakou", &neighbours).await;
        let placed = bid_in(&buyer, "bth", 3).await;
        bids += 1;
        if caught().is_empty() {
            assert_eq!(prices_of(&placed), ["10", "10.100001", "10.200002"]);
        } else {
            assert_eq!(prices_of(&placed), ["10", "10.1", "10.2"], "{placed:?}");
            assert_eq!(
                metric(&exchange, "suanli_policy_decisions_total{call=\"single\"}").await - single,
                3
            );
            for contract in &placed.contracts {
                let replay = regulator.replay_contract(contract.id).await.unwrap();
                assert!(replay.decisions.iter().all(|d| d.matches), "{replay:?}");
            }
        }
    }
    let messages = caught();
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert!(messages[0].contains(" of 3: "), "{}", messages[0]);
    // Caught once, never batched again.
    let batches = metric(&exchange, "suanli_policy_batch_calls_total").await;
    place_offers(&provider, "zhangjiakou", &neighbours).await;
    assert_eq!(
        prices_of(&bid_in(&buyer, "bth", 3).await),
        ["10", "10.1", "10.2"]
    );
    assert_eq!(
        metric(&exchange, "suanli_policy_batch_calls_total").await,
        batches
    );
}

#[actix_web::test]
async fn a_hub_stores_only_so_many_policies() {
    let exchange = TestExchange::start_with(|config| config.policy_uploads_per_hub_max = 2).await;
    let ningxia = operator(&exchange, "nx").await;
    assert_eq!(
        upload(
            &ningxia,
            "nx",
            "pricing",
            policy_component("west-green-pricing")
        )
        .await
        .0,
        201
    );
    assert_eq!(
        upload(
            &ningxia,
            "nx",
            "compliance",
            policy_component("qualification")
        )
        .await
        .0,
        201
    );
    let (status, body) = upload(
        &ningxia,
        "nx",
        "pricing",
        policy_component("east-peak-pricing"),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str().unwrap()),
        (422, "policy_quota_reached"),
        "{body}"
    );
    // Another hub has its own quota.
    let beijing = operator(&exchange, "bth").await;
    assert_eq!(
        upload(
            &beijing,
            "bth",
            "pricing",
            policy_component("east-peak-pricing")
        )
        .await
        .0,
        201
    );
}

#[test]
fn the_compiled_cache_is_bounded_and_keeps_the_active_policies() {
    let host = PolicyHost::new(SandboxLimits::default()).unwrap();
    let compile = |name: &str| {
        host.prepare_upload(PolicyKind::Pricing, &policy_component(name))
            .unwrap()
            .1
    };
    let (hostile, west, east) = (
        compile("hostile"),
        compile("west-green-pricing"),
        compile("east-peak-pricing"),
    );
    let registry = suanli_server::policy::Registry::new(2);
    registry.pin([hostile.digest.clone()].into_iter().collect());
    registry.insert(hostile.clone());
    registry.insert(west.clone());
    registry.insert(east.clone());
    assert_eq!(registry.len(), 2);
    assert!(
        registry.get(&hostile.digest).is_some(),
        "the pinned (active) policy stays, although it is the oldest"
    );
    assert!(
        registry.get(&west.digest).is_none(),
        "the oldest unpinned one goes"
    );
    assert!(registry.get(&east.digest).is_some());
}

#[test]
fn compiles_are_bounded_even_when_they_time_out() {
    // Every compile times out at once; each keeps its slot until its thread is done.
    let limits = SandboxLimits {
        compile_ms_max: 0,
        concurrent_compiles_max: 1,
        ..SandboxLimits::default()
    };
    let host = PolicyHost::new(limits).unwrap();
    let component = policy_component("west-green-pricing");
    let first = host
        .prepare_upload(PolicyKind::Pricing, &component)
        .err()
        .expect("timed out");
    assert!(
        matches!(first, suanli_server::policy::UploadError::CompileTimeout(0)),
        "{first}"
    );
    let second = host
        .prepare_upload(PolicyKind::Pricing, &component)
        .err()
        .expect("no slot");
    assert!(
        matches!(second, suanli_server::policy::UploadError::Busy(1)),
        "{second}"
    );
}

/// The children of process `pid` that are still running.
fn children_of(pid: u32) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|child| {
            std::fs::read_to_string(format!("/proc/{child}/status")).is_ok_and(|status| {
                status.lines().any(|line| {
                    line.strip_prefix("PPid:")
                        .is_some_and(|ppid| ppid.trim() == pid.to_string())
                })
            })
        })
        .collect()
}

#[actix_web::test]
async fn a_compile_past_its_time_bound_is_stopped_for_real() {
    // The server as its own process, where policy compiles are tried in a child process first.
    for (compile_ms_max, expected) in [("60000", 201), ("1", 422)] {
        let database = suanli_tests::TestDatabase::create();
        let admin_key = format!("admin-{}", uuid::Uuid::new_v4());
        let env = [
            ("DATABASE_URL", database.url.clone()),
            ("SUANLI_ADMIN_API_KEY", admin_key.clone()),
            ("SUANLI_JWT_SECRET", "compile-test-secret".to_owned()),
            ("SUANLI_POLICY_COMPILE_MS_MAX", compile_ms_max.to_owned()),
        ];
        let server =
            suanli_tests::ServerProcess::spawn(env!("CARGO_BIN_EXE_suanli-test-server"), &env);
        let anonymous = suanli_sdk::Client::new(server.base_url.clone());
        let admin = anonymous.login(&admin_key).await.unwrap();
        let new = NewParticipant {
            name: "nx operator".into(),
            kind: ParticipantKind::HubOperator,
            provider_type: None,
            hub: Some("nx".into()),
        };
        let operator = anonymous
            .login(&admin.create_participant(&new).await.unwrap().api_key)
            .await
            .unwrap();
        let (status, body) = upload(
            &operator,
            "nx",
            "pricing",
            policy_component("west-green-pricing"),
        )
        .await;
        assert_eq!(status, expected, "{body}");
        if expected == 422 {
            assert_eq!(body["code"], "compile_timeout");
            // The compile was a child process, killed at the bound: nothing keeps working on it.
            assert_eq!(children_of(server.pid()), Vec::<u32>::new());
        }
    }
}

/// A policy that computes with floats, a NaN among them, decides the same on every machine: the
/// engine makes every NaN canonical (positive), so the policy's levy — which reads the NaN's sign,
/// negative on x86 without canonicalization — is 0.50 %, and the replay gives the same bytes.
#[actix_web::test]
async fn a_policy_computing_with_floats_and_nans_decides_and_replays_the_same_everywhere() {
    let exchange = TestExchange::start().await;
    let ningxia = operator(&exchange, "nx").await;
    let (_, regulator) = exchange
        .participant(ParticipantKind::Regulator, "Regulator")
        .await;
    let (_, provider) = exchange
        .participant(ParticipantKind::Provider, "Ningxia Cloud")
        .await;
    let (_, buyer) = exchange.funded_buyer("Buyer", "10000").await;
    let (status, stored) =
        upload(&ningxia, "nx", "pricing", policy_component("float-pricing")).await;
    assert_eq!(status, 201, "{stored}");
    let digest = stored["digest"].as_str().unwrap();
    let activated = ningxia
        .request(
            reqwest::Method::POST,
            &format!("/v1/hubs/nx/policies/{digest}/activate"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(activated.status(), 200);

    let mut offer = new_offer("zhongwei", SKU, 2, window(1, 10), "10");
    offer.green_share = 25;
    provider.place_offer(&offer).await.unwrap();
    let placed = buyer
        .place_bid(&new_bid(SKU, 1, window(2, 2), "14"))
        .await
        .unwrap();
    let contract = &placed.contracts[0];
    // Spread 4 × 0.5 × (1 − √0.25 / 2) = 1.5 to the provider.
    assert_eq!(
        (contract.unit_price.to_string(), contract.levy_bps),
        ("11.5".into(), 50),
        "a canonical NaN is positive"
    );
    let replay = regulator.replay_contract(contract.id).await.unwrap();
    assert_eq!(replay.decisions.len(), 1, "{replay:?}");
    let decision = &replay.decisions[0];
    assert!(decision.matches, "{replay:?}");
    assert_eq!(decision.recorded, decision.replayed);
}

#[test]
fn batch_calls_decide_every_pair_as_one_pair_calls_do_across_hubs_stages_and_versions() {
    use std::collections::BTreeMap;

    use rust_decimal::Decimal;
    use suanli_sdk::{ComputeClass, Hub, Latency, Sku, Tier, TimeInForce};
    use suanli_server::db::reference::Reference;
    use suanli_server::exchange::policies::{ActivePolicies, ActivePolicy, HubBudget, HubPolicies};
    use suanli_server::market::{
        BidSpec, BuiltInRules, Engine, EngineConfig, Hours, HubSet, OfferSpec, money,
    };

    let hub = |code: &str, tier, region: &str, renewable_share| Hub {
        code: code.into(),
        name: code.into(),
        name_zh: None,
        tier,
        region: region.into(),
        renewable_share,
        carbon_g_per_kwh: 500,
        pue: Decimal::new(120, 2),
        clusters: Vec::new(),
    };
    let codes = ["nx", "bth", "gz"];
    let ms = codes
        .iter()
        .map(|from| {
            let row = codes.iter().map(|to| ((*to).to_owned(), 15)).collect();
            ((*from).to_owned(), row)
        })
        .collect::<BTreeMap<_, BTreeMap<_, _>>>();
    let reference = Reference {
        hubs: vec![
            hub("nx", Tier::West, "west", 50),
            hub("bth", Tier::East, "north", 30),
            hub("gz", Tier::West, "south", 55),
        ],
        latency: Latency { ms },
        skus: vec![Sku {
            code: SKU.into(),
            class: ComputeClass::Intelligent,
            unit: "card-hour".into(),
            perf_fp16_tflops: None,
            name: SKU.into(),
        }],
    };
    // Wall-clock bounds far away, so that no budget runs out in one run and not the other.
    let host = PolicyHost::new(SandboxLimits {
        deadline_ms: 60_000,
        ..SandboxLimits::default()
    })
    .unwrap();
    let budget = HubBudget {
        order_fuel_max: u64::MAX / 4,
        order_wall_ms_max: 60_000,
        batch_wall_ms_max: 60_000,
        batch_check_every: 1,
    };
    let compile = |kind, name| {
        ActivePolicy::Ready(
            host.prepare_upload(kind, &policy_component(name))
                .unwrap()
                .1,
        )
    };
    // Batches in every stage (0.3), one-pair calls mixed in (0.2 compliance and 0.1 pricing in
    // Guizhou), and data-origin hubs judging pairs of other hubs. Beijing's prices depend on the
    // units (the offers' `mode` attribute), so a decision made ahead for other units than a pair
    // is asked with would show.
    let active: ActivePolicies = [
        (0, PolicyKind::Pricing, "west-green-pricing"),
        (0, PolicyKind::Compliance, "data-residency"),
        (1, PolicyKind::Pricing, "hostile"),
        (1, PolicyKind::Compliance, "data-residency"),
        (2, PolicyKind::Pricing, "float-pricing"),
        (2, PolicyKind::Compliance, "qualification"),
    ]
    .into_iter()
    .map(|(hub, kind, name)| ((hub, kind), compile(kind, name)))
    .collect();

    let mut rng = StdRng::seed_from_u64(0x5eed_1234_abcd_0001);
    let now = 1_795_824_000;
    let hour = now / 3600;
    let (mut batched, mut one_by_one) = (
        Engine::new(EngineConfig::default()),
        Engine::new(EngineConfig::default()),
    );
    for index in 0..60u64 {
        let offer = OfferSpec {
            id: uuid::Uuid::from_u128(u128::from(1_000 + index)),
            provider: uuid::Uuid::from_u128(rng.random_range(1..4)),
            hub: rng.random_range(0..3),
            cluster: "c".into(),
            sku: 0,
            quantity: rng.random_range(1..4),
            window: Hours {
                start: hour + 1,
                end: hour + 49,
            },
            ask_price: Decimal::new(rng.random_range(800..1200), 2),
            green_share: rng.random_range(20..90),
            attributes: vec![
                (
                    "qualification".into(),
                    format!("level-{}", rng.random_range(1..5)),
                ),
                ("mode".into(), "units".into()),
            ],
        };
        batched.submit_offer(offer.clone(), now, &mut BuiltInRules);
        one_by_one.submit_offer(offer, now, &mut BuiltInRules);
    }
    let data_classes = [DataClass::General, DataClass::Important, DataClass::Core];
    // Each incoming order is judged by the policies afresh (its own budgets).
    let policies = || {
        let mut policies = HubPolicies::new(&host, &active, &reference, budget);
        policies.begin_order();
        policies
    };
    // What the two sides of each fill see: counterparties, units, price and levy.
    let seen = |fills: &[suanli_server::market::Fill]| -> Vec<_> {
        fills
            .iter()
            .map(|fill| {
                let (bid, offer) = (fill.bid_id, fill.offer_id);
                (bid, offer, fill.units, fill.unit_price, fill.levy_bps)
            })
            .collect()
    };
    // Every decision as stored: hub, kind, outcome, pair, input and output.
    let rows = |policies: &HubPolicies<'_>| -> Vec<String> {
        policies
            .decisions
            .iter()
            .map(|row| {
                let pair = (&row.hub, row.kind, &row.outcome, row.bid_id, row.offer_id);
                format!("{pair:?} {} {}", row.input, row.output)
            })
            .collect()
    };
    // Both ways stored the same decisions and no fault, and pair by pair made no batch call.
    let same_decisions = |order: &str, ahead: &HubPolicies<'_>, alone: &HubPolicies<'_>| {
        assert_eq!(rows(ahead), rows(alone), "{order}");
        assert!(
            ahead.faults.is_empty() && alone.faults.is_empty(),
            "{order}: {:?} {:?}",
            ahead.faults.iter().map(|f| &f.message).collect::<Vec<_>>(),
            alone.faults.iter().map(|f| &f.message).collect::<Vec<_>>()
        );
        assert_eq!(alone.calls.batched, 0, "{order}");
    };
    // A bid `id` starting `starts` hours from now, lasting `hours`, with a limit in `cents`, for
    // `quantity` units and a green share of at least `green` (the rest drawn alike).
    struct Draw {
        starts: std::ops::Range<i64>,
        hours: std::ops::Range<i64>,
        cents: std::ops::Range<i64>,
        quantity: std::ops::Range<u32>,
        green: std::ops::Range<u8>,
    }
    let random_bid = |rng: &mut StdRng, id: u64, draw: &Draw| {
        let start = hour + rng.random_range(draw.starts.clone());
        let window = Hours {
            start,
            end: start + rng.random_range(draw.hours.clone()),
        };
        let limit = Decimal::new(rng.random_range(draw.cents.clone()), 2);
        BidSpec {
            id: uuid::Uuid::from_u128(u128::from(id)),
            buyer: uuid::Uuid::from_u128(rng.random_range(10..13)),
            skus: vec![0],
            hubs: HubSet(rng.random_range(1..8)),
            data_origin: [None, Some(0), Some(1), Some(2)][rng.random_range(0..4)],
            max_latency_ms: None,
            quantity: rng.random_range(draw.quantity.clone()),
            window,
            limit_price: limit,
            min_green_share: rng.random_range(draw.green.clone()),
            data_class: data_classes[rng.random_range(0..3)],
            time_in_force: TimeInForce::Gtc,
            expires_at: None,
            min_fill: 1,
            unit_hold: money::unit_hold(limit, window.len()),
        }
    };
    let (mut decisions, mut fills, mut in_batches) = (0, 0, 0);
    let incoming = Draw {
        starts: 2..6,
        hours: 1..13,
        cents: 900..1700,
        quantity: 1..11,
        green: 0..60,
    };
    for index in 0..40u64 {
        let bid = random_bid(&mut rng, 5_000 + index, &incoming);
        let (mut ahead, mut alone) = (policies(), policies().one_pair_calls());
        let with_batches = batched.submit_bid(bid.clone(), now, &mut ahead);
        let without = one_by_one.submit_bid(bid, now, &mut alone);
        let order = format!("bid {index}");
        assert_eq!(seen(&with_batches.fills), seen(&without.fills), "{order}");
        assert_eq!(with_batches.reasons, without.reasons, "{order}");
        same_decisions(&order, &ahead, &alone);
        decisions += ahead.decisions.len();
        fills += with_batches.fills.len();
        in_batches += ahead.calls.batched;
    }
    // The run was not idle: many decisions and fills, and many decisions made in batch calls.
    println!("{decisions} decisions, {in_batches} in batch calls, {fills} fills");
    assert!(
        decisions > 200 && fills > 20 && in_batches > 100,
        "{decisions} decisions, {in_batches} in batch calls, {fills} fills"
    );

    // Incoming offers: resting bids first (under the built-in rules), then offers large enough
    // to fill several bids each, so that fills and refusals change what later bids can have
    // (the offer announces them again after a refusal).
    let resting = Draw {
        starts: 2..8,
        hours: 1..9,
        cents: 1200..2400,
        quantity: 1..5,
        green: 0..40,
    };
    for index in 0..80u64 {
        let bid = random_bid(&mut rng, 8_000 + index, &resting);
        batched.submit_bid(bid.clone(), now, &mut BuiltInRules);
        one_by_one.submit_bid(bid, now, &mut BuiltInRules);
    }
    let (mut decisions, mut fills, mut in_batches, mut alone_again) = (0, 0, 0, 0);
    for index in 0..30u64 {
        let offer = OfferSpec {
            id: uuid::Uuid::from_u128(u128::from(9_000 + index)),
            provider: uuid::Uuid::from_u128(rng.random_range(1..4)),
            hub: rng.random_range(0..3),
            cluster: "c".into(),
            sku: 0,
            quantity: rng.random_range(2..7),
            window: Hours {
                start: hour + 1,
                end: hour + 25,
            },
            ask_price: Decimal::new(rng.random_range(600..1000), 2),
            green_share: rng.random_range(40..90),
            attributes: vec![
                (
                    "qualification".into(),
                    format!("level-{}", rng.random_range(1..5)),
                ),
                ("mode".into(), "units".into()),
            ],
        };
        let (mut ahead, mut alone) = (policies(), policies().one_pair_calls());
        let with_batches = batched.submit_offer(offer.clone(), now, &mut ahead);
        let without = one_by_one.submit_offer(offer, now, &mut alone);
        let order = format!("offer {index}");
        assert_eq!(seen(&with_batches.fills), seen(&without.fills), "{order}");
        assert_eq!(with_batches.state, without.state, "{order}");
        same_decisions(&order, &ahead, &alone);
        decisions += ahead.decisions.len();
        fills += with_batches.fills.len();
        in_batches += ahead.calls.batched;
        alone_again += ahead.calls.single;
    }
    println!(
        "offers: {decisions} decisions, {in_batches} in batch calls, {alone_again} alone, {fills} fills"
    );
    assert!(
        decisions > 100 && fills > 20 && in_batches > 50,
        "offers: {decisions} decisions, {in_batches} in batch calls, {fills} fills"
    );
}
