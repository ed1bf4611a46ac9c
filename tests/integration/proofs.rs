//! Signed checkpoints and Merkle proofs through the API, checked by the sdk against a pinned key:
//! a party proves its contract with a few kilobytes, a regulator proves that a later log extends
//! the checkpoint it kept, and a row altered behind the exchange's back is caught.

use suanli_sdk::proof::{self, ProofError};
use suanli_sdk::{Client, ParticipantKind};
use suanli_tests::{TestExchange, new_bid, new_offer, window};

use crate::code_of;

const SKU: &str = "ai.ascend-910b";

/// Signs a checkpoint now (what the schedule does every interval), returning its tree size.
fn checkpoint_now(exchange: &TestExchange) -> u64 {
    exchange
        .checkpoint_now()
        .expect("the log grew, so a checkpoint is signed")
        .tree_size
}

/// A contract for this hour between a new provider and buyer; returns it with the buyer's and
/// the provider's clients.
async fn contract(exchange: &TestExchange, name: &str) -> (suanli_sdk::Contract, Client, Client) {
    let (_, provider) = exchange
        .participant(ParticipantKind::Provider, &format!("{name} provider"))
        .await;
    let (_, buyer) = exchange
        .funded_buyer(&format!("{name} buyer"), "10000")
        .await;
    provider
        .place_offer(&new_offer("guian", SKU, 2, window(0, 2), "20"))
        .await
        .unwrap();
    let placed = buyer
        .place_bid(&new_bid(SKU, 2, window(0, 2), "25"))
        .await
        .unwrap();
    (placed.contracts[0].clone(), buyer, provider)
}

