//! The README's run command: `suanli-server dev` with no database configured runs its own
//! private PostgreSQL under the data folder, and a second run reuses it.

use suanli_tests::ServerProcess;

const SERVER: &str = env!("CARGO_BIN_EXE_suanli-test-server");

/// The demo participants' ids as the demo printed them (`<kind> <uuid> <name>` lines).
fn printed_ids(server: &ServerProcess) -> Vec<String> {
    let lines = server.stdout.lock().unwrap();
    lines
        .iter()
        .filter(|line| {
            ["provider ", "buyer ", "hub_operator ", "regulator "]
                .iter()
                .any(|kind| line.starts_with(kind))
        })
        .filter_map(|line| line.split_whitespace().nth(1).map(str::to_owned))
        .collect()
}

/// The API key the demo printed for its participant of `kind` (the line after its id line).
fn printed_key(server: &ServerProcess, kind: &str) -> String {
    let lines = server.stdout.lock().unwrap();
    let line = lines
        .iter()
        .position(|line| line.starts_with(&format!("{kind} ")))
        .unwrap();
    lines[line + 1]
        .trim()
        .strip_prefix("api_key=")
        .unwrap()
        .to_owned()
}

#[actix_web::test]
async fn the_demo_runs_its_own_database_and_reuses_it_on_the_next_start() {
    let data_dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!(
        "../target/demo-test-{}",
        uuid::Uuid::new_v4().simple()
    ));
    let env = [("SUANLI_DATA_DIR", data_dir.to_str().unwrap().to_owned())];

    let mut first = ServerProcess::spawn_command(SERVER, "dev", &env);
    let client = suanli_sdk::Client::new(first.base_url.clone());
    assert_eq!(client.readyz().await.unwrap().status, "ready");
    assert_eq!(client.hubs().await.unwrap().len(), 8);
    let ids = printed_ids(&first);
    assert_eq!(ids.len(), 7, "demo participants of every kind");
    let first_buyer_key = printed_key(&first, "buyer");
    assert!(first.interrupt().success(), "Ctrl-C stops the demo cleanly");
    let cluster = cluster_folder(&data_dir);
    assert!(
        cluster.join("pgdata/PG_VERSION").exists(),
        "the cluster lives in the data folder (or where its `location` file says)"
    );
    assert!(
        !cluster.join("pgdata/postmaster.pid").exists(),
        "and was stopped with the demo"
    );
    // It asks for a password, which only the data folder's owner may read.
    use std::os::unix::fs::PermissionsExt;
    let password = cluster.join("password");
    assert_eq!(
        std::fs::metadata(&password).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let hba = std::fs::read_to_string(cluster.join("pgdata/pg_hba.conf")).unwrap();
    let methods: Vec<&str> = hba
        .lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .filter_map(|line| line.split_whitespace().last())
        .collect();
    assert!(
        !methods.is_empty() && methods.iter().all(|method| *method == "scram-sha-256"),
        "{methods:?}"
    );

    let mut second = ServerProcess::spawn_command(SERVER, "dev", &env);
    assert_eq!(
        printed_ids(&second),
        ids,
        "the same participants: the data was reused"
    );
    let client = suanli_sdk::Client::new(second.base_url.clone());
    let buyer_key = printed_key(&second, "buyer");
    assert_eq!(
        buyer_key, first_buyer_key,
        "the demo keys stay the same across restarts"
    );
    let buyer = client.login(&buyer_key).await.unwrap();
    assert_eq!(
        buyer.account().await.unwrap().available.to_string(),
        "1000000",
        "the opening deposit is made once"
    );
    assert!(second.interrupt().success());
    if cluster != data_dir.join("postgres") {
        std::fs::remove_dir_all(&cluster).unwrap();
    }
    std::fs::remove_dir_all(&data_dir).unwrap();
}

/// Where the private cluster of `data_dir` lives: `data_dir/postgres`, or, when the PostgreSQL user
/// cannot reach that folder (a clone in a private home folder), where its `location` file says.
fn cluster_folder(data_dir: &std::path::Path) -> std::path::PathBuf {
    match std::fs::read_to_string(data_dir.join("postgres/location")) {
        Ok(location) => std::path::PathBuf::from(location.trim()),
        Err(_) => data_dir.join("postgres"),
    }
}

#[actix_web::test]
async fn the_demo_runs_from_a_private_folder_too() {
    // A project cloned into a private home folder: no other user may pass through it.
    use std::os::unix::fs::PermissionsExt;
    let private = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!(
        "../target/private-home-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&private).unwrap();
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700)).unwrap();
    let data_dir = private.join("project/.data");
    let env = [("SUANLI_DATA_DIR", data_dir.to_str().unwrap().to_owned())];
    let mut server = ServerProcess::spawn_command(SERVER, "dev", &env);
    let client = suanli_sdk::Client::new(server.base_url.clone());
    assert_eq!(client.readyz().await.unwrap().database, "ok");
    assert_eq!(client.hubs().await.unwrap().len(), 8);
    assert_eq!(printed_ids(&server).len(), 7);
    assert!(server.interrupt().success());
    if let Ok(location) = std::fs::read_to_string(data_dir.join("postgres/location")) {
        let relocated = std::path::PathBuf::from(location.trim());
        assert!(
            !relocated.join("pgdata/postmaster.pid").exists(),
            "the relocated cluster was stopped too"
        );
        std::fs::remove_dir_all(relocated).unwrap();
    }
    std::fs::remove_dir_all(&private).unwrap();
}
