//! A hub's policies (hub operators).

use crate::*;

use super::{full_digest, own_hub};

pub(crate) async fn policy(client: &Client, command: &Policy, json: bool) -> anyhow::Result<()> {
    match command {
        Policy::Upload { hub, kind, file } => {
            let hub = &own_hub(client, hub).await?;
            let bytes = std::fs::read(file)
                .with_context(|| format!("Failed to read {}", file.display()))?;
            let stored = client.upload_policy(hub, kind, bytes).await?;
            return show(json, &stored);
        }
        Policy::List { hub } => {
            let hub = &own_hub(client, hub).await?;
            let policies = client.policies(hub).await?;
            return show(json, &policies);
        }
        Policy::Activate { hub, digest } => {
            let hub = &own_hub(client, hub).await?;
            let digest = &full_digest(client, hub, digest).await?;
            let active = client.activate_policy(hub, digest).await?;
            return show(json, &active);
        }
        Policy::DryRun {
            hub,
            digest,
            offer,
            bid,
        } => {
            let hub = &own_hub(client, hub).await?;
            let digest = &full_digest(client, hub, digest).await?;
            let read = |path: &PathBuf| -> anyhow::Result<serde_json::Value> {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("Failed to read {}", path.display()))?;
                Ok(serde_json::from_str(&text)?)
            };
            let request: DryRunRequest = serde_json::from_value(
                serde_json::json!({"offer": read(offer)?, "bid": read(bid)?}),
            )?;
            let decision = client.dry_run_policy(hub, digest, &request).await?;
            if json {
                return print_json(&decision);
            }
            match (&decision.decision, &decision.fault) {
                (Some(answer), _) => out!("{answer}  (fuel {})", decision.fuel_used),
                (None, Some(fault)) => out!("fault: {fault}  (fuel {})", decision.fuel_used),
                _ => out!("no answer"),
            }
        }
        Policy::Build => {
            let status = std::process::Command::new("scripts/build-policies")
                .status()
                .context("run `suanli policy build` from the root of a Suanli checkout")?;
            if !status.success() {
                bail!("scripts/build-policies failed");
            }
        }
    }
    Ok(())
}
