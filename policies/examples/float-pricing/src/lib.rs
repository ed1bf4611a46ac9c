//! Float pricing, a test fixture: shows that a decision replays bit for bit on any machine even
//! when a policy computes with floating point. Money stays exact: the provider's share of the
//! ask–limit spread follows a curve in the green share (`0.5 × (1 − √green / 2)`), computed in
//! whole millionths with an integer square root.
//!
//! The float part: the policy computes a NaN (zero divided by zero, from the order's prices parsed
//! as floats at run time, so that no compiler can fold it) and reads the NaN's sign into the levy:
//! 0.50 % for a positive NaN, 0.51 % for a negative one. WebAssembly leaves a computed NaN's sign
//! and payload to the processor (x86 gives a negative one, Arm a positive one) unless the engine
//! makes every NaN canonical, as Suanli's does: so the levy is 0.50 % everywhere, and a replay
//! anywhere gives the same bytes.
//!
//! It is built against version 0.1 of the policy interface (prices as decimal strings), so that
//! the exchange's tests also show a policy written for 0.1 uploaded, matched and replayed.

use suanli_policy_sdk::{format_micros, micros};

suanli_policy_sdk::pricing_policy!(price, wit = "0.1");

const MILLION: i128 = 1_000_000;

pub fn price(input: &MatchInput) -> Result<Quote, Rejection> {
    let ask = micros(&input.offer.ask_price).ok_or_else(|| reject("the ask is not a decimal"))?;
    let limit =
        micros(&input.bid.limit_price).ok_or_else(|| reject("the limit is not a decimal"))?;
    if limit < ask {
        return Err(reject("the bid's limit is below the ask"));
    }
    // √(green / 100) in millionths: √(green × 10¹⁰) / 10⁶ × 10⁶.
    let green = u64::from(input.offer.green_share.min(100));
    let root = i128::from((green * 10_000_000_000).isqrt());
    // spread × 0.5 × (1 − root / 2), rounded half up to a millionth.
    let numerator = i128::from(limit - ask) * (2 * MILLION - root);
    let denominator = 4 * MILLION;
    let provider_share = (numerator + denominator / 2) / denominator;
    let unit_price =
        ask + i64::try_from(provider_share).map_err(|_| reject("the spread is too large"))?;
    Ok(Quote {
        unit_price: format_micros(unit_price.clamp(ask, limit)),
        levy_bps: if computed_nan(input)?.is_sign_negative() {
            51
        } else {
            50
        },
    })
}

/// 0 / 0 from the order's prices, parsed as floats at run time (`x × 0` is not 0 for an infinite
/// `x`, so the compiler cannot fold the division away).
fn computed_nan(input: &MatchInput) -> Result<f64, Rejection> {
    let limit: f64 = input
        .bid
        .limit_price
        .parse()
        .map_err(|_| reject("the limit is not a number"))?;
    let ask: f64 = input
        .offer
        .ask_price
        .parse()
        .map_err(|_| reject("the ask is not a number"))?;
    Ok((limit * 0.0) / (ask * 0.0))
}

fn reject(reason: &str) -> Rejection {
    Rejection {
        reason: reason.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(ask: &str, limit: &str, green_share: u8) -> MatchInput {
        let hub = HubFacts {
            code: "nx".into(),
            tier: "west".into(),
            region: "west".into(),
            renewable_share: 50,
            carbon_g_per_kwh: 480,
            pue: "1.20".into(),
        };
        MatchInput {
            offer: OfferFacts {
                id: "o".into(),
                provider: "p".into(),
                cluster: "zhongwei".into(),
                hub: "nx".into(),
                sku: "ai.metax-c500".into(),
                sku_class: "intelligent".into(),
                quantity: 4,
                window_start: 0,
                window_end: 7_200,
                ask_price: ask.into(),
                green_share,
                attributes: vec![],
            },
            bid: BidFacts {
                id: "b".into(),
                buyer: "u".into(),
                skus: vec!["ai.metax-c500".into()],
                quantity: 1,
                window_start: 0,
                window_end: 3_600,
                limit_price: limit.into(),
                data_origin: None,
                max_latency_ms: None,
                min_green_share: 0,
                data_class: "general".into(),
            },
            offer_hub: hub,
            origin_hub: None,
            maker: Side::Offer,
            hours: 1,
            units: 1,
            latency_ms: None,
        }
    }

    #[test]
    fn the_spread_is_split_by_a_curve_in_the_green_share() {
        // Spread 4: half to the provider at 0 % green, a quarter at 100 %, 0.5 × (1 − 0.25) at 25 %.
        for (green, expected) in [(0, "12.000000"), (100, "11.000000"), (25, "11.500000")] {
            let quote = price(&input("10", "14", green)).unwrap();
            assert_eq!(quote.unit_price, expected, "green {green}");
        }
        assert!(price(&input("10", "9", 0)).is_err());
    }

    #[test]
    fn the_nan_is_computed_not_folded() {
        assert!(computed_nan(&input("10", "14", 0)).unwrap().is_nan());
    }
}