#[actix_web::test]
async fn a_party_proves_its_contract_against_a_checkpoint_signed_by_the_pinned_key() {
    let exchange = TestExchange::start().await;
    let (_, regulator) = exchange
        .participant(ParticipantKind::Regulator, "Regulator")
        .await;
    let (status, code) = code_of(regulator.checkpoint().await);
    assert_eq!((status, code.as_str()), (404, "not_found"));
    let (made, buyer, provider) = contract(&exchange, "First").await;
    let size = checkpoint_now(&exchange);
    // Nothing new since: no second checkpoint.
    assert!(exchange.checkpoint_now().is_none());

    // The key is public; a regulator pins it.
    let key = exchange.anonymous.checkpoint_key().await.unwrap();
    assert!(
        key.verifier_key.starts_with(&format!("{}+", key.key_name)),
        "{key:?}"
    );
    let note = regulator.checkpoint().await.unwrap();
    let checkpoint = proof::verify_checkpoint(&note, &key.verifier_key).unwrap();
    assert_eq!(checkpoint.tree_size, size);
    assert_eq!(checkpoint.origin, "suanli.test/audit-log");

    // The buyer proves its contract: its creation entry is in the checkpointed tree.
    let contract_proof = buyer.contract_proof(made.id).await.unwrap();
    let verified =
        proof::verify_contract_proof(&contract_proof, made.id, &key.verifier_key).unwrap();
    assert_eq!(verified.proven.len(), 1, "{contract_proof:?}");
    assert!(verified.pending.is_empty());
    assert_eq!(contract_proof.entries[0].entry.kind, "contract_created");
    // The provider reads the same proof, and it does not tell it the bid's limit: the contract's
    // entry names no hold released (limit 25, ask 20: 2 units × 2 hours hold 100, use 80) and no
    // data origin. The regulator reads both in the bid's own entry.
    let provider_proof = provider.contract_proof(made.id).await.unwrap();
    assert_eq!(provider_proof.entries.len(), contract_proof.entries.len());
    for entry in &provider_proof.entries {
        for field in ["hold_released", "data_origin", "limit_price", "hold"] {
            assert!(
                entry.entry.payload.get(field).is_none(),
                "{field}: {:?}",
                entry.entry
            );
        }
    }
    let log = regulator.audit_log(0, 100).await.unwrap().items;
    // A proof hands its reader the hashes of neighbouring entries: every entry is salted, so none
    // can be found again by guessing its fields (the bid's limit from a neighbouring bid_filled).
    for entry in &log {
        let salt = entry.payload["salt"].as_str().unwrap_or_default();
        assert!(
            salt.len() == 32 && salt.bytes().all(|byte| byte.is_ascii_hexdigit()),
            "{entry:?}"
        );
    }
    let accepted = log
        .iter()
        .find(|entry| {
            entry.kind == "bid_accepted" && entry.payload["bid_id"] == made.bid_id.to_string()
        })
        .expect("the bid's entry");
    assert_eq!(
        (&accepted.payload["limit_price"], &accepted.payload["hold"]),
        (&serde_json::json!("25"), &serde_json::json!("100"))
    );
    let bytes = serde_json::to_vec(&contract_proof.entries[0].audit_path).unwrap();
    assert!(bytes.len() < 2048, "{} bytes of proof", bytes.len());
    // Another buyer may not have it; a wrong key refuses it.
    let (_, stranger) = exchange.funded_buyer("Stranger", "1").await;
    let (status, _) = code_of(stranger.contract_proof(made.id).await);
    assert_eq!(status, 404);
    let other_key = suanli_server::checkpoint::Checkpointer::new([9; 32], &key.key_name).unwrap();
    assert!(matches!(
        proof::verify_contract_proof(&contract_proof, made.id, &other_key.key().verifier_key),
        Err(ProofError::BadSignature(_))
    ));
    // Another contract's proof is not this one's.
    let (other, other_buyer, _) = contract(&exchange, "Other").await;
    assert!(matches!(
        proof::verify_contract_proof(&contract_proof, other.id, &key.verifier_key),
        Err(ProofError::WrongContract(_))
    ));
    drop(other_buyer);
    // A node started with another key refuses to sign over this exchange's checkpoints.
    let mut connection = exchange.state.pool.get().unwrap();
    let error = other_key.run(&mut connection).unwrap_err();
    assert!(
        error.to_string().contains("signed by another key"),
        "{error}"
    );
    // A proof whose entry was changed on the way does not verify.
    let mut altered = contract_proof.clone();
    altered.entries[0].entry.payload["units"] = serde_json::json!(99);
    altered.entries[0].entry.canonical = suanli_sdk::audit::canonical_entry(
        altered.entries[0].entry.seq,
        &altered.entries[0].entry.at,
        &altered.entries[0].entry.actor,
        &altered.entries[0].entry.kind,
        &altered.entries[0].entry.payload,
    );
    assert_eq!(
        proof::verify_contract_proof(&altered, made.id, &key.verifier_key).unwrap_err(),
        ProofError::InclusionFailed
    );

    // Every entry of the checkpointed log is provable by a regulator.
    for seq in 1..=size as i64 {
        let inclusion = regulator.inclusion_proof(seq, size).await.unwrap();
        let entry = regulator
            .audit_log(seq - 1, 1)
            .await
            .unwrap()
            .items
            .remove(0);
        let path: Vec<_> = inclusion
            .audit_path
            .iter()
            .map(|hash| proof::parse_hex_hash(hash).unwrap())
            .collect();
        proof::verify_inclusion(
            &proof::entry_leaf_hash(&entry).unwrap(),
            inclusion.leaf_index,
            size,
            &path,
            &checkpoint.root_hash,
        )
        .unwrap();
    }
    // Out-of-range questions are the client's mistake.
    for (seq, tree_size, expected) in [
        (0, size, 400),
        (size as i64 + 1, size, 400),
        (1, 10_000, 404),
    ] {
        let (status, _) = code_of(regulator.inclusion_proof(seq, tree_size).await);
        assert_eq!(status, expected, "seq {seq} of {tree_size}");
    }
    let (status, _) = code_of(regulator.consistency_proof(0, size).await);
    assert_eq!(status, 400);
    let (status, _) = code_of(buyer.inclusion_proof(1, size).await);
    assert_eq!(status, 403);
}

