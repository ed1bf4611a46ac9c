//! Data residency: `important` and `core` data may not leave the region of its origin hub.
//! Regions: north (bth, nmg), east (yrd), south (gba, gz), west (cy, gs, nx). General data may go
//! anywhere. Used by a hub both as "may this data leave?" (as the origin's policy) and "may this
//! work run here?" (as the compute hub's policy).

suanli_policy_sdk::compliance_policy!(check);

pub fn check(input: &MatchInput) -> Result<(), Denial> {
    let sensitive = matches!(input.bid.data_class, DataClass::Important | DataClass::Core);
    match &input.origin_hub {
        Some(origin) if sensitive && origin.region != input.offer_hub.region => Err(Denial {
            code: "data_residency".into(),
            message: format!(
                "{} data from {} ({} region) may not be processed in {} ({} region)",
                class_name(input.bid.data_class),
                origin.code,
                origin.region,
                input.offer_hub.code,
                input.offer_hub.region
            ),
        }),
        _ => Ok(()),
    }
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

    fn hub(code: &str, region: &str) -> HubFacts {
        HubFacts {
            code: code.into(),
            tier: Tier::East,
            region: region.into(),
            renewable_share: 30,
            carbon_g_per_kwh: 500,
            pue: 1_250_000,
        }
    }

    fn input(data_class: &str, origin: Option<HubFacts>, compute: HubFacts) -> MatchInput {
        MatchInput {
            offer: OfferFacts {
                id: Id { high: 0, low: 1 },
                provider: Id { high: 0, low: 2 },
                cluster: "c".into(),
                sku: "cpu.general.vcpu".into(),
                sku_class: SkuClass::General,
                quantity: 1,
                window_start: 0,
                window_end: 3600,
                ask_price: 1_000_000,
                green_share: 0,
                attributes: vec![],
            },
            bid: BidFacts {
                id: Id { high: 0, low: 3 },
                buyer: Id { high: 0, low: 4 },
                skus: vec!["cpu.general.vcpu".into()],
                quantity: 1,
                window_start: 0,
                window_end: 3600,
                limit_price: 1_000_000,
                max_latency_ms: None,
                min_green_share: 0,
                data_class: class_named(data_class),
            },
            offer_hub: compute,
            origin_hub: origin,
            maker: Side::Offer,
            hours: 1,
            units: 1,
            latency_ms: None,
        }
    }

    #[test]
    fn sensitive_data_stays_in_its_region() {
        let cases = [
            (
                "important",
                Some(hub("bth", "north")),
                hub("nx", "west"),
                false,
            ),
            ("core", Some(hub("bth", "north")), hub("nmg", "north"), true),
            (
                "important",
                Some(hub("gba", "south")),
                hub("gz", "south"),
                true,
            ),
            (
                "general",
                Some(hub("bth", "north")),
                hub("nx", "west"),
                true,
            ),
            ("important", None, hub("nx", "west"), true),
        ];
        for (class, origin, compute, allowed) in cases {
            let result = check(&input(class, origin.clone(), compute.clone()));
            assert_eq!(
                result.is_ok(),
                allowed,
                "{class} {:?} -> {}",
                origin.map(|h| h.code),
                compute.code
            );
            if let Err(denial) = result {
                assert_eq!(denial.code, "data_residency");
            }
        }
    }
}
