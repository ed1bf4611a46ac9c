//! A hub operator's view of its hub.

use crate::*;

use super::own_hub;

pub(crate) async fn hub(client: &Client, command: &Hub, json: bool) -> anyhow::Result<()> {
    match command {
        Hub::Contracts {
            hub,
            from,
            to,
            limit,
        } => {
            let hub = own_hub(client, hub).await?;
            let page = client.hub_contracts(&hub, *from, *to, None, *limit).await?;
            if json {
                return print_json(&page.items);
            }
            page.items.print();
            more_hint(page.next_cursor.is_some(), *limit);
        }
        Hub::Decisions {
            hub,
            kind,
            outcome,
            limit,
        } => {
            let hub = own_hub(client, hub).await?;
            let page = client
                .hub_decisions(&hub, kind.as_deref(), outcome.as_deref(), None, *limit)
                .await?;
            if json {
                return print_json(&page.items);
            }
            let mut table =
                Table::new(["at", "kind", "outcome", "bid", "offer", "digest", "output"]);
            for decision in &page.items {
                table.row([
                    time_text(decision.at),
                    decision.kind.clone(),
                    decision.outcome.clone(),
                    decision.bid_id.to_string(),
                    decision.offer_id.to_string(),
                    decision.policy_digest.chars().take(12).collect(),
                    decision.output.to_string(),
                ]);
            }
            table.print();
            more_hint(page.next_cursor.is_some(), *limit);
        }
        Hub::Faults { hub, limit } => {
            let hub = own_hub(client, hub).await?;
            let page = client.hub_faults(&hub, None, *limit).await?;
            if json {
                return print_json(&page.items);
            }
            let mut table = Table::new(["at", "kind", "class", "digest", "message"]);
            for fault in &page.items {
                table.row([
                    time_text(fault.at),
                    fault.kind.clone(),
                    fault.class.clone(),
                    fault.policy_digest.chars().take(12).collect(),
                    fault.message.clone(),
                ]);
            }
            table.print();
            more_hint(page.next_cursor.is_some(), *limit);
        }
    }
    Ok(())
}
