//! The audit log and the regulator's view.

use std::io::Write;

use suanli_sdk::proof;

use crate::*;

pub(crate) async fn audit(
    cli: &Cli,
    client: &Client,
    command: &Audit,
    json: bool,
) -> anyhow::Result<()> {
    match command {
        Audit::Checkpoint { key, save: file } => {
            let pin = pinned_key(cli, client, key.as_deref()).await?;
            let key = pin.key.clone();
            let note = client.checkpoint().await?;
            let checkpoint = proof::verify_checkpoint(&note, &key)
                .context("the exchange's checkpoint does not verify")?;
            let mut saved = load(cli)?;
            if let Some(last) = &saved.last_checkpoint {
                // Kept under the key pinned before (a new key must still extend that history).
                let last_key = pin.previous.as_deref().unwrap_or(&key);
                let last = proof::verify_checkpoint(last, last_key).context(
                    "the checkpoint kept from before does not verify under the key it was kept with",
                )?;
                extends(client, &last, &checkpoint).await.with_context(|| {
                    format!(
                        "REFUSED: the exchange's checkpoint of {} entries does not extend the one of {} verified before (a fork, or history rewritten)",
                        checkpoint.tree_size, last.tree_size
                    )
                })?;
            }
            saved.last_checkpoint = Some(note.clone());
            saved.checkpoint_key = Some(key.clone());
            save(cli, &saved)?;
            if let Some(path) = file {
                std::fs::write(path, &note)
                    .with_context(|| format!("cannot write {}", path.display()))?;
            }
            if json {
                return print_json(&serde_json::json!({
                    "origin": checkpoint.origin,
                    "tree_size": checkpoint.tree_size,
                    "root_hash": hex::encode(checkpoint.root_hash),
                    "note": note,
                }));
            }
            out!(
                "checkpoint ok: {} entries, root {}, signed by {}",
                checkpoint.tree_size,
                hex::encode(checkpoint.root_hash),
                key.split('+').next().unwrap_or_default()
            );
        }
        Audit::Prove { id, out, offline } => {
            let key = match (offline, load(cli)?.checkpoint_key) {
                (_, Some(key)) => key,
                (Some(_), None) => bail!(
                    "no checkpoint key is pinned here: run `suanli audit checkpoint` (or `--key`) first"
                ),
                (None, None) => pinned_key(cli, client, None).await?.key,
            };
            let proof_body: suanli_sdk::ContractProof = match (id, offline) {
                (_, Some(path)) => serde_json::from_slice(
                    &std::fs::read(path)
                        .with_context(|| format!("cannot read {}", path.display()))?,
                )
                .context("not a proof saved by `suanli audit prove --out`")?,
                (Some(id), None) => client.contract_proof(*id).await?,
                (None, None) => bail!("name the contract, or --offline FILE"),
            };
            let expected = id.unwrap_or(proof_body.contract_id);
            let verified = proof::verify_contract_proof(&proof_body, expected, &key)
                .context("the contract's proof does NOT verify")?;
            if offline.is_none() {
                // The exchange's view here must be the one kept here: the same log, grown.
                if let Some(kept) = &load(cli)?.last_checkpoint {
                    let kept = proof::verify_checkpoint(kept, &key)?;
                    if kept.tree_size <= verified.checkpoint.tree_size {
                        extends(client, &kept, &verified.checkpoint).await.context(
                            "FORK: the proof's checkpoint does not extend the one kept here",
                        )?;
                    }
                }
            }
            if let Some(path) = out {
                std::fs::write(path, serde_json::to_vec_pretty(&proof_body)?)
                    .with_context(|| format!("cannot write {}", path.display()))?;
            }
            if json {
                return print_json(&serde_json::json!({
                    "contract_id": proof_body.contract_id,
                    "tree_size": verified.checkpoint.tree_size,
                    "proven": verified.proven,
                    "pending": verified.pending,
                }));
            }
            out!(
                "contract {}: {} entr{} proven in the signed log of {} entries{}",
                proof_body.contract_id,
                verified.proven.len(),
                if verified.proven.len() == 1 {
                    "y"
                } else {
                    "ies"
                },
                verified.checkpoint.tree_size,
                if verified.pending.is_empty() {
                    String::new()
                } else {
                    format!(
                        "; {} newer entr{} await the next checkpoint",
                        verified.pending.len(),
                        if verified.pending.len() == 1 {
                            "y"
                        } else {
                            "ies"
                        }
                    )
                }
            );
        }
        Audit::Consistency { from_checkpoint } => {
            let key = pinned_key(cli, client, None).await?.key;
            let text = std::fs::read_to_string(from_checkpoint)
                .with_context(|| format!("cannot read {}", from_checkpoint.display()))?;
            let old = proof::verify_checkpoint(&text, &key)
                .context("the saved checkpoint does not verify under the pinned key")?;
            let current = proof::verify_checkpoint(&client.checkpoint().await?, &key)
                .context("the exchange's checkpoint does not verify")?;
            extends(client, &old, &current).await.with_context(|| {
                format!(
                    "FORK: the log of {} entries does not extend the saved checkpoint of {}",
                    current.tree_size, old.tree_size
                )
            })?;
            if json {
                return print_json(&serde_json::json!({
                    "from": old.tree_size, "to": current.tree_size, "consistent": true,
                }));
            }
            out!(
                "consistent: the log of {} entries extends the saved checkpoint of {}",
                current.tree_size,
                old.tree_size
            );
        }
        Audit::Log { after_seq, limit } => {
            let page = client.audit_log(*after_seq, *limit).await?;
            return show(json, &page);
        }
        Audit::Verify { page_size } => {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.set_message("downloading and checking the audit log");
            let local = client
                .verify_audit_chain(*page_size, |checked| bar.set_position(checked))
                .await?;
            bar.finish_and_clear();
            let server = client.audit_verify().await?;
            // The log as it is now against the last checkpoint verified here: an entry altered
            // since (even with the chain recomputed) changes the root the exchange signed.
            let saved = load(cli)?;
            let kept = match (&saved.last_checkpoint, &saved.checkpoint_key) {
                (Some(note), Some(key)) => Some(proof::verify_checkpoint(note, key)?),
                _ => None,
            };
            let mut checkpoint_ok = true;
            let mut checkpoint_line = None;
            if let Some(kept) = &kept {
                let problem = match client.audit_leaf_hashes(kept.tree_size, *page_size).await {
                    Ok(leaves)
                        if leaves.len() as u64 == kept.tree_size
                            && proof::root(&leaves) == kept.root_hash =>
                    {
                        None
                    }
                    Ok(_) => Some(format!(
                        "an entry at or before seq {} was altered or removed",
                        kept.tree_size
                    )),
                    Err(suanli_sdk::Error::Unexpected { detail, .. }) => Some(detail),
                    Err(error) => return Err(error.into()),
                };
                checkpoint_ok = problem.is_none();
                checkpoint_line = Some(match problem {
                    None => format!(
                        "log matches the checkpoint of {} entries kept here",
                        kept.tree_size
                    ),
                    Some(problem) => format!(
                        "log does NOT match the checkpoint of {} entries kept here: {problem}",
                        kept.tree_size
                    ),
                });
            }
            if json {
                return print_json(&serde_json::json!({
                    "local": local, "server": server,
                    "checkpoint": kept.as_ref().map(|kept| serde_json::json!({
                        "tree_size": kept.tree_size, "matches": checkpoint_ok,
                    })),
                }));
            }
            if let Some(line) = &checkpoint_line {
                out!("{line}");
            }
            match local.first_bad_seq {
                None => out!(
                    "chain ok: {} entries, head {} (checked here)",
                    local.entries,
                    local.head_hash
                ),
                Some(seq) => out!("chain BROKEN at seq {seq} (checked here)"),
            }
            for check in &server.invariants {
                out!(
                    "{:<34} {}",
                    check.name,
                    if check.ok {
                        "ok".into()
                    } else {
                        format!("BROKEN: {}", check.detail.clone().unwrap_or_default())
                    }
                );
            }
            if !(local.ok && server.ok && checkpoint_ok) {
                bail!("verification failed");
            }
        }
        Audit::Export {
            format,
            out,
            select,
        } => {
            let format = match format.as_str() {
                "csv" => ExportFormat::Csv,
                "jsonl" => ExportFormat::JsonLines,
                other => bail!("unknown format {other}; csv or jsonl"),
            };
            let mut file = std::io::BufWriter::new(std::fs::File::create(out)?);
            let bar = indicatif::ProgressBar::new_spinner();
            let filter = select.filter();
            let bytes = client
                .audit_export(format, &filter, &mut file, |received| {
                    bar.set_message(format!("{received} bytes"));
                    bar.tick();
                })
                .await?;
            file.flush()?;
            bar.finish_and_clear();
            if json {
                return print_json(&serde_json::json!({"file": out, "bytes": bytes}));
            }
            out!("wrote {bytes} bytes to {}", out.display());
        }
        Audit::Replay { id, local } => {
            let report = if *local {
                replay_here(client, *id).await?
            } else {
                client.replay_contract(*id).await?
            };
            if json {
                return print_json(&report);
            }
            let mut table = Table::new(["digest", "kind", "matches"]);
            for decision in &report.decisions {
                table.row([
                    decision.policy_digest[..16].to_owned(),
                    decision.kind.clone(),
                    decision.matches.to_string(),
                ]);
            }
            table.print();
            if report.decisions.iter().any(|d| !d.matches) {
                bail!("a replayed decision differs from the record");
            }
        }
        Audit::Stats { select } => {
            let stats = client.audit_stats(&select.filter()).await?;
            return show(json, &stats);
        }
    }
    Ok(())
}

