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
    (output.status.success(), String::from_utf8_lossy(&output.stdout).into_owned(), String::from_utf8_lossy(&output.stderr).into_owned())
}

fn json(stdout: &str) -> serde_json::Value {
    serde_json::from_str(stdout).unwrap_or_else(|error| panic!("{error}: {stdout}"))
}

#[actix_web::test]
async fn provider_buyer_and_regulator_do_their_jobs_with_the_command_line() {
    let exchange = TestExchange::start().await;
    let (provider, _) = exchange.participant(ParticipantKind::Provider, "Ningxia Cloud").await;
    let (buyer, _) = exchange.funded_buyer("Model Lab", "5000").await;
    let (regulator, _) = exchange.participant(ParticipantKind::Regulator, "Regulator").await;
    let home = std::env::temp_dir().join(format!("suanli-cli-{}", uuid::Uuid::new_v4()));
    let config = |who: &str| home.join(format!("{who}.json"));

    for (who, key) in [("provider", &provider.api_key), ("buyer", &buyer.api_key), ("regulator", &regulator.api_key)] {
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
    let (ok, stdout, stderr) = suanli(&exchange, &config("provider"), &[
        "offers", "create", "--cluster", "zhongwei", "--sku", "ai.metax-c500", "--quantity", "4",
        "--start", &offer_window.start.to_rfc3339(), "--end", &offer_window.end.to_rfc3339(),
        "--ask", "10.5", "--green-share", "70", "--json",
    ]);
    assert!(ok, "{stderr}");
    assert_eq!(json(&stdout)["offer"]["status"], "open");

    let (ok, stdout, _) = suanli(&exchange, &config("buyer"), &["market", "book", "--sku", "ai.metax-c500"]);
    assert!(ok && stdout.contains("offer") && stdout.contains("10.5"), "{stdout}");

    let (ok, stdout, stderr) = suanli(&exchange, &config("buyer"), &[
        "bids", "place", "--sku", "ai.metax-c500", "--quantity", "2", "--start", &start, "--end", &end, "--limit", "12", "--json",
    ]);
    assert!(ok, "{stderr}");
    let placed = json(&stdout);
    assert_eq!(placed["bid"]["status"], "filled");
    let contract = placed["contracts"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(placed["contracts"][0]["notional"], "84");

    let (ok, stdout, _) = suanli(&exchange, &config("buyer"), &["contracts", "list"]);
    assert!(ok && stdout.contains(&contract), "{stdout}");
    let (ok, stdout, _) = suanli(&exchange, &config("buyer"), &["balance"]);
    assert!(ok && stdout.contains("available 4916 CNY"), "{stdout}");

    let (ok, stdout, stderr) = suanli(&exchange, &config("provider"), &["contracts", "deliver", &contract, "--unit-hours", "8", "--json"]);
    assert!(ok, "{stderr}");
    let settlement = json(&stdout);
    assert_eq!((settlement["charged"].as_str(), settlement["provider_paid"].as_str()), (Some("84"), Some("83.58")));

    let (ok, stdout, stderr) = suanli(&exchange, &config("regulator"), &["audit", "verify"]);
    assert!(ok, "{stdout}{stderr}");
    assert!(stdout.contains("chain ok") && stdout.contains("capacity_never_oversold"), "{stdout}");
    let export = home.join("contracts.csv");
    let (ok, _, stderr) = suanli(&exchange, &config("regulator"), &["audit", "export", "--format", "csv", "--out", export.to_str().unwrap()]);
    assert!(ok, "{stderr}");
    let csv = std::fs::read_to_string(&export).unwrap();
    assert_eq!(csv.lines().count(), 2);
    assert!(csv.lines().nth(1).unwrap().starts_with(&contract));
    let (ok, stdout, _) = suanli(&exchange, &config("regulator"), &["audit", "stats", "--json"]);
    assert!(ok);
    assert_eq!(json(&stdout)["by_hub"][0]["key"], "nx");

    // A refusal is one clear line and a non-zero exit.
    let (ok, stdout, stderr) = suanli(&exchange, &config("buyer"), &["offers", "list"]);
    assert!(ok, "{stdout}{stderr}");
    let (ok, _, stderr) = suanli(&exchange, &config("buyer"), &["contracts", "deliver", &contract, "--unit-hours", "1"]);
    assert!(!ok);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("error: forbidden:"), "{stderr}");
    let _ = std::fs::remove_dir_all(&home);
}
