//! Eastern real-time pricing: eastern hubs sit next to the demand, and their peak hours are
//! scarce. The unit price is the maker's price; a window that touches the peak (08:00–22:00
//! Beijing time) pays a 20 % premium on the ask, capped at the bid's limit. The hub levies 1 %.

use suanli_policy_sdk::{basis_points, format_micros, touches_hours};

suanli_policy_sdk::pricing_policy!(price);

/// Premium on the ask for windows touching the peak, basis points.
const PEAK_PREMIUM_BPS: i64 = 2_000;
/// The hub's levy, basis points.
const LEVY_BPS: u32 = 100;

pub fn price(input: &MatchInput) -> Result<Quote, Rejection> {
    let (ask, limit) = (input.offer.ask_price, input.bid.limit_price);
    let maker_price = match input.maker {
        Side::Offer => ask,
        Side::Bid => limit,
    };
    let peak = touches_hours(input.bid.window_start, input.bid.window_end, 8, 22);
    let unit_price = if peak {
        (ask + basis_points(ask, PEAK_PREMIUM_BPS))
            .max(maker_price)
            .min(limit)
    } else {
        maker_price
    };
    if unit_price < ask {
        return Err(reject("the bid's limit is below the ask"));
    }
    Ok(Quote {
        unit_price: format_micros(unit_price),
        levy_bps: LEVY_BPS,
    })
}

fn reject(reason: &str) -> Rejection {
    Rejection {
        reason: reason.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use suanli_policy_sdk::micros;

    /// 2026-11-28T00:00Z, 08:00 in Beijing.
    const MORNING: i64 = 1_795_824_000;

    pub fn input(ask: &str, limit: &str, maker: Side, start: i64, hours: i64) -> MatchInput {
        let hub = HubFacts {
            code: "bth".into(),
            tier: Tier::East,
            region: "north".into(),
            renewable_share: 30,
            carbon_g_per_kwh: 650,
            pue: 1_250_000,
        };
        MatchInput {
            offer: OfferFacts {
                id: Id { high: 0, low: 1 },
                provider: Id { high: 0, low: 2 },
                cluster: "zhangjiakou".into(),
                sku: "ai.ascend-910b".into(),
                sku_class: SkuClass::Intelligent,
                quantity: 4,
                window_start: start - 86_400,
                window_end: start + 86_400,
                ask_price: micros(ask).unwrap(),
                green_share: 30,
                attributes: vec![],
            },
            bid: BidFacts {
                id: Id { high: 0, low: 3 },
                buyer: Id { high: 0, low: 4 },
                skus: vec!["ai.ascend-910b".into()],
                quantity: 1,
                window_start: start,
                window_end: start + hours * 3600,
                limit_price: micros(limit).unwrap(),
                max_latency_ms: None,
                min_green_share: 0,
                data_class: DataClass::General,
            },
            offer_hub: hub,
            origin_hub: None,
            maker,
            hours: hours as u32,
            units: 1,
            latency_ms: None,
        }
    }

    #[test]
    fn peak_windows_pay_a_premium_capped_at_the_limit() {
        let cases = [
            ("10", "15", Side::Offer, MORNING, 2, Ok("12.000000")),
            ("10", "11", Side::Offer, MORNING, 2, Ok("11.000000")),
            ("10", "15", Side::Bid, MORNING, 2, Ok("15.000000")),
            // 22:00–06:00 Beijing: off-peak, the maker's price.
            (
                "10",
                "15",
                Side::Offer,
                MORNING + 14 * 3600,
                8,
                Ok("10.000000"),
            ),
            ("10", "9", Side::Offer, MORNING, 2, Err(())),
        ];
        for (ask, limit, maker, start, hours, expected) in cases {
            let quote = price(&input(ask, limit, maker, start, hours));
            assert_eq!(
                quote
                    .as_ref()
                    .map(|q| q.unit_price.as_str())
                    .map_err(|_| ()),
                expected,
                "{ask} {limit} {start}"
            );
            if let Ok(quote) = quote {
                assert_eq!(quote.levy_bps, 100);
            }
        }
    }
}
