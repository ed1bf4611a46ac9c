//! The web console (`GET /`) in a real browser: headless Chromium over WebDriver, against the real
//! server. Each role signs in with its API key and does its main task through the page; what the
//! page shows is checked against what the API says.

use suanli_sdk::{DataClass, NewParticipant, ParticipantKind, ProviderType};
use suanli_tests::browser::Browser;
use suanli_tests::{TestExchange, new_bid, new_offer, policy_component, window};

use crate::policies::upload;

const SKU: &str = "ai.metax-c500";

/// A participant of `kind` (hub operators run `hub`) and its API key.
async fn participant(
    exchange: &TestExchange,
    kind: ParticipantKind,
    name: &str,
    hub: Option<&str>,
) -> (suanli_sdk::CreatedParticipant, suanli_sdk::Client) {
    let new = NewParticipant {
        name: name.to_owned(),
        kind,
        provider_type: (kind == ParticipantKind::Provider).then_some(ProviderType::TelecomOperator),
        hub: hub.map(str::to_owned),
    };
    exchange.participant_from(&new).await
}

/// The start of the whole UTC hour `from_now_hours` after the current one began, as typed.
fn hour(from_now_hours: i64) -> String {
    typed(window(from_now_hours, 1).start)
}

/// A time as a person types it into the console.
fn typed(at: chrono::DateTime<chrono::Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// `count` rows of the table `id`'s body that are not its "nothing yet" row.
fn rows_script(id: &str) -> String {
    format!("return document.querySelectorAll('#{id} tbody tr:not(:has(td.empty))').length;")
}

#[actix_web::test]
async fn the_console_is_served_by_the_exchange_itself_with_nothing_from_elsewhere() {
    let exchange = TestExchange::start().await;
    let base = exchange.anonymous.base_url().to_owned();
    let http = reqwest::Client::new();
    let page = http.get(format!("{base}/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let policy = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(policy.contains("script-src 'self'"), "{policy}");
    assert!(policy.contains("connect-src 'self'"), "{policy}");
    let etag = page.headers()["etag"].to_str().unwrap().to_owned();
    let body = page.text().await.unwrap();
    assert!(body.contains("/console/app.js"), "{body}");
    assert!(
        !body.contains("http://") && !body.contains("https://"),
        "{body}"
    );
    // Unchanged files cost a 304; unknown ones are a JSON 404.
    let again = http
        .get(format!("{base}/"))
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    let chart_library = http
        .get(format!("{base}/console/echarts.min.js"))
        .header("Accept-Encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(chart_library.status(), 200);
    assert_eq!(chart_library.headers()["content-encoding"], "gzip");
    let missing = http
        .get(format!("{base}/console/..%2FCargo.toml"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let missing = http
        .get(format!("{base}/console/secrets.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let error: serde_json::Value = missing.json().await.unwrap();
    assert_eq!(error["code"], "not_found");
}

#[actix_web::test]
async fn the_public_view_shows_the_hubs_candles_and_trades_arriving_live() {
    let exchange = TestExchange::start().await;
    let (_, provider) = participant(&exchange, ParticipantKind::Provider, "Provider", None).await;
    let (_, buyer) = exchange.funded_buyer("Buyer", "100000").await;
    provider
        .place_offer(&new_offer("zhongwei", SKU, 4, window(0, 3), "9.50"))
        .await
        .unwrap();
    buyer
        .place_bid(&new_bid(SKU, 2, window(0, 3), "10"))
        .await
        .unwrap();

    let browser = Browser::start("public").await;
    let base = exchange.anonymous.base_url().to_owned();
    browser.open(&format!("{base}/")).await;
    browser.choose("#market-sku", SKU).await;
    // The eight hubs, labelled in Chinese and English, east and west.
    browser
        .wait_until(
            "the hub diagram",
            "const c = echarts.getInstanceByDom(document.getElementById('hub-map'));
             return !!c && c.getOption().series[0].data.length === 8;",
        )
        .await;
    let labels = browser
        .script(
            "return echarts.getInstanceByDom(document.getElementById('hub-map'))
                 .getOption().series[0].data.map(d => d.fullName);",
        )
        .await;
    let labels = labels.to_string();
    for name in [
        "京津冀 Beijing–Tianjin–Hebei",
        "宁夏 Ningxia",
        "贵州 Guizhou",
    ] {
        assert!(labels.contains(name), "{name} missing from {labels}");
    }
    // A real chart with this hour's candle: opened and closed at the trade's price.
    browser
        .wait_until(
            "a candle",
            "const c = echarts.getInstanceByDom(document.getElementById('candles-chart'));
             return !!c && c.getOption().series[0].data.length === 1;",
        )
        .await;
    let candle = browser
        .script(
            "return echarts.getInstanceByDom(document.getElementById('candles-chart'))
                 .getOption().series[0].data[0];",
        )
        .await;
    assert_eq!(candle, serde_json::json!([9.5, 9.5, 9.5, 9.5]));
    browser
        .check(
            browser
                .script("return document.querySelector('#candles-chart canvas') !== null;")
                .await
                == true,
            "the candle chart draws on a canvas",
        )
        .await;
    let index = browser.wait_for_text("#index-table", "9.5").await;
    assert!(index.contains("National"), "{index}");
    browser.wait_for_text("#trades-table", "zhongwei").await;
    assert_eq!(browser.script(&rows_script("trades-table")).await, 1);
    browser.wait_for_text("#live-status", "live").await;
    browser.snapshot("market").await;

    // A trade made elsewhere appears without reloading the page.
    buyer
        .place_bid(&new_bid(SKU, 1, window(0, 3), "10"))
        .await
        .unwrap();
    browser
        .wait_until(
            "the second trade to arrive through the stream",
            &rows_script("trades-table").replace("return ", "return 2 === "),
        )
        .await;

    // Everything the page loaded came from the exchange itself.
    let origins = browser
        .script(
            "return performance.getEntriesByType('resource').map(e => new URL(e.name).origin)
                 .concat([...document.scripts].map(s => new URL(s.src, location.href).origin));",
        )
        .await;
    let origins: Vec<String> = serde_json::from_value(origins).unwrap();
    assert!(!origins.is_empty());
    assert!(
        origins.iter().all(|origin| *origin == base),
        "{origins:?} vs {base}"
    );
    browser.close().await;
}

#[actix_web::test]
async fn a_provider_lists_an_offer_through_the_page() {
    let exchange = TestExchange::start().await;
    let (created, provider) =
        participant(&exchange, ParticipantKind::Provider, "Gansu Telecom", None).await;
    let browser = Browser::start("provider").await;
    let base = exchange.anonymous.base_url();
    browser.open(&format!("{base}/")).await;
    browser.sign_in(&created.api_key, "Provider desk").await;
    browser.wait_for_text("#account", "Available").await;

    browser.choose("#offer-cluster", "qingyang").await;
    browser.choose("#offer-sku", SKU).await;
    browser.fill("#offer-quantity", "3").await;
    browser.fill("#offer-start", &hour(1)).await;
    browser.fill("#offer-hours", "5").await;
    browser.fill("#offer-price", "8.25").await;
    browser.fill("#offer-green", "70").await;
    browser.click("#offer-submit").await;
    browser.wait_for_text("#offer-result", "is open").await;
    let table = browser.wait_for_text("#offers-table", "8.25").await;
    assert!(table.contains("qingyang"), "{table}");
    browser.snapshot("provider").await;

    // What the page listed is what the exchange stored.
    let offers = provider.offers(None, None, 10).await.unwrap();
    assert_eq!(offers.items.len(), 1);
    let offer = &offers.items[0];
    assert_eq!(
        (
            offer.cluster.as_str(),
            offer.sku.as_str(),
            offer.quantity,
            offer.ask_price.to_string().as_str(),
            offer.green_share
        ),
        ("qingyang", SKU, 3, "8.25", 70)
    );
    assert_eq!((offer.window.end - offer.window.start).num_hours(), 5);
    // The token stays in this tab's session storage: never in the URL, never in local storage.
    let url = browser.client.current_url().await.unwrap();
    assert_eq!(url.as_str(), format!("{base}/"));
    let stored = browser
        .script("return [sessionStorage.getItem('suanli.token') !== null, localStorage.length];")
        .await;
    assert_eq!(stored, serde_json::json!([true, 0]));

    // A refused offer says why and lists nothing.
    browser.fill("#offer-price", "-1").await;
    browser.click("#offer-submit").await;
    browser.wait_for_text("#status", "Refused").await;
    assert_eq!(
        provider.offers(None, None, 10).await.unwrap().items.len(),
        1
    );

    // Signing out forgets the token.
    browser.click("#signout-button").await;
    browser
        .wait_until(
            "the sign-in form",
            "return !document.getElementById('signin-form').hidden
                 && document.getElementById('desk').hidden;",
        )
        .await;
    let stored = browser
        .script("return sessionStorage.getItem('suanli.token');")
        .await;
    assert_eq!(stored, serde_json::Value::Null);
    browser.close().await;
}

#[actix_web::test]
async fn a_buyer_quotes_bids_and_sees_its_contract_arrive_live() {
    let exchange = TestExchange::start().await;
    let (_, provider) = participant(&exchange, ParticipantKind::Provider, "Provider", None).await;
    let (created, buyer) = exchange.funded_buyer("Shanghai lab", "100000").await;
    let hours = window(1, 4);
    provider
        .place_offer(&new_offer("zhongwei", SKU, 3, hours, "10"))
        .await
        .unwrap();

    let browser = Browser::start("buyer").await;
    browser
        .open(&format!("{}/", exchange.anonymous.base_url()))
        .await;
    browser.sign_in(&created.api_key, "Buyer desk").await;
    browser.choose("#bid-sku", SKU).await;
    browser.fill("#bid-quantity", "5").await;
    browser.fill("#bid-start", &typed(hours.start)).await;
    browser.fill("#bid-hours", "4").await;
    browser.fill("#bid-limit", "12").await;
    browser.click("#quote-button").await;
    browser.wait_for_text("#quote-unfilled", "2").await;
    let quote = browser.text("#quote-result").await;
    assert!(quote.contains("zhongwei"), "{quote}");
    // The same reasons the API gives for the same bid.
    let mut same = new_bid(SKU, 5, hours, "12");
    same.time_in_force = Some(suanli_sdk::TimeInForce::Gtc);
    let api = buyer.quote(&same).await.unwrap();
    assert_eq!(api.unfilled_units, 2);
    assert!(!api.reasons.is_empty());
    for reason in &api.reasons {
        assert!(
            quote.contains(&reason.code),
            "{} missing from {quote}",
            reason.code
        );
    }
    assert_eq!(buyer.bids(None, None, 10).await.unwrap().items.len(), 0);

    browser.click("#bid-button").await;
    let result = browser
        .wait_for_text("#bid-result", "1 contract(s) now")
        .await;
    assert!(result.contains("2 unit(s) remaining"), "{result}");
    let bids = buyer.bids(None, None, 10).await.unwrap();
    assert_eq!(bids.items.len(), 1);
    browser
        .wait_until(
            "the contract in My contracts",
            &rows_script("buyer-contracts").replace("return ", "return 1 === "),
        )
        .await;

    // The rest fills when a provider lists more: the contract appears without a reload.
    let placed = provider
        .place_offer(&new_offer("zhongwei", SKU, 2, hours, "11"))
        .await
        .unwrap();
    assert_eq!(placed.contracts.len(), 1);
    let id = placed.contracts[0].id.to_string();
    browser.wait_for_text("#buyer-contracts", &id[..8]).await;
    browser
        .wait_until(
            "the bid to show as filled",
            "return [...document.querySelectorAll('#bids-table tbody tr')]
                 .some(row => row.cells[6] && row.cells[6].textContent === 'filled');",
        )
        .await;
    browser.snapshot("buyer").await;
    browser.close().await;
}

#[actix_web::test]
async fn a_hub_operator_filters_its_decisions_and_dry_runs_its_policy() {
    let exchange = TestExchange::start().await;
    let (created, operator) = participant(
        &exchange,
        ParticipantKind::HubOperator,
        "Beijing hub",
        Some("bth"),
    )
    .await;
    let (status, stored) = upload(
        &operator,
        "bth",
        "compliance",
        policy_component("data-residency"),
    )
    .await;
    assert_eq!(status, 201, "{stored}");
    let digest = stored["digest"].as_str().unwrap().to_owned();
    let (_, provider) = participant(&exchange, ParticipantKind::Provider, "Provider", None).await;
    let (_, buyer) = exchange.funded_buyer("Beijing lab", "100000").await;
    provider
        .place_offer(&new_offer("zhangjiakou", SKU, 2, window(1, 4), "7"))
        .await
        .unwrap();
    provider
        .place_offer(&new_offer("zhongwei", SKU, 2, window(1, 4), "7"))
        .await
        .unwrap();

    let browser = Browser::start("hub-operator").await;
    browser
        .open(&format!("{}/", exchange.anonymous.base_url()))
        .await;
    browser.sign_in(&created.api_key, "Hub operator desk").await;
    // Activate the uploaded policy through the page.
    browser
        .click(&format!("[data-activate=\"{digest}\"]"))
        .await;
    browser.wait_for_text("#status", "Policy activated").await;
    browser.wait_for_text("#policies-table", "active").await;

    // Core data from Beijing may stay in Beijing's region only: one pair allowed, one denied.
    let mut core = new_bid(SKU, 4, window(1, 2), "9");
    core.data_origin = Some("bth".into());
    core.data_class = Some(DataClass::Core);
    buyer.place_bid(&core).await.unwrap();
    browser.wait_for_text("#hub-contracts", "zhangjiakou").await;
    let all = operator
        .hub_decisions("bth", None, None, None, 100)
        .await
        .unwrap();
    let denied = operator
        .hub_decisions("bth", None, Some("denied"), None, 100)
        .await
        .unwrap();
    assert!(!denied.items.is_empty() && denied.items.len() < all.items.len());
    // Unfiltered: every decision; then only the denied ones.
    let outcomes = |outcome: &str, count: usize| {
        format!(
            "const rows = [...document.querySelectorAll('#decisions-table tbody tr:not(:has(td.empty))')];
             return rows.length === {count} && rows.every(row => {outcome:?} === '' || row.cells[2].textContent === {outcome:?});"
        )
    };
    browser
        .wait_until("every decision", &outcomes("", all.items.len()))
        .await;
    browser.choose("#decisions-outcome", "denied").await;
    browser
        .wait_until(
            "only the denied decisions",
            &outcomes("denied", denied.items.len()),
        )
        .await;
    browser.choose("#decisions-outcome", "fault").await;
    browser
        .wait_for_text("#decisions-table", "No decisions match")
        .await;

    browser.choose("#dry-run-digest", &digest).await;
    browser.click("#dry-run-button").await;
    let result = browser.wait_for_text("#dry-run-result", "fuel_used").await;
    assert!(result.contains(&digest), "{result}");
    browser.snapshot("hub-operator").await;
    browser.close().await;
}

#[actix_web::test]
async fn a_regulator_verifies_the_chain_sees_flows_and_exports() {
    let exchange = TestExchange::start().await;
    let (created, regulator) =
        participant(&exchange, ParticipantKind::Regulator, "CAC", None).await;
    let (_, provider) = participant(&exchange, ParticipantKind::Provider, "Provider", None).await;
    let (_, buyer) = exchange.funded_buyer("Beijing lab", "100000").await;
    provider
        .place_offer(&new_offer("zhongwei", SKU, 3, window(1, 4), "7"))
        .await
        .unwrap();
    let mut bid = new_bid(SKU, 3, window(1, 4), "9");
    bid.data_origin = Some("bth".into());
    let placed = buyer.place_bid(&bid).await.unwrap();
    assert_eq!(placed.contracts.len(), 1);

    let browser = Browser::start("regulator").await;
    browser
        .open(&format!("{}/", exchange.anonymous.base_url()))
        .await;
    browser.sign_in(&created.api_key, "Regulator desk").await;
    browser.click("#verify-button").await;
    let verdict = browser
        .wait_for_text("#verify-result", "Chain intact")
        .await;
    let verification = regulator.audit_verify().await.unwrap();
    assert!(
        verdict.contains(&format!("{} entries", verification.entries)),
        "{verdict}"
    );
    // East→west: Beijing's data computed in Ningxia.
    let flows = browser.wait_for_text("#flows-table", "Ningxia").await;
    assert!(flows.contains("Beijing"), "{flows}");
    browser
        .wait_until(
            "the flow diagram's edge",
            "const c = echarts.getInstanceByDom(document.getElementById('flow-map'));
             return !!c && c.getOption().series[0].links.length === 1;",
        )
        .await;
    // Contract search by hub: none in Guizhou, this one in Ningxia. Then export.
    browser.choose("#search-hub", "gz").await;
    browser.click("#search-button").await;
    browser
        .wait_for_text("#search-table", "No contract matches")
        .await;
    browser.choose("#search-hub", "nx").await;
    browser.click("#search-button").await;
    let id = placed.contracts[0].id.to_string();
    browser.wait_for_text("#search-table", &id[..8]).await;
    browser.click("#export-csv").await;
    let exported = browser.wait_for_text("#export-result", "Exported").await;
    let csv = regulator
        .request(reqwest::Method::GET, "/v1/audit/export?format=csv")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let lines = csv.lines().filter(|line| !line.is_empty()).count();
    assert!(lines >= 2, "{csv}");
    assert!(
        exported.contains(&format!("Exported {lines} line(s) as csv")),
        "{exported}"
    );
    browser
        .wait_until(
            "a link to save the export",
            "const a = document.querySelector('#export-result a');
             return !!a && a.href.startsWith('blob:') && a.download === 'suanli-contracts.csv';",
        )
        .await;
    browser.snapshot("regulator").await;
    browser.close().await;
}