impl Human for suanli_sdk::AuditPage {
    fn print(&self) {
        let page = self;
        let mut table = Table::new(["seq", "at", "actor", "kind", "hash"]);
        for entry in &page.items {
            table.row([
                entry.seq.to_string(),
                entry.at.clone(),
                entry.actor.clone(),
                entry.kind.clone(),
                entry.hash[..16].to_owned(),
            ]);
        }
        table.print();
    }
}

impl Human for suanli_sdk::Stats {
    fn print(&self) {
        let stats = self;
        for (title, rows) in [
            ("by hub", &stats.by_hub),
            ("by SKU", &stats.by_sku),
            ("by class", &stats.by_class),
            ("east→west", &stats.east_to_west),
        ] {
            out!("{title}:");
            let mut table = Table::new([
                "key",
                "contracts",
                "unit-hours",
                "contracted CNY",
                "settled",
                "delivered unit-hours",
                "charged CNY",
            ]);
            for row in rows {
                table.row([
                    row.key.clone(),
                    row.contracts.to_string(),
                    row.unit_hours.to_string(),
                    row.value.to_string(),
                    row.settled_contracts.to_string(),
                    row.delivered_unit_hours.to_string(),
                    row.charged.to_string(),
                ]);
            }
            table.print();
        }
        out!(
            "delivered {} unit-hours, {} % green",
            stats.delivered_unit_hours,
            stats.green_share_of_delivered
        );
    }
}

