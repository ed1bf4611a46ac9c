//! Eastern real-time pricing: eastern hubs sit next to the demand, and their peak hours are
//! scarce. The unit price is the maker's price; a window that touches the peak (08:00–22:00
//! Beijing time) pays a 20 % premium on the ask, capped at the bid's limit. The hub levies 1 %.

use suanli_policy_sdk::{basis_points, format_micros, micros, touches_hours};

suanli_policy_sdk::pricing_policy!(price);

/// Premium on the ask for windows touching the peak, basis points.
const PEAK_PREMIUM_BPS: i64 = 2_000;
/// The hub's levy, basis points.
const LEVY_BPS: u32 = 100;

pub fn price(input: &MatchInput) -> Result<Quote, Rejection> {
    let ask = micros(&input.offer.ask_price).ok_or_else(|| reject("the ask is not a decimal"))?;
    let limit =
        micros(&input.bid.limit_price).ok_or_else(|| reject("the limit is not a decimal"))?;
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

    /// 2026-11-28T00:00Z, 08:00 in Beijing.
    const MORNING: i64 = 1_795_824_000;

    pub fn input(ask: &str, limit: &str, maker: Side, start: i64, hours: i64) -> MatchInput {
        let hub = HubFacts {
            code: "bth".into(),
            tier: "east".into(),
            region: "north".into(),
            renewable_share: 30,
            carbon_g_per_kwh: 650,
            pue: "1.25".into(),
        };
        MatchInput {
            offer: OfferFacts {
                id: "o".into(),
                provider: "p".into(),
                cluster: "zhangjiakou".into(),
                hub: "bth".into(),
                sku: "ai.ascend-910b".into(),
                sku_class: "intelligent".into(),
                quantity: 4,
                window_start: start - 86_400,
                window_end: start + 86_400,
                ask_price: ask.into(),
                green_share: 30,
                attributes: vec![],
            },
            bid: BidFacts {
                id: "b".into(),
                buyer: "u".into(),
                skus: vec!["ai.ascend-910b".into()],
                quantity: 1,
                window_start: start,
                window_end: start + hours * 3600,
                limit_price: limit.into(),
                data_origin: None,
                max_latency_ms: None,
                min_green_share: 0,
                data_class: "general".into(),
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
