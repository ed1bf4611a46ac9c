//! Public market data.

use crate::*;

pub(crate) async fn market(client: &Client, command: &Market, json: bool) -> anyhow::Result<()> {
    match command {
        Market::Book { sku, hub } => {
            let book = client.market_book(sku.as_deref(), hub.as_deref()).await?;
            return show(json, &book);
        }
        Market::Trades { sku, hub, limit } => {
            let trades = client
                .market_trades(sku.as_deref(), hub.as_deref(), *limit)
                .await?;
            return show(json, &trades);
        }
        Market::Candles {
            sku,
            hub,
            interval,
            from,
            to,
        } => {
            let interval = CandleInterval::parse(interval)
                .with_context(|| format!("unknown interval {interval} (1h or 1d)"))?;
            let candles = client
                .candles(sku, hub.as_deref(), interval, *from, *to)
                .await?;
            return show(json, &candles);
        }
        Market::Index { sku } => {
            let index = client.market_index(sku).await?;
            return show(json, &index);
        }
        Market::Watch { after, count } => {
            let mut stream = client.market_stream(*after);
            let mut seen = 0;
            while count.is_none_or(|count| seen < count) {
                let event = stream.next().await?;
                seen += 1;
                if json {
                    let (kind, data) = match &event.update {
                        MarketUpdate::Trade(trade) => ("trade", serde_json::to_value(trade)?),
                        MarketUpdate::Book(change) => ("book", serde_json::to_value(change)?),
                    };
                    out!(
                        "{}",
                        serde_json::json!({"id": event.id, "event": kind, "data": data})
                    );
                    continue;
                }
                match &event.update {
                    MarketUpdate::Trade(trade) => out!(
                        "#{} {} trade {} {}/{} {} units x {} h at {} ({} rested)",
                        event.id,
                        time_text(trade.created_at),
                        trade.sku,
                        trade.hub,
                        trade.cluster,
                        trade.units,
                        trade.hours,
                        trade.unit_price,
                        trade.maker.as_str()
                    ),
                    MarketUpdate::Book(change) => out!(
                        "#{} book {} {} at {}: {} units in {} orders",
                        event.id,
                        change.sku,
                        change.side.as_str(),
                        change.price,
                        change.units,
                        change.orders
                    ),
                }
            }
        }
    }
    Ok(())
}

impl Human for suanli_sdk::MarketBook {
    fn print(&self) {
        let book = self;
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
}

impl Human for [suanli_sdk::Trade] {
    fn print(&self) {
        let trades = self;
        let mut table = Table::new(["at", "hub", "sku", "units", "unit price", "window"]);
        for trade in trades {
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

impl Human for [suanli_sdk::Candle] {
    fn print(&self) {
        let candles = self;
        let mut table = Table::new([
            "start",
            "open",
            "high",
            "low",
            "close",
            "vwap",
            "unit-hours",
            "notional",
            "contracts",
        ]);
        for candle in candles {
            table.row([
                time_text(candle.start),
                candle.open.to_string(),
                candle.high.to_string(),
                candle.low.to_string(),
                candle.close.to_string(),
                candle.vwap.to_string(),
                candle.unit_hours.to_string(),
                candle.notional.to_string(),
                candle.contracts.to_string(),
            ]);
        }
        table.print();
    }
}

impl Human for suanli_sdk::MarketIndex {
    fn print(&self) {
        let index = self;
        let price = |price: Option<rust_decimal::Decimal>| {
            price.map_or_else(|| "-".to_owned(), |price| price.to_string())
        };
        let mut table = Table::new(["hub", "last 24 h", "unit-hours", "last 7 d", "unit-hours"]);
        for row in std::iter::once(&index.national).chain(&index.hubs) {
            table.row([
                row.hub.clone().unwrap_or_else(|| "national".into()),
                price(row.last_24h),
                row.unit_hours_24h.to_string(),
                price(row.last_7d),
                row.unit_hours_7d.to_string(),
            ]);
        }
        table.print();
        out!("as of {}", time_text(index.as_of));
    }
}
