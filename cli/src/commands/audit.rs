//! The audit log and the regulator's view.

use std::io::Write;

use crate::*;

pub(crate) async fn audit(client: &Client, command: &Audit, json: bool) -> anyhow::Result<()> {
    match command {
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
            if json {
                return print_json(&serde_json::json!({"local": local, "server": server}));
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
            if !(local.ok && server.ok) {
                bail!("verification failed");
            }
        }
        Audit::Export {
            format,
            out,
            from,
            to,
        } => {
            let format = match format.as_str() {
                "csv" => ExportFormat::Csv,
                "jsonl" => ExportFormat::JsonLines,
                other => bail!("unknown format {other}; csv or jsonl"),
            };
            let mut file = std::io::BufWriter::new(std::fs::File::create(out)?);
            let bar = indicatif::ProgressBar::new_spinner();
            let filter = AuditFilter {
                from: *from,
                to: *to,
                ..Default::default()
            };
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
        Audit::Replay { id } => {
            let report = client.replay_contract(*id).await?;
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
        Audit::Stats { from, to } => {
            let stats = client
                .audit_stats(&AuditFilter {
                    from: *from,
                    to: *to,
                    ..Default::default()
                })
                .await?;
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
