//! Offers (providers) and bids (buyers), and quotes.

use crate::*;

pub(crate) async fn offers(client: &Client, command: &Offers, json: bool) -> anyhow::Result<()> {
    match command {
        Offers::Create {
            cluster,
            sku,
            quantity,
            start,
            end,
            ask,
            green_share,
            attributes,
            idempotency_key,
        } => {
            let mut map = serde_json::Map::new();
            for attribute in attributes {
                let (name, value) = attribute
                    .split_once('=')
                    .context("attributes are key=value")?;
                map.insert(name.into(), serde_json::Value::String(value.into()));
            }
            let new = NewOffer {
                cluster: cluster.clone(),
                sku: sku.clone(),
                quantity: *quantity,
                window: Window {
                    start: *start,
                    end: *end,
                },
                ask_price: *ask,
                green_share: *green_share,
                attributes: (!map.is_empty()).then_some(map),
                idempotency_key: key(idempotency_key.clone()),
            };
            let placed = client.place_offer(&new).await?;
            if json {
                return print_json(&placed);
            }
            placed.offer.print();
            if !placed.contracts.is_empty() {
                out!("\ncontracts made:");
                placed.contracts.print();
            }
        }
        Offers::List { status } => {
            let page = client
                .offers(parse_status(status.clone())?, None, 500)
                .await?;
            return show(json, &page.items);
        }
        Offers::Show { id } => {
            let offer = client.offer(*id).await?;
            return show(json, &offer);
        }
        Offers::Cancel { id } => {
            let offer = client.cancel_offer(*id).await?;
            return show(json, &offer);
        }
    }
    Ok(())
}

pub(crate) async fn bids(client: &Client, command: &Bids, json: bool) -> anyhow::Result<()> {
    match command {
        Bids::Place {
            terms,
            dry_run: true,
            ..
        }
        | Bids::Quote { terms } => {
            let quote = client.quote(&terms.to_bid(String::new())?).await?;
            if json {
                return print_json(&quote);
            }
            let mut table =
                Table::new(["hub", "cluster", "sku", "units", "unit price", "notional"]);
            for fill in &quote.fills {
                table.row([
                    fill.hub.clone(),
                    fill.cluster.clone(),
                    fill.sku.clone(),
                    fill.units.to_string(),
                    fill.unit_price.to_string(),
                    fill.notional.to_string(),
                ]);
            }
            table.print();
            out!(
                "total {} CNY for {} units; {} unfilled; the bid would hold {} CNY",
                quote.total_notional,
                terms.quantity - quote.unfilled_units,
                quote.unfilled_units,
                quote.hold
            );
            print_reasons(&quote.reasons);
        }
        Bids::Place {
            terms,
            dry_run: false,
            idempotency_key,
        } => {
            let new = terms.to_bid(key(idempotency_key.clone()))?;
            let placed = client.place_bid(&new).await?;
            let filled_nothing = placed.contracts.is_empty()
                && matches!(new.time_in_force, Some(TimeInForce::Ioc | TimeInForce::Fok));
            if json {
                print_json(&placed)?;
            } else {
                placed.bid.print();
                if !placed.contracts.is_empty() {
                    out!("\ncontracts made:");
                    placed.contracts.print();
                }
                print_reasons(&placed.reasons);
            }
            if filled_nothing {
                eprintln!(
                    "error: the {} bid filled nothing",
                    placed.bid.time_in_force.as_str()
                );
                std::process::exit(3);
            }
        }
        Bids::List { status } => {
            let page = client
                .bids(parse_status(status.clone())?, None, 500)
                .await?;
            return show(json, &page.items);
        }
        Bids::Show { id } => {
            let bid = client.bid(*id).await?;
            if json {
                return print_json(&bid);
            }
            bid.print();
            print_reasons(&bid.reasons);
        }
        Bids::Cancel { id } => {
            let bid = client.cancel_bid(*id).await?;
            return show(json, &bid);
        }
    }
    Ok(())
}
