//! Public market data.

use crate::*;

pub(crate) async fn market(client: &Client, command: &Market, json: bool) -> anyhow::Result<()> {
    match command {
        Market::Book { sku, hub } => {
            let book = client.market_book(sku.as_deref(), hub.as_deref()).await?;
            if json {
                return print_json(&book);
            }
            let mut table = Table::new([
                "side", "price", "units", "orders", "hubs", "green %", "windows",
            ]);
            let row = |side: &str, level: &suanli_sdk::BookLevel| {
                let green = if level.green_share_min == level.green_share_max {
                    level.green_share_min.to_string()
                } else {
                    format!("{}–{}", level.green_share_min, level.green_share_max)
                };
                [
                    side.to_owned(),
                    level.price.to_string(),
                    level.units.to_string(),
                    level.orders.to_string(),
                    level.hubs.join(" "),
                    green,
                    level.window.as_ref().map(window_text).unwrap_or_default(),
                ]
            };
            for level in book.offers.iter().rev() {
                table.row(row("offer", level));
            }
            for level in &book.bids {
                table.row(row("bid", level));
            }
            table.print();
        }
        Market::Trades { sku, hub, limit } => {
            let trades = client
                .market_trades(sku.as_deref(), hub.as_deref(), *limit)
                .await?;
            if json {
                return print_json(&trades);
            }
            let mut table = Table::new(["at", "hub", "sku", "units", "unit price", "window"]);
            for trade in &trades {
                table.row([
                    time_text(trade.created_at),
                    trade.hub.clone(),
                    trade.sku.clone(),
                    trade.units.to_string(),
                    trade.unit_price.to_string(),
                    window_text(&trade.window),
                ]);
            }
            table.print();
        }
    }
    Ok(())
}
