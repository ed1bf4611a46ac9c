//! Money and prices on the wire: decimal strings in plain notation only.
//!
//! `"12.50"` is a price; `"1e3"`, `"1_0.5"`, `" 1"`, `"+1"`, `"."` and a JSON number are not, and
//! neither is a value with more digits than a `Decimal` holds exactly (it is refused, never
//! rounded). How many fractional digits a field allows (2 for money, 6 for prices) is checked by
//! the server afterwards, with a message naming the field.

use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serializer};

/// Parses `text` as a plain decimal: an optional `-`, digits, and optionally `.` and digits.
pub fn parse_plain(text: &str) -> Result<Decimal, String> {
    let unsigned = text.strip_prefix('-').unwrap_or(text);
    let (whole, fraction) = match unsigned.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (unsigned, None),
    };
    let digits = |part: &str| !part.is_empty() && part.bytes().all(|byte| byte.is_ascii_digit());
    if !digits(whole) || fraction.is_some_and(|fraction| !digits(fraction)) {
        return Err(format!(
            "`{text}` is not a plain decimal number such as \"12.50\""
        ));
    }
    Decimal::from_str_exact(text)
        .map_err(|_| format!("`{text}` has more digits than can be kept exactly"))
}

/// `#[serde(with = "suanli_sdk::decimal::plain")]`: a decimal string, strictly.
pub mod plain {
    use super::*;

    pub fn serialize<S: Serializer>(value: &Decimal, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&value.to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Decimal, D::Error> {
        let text = String::deserialize(deserializer)?;
        parse_plain(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn only_plain_notation_is_a_decimal() {
        for good in ["0", "10", "10.5", "0.000001", "-1", "1000000000000.00"] {
            assert_eq!(
                parse_plain(good).unwrap(),
                Decimal::from_str(good).unwrap(),
                "{good}"
            );
        }
        let thirty_one_digit_fraction = format!("10.{}", "0".repeat(30) + "1");
        for bad in [
            "1e3",
            "1E3",
            "1_0.5",
            " 1",
            "1 ",
            "+1",
            ".",
            "1.",
            ".5",
            "",
            "-",
            "0x10",
            "1,5",
            "١٢",
            thirty_one_digit_fraction.as_str(),
        ] {
            assert!(parse_plain(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
