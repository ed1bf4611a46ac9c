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

    // A refusal is one clear line and a non-zero exit.
    let (ok, stdout, stderr) = suanli(&exchange, &config("buyer"), &["offers", "list"]);
    assert!(ok, "{stdout}{stderr}");
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
