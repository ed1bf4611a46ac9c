//! Western green pricing: western hubs sell cheap, renewable-powered capacity for work that can
//! wait. The buyer and provider split the spread between ask and limit; the buyer keeps more of
//! it the greener the capacity (up to half of the provider's share at 100 % renewable) and a
//! further 20 % of it for windows entirely at night (22:00–08:00 Beijing time). The hub levies
//! 0.5 %.

use suanli_policy_sdk::{basis_points, format_micros, touches_hours};

suanli_policy_sdk::pricing_policy!(price);

const LEVY_BPS: u32 = 50;
/// Share of the spread a provider gets before discounts, basis points.
const PROVIDER_SHARE_BPS: i64 = 5_000;
/// Night discount on the provider's share, basis points.
const NIGHT_DISCOUNT_BPS: i64 = 2_000;

pub fn price(input: &MatchInput) -> Result<Quote, Rejection> {
    let (ask, limit) = (input.offer.ask_price, input.bid.limit_price);
    if limit < ask {
        return Err(reject("the bid's limit is below the ask"));
    }
    let spread = limit - ask;
    let green_discount_bps = i64::from(input.offer.green_share.min(100)) * 50;
    let mut provider_share = basis_points(spread, PROVIDER_SHARE_BPS);
    provider_share -= basis_points(provider_share, green_discount_bps);
    let daytime = touches_hours(input.bid.window_start, input.bid.window_end, 8, 22);
    if !daytime {
        provider_share -= basis_points(provider_share, NIGHT_DISCOUNT_BPS);
    }
    Ok(Quote {
        unit_price: format_micros(ask + provider_share),
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

    const MORNING: i64 = 1_795_824_000;

    fn input(ask: &str, limit: &str, green_share: u8, start: i64, hours: i64) -> MatchInput {
        let hub = HubFacts {
            code: "nx".into(),
            tier: Tier::West,
            region: "west".into(),
            renewable_share: 50,
            carbon_g_per_kwh: 480,
            pue: 1_200_000,
        };
        MatchInput {
            offer: OfferFacts {
                id: Id { high: 0, low: 1 },
                provider: Id { high: 0, low: 2 },
                cluster: "zhongwei".into(),
                sku: "ai.metax-c500".into(),
                sku_class: SkuClass::Intelligent,
                quantity: 4,
                window_start: start - 86_400,
                window_end: start + 86_400,
                ask_price: micros(ask).unwrap(),
                green_share,
                attributes: vec![],
            },
            bid: BidFacts {
                id: Id { high: 0, low: 3 },
                buyer: Id { high: 0, low: 4 },
                skus: vec!["ai.metax-c500".into()],
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
            maker: Side::Offer,
            hours: hours as u32,
            units: 1,
            latency_ms: Some(15),
        }
    }

    #[test]
    fn greener_and_nightly_capacity_is_cheaper_but_never_below_the_ask() {
        let cases = [
            // Spread 4: provider share 2 before discounts.
            ("10", "14", 0, MORNING, 2, "12.000000"),
            ("10", "14", 100, MORNING, 2, "11.000000"),
            ("10", "14", 50, MORNING, 2, "11.500000"),
            // Night (22:00-06:00 Beijing): a further 20 % off the provider's share.
            ("10", "14", 0, MORNING + 14 * 3600, 8, "11.600000"),
            ("10", "10", 0, MORNING, 2, "10.000000"),
        ];
        for (ask, limit, green, start, hours, expected) in cases {
            let quote = price(&input(ask, limit, green, start, hours)).unwrap();
            assert_eq!(quote.unit_price, expected, "{ask} {limit} {green}");
            assert_eq!(quote.levy_bps, 50);
        }
        assert!(price(&input("10", "9", 0, MORNING, 2)).is_err());
    }
}