#[actix_web::test]
async fn a_later_log_is_proven_to_extend_a_kept_checkpoint_and_an_altered_row_is_caught() {
    let exchange = TestExchange::start().await;
    let (_, regulator) = exchange
        .participant(ParticipantKind::Regulator, "Regulator")
        .await;
    let key = exchange.anonymous.checkpoint_key().await.unwrap();
    let (first_contract, buyer, provider) = contract(&exchange, "First").await;
    checkpoint_now(&exchange);
    let kept = proof::verify_checkpoint(&regulator.checkpoint().await.unwrap(), &key.verifier_key)
        .unwrap();

    contract(&exchange, "Second").await;
    // Settled: the contract's second entry, pending until the next checkpoint.
    provider
        .report_delivery(
            first_contract.id,
            &suanli_sdk::NewDelivery {
                delivered_unit_hours: 4,
                idempotency_key: "delivery-1".into(),
            },
        )
        .await
        .unwrap();
    let proof_now = buyer.contract_proof(first_contract.id).await.unwrap();
    assert_eq!((proof_now.entries.len(), proof_now.pending.len()), (1, 1));
    assert_eq!(proof_now.pending[0].kind, "contract_settled");
    checkpoint_now(&exchange);
    let proof_later = buyer.contract_proof(first_contract.id).await.unwrap();
    let verified =
        proof::verify_contract_proof(&proof_later, first_contract.id, &key.verifier_key).unwrap();
    assert_eq!((verified.proven.len(), verified.pending.len()), (2, 0));
    let latest =
        proof::verify_checkpoint(&regulator.checkpoint().await.unwrap(), &key.verifier_key)
            .unwrap();
    assert!(latest.tree_size > kept.tree_size + 1);

    // Fork detection: the latest tree extends the kept one.
    let consistency = regulator
        .consistency_proof(kept.tree_size, latest.tree_size)
        .await
        .unwrap();
    let hashes: Vec<_> = consistency
        .proof
        .iter()
        .map(|hash| proof::parse_hex_hash(hash).unwrap())
        .collect();
    proof::verify_consistency(
        kept.tree_size,
        latest.tree_size,
        &hashes,
        &kept.root_hash,
        &latest.root_hash,
    )
    .unwrap();
    // The chain commits to each checkpoint: it is an entry of the log.
    let log = regulator.audit_log(0, 500).await.unwrap();
    let published: Vec<_> = log
        .items
        .iter()
        .filter(|entry| entry.kind == "checkpoint")
        .map(|entry| entry.payload["tree_size"].as_u64().unwrap())
        .collect();
    assert_eq!(published, vec![kept.tree_size, latest.tree_size]);

    // Someone with database access rewrites the first contract's entry (and could recompute the
    // hash chain): the checkpoints signed before no longer match the log.
    assert!(
        suanli_server::db::tree::check(&mut exchange.sql())
            .unwrap()
            .is_empty()
    );
    let seq = buyer
        .contract_proof(first_contract.id)
        .await
        .unwrap()
        .entries[0]
        .entry
        .seq;
    use diesel::RunQueryDsl;
    let mut sql = exchange.sql();
    diesel::sql_query("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only")
        .execute(&mut sql)
        .unwrap();
    let altered = diesel::sql_query(
        "UPDATE audit_log SET canonical = replace(canonical, '\"units\":2', '\"units\":1'), \
         payload = jsonb_set(payload, '{units}', '1') WHERE seq = $1 AND canonical LIKE '%\"units\":2%'",
    )
    .bind::<diesel::sql_types::BigInt, _>(seq)
    .execute(&mut sql)
    .unwrap();
    assert_eq!(altered, 1);
    let problems = suanli_server::db::tree::check(&mut sql).unwrap();
    assert!(
        problems
            .iter()
            .any(|problem| problem.contains(&format!("checkpoint of size {}", kept.tree_size))),
        "{problems:?}"
    );
    assert!(
        problems
            .iter()
            .any(|problem| problem.contains(&format!("checkpoint of size {}", latest.tree_size))),
        "{problems:?}"
    );
    // A stored root changed behind its signed note is caught too.
    diesel::sql_query(
        "ALTER TABLE audit_checkpoints DISABLE TRIGGER audit_checkpoints_append_only",
    )
    .execute(&mut sql)
    .unwrap();
    diesel::sql_query(
        "UPDATE audit_checkpoints SET root_hash = sha256('forged') WHERE tree_size = $1",
    )
    .bind::<diesel::sql_types::BigInt, _>(kept.tree_size as i64)
    .execute(&mut sql)
    .unwrap();
    let problems = suanli_server::db::tree::check(&mut sql).unwrap();
    assert!(
        problems.iter().any(|problem| problem.contains(&format!(
            "checkpoint of size {}: its signed note does not say",
            kept.tree_size
        ))),
        "{problems:?}"
    );
    // And the buyer's proof of that entry, served from the altered row, fails.
    let served = buyer.contract_proof(first_contract.id).await.unwrap();
    assert_eq!(
        proof::verify_contract_proof(&served, first_contract.id, &key.verifier_key).unwrap_err(),
        ProofError::InclusionFailed
    );
}
