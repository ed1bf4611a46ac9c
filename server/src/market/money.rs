//! Rounding of money: amounts in the ledger are CNY with 2 fractional digits (fen).
//!
//! A notional, charge, fee or levy is rounded half-even to the fen; a hold is rounded UP, so that
//! it always covers whatever its fills can cost.

use rust_decimal::{Decimal, RoundingStrategy};

/// Rounds half-even to the fen.
pub fn round_fen(amount: Decimal) -> Decimal {
    amount.round_dp_with_strategy(2, RoundingStrategy::MidpointNearestEven)
}

/// Rounds up (towards +∞) to the fen.
pub fn ceil_fen(amount: Decimal) -> Decimal {
    amount.round_dp_with_strategy(2, RoundingStrategy::ToPositiveInfinity)
}

/// `unit_price × units × hours`, rounded half-even to the fen.
pub fn notional(unit_price: Decimal, units: u32, hours: u32) -> Decimal {
    round_fen(unit_price * Decimal::from(units) * Decimal::from(hours))
}

/// What a bid holds per unit: `limit × hours`, rounded up to the fen.
///
/// Holding per unit (rather than rounding `limit × quantity × hours` once) gives every fill its
/// own share of the hold, and that share always covers the fill: the notional is at most
/// `limit × units × hours` rounded to the nearest fen, and a multiple of a whole-fen amount that is
/// at least that large is never exceeded by rounding to the nearest fen.
pub fn unit_hold(limit_price: Decimal, hours: u32) -> Decimal {
    ceil_fen(limit_price * Decimal::from(hours))
}

/// How a contract's notional is split at settlement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SettlementAmounts {
    pub charged: Decimal,
    pub refunded: Decimal,
    pub provider_paid: Decimal,
    pub exchange_fee: Decimal,
    pub hub_levy: Decimal,
}

/// Splits `notional` after `delivered` of `contracted` unit-hours were delivered: the buyer is
/// charged pro rata (half-even to the fen) and refunded the rest; the charge pays the exchange's
/// fee and the hub's levy (basis points of the charge, half-even) and the provider gets the rest.
/// Nothing is created or lost: `charged + refunded = notional` and
/// `provider_paid + exchange_fee + hub_levy = charged`, all ≥ 0.
pub fn settle(
    notional: Decimal,
    contracted: u64,
    delivered: u64,
    fee_bps: u32,
    levy_bps: u32,
) -> SettlementAmounts {
    assert!(
        delivered <= contracted && contracted > 0,
        "delivery {delivered} of {contracted}"
    );
    let basis = Decimal::from(10_000);
    let charged =
        round_fen(notional * Decimal::from(delivered) / Decimal::from(contracted)).min(notional);
    let exchange_fee = round_fen(charged * Decimal::from(fee_bps) / basis).min(charged);
    let hub_levy = round_fen(charged * Decimal::from(levy_bps) / basis).min(charged - exchange_fee);
    SettlementAmounts {
        charged,
        refunded: notional - charged,
        provider_paid: charged - exchange_fee - hub_levy,
        exchange_fee,
        hub_levy,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn d(text: &str) -> Decimal {
        Decimal::from_str(text).unwrap()
    }

    #[test]
    fn settlements_split_the_notional_to_the_fen() {
        // (notional, contracted, delivered, fee bps, levy bps) → charged, refunded, paid, fee, levy
        let cases = [
            ("1000", 100, 100, 50, 200, ["1000", "0", "975", "5", "20"]),
            ("1000", 100, 40, 50, 200, ["400", "600", "390", "2", "8"]),
            ("1000", 100, 0, 50, 200, ["0", "1000", "0", "0", "0"]),
            ("100", 3, 1, 50, 0, ["33.33", "66.67", "33.16", "0.17", "0"]),
            ("0.01", 3, 2, 5000, 5000, ["0.01", "0", "0.01", "0", "0"]),
            ("10.05", 2, 1, 0, 0, ["5.02", "5.03", "5.02", "0", "0"]),
        ];
        for (notional, contracted, delivered, fee, levy, expected) in cases {
            let amounts = settle(d(notional), contracted, delivered, fee, levy);
            let got = [
                amounts.charged,
                amounts.refunded,
                amounts.provider_paid,
                amounts.exchange_fee,
                amounts.hub_levy,
            ];
            assert_eq!(
                got.map(|a| a.normalize().to_string()),
                expected.map(str::to_owned),
                "{notional} {delivered}/{contracted}"
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn settlement_never_creates_or_destroys_money(
            cents in 0i64..100_000_000, contracted in 1u64..10_000, share in 0u64..=100, fee in 0u32..=10_000, levy in 0u32..=10_000
        ) {
            let notional = Decimal::new(cents, 2);
            let delivered = contracted * share / 100;
            let a = settle(notional, contracted, delivered, fee, levy);
            proptest::prop_assert_eq!(a.charged + a.refunded, notional);
            proptest::prop_assert_eq!(a.provider_paid + a.exchange_fee + a.hub_levy, a.charged);
            for amount in [a.charged, a.refunded, a.provider_paid, a.exchange_fee, a.hub_levy] {
                proptest::prop_assert!(amount >= Decimal::ZERO && amount.scale() <= 2);
            }
        }
    }

    #[test]
    fn rounding() {
        let cases = [
            ("0.005", "0.00", "0.01"),
            ("0.015", "0.02", "0.02"),
            ("1.2345", "1.23", "1.24"),
            ("2", "2", "2"),
        ];
        for (input, half_even, up) in cases {
            assert_eq!(round_fen(d(input)), d(half_even), "{input}");
            assert_eq!(ceil_fen(d(input)), d(up), "{input}");
        }
    }

    #[test]
    fn a_units_hold_covers_the_notional_of_any_fill_within_the_limit() {
        let limits = [
            "0.000001",
            "0.005",
            "0.015",
            "1.333333",
            "12.5",
            "99.999999",
        ];
        for limit in limits {
            for hours in [1, 3, 7, 24, 2160] {
                let hold = unit_hold(d(limit), hours);
                for units in [1, 2, 3, 10, 999] {
                    for price in [d(limit), d(limit) - d("0.000001"), d(limit) / d("3")] {
                        let price = price.round_dp(6);
                        if price <= Decimal::ZERO {
                            continue;
                        }
                        let cost = notional(price, units, hours);
                        assert!(
                            cost <= hold * Decimal::from(units),
                            "{limit} {hours} {units} {price}"
                        );
                    }
                }
            }
        }
    }
}
