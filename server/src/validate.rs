//! Checks of client input that need no database: text fields, money amounts, page limits.
//! Each failure is a 400 with a code naming what was wrong, raised before anything is written.

use rust_decimal::Decimal;

use crate::error::ApiError;

/// Most CNY one deposit may credit: 1 trillion, far above any real transfer, far below the
/// ledger's numeric(20,2) range.
pub const DEPOSIT_AMOUNT_CNY_MAX: Decimal = Decimal::from_parts(3_567_587_328, 232, 0, false, 0);

/// Most entries one page of any list may hold (API.md).
pub const PAGE_LIMIT_MAX: u32 = 500;

/// A required piece of text: 1 to `length_max` characters, no control characters (which also
/// keeps NUL bytes away from PostgreSQL).
pub fn text(field: &str, value: &str, length_max: usize) -> Result<(), ApiError> {
    let length = value.chars().count();
    if length == 0 || value.trim().is_empty() {
        return Err(ApiError::bad_request(
            "invalid_field",
            format!("`{field}` must not be empty"),
        ));
    }
    if length > length_max {
        return Err(ApiError::bad_request(
            "invalid_field",
            format!("`{field}` is longer than {length_max} characters"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            "invalid_field",
            format!("`{field}` contains control characters"),
        ));
    }
    Ok(())
}

/// An amount of money to credit: > 0, at most 2 fractional digits (fen), at most `max`.
pub fn positive_cny(field: &str, amount: Decimal, max: Decimal) -> Result<Decimal, ApiError> {
    let amount = amount.normalize();
    if amount <= Decimal::ZERO {
        return Err(ApiError::bad_request(
            "invalid_amount",
            format!("`{field}` must be greater than zero"),
        ));
    }
    if amount.scale() > 2 {
        return Err(ApiError::bad_request(
            "invalid_amount",
            format!("`{field}` has more than 2 fractional digits (CNY is counted in fen)"),
        ));
    }
    if amount > max {
        return Err(ApiError::bad_request(
            "invalid_amount",
            format!("`{field}` is larger than {max}"),
        ));
    }
    Ok(amount)
}

/// A `[from, to)` range of a query: each bound in the years 1970–9999 (what PostgreSQL stores
/// without surprise), `from` not after `to`.
pub fn time_range(
    from: Option<chrono::DateTime<chrono::Utc>>,
    to: Option<chrono::DateTime<chrono::Utc>>,
) -> Result<(), ApiError> {
    use chrono::Datelike;
    for (name, bound) in [("from", from), ("to", to)] {
        if bound.is_some_and(|at| !(1970..=9999).contains(&at.year())) {
            return Err(ApiError::bad_request(
                "invalid_field",
                format!("`{name}` must lie in the years 1970–9999"),
            ));
        }
    }
    if matches!((from, to), (Some(from), Some(to)) if from > to) {
        return Err(ApiError::bad_request(
            "invalid_range",
            "`from` is after `to`",
        ));
    }
    Ok(())
}

/// Text from a policy (or another party) made safe to show and to store: no control characters,
/// no invisible formatting characters (bidirectional overrides, zero-width marks), at most
/// `length_max` characters.
pub fn printable(text: &str, length_max: usize) -> String {
    let invisible = |c: char| matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}');
    text.chars()
        .filter(|c| !c.is_control() && !invisible(*c))
        .take(length_max)
        .collect()
}

/// A page size: 1 to [`PAGE_LIMIT_MAX`], `default` when absent.
pub fn page_limit(limit: Option<u32>, default: u32) -> Result<u32, ApiError> {
    match limit.unwrap_or(default) {
        limit @ 1..=PAGE_LIMIT_MAX => Ok(limit),
        _ => Err(ApiError::bad_request(
            "invalid_limit",
            format!("`limit` must be between 1 and {PAGE_LIMIT_MAX}"),
        )),
    }
}

/// A hint for a code that names nothing: the closest valid code when one is near (a typo), or
/// the valid codes when there are few.
pub fn did_you_mean<'a>(given: &str, valid: impl Iterator<Item = &'a str>) -> String {
    let valid: Vec<&str> = valid.collect();
    let closest = valid
        .iter()
        .map(|code| (edit_distance(given, code), *code))
        .min();
    match closest {
        Some((distance, code)) if distance <= 2.max(given.chars().count() / 3) => {
            format!("; did you mean `{code}`?")
        }
        _ if !valid.is_empty() && valid.len() <= 12 => format!("; one of {}", valid.join(", ")),
        _ => String::new(),
    }
}

/// The number of single-character insertions, deletions and substitutions between two texts.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current.push(substitution.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn d(text: &str) -> Decimal {
        Decimal::from_str(text).unwrap()
    }

    #[test]
    fn deposit_ceiling_is_one_trillion() {
        assert_eq!(DEPOSIT_AMOUNT_CNY_MAX, d("1000000000000"));
    }

    #[test]
    fn amounts() {
        let max = DEPOSIT_AMOUNT_CNY_MAX;
        let cases: &[(&str, Option<&str>)] = &[
            ("10", Some("10")),
            ("10.50", Some("10.5")),
            ("0.01", Some("0.01")),
            ("10.500000", Some("10.5")),
            ("0", None),
            ("-1", None),
            ("0.001", None),
            ("1000000000000.01", None),
        ];
        for (input, expected) in cases {
            let result = positive_cny("amount", d(input), max)
                .ok()
                .map(|v| v.to_string());
            assert_eq!(result.as_deref(), *expected, "{input}");
        }
    }

    #[test]
    fn texts() {
        assert!(text("name", "Gansu Telecom", 200).is_ok());
        assert!(text("name", "算力 provider", 200).is_ok());
        for bad in ["", "   ", "a\u{0}b", "line\nbreak"] {
            assert_eq!(
                text("name", bad, 200).unwrap_err().code,
                "invalid_field",
                "{bad:?}"
            );
        }
        assert!(text("name", &"x".repeat(201), 200).is_err());
    }

    #[test]
    fn limits() {
        assert_eq!(page_limit(None, 100).unwrap(), 100);
        assert_eq!(page_limit(Some(500), 100).unwrap(), 500);
        assert!(page_limit(Some(0), 100).is_err());
        assert!(page_limit(Some(501), 100).is_err());
    }

    #[test]
    fn a_typo_gets_the_closest_code_and_nonsense_gets_the_list() {
        let hubs = ["zhongwei", "qingyang", "guian"];
        assert_eq!(
            did_you_mean("zhongwie", hubs.into_iter()),
            "; did you mean `zhongwei`?"
        );
        assert_eq!(
            did_you_mean("xxxxxxxxxxxx", hubs.into_iter()),
            "; one of zhongwei, qingyang, guian"
        );
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