/// The checkpoint key to check against, and the one pinned before when it changes.
struct Pin {
    key: String,
    previous: Option<String>,
}

/// `--key`, else the one pinned in the config, else (trust on first use) the exchange's published
/// key. A first pin is kept at once (and said); a changed one is said, and kept only by the command
/// once what it checked verified.
async fn pinned_key(cli: &Cli, client: &Client, given: Option<&str>) -> anyhow::Result<Pin> {
    let mut saved = load(cli)?;
    match (given, saved.checkpoint_key.clone()) {
        (Some(key), Some(pinned)) if key != pinned => {
            eprintln!(
                "replacing the pinned checkpoint key {pinned} with {key}: the checkpoint kept here must still be extended"
            );
            Ok(Pin {
                key: key.to_owned(),
                previous: Some(pinned),
            })
        }
        (Some(key), _) => Ok(Pin {
            key: key.to_owned(),
            previous: None,
        }),
        (None, Some(pinned)) => Ok(Pin {
            key: pinned,
            previous: None,
        }),
        (None, None) => {
            let key = client.checkpoint_key().await?.verifier_key;
            eprintln!("pinned the exchange's checkpoint key {key} (pass --key to pin another)");
            saved.checkpoint_key = Some(key.clone());
            save(cli, &saved)?;
            Ok(Pin {
                key,
                previous: None,
            })
        }
    }
}

