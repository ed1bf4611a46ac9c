//! Qualification: sensitive (`important` or `core`) data runs only on capacity whose provider
//! declares a security qualification of at least level 3 (attribute `qualification` =
//! `level-3` or `level-4`, as in China's multi-level protection scheme), and `core` data only on
//! intelligent or supercomputing capacity at least 50 % renewable-powered (a hub's green target).

suanli_policy_sdk::compliance_policy!(check, wit = "0.2");

pub fn check(input: &MatchInput) -> Result<(), Denial> {
    let class = input.bid.data_class;
    if class == DataClass::General {
        return Ok(());
    }
    let qualification = input
        .offer
        .attributes
        .iter()
        .find(|(key, _)| key == "qualification")
        .map(|(_, value)| value.as_str());
    if !matches!(qualification, Some("level-3" | "level-4")) {
        return Err(Denial {
            code: "unqualified".into(),
            message: format!(
                "{} data needs capacity qualified at level 3 or above",
                class_name(class)
            ),
        });
    }
    if class == DataClass::Core && input.offer.green_share < 50 {
        return Err(Denial {
            code: "not_green".into(),
            message: "core data needs capacity at least 50 % renewable".into(),
        });
    }
    Ok(())
}

/// The name of a data class, as people read it.
fn class_name(class: DataClass) -> &'static str {
    match class {
        DataClass::General => "general",
        DataClass::Important => "important",
        DataClass::Core => "core",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class_named(name: &str) -> DataClass {
        match name {
            "important" => DataClass::Important,
            "core" => DataClass::Core,
            _ => DataClass::General,
        }
    }

    fn input(data_class: &str, qualification: Option<&str>, green_share: u8) -> MatchInput {
        let hub = HubFacts {
            code: "gz".into(),
            tier: Tier::West,
            region: "south".into(),
            renewable_share: 55,
            carbon_g_per_kwh: 380,
            pue: 1_200_000,
        };
        MatchInput {
            offer: OfferFacts {
                id: Id { high: 0, low: 1 },
                provider: Id { high: 0, low: 2 },
                cluster: "guian".into(),
                sku: "ai.ascend-910b".into(),
                sku_class: SkuClass::Intelligent,
                quantity: 1,
                window_start: 0,
                window_end: 3600,
                ask_price: 1_000_000,
                green_share,
                attributes: qualification
                    .map(|q| vec![("qualification".to_owned(), q.to_owned())])
                    .unwrap_or_default(),
            },
            bid: BidFacts {
                id: Id { high: 0, low: 3 },
                buyer: Id { high: 0, low: 4 },
                skus: vec!["ai.ascend-910b".into()],
                quantity: 1,
                window_start: 0,
                window_end: 3600,
                limit_price: 1_000_000,
                max_latency_ms: None,
                min_green_share: 0,
                data_class: class_named(data_class),
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
    fn sensitive_data_needs_qualified_capacity() {
        let cases = [
            ("general", None, 0, Ok(())),
            ("important", None, 80, Err("unqualified")),
            ("important", Some("level-2"), 80, Err("unqualified")),
            ("important", Some("level-3"), 0, Ok(())),
            ("core", Some("level-4"), 49, Err("not_green")),
            ("core", Some("level-4"), 50, Ok(())),
        ];
        for (class, qualification, green, expected) in cases {
            let result = check(&input(class, qualification, green)).map_err(|denial| denial.code);
            assert_eq!(
                result.as_ref().map_err(String::as_str),
                expected.as_ref().map_err(|e| *e),
                "{class} {qualification:?} {green}"
            );
        }
    }
}
