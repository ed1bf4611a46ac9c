//! Tidy checks, in the style of rust-analyzer's: the boundaries ARCHITECTURE.md writes down hold
//! in the source, and the OpenAPI document describes every route the server mounts, correctly.

use std::path::{Path, PathBuf};

/// Every `.rs` file under `server/src`, as (path relative to `server/src`, text).
fn server_sources() -> Vec<(String, String)> {
    fn walk(dir: &Path, root: &Path, out: &mut Vec<(String, String)>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, root, out);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                let relative = path
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                out.push((relative, std::fs::read_to_string(&path).unwrap()));
            }
        }
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../server/src");
    let mut out = Vec::new();
    walk(&root, &root, &mut out);
    assert!(out.len() > 20, "found the server's sources");
    out
}

/// Files outside `allowed` (path prefixes) whose code matches `found`.
fn offenders(allowed: &[&str], found: impl Fn(&str) -> bool) -> Vec<String> {
    server_sources()
        .into_iter()
        .filter(|(path, _)| !allowed.iter().any(|prefix| path.starts_with(prefix)))
        .filter(|(_, text)| {
            text.lines()
                .filter(|line| !line.trim_start().starts_with("//"))
                .any(&found)
        })
        .map(|(path, _)| path)
        .collect()
}

#[test]
fn each_engine_stays_in_its_room() {
    assert_eq!(
        offenders(&["http/", "app.rs", "cli.rs", "main.rs"], |line| {
            line.contains("actix_web") || line.contains("actix_rt")
        }),
        Vec::<String>::new(),
        "actix-web outside http/ and the wiring that starts the server"
    );
    assert_eq!(
        offenders(&["db/", "pg_private.rs"], |line| {
            line.contains("sql_query") || line.contains("diesel::sql_types")
        }),
        Vec::<String>::new(),
        "SQL outside db/"
    );
    assert_eq!(
        offenders(&["db/", "pg_private.rs"], |line| line.contains("diesel")),
        Vec::<String>::new(),
        "diesel outside db/ (the rest names db::Connection and db::StoreError)"
    );
    assert_eq!(
        offenders(&["policy/"], |line| line.contains("wasmtime::")),
        Vec::<String>::new(),
        "wasmtime outside the policy host"
    );
    let storage_speaking_http: Vec<String> = server_sources()
        .into_iter()
        .filter(|(path, text)| path.starts_with("db/") && text.contains("ApiError"))
        .map(|(path, _)| path)
        .collect();
    assert_eq!(
        storage_speaking_http,
        Vec::<String>::new(),
        "db/ returns its own errors (QueryResult, db::Refusable), never HTTP-shaped ones"
    );
    // Balances move in one statement, which locks their rows in id order (ARCHITECTURE.md).
    assert_eq!(
        offenders(&["db/ledger.rs"], |line| {
            let line = line.to_ascii_lowercase();
            line.contains("update accounts") || line.contains("update(accounts")
        }),
        Vec::<String>::new(),
        "a balance moved outside db/ledger.rs"
    );
    // Handlers name an action; `access.rs` decides who may.
    let handlers_testing_roles: Vec<String> = server_sources()
        .into_iter()
        .filter(|(path, _)| path.starts_with("http/") && path != "http/caller.rs")
        .filter(|(_, text)| {
            text.lines().any(|line| {
                let line = line.replace(' ', "");
                [
                    "role==",
                    "role!=",
                    "matches!(caller.role",
                    "matchcaller.role",
                    "match(caller.role",
                ]
                .iter()
                .any(|test| line.contains(test))
            })
        })
        .map(|(path, _)| path)
        .collect();
    assert_eq!(
        handlers_testing_roles,
        Vec::<String>::new(),
        "a handler testing a role"
    );
}

/// The routes `http/` mounts: (method, path) from each `.route("PATH", web::METHOD()` and each
/// `web::resource("PATH")` … `.route(web::METHOD()`.
fn mounted_routes() -> Vec<(String, String)> {
    let mut routes = Vec::new();
    for (path, text) in server_sources() {
        if !path.starts_with("http/") {
            continue;
        }
        let mut resources = text.as_str();
        while let Some(at) = resources.find("web::resource(\"") {
            resources = &resources[at + "web::resource(\"".len()..];
            let route = resources[..resources.find('"').unwrap()].to_owned();
            let next = resources.find("web::resource(").unwrap_or(resources.len());
            let mut within = &resources[..next];
            while let Some(at) = within.find(".route(web::") {
                within = &within[at + ".route(web::".len()..];
                let method: String = within
                    .chars()
                    .take_while(|c| c.is_ascii_alphabetic())
                    .collect();
                routes.push((method, route.clone()));
            }
        }
        let mut rest = text.as_str();
        while let Some(at) = rest.find(".route(") {
            rest = &rest[at + ".route(".len()..];
            let after = rest.trim_start();
            let Some(after) = after.strip_prefix('"') else {
                continue;
            };
            let end = after.find('"').unwrap();
            let route = after[..end].to_owned();
            let after = after[end + 1..]
                .trim_start()
                .trim_start_matches(',')
                .trim_start();
            let Some(after) = after.strip_prefix("web::") else {
                continue;
            };
            let method: String = after
                .chars()
                .take_while(|c| c.is_ascii_alphabetic())
                .collect();
            routes.push((method, route));
        }
    }
    assert!(routes.len() > 30, "found the mounted routes: {routes:?}");
    routes
}

