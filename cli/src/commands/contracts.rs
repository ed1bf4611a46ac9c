//! Contracts, and the delivery that settles them.

use crate::*;

pub(crate) async fn contracts(
    client: &Client,
    command: &Contracts,
    json: bool,
) -> anyhow::Result<()> {
    match command {
        Contracts::List { hub, sku } => {
            let page = client
                .contracts(hub.as_deref(), sku.as_deref(), None, 500)
                .await?;
            return show(json, &page.items);
        }
        Contracts::Show { id } => {
            let contract = client.contract(*id).await?;
            if json {
                return print_json(&contract);
            }
            contract.print();
            for decision in &contract.decisions {
                out!("decision: {}", decision);
            }
        }
        Contracts::Deliver {
            id,
            unit_hours,
            yes,
            idempotency_key,
        } => {
            let contract = if *yes {
                None
            } else {
                Some(client.contract(*id).await?)
            };
            // Only the contract's provider settles it: anyone else hears the exchange's refusal.
            let settling_own = match &contract {
                Some(contract) => client.me().await?.id == contract.provider_id,
                None => false,
            };
            if let (Some(contract), true) = (contract, settling_own) {
                let contracted = u64::from(contract.units) * u64::from(contract.hours);
                if *unit_hours == 0 {
                    bail!(
                        "delivering 0 of {contracted} unit-hours settles the contract for nothing and \
                         refunds the buyer in full; pass --yes if that is what happened"
                    );
                }
                if *unit_hours < contracted
                    && !confirm(&format!(
                        "settle contract {id} for {unit_hours} of {contracted} unit-hours? the buyer \
                         is refunded the rest [y/N] "
                    ))?
                {
                    bail!("not settled (pass --yes to settle for less without asking)");
                }
            }
            let delivery = NewDelivery {
                delivered_unit_hours: *unit_hours,
                idempotency_key: key(idempotency_key.clone()),
            };
            let settlement = client.report_delivery(*id, &delivery).await?;
            if json {
                return print_json(&settlement);
            }
            let mut table = Table::new([
                "contract",
                "delivered",
                "charged",
                "refunded",
                "provider paid",
                "fee",
                "levy",
            ]);
            table.row([
                settlement.contract_id.to_string(),
                settlement.delivered_unit_hours.to_string(),
                settlement.charged.to_string(),
                settlement.refunded.to_string(),
                settlement.provider_paid.to_string(),
                settlement.exchange_fee.to_string(),
                settlement.hub_levy.to_string(),
            ]);
            table.print();
        }
    }
    Ok(())
}
