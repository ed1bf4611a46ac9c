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

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn d(text: &str) -> Decimal {
        Decimal::from_str(text).unwrap()
    }

    #[test]
    fn rounding() {
        let cases = [("0.005", "0.00", "0.01"), ("0.015", "0.02", "0.02"), ("1.2345", "1.23", "1.24"), ("2", "2", "2")];
        for (input, half_even, up) in cases {
            assert_eq!(round_fen(d(input)), d(half_even), "{input}");
            assert_eq!(ceil_fen(d(input)), d(up), "{input}");
        }
    }

    #[test]
    fn a_units_hold_covers_the_notional_of_any_fill_within_the_limit() {
        let limits = ["0.000001", "0.005", "0.015", "1.333333", "12.5", "99.999999"];
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
                        assert!(cost <= hold * Decimal::from(units), "{limit} {hours} {units} {price}");
                    }
                }
            }
        }
    }
}