#[test]
fn every_mounted_route_is_in_the_openapi_document_and_the_document_is_sound() {
    let document = suanli_server::http::openapi::document();
    assert!(document["openapi"].as_str().unwrap().starts_with("3.1"));
    let paths = document["paths"].as_object().unwrap();
    for (method, route) in mounted_routes() {
        assert!(
            paths
                .get(&route)
                .and_then(|item| item.get(&method))
                .is_some(),
            "{} {route} is mounted but not in the OpenAPI document",
            method.to_uppercase()
        );
    }
    for (path, item) in paths {
        for (method, operation) in item.as_object().unwrap() {
            let name = format!("{} {path}", method.to_uppercase());
            for parameter in operation["parameters"].as_array().into_iter().flatten() {
                let (name_of, place) = (
                    parameter["name"].as_str().unwrap(),
                    parameter["in"].as_str().unwrap(),
                );
                let templated = path.contains(&format!("{{{name_of}}}"));
                assert_eq!(
                    place == "path",
                    templated,
                    "{name}: `{name_of}` is `in: {place}`"
                );
            }
            let secured = operation["security"]
                .as_array()
                .is_some_and(|security| !security.is_empty());
            if secured {
                for status in ["401", "403"] {
                    assert!(
                        operation["responses"][status].is_object(),
                        "{name} lacks a {status} response"
                    );
                }
            }
        }
    }
    let mut ids: Vec<&str> = paths
        .values()
        .flat_map(|item| item.as_object().unwrap().values())
        .filter_map(|operation| operation["operationId"].as_str())
        .collect();
    let all = ids.len();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), all, "operation ids are unique");
    let upload = &document["paths"]["/v1/hubs/{hub}/policies"]["post"]["requestBody"];
    assert_eq!(
        upload["content"]["application/wasm"]["schema"]["format"],
        "binary"
    );
    let quantity = &document["components"]["schemas"]["NewBid"]["properties"]["quantity"];
    assert_eq!(quantity["minimum"], 1, "{quantity}");
    // A quote's body is a bid without `idempotency_key`: the document does not ask for one.
    let quote = &document["paths"]["/v1/quotes"]["post"]["requestBody"]["content"]["application/json"]
        ["schema"]["$ref"];
    assert_eq!(quote, "#/components/schemas/NewQuote");
    let schema = &document["components"]["schemas"]["NewQuote"];
    assert_eq!(schema["properties"]["quantity"], *quantity, "{schema}");
    assert!(
        schema["properties"].get("idempotency_key").is_none()
            && !schema["required"]
                .as_array()
                .unwrap()
                .contains(&"idempotency_key".into()),
        "{schema}"
    );
}

/// The workspace forbids `unsafe` code, and every crate takes the workspace's lints, but one: the
/// policy SDK, whose allocator runs only inside the WebAssembly sandbox (ARCHITECTURE.md, codemap
/// `policies/`). This keeps it that way.
#[test]
fn unsafe_code_is_forbidden_everywhere_but_the_sandboxed_allocator() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let workspace = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    assert!(workspace.contains("[workspace.lints.rust]\nunsafe_code = \"forbid\""));
    let mut manifests = vec![
        "server",
        "sdk",
        "cli",
        "tests",
        "policies/sdk",
        "policies/componentize",
    ]
    .into_iter()
    .map(|crate_dir| root.join(crate_dir))
    .collect::<Vec<_>>();
    for entry in std::fs::read_dir(root.join("policies/examples")).unwrap() {
        manifests.push(entry.unwrap().path());
    }
    assert!(manifests.len() > 8, "found the workspace's crates");
    for dir in manifests {
        let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
        let own_lints = dir.ends_with("policies/sdk");
        assert_eq!(
            manifest.contains("[lints]\nworkspace = true"),
            !own_lints,
            "{}: every crate but the policy SDK takes the workspace's lints",
            dir.display()
        );
        if own_lints {
            assert!(manifest.contains("[lints.rust]\nunsafe_code = \"deny\""));
        }
    }
    // Exactly one allowance in the SDK's sources, and it opens the allocator's module.
    let mut allowances = 0;
    for entry in std::fs::read_dir(root.join("policies/sdk/src")).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        allowances += text.matches("allow(unsafe_code)").count();
        allowances += text.matches("expect(unsafe_code)").count();
    }
    assert_eq!(
        allowances, 1,
        "one allowance of unsafe code in the policy SDK"
    );
    let sdk = std::fs::read_to_string(root.join("policies/sdk/src/lib.rs")).unwrap();
    assert!(
        sdk.contains("mod bump {\n    #![allow(unsafe_code)]"),
        "the allowance covers the sandbox's allocator only"
    );
}