/// Checks that `new` extends `old` with the exchange's consistency proof.
async fn extends(
    client: &Client,
    old: &proof::VerifiedCheckpoint,
    new: &proof::VerifiedCheckpoint,
) -> anyhow::Result<()> {
    if new.tree_size < old.tree_size {
        bail!(
            "the new checkpoint is smaller ({} < {})",
            new.tree_size,
            old.tree_size
        );
    }
    let consistency = client
        .consistency_proof(old.tree_size, new.tree_size)
        .await?;
    let hashes = consistency
        .proof
        .iter()
        .map(|hash| proof::parse_hex_hash(hash))
        .collect::<Result<Vec<_>, _>>()?;
    proof::verify_consistency(
        old.tree_size,
        new.tree_size,
        &hashes,
        &old.root_hash,
        &new.root_hash,
    )?;
    Ok(())
}

/// Replays a contract's recorded policy decisions in this process: each module fetched by its
/// digest (and checked against it), compiled by the same deterministic engine the exchange runs,
/// evaluated on the recorded input; the output bytes must equal the recorded ones (fuel may
/// differ between engine versions and is not compared).
async fn replay_here(client: &Client, id: Uuid) -> anyhow::Result<suanli_sdk::ReplayReport> {
    use sha2::Digest;
    use suanli_server::policy::{PolicyHost, PolicyInput, PolicyKind, SandboxLimits};
    let contract = client.contract(id).await?;
    let records: Vec<suanli_server::market::policy::DecisionRecord> =
        serde_json::from_value(serde_json::to_value(&contract.decisions)?)
            .context("the contract's decisions are not in the recorded form")?;
    let host = PolicyHost::new(SandboxLimits::default())?;
    let mut decisions = Vec::with_capacity(records.len());
    for record in records {
        let kind = PolicyKind::parse(&record.kind)
            .with_context(|| format!("unknown policy kind {}", record.kind))?;
        let bytes = client.policy_module(&record.policy_digest).await?;
        if hex::encode(sha2::Sha256::digest(&bytes)) != record.policy_digest {
            bail!(
                "the module served for {} has another digest",
                record.policy_digest
            );
        }
        let input: PolicyInput = serde_json::from_str(&record.input)
            .context("the recorded input is not a policy input")?;
        let replayed = tokio::task::spawn_blocking({
            let host = host.clone();
            move || -> anyhow::Result<String> {
                let policy = host.compile(kind, &bytes)?;
                Ok(match host.evaluate(&policy, &input).output {
                    Ok(output) => output.canonical(),
                    Err(fault) => suanli_server::exchange::policies::fault_json(&fault),
                })
            }
        })
        .await??;
        decisions.push(suanli_sdk::ReplayedDecision {
            matches: replayed == record.output,
            policy_digest: record.policy_digest,
            kind: record.kind,
            recorded: record.output,
            replayed,
        });
    }
    Ok(suanli_sdk::ReplayReport { decisions })
}
