//! The demo flow driven entirely through the `suanli` command line, as each role would.

use std::path::PathBuf;

use suanli_sdk::ParticipantKind;
use suanli_tests::{TestExchange, window};

const CLI: &str = env!("CARGO_BIN_EXE_suanli-test-cli");

/// Runs `suanli` with `args` for the user whose login lives in `config`.
fn suanli(exchange: &TestExchange, config: &PathBuf, args: &[&str]) -> (bool, String, String) {
    let output = std::process::Command::new(CLI)
        .args(args)
        .env("SUANLI_URL", exchange.anonymous.base_url())
        .env("SUANLI_CONFIG", config)
        .output()
        .expect("run suanli");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn json(stdout: &str) -> serde_json::Value {
    serde_json::from_str(stdout).unwrap_or_else(|error| panic!("{error}: {stdout}"))
}

#[actix_web::test]
async fn provider_buyer_and_regulator_do_their_jobs_with_the_command_line() {
    let exchange = TestExchange::start().await;
    let (provider, _) = exchange
        .participant(ParticipantKind::Provider, "Ningxia Cloud")
        .await;
    let (buyer, _) = exchange.funded_buyer("Model Lab", "5000").await;
    let (regulator, _) = exchange
        .participant(ParticipantKind::Regulator, "Regulator")
        .await;
    let home = std::env::temp_dir().join(format!("suanli-cli-{}", uuid::Uuid::new_v4()));
    let config = |who: &str| home.join(format!("{who}.json"));

    for (who, key) in [
        ("provider", &provider.api_key),
        ("buyer", &buyer.api_key),
        ("regulator", &regulator.api_key),
    ] {
        let (ok, stdout, stderr) = suanli(&exchange, &config(who), &["login", "--api-key", key]);
        assert!(ok, "{stderr}");
        assert!(stdout.starts_with("logged in as"), "{stdout}");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(config(who)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the token file is private");
    }

    // Windows of the current hour, so that delivery can be reported at once.
    let hours = window(0, 4);
    let (start, end) = (hours.start.to_rfc3339(), hours.end.to_rfc3339());
    let offer_window = window(0, 10);
    let (ok, stdout, stderr) = suanli(
        &exchange,
        &config("provider"),
        &[
            "offers",
            "create",
            "--cluster",
            "zhongwei",
            "--sku",
            "ai.metax-c500",
            "--quantity",
            "4",
            "--start",
            &offer_window.start.to_rfc3339(),
            "--end",
            &offer_window.end.to_rfc3339(),
            "--ask",
            "10.5",
            "--green-share",
            "70",
            "--json",
        ],
    );
    assert!(ok, "{stderr}");
    assert_eq!(json(&stdout)["offer"]["status"], "open");

    let (ok, stdout, _) = suanli(
        &exchange,
        &config("buyer"),
        &["market", "book", "--sku", "ai.metax-c500"],
    );
    assert!(
        ok && stdout.contains("offer") && stdout.contains("10.5"),
        "{stdout}"
    );

    let (ok, stdout, stderr) = suanli(
        &exchange,
        &config("buyer"),
        &[
            "bids",
            "place",
            "--sku",
            "ai.metax-c500",
            "--quantity",
            "2",
            "--start",
            &start,
            "--end",
            &end,
            "--limit",
            "12",
            "--json",
        ],
    );
    assert!(ok, "{stderr}");
    let placed = json(&stdout);
    assert_eq!(placed["bid"]["status"], "filled");
    let contract = placed["contracts"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(placed["contracts"][0]["notional"], "84");

    let (ok, stdout, _) = suanli(&exchange, &config("buyer"), &["contracts", "list"]);
    assert!(ok && stdout.contains(&contract), "{stdout}");
    // The live market from its first event: the offer's level, then the trade (no parties).
    let (ok, stdout, stderr) = suanli(
        &exchange,
        &config("buyer"),
        &["market", "watch", "--after", "0", "--count", "2", "--json"],
    );
    assert!(ok, "{stderr}");
    let events: Vec<serde_json::Value> = stdout.lines().map(json).collect();
    assert_eq!(events[0]["event"], "book", "{stdout}");
    assert_eq!(events[1]["event"], "trade", "{stdout}");
    assert_eq!(events[1]["data"]["contract_id"], contract.as_str());
    assert!(events[1]["data"].get("buyer_id").is_none());
    let (ok, stdout, _) = suanli(
        &exchange,
        &config("buyer"),
        &["market", "watch", "--after", "0", "--count", "2"],
    );
    assert!(
        ok && stdout
            .lines()
            .nth(1)
            .is_some_and(|line| line.contains("trade ai.metax-c500")),
        "{stdout}"
    );
    let (ok, stdout, _) = suanli(&exchange, &config("buyer"), &["balance"]);
    assert!(ok && stdout.contains("available 4916 CNY"), "{stdout}");

    let (ok, stdout, stderr) = suanli(
        &exchange,
        &config("provider"),
        &[
            "contracts",
            "deliver",
            &contract,
            "--unit-hours",
            "8",
            "--json",
        ],
    );
    assert!(ok, "{stderr}");
    let settlement = json(&stdout);
    assert_eq!(
        (
            settlement["charged"].as_str(),
            settlement["provider_paid"].as_str()
        ),
        (Some("84"), Some("83.58"))
    );

    let (ok, stdout, stderr) = suanli(&exchange, &config("regulator"), &["audit", "verify"]);
    assert!(ok, "{stdout}{stderr}");
    assert!(
        stdout.contains("chain ok") && stdout.contains("capacity_never_oversold"),
        "{stdout}"
    );
    let export = home.join("contracts.csv");
    let (ok, _, stderr) = suanli(
        &exchange,
        &config("regulator"),
        &[
            "audit",
            "export",
            "--format",
            "csv",
            "--out",
            export.to_str().unwrap(),
        ],
    );
    assert!(ok, "{stderr}");
    let csv = std::fs::read_to_string(&export).unwrap();
    assert_eq!(csv.lines().count(), 2);
    assert!(csv.lines().nth(1).unwrap().starts_with(&contract));
    let (ok, stdout, _) = suanli(
        &exchange,
        &config("regulator"),
        &["audit", "stats", "--json"],
    );
    assert!(ok);
    assert_eq!(json(&stdout)["by_hub"][0]["key"], "nx");
    // The same selection as the listing's: another hub has none of these contracts.
    let (ok, stdout, stderr) = suanli(
        &exchange,
        &config("regulator"),
        &["audit", "stats", "--hub", "gs", "--json"],
    );
    assert!(ok, "{stderr}");
    assert_eq!(json(&stdout)["by_hub"], serde_json::json!([]));

    // A refusal is one clear line and a non-zero exit.
    let (ok, _, stderr) = suanli(&exchange, &config("buyer"), &["offers", "list"]);
    assert!(!ok);
    assert_eq!(
        stderr.trim_end(),
        "error: forbidden: a buyer may not list offers"
    );
    let (ok, _, stderr) = suanli(
        &exchange,
        &config("buyer"),
        &["contracts", "deliver", &contract, "--unit-hours", "1"],
    );
    assert!(!ok);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("error: forbidden:"), "{stderr}");
    let _ = std::fs::remove_dir_all(&home);
}

#[actix_web::test]
async fn keys_rotate_participants_are_suspended_and_a_kept_key_logs_in_again() {
    use std::os::unix::fs::PermissionsExt;
    let exchange = TestExchange::start().await;
    let (buyer, _) = exchange.funded_buyer("Model Lab", "5000").await;
    let home = std::env::temp_dir().join(format!("suanli-cli-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&home).unwrap();
    let (buyer_config, admin_config) = (home.join("buyer.json"), home.join("admin.json"));

    // A config file left readable by others is made private again by the next login.
    std::fs::write(&buyer_config, "{}").unwrap();
    std::fs::set_permissions(&buyer_config, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (ok, _, stderr) = suanli(
        &exchange,
        &buyer_config,
        &["login", "--api-key", &buyer.api_key, "--keep-key"],
    );
    assert!(ok, "{stderr}");
    assert_eq!(
        std::fs::metadata(&buyer_config)
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );

    // When the token is about to expire, the kept key logs in again by itself.
    let mut saved = json(&std::fs::read_to_string(&buyer_config).unwrap());
    saved["token"] = serde_json::json!("expired.token.value");
    saved["expires_at"] = serde_json::json!(0);
    std::fs::write(&buyer_config, saved.to_string()).unwrap();
    let (ok, stdout, stderr) = suanli(&exchange, &buyer_config, &["whoami"]);
    assert!(ok && stdout.contains("Model Lab"), "{stdout}{stderr}");

    // Rotation prints the new key once and logs in with it; the old key is done.
    let (ok, stdout, stderr) = suanli(&exchange, &buyer_config, &["keys", "rotate", "--json"]);
    assert!(ok, "{stderr}");
    let new_key = json(&stdout)["api_key"].as_str().unwrap().to_owned();
    assert_ne!(new_key, buyer.api_key);
    assert!(
        suanli(&exchange, &buyer_config, &["whoami"]).0,
        "logged in with the new key"
    );
    assert_eq!(
        code_of_cli(&exchange, &home, &buyer.api_key),
        "invalid_api_key"
    );

    // An admin suspends the buyer, whose commands are then refused, and reinstates it.
    assert!(
        suanli(
            &exchange,
            &admin_config,
            &["login", "--api-key", &exchange.admin_api_key]
        )
        .0
    );
    let id = buyer.participant.id.to_string();
    let (ok, stdout, stderr) = suanli(
        &exchange,
        &admin_config,
        &["participants", "suspend", &id, "--reason", "audit"],
    );
    assert!(ok && stdout.contains("suspended"), "{stdout}{stderr}");
    let (ok, _, stderr) = suanli(&exchange, &buyer_config, &["balance"]);
    assert!(!ok && stderr.contains("participant_suspended"), "{stderr}");
    let (ok, stdout, _) = suanli(
        &exchange,
        &admin_config,
        &["participants", "reinstate", &id],
    );
    assert!(ok && stdout.contains("in good standing"), "{stdout}");
    // Tokens from before the suspension stay dead; the key logs in again.
    assert!(!suanli(&exchange, &buyer_config, &["balance"]).0);
    assert!(suanli(&exchange, &buyer_config, &["login", "--api-key", &new_key]).0);
    assert!(suanli(&exchange, &buyer_config, &["balance"]).0);
    std::fs::remove_dir_all(&home).unwrap();
}

/// The error code `suanli login` prints for `api_key`.
fn code_of_cli(exchange: &TestExchange, home: &std::path::Path, api_key: &str) -> String {
    let (ok, _, stderr) = suanli(
        exchange,
        &home.join("scratch.json"),
        &["login", "--api-key", api_key],
    );
    assert!(!ok);
    stderr
        .trim()
        .strip_prefix("error: ")
        .and_then(|rest| rest.split(':').next())
        .unwrap_or_default()
        .to_owned()
}

/// Runs `suanli` and returns its exit code with its output.
fn suanli_code(
    exchange: &TestExchange,
    config: &PathBuf,
    args: &[&str],
) -> (Option<i32>, String, String) {
    let output = std::process::Command::new(CLI)
        .args(args)
        .env("SUANLI_URL", exchange.anonymous.base_url())
        .env("SUANLI_CONFIG", config)
        .output()
        .expect("run suanli");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[actix_web::test]
async fn each_role_does_its_whole_job_from_the_command_line() {
    let exchange = TestExchange::start().await;
    let (provider, _) = exchange
        .participant(ParticipantKind::Provider, "Ningxia Cloud")
        .await;
    let (buyer, _) = exchange.funded_buyer("Model Lab", "5000").await;
    let (operator, _) = exchange
        .participant(ParticipantKind::HubOperator, "Ningxia hub")
        .await;
    let home = std::env::temp_dir().join(format!("suanli-cli-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&home).unwrap();
    let config = |who: &str| home.join(format!("{who}.json"));
    for (who, key) in [
        ("provider", &provider.api_key),
        ("buyer", &buyer.api_key),
        ("operator", &operator.api_key),
        ("admin", &exchange.admin_api_key),
    ] {
        let (ok, _, stderr) = suanli(&exchange, &config(who), &["login", "--api-key", key]);
        assert!(ok, "{stderr}");
    }
    let run = |who: &str, args: &[&str]| suanli(&exchange, &config(who), args);

    // The provider lists capacity for this hour.
    let hours = window(0, 2);
    let (start, end) = (hours.start.to_rfc3339(), hours.end.to_rfc3339());
    let (ok, _, stderr) = run(
        "provider",
        &[
            "offers",
            "create",
            "--cluster",
            "zhongwei",
            "--sku",
            "ai.metax-c500",
            "--quantity",
            "3",
            "--start",
            &start,
            "--end",
            &end,
            "--ask",
            "10",
            "--green-share",
            "70",
        ],
    );
    assert!(ok, "{stderr}");
    let (ok, stdout, _) = run("provider", &["offers", "list", "--tz", "Asia/Shanghai"]);
    assert!(
        ok && stdout.contains("green %") && stdout.contains("CST"),
        "{stdout}"
    );
    let (ok, stdout, _) = run("provider", &["offers", "list"]);
    assert!(
        ok && stdout.contains(" UTC"),
        "times carry their zone: {stdout}"
    );
    let (ok, stdout, _) = run("buyer", &["market", "book", "--sku", "ai.metax-c500"]);
    let level = stdout
        .lines()
        .find(|line| line.starts_with("offer"))
        .unwrap_or_default();
    assert!(
        ok && level.contains(" nx ") && level.contains(" 70 ") && level.contains(" UTC"),
        "the book shows hub, green share and window: {stdout}"
    );

    // The buyer asks first, then bids: the quote is what the bid gets.
    let bid = [
        "--sku",
        "ai.metax-c500",
        "--quantity",
        "2",
        "--start",
        &start,
        "--end",
        &end,
        "--limit",
        "12",
    ];
    let (ok, stdout, stderr) = run(
        "buyer",
        &[&["bids", "quote"][..], &bid, &["--json"]].concat(),
    );
    assert!(ok, "{stderr}");
    let quote = json(&stdout);
    assert_eq!(quote["total_notional"], "40");
    let (ok, stdout, _) = run(
        "buyer",
        &[&["bids", "place", "--dry-run"][..], &bid, &["--json"]].concat(),
    );
    assert!(ok);
    assert_eq!(json(&stdout), quote, "--dry-run is the quote");
    let (ok, stdout, _) = run("buyer", &[&["bids", "quote"][..], &bid].concat());
    assert!(
        ok && stdout.contains("total 40 CNY for 2 units"),
        "{stdout}"
    );
    let (ok, stdout, stderr) = run(
        "buyer",
        &[&["bids", "place"][..], &bid, &["--json"]].concat(),
    );
    assert!(ok, "{stderr}");
    let placed = json(&stdout);
    let contract = placed["contracts"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(placed["contracts"][0]["notional"], quote["total_notional"]);

    // An IOC bid that fills nothing fails, with the reasons printed.
    let (code, stdout, stderr) = run_code(
        &exchange,
        &config("buyer"),
        &[
            "bids",
            "place",
            "--sku",
            "ai.metax-c500",
            "--quantity",
            "1",
            "--start",
            &start,
            "--end",
            &end,
            "--limit",
            "5",
            "--time-in-force",
            "IOC",
        ],
    );
    assert_eq!(code, Some(3), "{stdout}{stderr}");
    assert!(
        stdout.contains("price_above_limit (nx)") && stderr.contains("filled nothing"),
        "{stdout}{stderr}"
    );

    // Delivery for less than contracted asks first; with no terminal to ask, it does not settle.
    let (ok, _, stderr) = run(
        "provider",
        &["contracts", "deliver", &contract, "--unit-hours", "3"],
    );
    assert!(!ok && stderr.contains("--yes"), "{stderr}");
    let (ok, _, stderr) = run(
        "provider",
        &["contracts", "deliver", &contract, "--unit-hours", "0"],
    );
    assert!(!ok && stderr.contains("for nothing"), "{stderr}");
    let (ok, stdout, stderr) = run(
        "provider",
        &[
            "contracts",
            "deliver",
            &contract,
            "--unit-hours",
            "3",
            "--yes",
            "--json",
        ],
    );
    assert!(ok, "{stderr}");
    let charged = json(&stdout)["charged"].as_str().unwrap().to_owned();

    // The provider takes money out; the admin pays it; the statement shows it all.
    let (ok, stdout, stderr) = run(
        "provider",
        &[
            "withdraw",
            "--amount",
            "10.5",
            "--destination",
            "ICBC 6222",
            "--json",
        ],
    );
    assert!(ok, "{stderr}");
    let withdrawal = json(&stdout);
    assert_eq!(withdrawal["status"], "pending");
    let id = withdrawal["id"].as_str().unwrap();
    let (ok, stdout, _) = run("admin", &["withdrawals", "list", "--status", "pending"]);
    assert!(ok && stdout.contains(id), "{stdout}");
    let (ok, stdout, stderr) = run(
        "admin",
        &["withdrawals", "paid", id, "--bank-reference", "ICBC-TX-9"],
    );
    assert!(
        ok && stdout.contains("paid") && stdout.contains("ICBC-TX-9"),
        "{stdout}{stderr}"
    );
    let (ok, stdout, _) = run("provider", &["withdrawals", "list", "--json"]);
    assert!(ok);
    assert_eq!(json(&stdout)[0]["status"], "paid");
    let (ok, stdout, _) = run("provider", &["statement", "--csv"]);
    assert!(ok);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], "at,kind,reference,account,amount,balance_after");
    assert!(
        lines[1].contains(&format!(",settlement,{contract},available,{charged},")),
        "{stdout}"
    );
    assert!(lines[2].contains(",fee,"), "{stdout}");
    assert!(
        lines[3].contains(",withdrawal,") && lines[3].contains(",-10.5,"),
        "{stdout}"
    );
    let (ok, stdout, _) = run("provider", &["statement", "--from", "2000-01-01"]);
    assert!(ok && stdout.contains("balance after"), "{stdout}");

    // The hub operator sees its own hub without naming it.
    let (ok, stdout, stderr) = run("operator", &["hub", "contracts", "--json"]);
    assert!(ok, "{stderr}");
    assert_eq!(json(&stdout)[0]["id"], contract.as_str());
    for view in [
        &["hub", "decisions"][..],
        &["hub", "faults"],
        &["policy", "list"],
    ] {
        let (ok, _, stderr) = run("operator", view);
        assert!(ok, "{view:?}: {stderr}");
    }
    // It tries a policy on the example dry-run files, naming the policy by a digest prefix.
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let module = root.join("target/policies/west-green-pricing.wasm");
    let (ok, stdout, stderr) = run(
        "operator",
        &[
            "policy",
            "upload",
            "--kind",
            "pricing",
            module.to_str().unwrap(),
            "--json",
        ],
    );
    assert!(ok, "{stderr}");
    let digest = json(&stdout)["digest"].as_str().unwrap().to_owned();
    let (ok, stdout, stderr) = run(
        "operator",
        &[
            "policy",
            "dry-run",
            &digest[..12],
            "--offer",
            root.join("policies/dry-run/offer.json").to_str().unwrap(),
            "--bid",
            root.join("policies/dry-run/bid.json").to_str().unwrap(),
        ],
    );
    assert!(ok && stdout.contains("\"quote\""), "{stdout}{stderr}");
    let (ok, _, stderr) = run("operator", &["hub", "contracts", "--hub", "bth"]);
    assert!(!ok && stderr.contains("forbidden"), "{stderr}");

    // As people use it: latency table, one-line argument errors, a hint to log in, a named
    // broken config, a suggestion for a typo.
    let (ok, stdout, _) = run("buyer", &["hubs", "latency"]);
    assert!(
        ok && stdout.lines().count() == 9 && stdout.contains("bth"),
        "{stdout}"
    );
    let (code, _, stderr) = run_code(
        &exchange,
        &config("buyer"),
        &["bids", "place", "--quantity", "x"],
    );
    assert_eq!(code, Some(2));
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    let (ok, _, stderr) = run("nobody", &["balance"]);
    assert!(!ok && stderr.contains("suanli login"), "{stderr}");
    std::fs::write(config("broken"), "not json").unwrap();
    let (ok, _, stderr) = run("broken", &["whoami"]);
    assert!(!ok && stderr.contains("broken.json"), "{stderr}");
    let (ok, _, stderr) = run(
        "provider",
        &[
            "offers",
            "create",
            "--cluster",
            "zhongwie",
            "--sku",
            "ai.metax-c500",
            "--quantity",
            "1",
            "--start",
            &start,
            "--end",
            &end,
            "--ask",
            "10",
            "--green-share",
            "70",
        ],
    );
    assert!(
        !ok && stderr.contains("did you mean `zhongwei`?"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&home);
}

fn run_code(
    exchange: &TestExchange,
    config: &PathBuf,
    args: &[&str],
) -> (Option<i32>, String, String) {
    suanli_code(exchange, config, args)
}

#[actix_web::test]
async fn a_listing_piped_into_head_ends_quietly() {
    let exchange = TestExchange::start().await;
    let (provider, client) = exchange
        .participant(ParticipantKind::Provider, "Ningxia Cloud")
        .await;
    // More rows than a pipe holds, so that `head` leaves while `suanli` is still writing
    // (a few at a time: one participant may only have so many commands waiting).
    for _ in 0..125 {
        let offers: Vec<_> = (0..4)
            .map(|_| suanli_tests::new_offer("zhongwei", "ai.metax-c500", 1, window(1, 3), "10"))
            .collect();
        let offers = offers.iter().map(|offer| client.place_offer(offer));
        for result in futures_util::future::join_all(offers).await {
            result.unwrap();
        }
    }
    let home = std::env::temp_dir().join(format!("suanli-cli-{}", uuid::Uuid::new_v4()));
    let config = home.join("provider.json");
    assert!(
        suanli(
            &exchange,
            &config,
            &["login", "--api-key", &provider.api_key]
        )
        .0
    );
    let output = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!("set -o pipefail; '{CLI}' offers list | head -1"))
        .env("SUANLI_URL", exchange.anonymous.base_url())
        .env("SUANLI_CONFIG", &config)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&output.stdout).lines().count(), 1);
    assert!(
        output.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let _ = std::fs::remove_dir_all(&home);
}

#[actix_web::test]
async fn a_regulator_keeps_a_checkpoint_proves_a_contract_and_detects_a_fork_from_the_command_line()
{
    let exchange = TestExchange::start().await;
    let (regulator, _) = exchange
        .participant(ParticipantKind::Regulator, "Regulator")
        .await;
    let (_, provider) = exchange
        .participant(ParticipantKind::Provider, "Provider")
        .await;
    let (_, buyer) = exchange.funded_buyer("Buyer", "5000").await;
    let trade = || async {
        provider
            .place_offer(&suanli_tests::new_offer(
                "zhongwei",
                "ai.nvidia-h20",
                1,
                window(1, 1),
                "8",
            ))
            .await
            .unwrap();
        buyer
            .place_bid(&suanli_tests::new_bid(
                "ai.nvidia-h20",
                1,
                window(1, 1),
                "9",
            ))
            .await
            .unwrap()
            .contracts[0]
            .id
    };
    let checkpoint_now = || exchange.checkpoint_now().expect("the log grew");
    let contract = trade().await;
    let first = checkpoint_now();
    let home = std::env::temp_dir().join(format!("suanli-cli-{}", uuid::Uuid::new_v4()));
    let config = home.join("regulator.json");
    let saved = home.join("checkpoint.txt");
    let run = |args: &[&str]| suanli(&exchange, &config, args);
    assert!(run(&["login", "--api-key", &regulator.api_key]).0);

    // First use pins the published key and keeps the checkpoint.
    let (ok, stdout, stderr) = run(&["audit", "checkpoint", "--save", saved.to_str().unwrap()]);
    assert!(ok, "{stderr}");
    assert!(
        stderr.contains("pinned the exchange's checkpoint key"),
        "{stderr}"
    );
    assert!(
        stdout.contains(&format!("checkpoint ok: {} entries", first.tree_size)),
        "{stdout}"
    );
    assert_eq!(std::fs::read_to_string(&saved).unwrap(), first.note);

    // A contract proven, online and then offline from the saved proof.
    let proof_file = home.join("proof.json");
    let id = contract.to_string();
    let (ok, stdout, stderr) = run(&["audit", "prove", &id, "--out", proof_file.to_str().unwrap()]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("1 entry proven"), "{stdout}");
    let (ok, stdout, stderr) = run(&["audit", "prove", "--offline", proof_file.to_str().unwrap()]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("1 entry proven"), "{stdout}");

    // The log grows; the new checkpoint extends the saved one.
    trade().await;
    let second = checkpoint_now();
    let (ok, stdout, stderr) = run(&[
        "audit",
        "consistency",
        "--from-checkpoint",
        saved.to_str().unwrap(),
    ]);
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains(&format!(
            "the log of {} entries extends the saved checkpoint of {}",
            second.tree_size, first.tree_size
        )),
        "{stdout}"
    );
    let (ok, _, stderr) = run(&["audit", "checkpoint"]);
    assert!(ok, "{stderr}");

    // A checkpoint signed with the exchange's own key over another history (what an exchange
    // showing two regulators two logs would hand one of them) is refused as a fork.
    let signer = suanli_server::checkpoint::Checkpointer::from_base64(
        exchange.config.audit_signing_key.as_deref().unwrap(),
        &exchange.config.audit_origin,
    )
    .unwrap();
    let forked = signer
        .sign(first.tree_size, tlog_tiles_hash(b"another history"))
        .unwrap();
    let forked_file = home.join("forked.txt");
    std::fs::write(&forked_file, forked).unwrap();
    let (ok, _, stderr) = run(&[
        "audit",
        "consistency",
        "--from-checkpoint",
        forked_file.to_str().unwrap(),
    ]);
    assert!(!ok);
    assert!(stderr.contains("FORK"), "{stderr}");
    // And a proof file altered after it was saved no longer verifies.
    let text = std::fs::read_to_string(&proof_file).unwrap();
    std::fs::write(
        &proof_file,
        text.replacen("\\\"units\\\":1", "\\\"units\\\":2", 1),
    )
    .unwrap();
    let (ok, _, stderr) = run(&["audit", "prove", "--offline", proof_file.to_str().unwrap()]);
    assert!(!ok, "an altered proof verified");
    assert!(stderr.contains("does NOT verify"), "{stderr}");

    // The kept checkpoint catches a row altered in the database, and says which checkpoint.
    let (ok, stdout, stderr) = run(&["audit", "verify"]);
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains(&format!(
            "log matches the checkpoint of {} entries kept here",
            second.tree_size
        )),
        "{stdout}"
    );
    use diesel::RunQueryDsl;
    let mut sql = exchange.sql();
    diesel::sql_query("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only")
        .execute(&mut sql)
        .unwrap();
    let altered =
        diesel::sql_query("UPDATE audit_log SET canonical = canonical || ' ' WHERE seq = 2")
            .execute(&mut sql)
            .unwrap();
    assert_eq!(altered, 1);
    let (ok, stdout, _) = run(&["audit", "verify"]);
    assert!(!ok);
    assert!(
        stdout.contains(&format!(
            "log does NOT match the checkpoint of {} entries kept here",
            second.tree_size
        )),
        "{stdout}"
    );
    let _ = std::fs::remove_dir_all(&home);
}

/// A hash as the checkpoint signer takes it.
fn tlog_tiles_hash(data: &[u8]) -> tlog_tiles::Hash {
    tlog_tiles::Hash(suanli_sdk::proof::leaf_hash(data))
}

#[actix_web::test]
async fn a_regulator_replays_a_float_computing_policy_in_its_own_process_to_the_same_bytes() {
    let exchange = TestExchange::start().await;
    let ningxia = crate::policies::operator(&exchange, "nx").await;
    let (regulator, _) = exchange
        .participant(ParticipantKind::Regulator, "Regulator")
        .await;
    let (_, provider) = exchange
        .participant(ParticipantKind::Provider, "Ningxia Cloud")
        .await;
    let (_, buyer) = exchange.funded_buyer("Buyer", "10000").await;
    let (status, stored) = crate::policies::upload(
        &ningxia,
        "nx",
        "pricing",
        suanli_tests::policy_component("float-pricing"),
    )
    .await;
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
    let mut offer = suanli_tests::new_offer("zhongwei", "ai.metax-c500", 2, window(1, 10), "10");
    offer.green_share = 25;
    provider.place_offer(&offer).await.unwrap();
    let placed = buyer
        .place_bid(&suanli_tests::new_bid(
            "ai.metax-c500",
            1,
            window(2, 2),
            "14",
        ))
        .await
        .unwrap();
    let contract = placed.contracts[0].id.to_string();

    let home = std::env::temp_dir().join(format!("suanli-cli-{}", uuid::Uuid::new_v4()));
    let config = home.join("regulator.json");
    assert!(
        suanli(
            &exchange,
            &config,
            &["login", "--api-key", &regulator.api_key]
        )
        .0
    );
    let (ok, stdout, stderr) = suanli(
        &exchange,
        &config,
        &["--json", "audit", "replay", &contract, "--local"],
    );
    assert!(ok, "{stderr}");
    let report = json(&stdout);
    let decisions = report["decisions"].as_array().unwrap();
    assert_eq!(decisions.len(), 1, "{report}");
    assert_eq!(decisions[0]["matches"], true, "{report}");
    // The bytes recorded when matching, reproduced here, carry the canonical NaN's levy.
    assert_eq!(decisions[0]["replayed"], decisions[0]["recorded"]);
    assert!(
        decisions[0]["replayed"]
            .as_str()
            .unwrap()
            .contains("\"levy_bps\":50"),
        "{report}"
    );
    let _ = std::fs::remove_dir_all(&home);
}
