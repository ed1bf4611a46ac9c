//! What a policy sees and says, in the host's own serde types: their canonical JSON is what the
//! decision records keep and what a replay feeds back in.
//!
//! The input's structs declare their fields in sorted order, so that serde writes them in the
//! order canonical JSON wants and `PolicyInput::canonical` is one `serde_json::to_string`, without
//! building a `serde_json::Value` tree first (5 µs a pair that way, more than a batched decision
//! costs in the sandbox); `PolicyOutput::canonical` writes its few fields directly. A test checks
//! both give the bytes the tree would.

use serde::{Deserialize, Serialize};

use rust_decimal::Decimal;

use super::{Fault, wit, wit_v0_1};

/// A hub's reference figures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HubFacts {
    pub carbon_g_per_kwh: u32,
    pub code: String,
    pub pue: String,
    pub region: String,
    pub renewable_share: u8,
    pub tier: String,
}

/// The offer of a pair.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfferFacts {
    pub ask_price: String,
    pub attributes: Vec<(String, String)>,
    pub cluster: String,
    pub green_share: u8,
    pub hub: String,
    pub id: String,
    pub provider: String,
    pub quantity: u32,
    pub sku: String,
    pub sku_class: String,
    pub window_end: i64,
    pub window_start: i64,
}

/// The bid of a pair.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BidFacts {
    pub buyer: String,
    pub data_class: String,
    pub data_origin: Option<String>,
    pub id: String,
    pub limit_price: String,
    pub max_latency_ms: Option<u32>,
    pub min_green_share: u8,
    pub quantity: u32,
    pub skus: Vec<String>,
    pub window_end: i64,
    pub window_start: i64,
}

/// Everything a policy may know about one candidate pair (the WIT `match-input`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyInput {
    pub bid: BidFacts,
    pub hours: u32,
    pub latency_ms: Option<u32>,
    /// Which side rested first.
    pub maker: suanli_sdk::Side,
    pub offer: OfferFacts,
    pub offer_hub: HubFacts,
    pub origin_hub: Option<HubFacts>,
    pub units: u32,
}

/// A pair's input as the sandbox takes it: its WIT record (versions 0.2 and 0.3) is made on first
/// need and kept, so a pair that goes to several calls (a hub's stages, a spot check of a batch)
/// is converted once, and every call lowers it from here by reference (its strings are not copied
/// on the host's side). The input cannot change once wrapped, so the record never goes stale.
#[derive(Debug)]
pub struct Pair {
    input: PolicyInput,
    record: std::cell::OnceCell<Result<wit::MatchInput, Fault>>,
}

impl Pair {
    pub fn new(input: PolicyInput) -> Self {
        Pair {
            input,
            record: Default::default(),
        }
    }

    /// The input.
    pub fn input(&self) -> &PolicyInput {
        &self.input
    }

    /// The WIT record of versions 0.2 and 0.3, or why the input cannot be put in it.
    pub fn record(&self) -> Result<&wit::MatchInput, Fault> {
        self.record
            .get_or_init(|| self.input.to_wit())
            .as_ref()
            .map_err(Clone::clone)
    }
}

/// A policy's answer, checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum PolicyOutput {
    Quote { unit_price: String, levy_bps: u32 },
    Reject { reason: String },
    Allow,
    Deny { code: String, message: String },
}

fn hub_to_wit_v0_1(hub: &HubFacts) -> wit_v0_1::HubFacts {
    wit_v0_1::HubFacts {
        code: hub.code.clone(),
        tier: hub.tier.clone(),
        region: hub.region.clone(),
        renewable_share: hub.renewable_share,
        carbon_g_per_kwh: hub.carbon_g_per_kwh,
        pue: hub.pue.clone(),
    }
}

fn hub_to_wit(hub: &HubFacts) -> Result<wit::HubFacts, Fault> {
    Ok(wit::HubFacts {
        code: hub.code.clone(),
        tier: match hub.tier.as_str() {
            "east" => wit::Tier::East,
            "west" => wit::Tier::West,
            other => return Err(unknown("tier", other)),
        },
        region: hub.region.clone(),
        renewable_share: hub.renewable_share,
        carbon_g_per_kwh: hub.carbon_g_per_kwh,
        pue: micros("pue", &hub.pue)?,
    })
}

/// A plain decimal string (digits, at most 6 of them after the point: what the exchange writes) as
/// whole millionths, exactly; anything else is refused rather than rounded.
fn micros(field: &str, text: &str) -> Result<i64, Fault> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let digits = |part: &str| part.bytes().all(|byte| byte.is_ascii_digit());
    let exact = (!whole.is_empty() && fraction.len() <= 6 && digits(whole) && digits(fraction))
        .then(|| {
            let whole: i64 = whole.parse().ok()?;
            // At most six ASCII digits: "5" is 500000 millionths, "05" 50000.
            let fraction = fraction
                .bytes()
                .chain(std::iter::repeat(b'0'))
                .take(6)
                .fold(0i64, |value, digit| value * 10 + i64::from(digit - b'0'));
            whole.checked_mul(1_000_000)?.checked_add(fraction)
        })
        .flatten();
    exact.ok_or_else(|| {
        Fault::BadInput(format!(
            "{field} {:?} is not a decimal of at most 6 fractional digits in range",
            truncate(text)
        ))
    })
}

/// A UUID as its two 64-bit halves.
fn id(field: &str, text: &str) -> Result<wit::Id, Fault> {
    let (high, low) = uuid::Uuid::parse_str(text)
        .map_err(|_| Fault::BadInput(format!("{field} {:?} is not a UUID", truncate(text))))?
        .as_u64_pair();
    Ok(wit::Id { high, low })
}

fn unknown(field: &str, value: &str) -> Fault {
    Fault::BadInput(format!("unknown {field} {:?}", truncate(value)))
}

impl PolicyInput {
    /// The canonical JSON text: the bytes a decision record keeps (sorted keys: the fields are
    /// declared in that order).
    pub fn canonical(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The record handed to a policy built against version 0.2 or 0.3 of the WIT package: the same
    /// facts as [`PolicyInput::to_wit_v0_1`], without the strings a policy does not need (codes
    /// of closed sets as enums, ids as integers, decimals as millionths, nothing twice). Fails
    /// only on facts the exchange never produces.
    pub fn to_wit(&self) -> Result<wit::MatchInput, Fault> {
        let (offer, bid) = (&self.offer, &self.bid);
        Ok(wit::MatchInput {
            offer: wit::OfferFacts {
                id: id("offer id", &offer.id)?,
                provider: id("provider", &offer.provider)?,
                cluster: offer.cluster.clone(),
                sku: offer.sku.clone(),
                sku_class: match offer.sku_class.as_str() {
                    "general" => wit::SkuClass::General,
                    "intelligent" => wit::SkuClass::Intelligent,
                    "supercomputing" => wit::SkuClass::Supercomputing,
                    other => return Err(unknown("sku class", other)),
                },
                quantity: offer.quantity,
                window_start: offer.window_start,
                window_end: offer.window_end,
                ask_price: micros("ask price", &offer.ask_price)?,
                green_share: offer.green_share,
                attributes: offer.attributes.clone(),
            },
            bid: wit::BidFacts {
                id: id("bid id", &bid.id)?,
                buyer: id("buyer", &bid.buyer)?,
                skus: bid.skus.clone(),
                quantity: bid.quantity,
                window_start: bid.window_start,
                window_end: bid.window_end,
                limit_price: micros("limit price", &bid.limit_price)?,
                max_latency_ms: bid.max_latency_ms,
                min_green_share: bid.min_green_share,
                data_class: match bid.data_class.as_str() {
                    "general" => wit::DataClass::General,
                    "important" => wit::DataClass::Important,
                    "core" => wit::DataClass::Core,
                    other => return Err(unknown("data class", other)),
                },
            },
            offer_hub: hub_to_wit(&self.offer_hub)?,
            origin_hub: self.origin_hub.as_ref().map(hub_to_wit).transpose()?,
            maker: match self.maker {
                suanli_sdk::Side::Bid => wit::Side::Bid,
                suanli_sdk::Side::Offer => wit::Side::Offer,
            },
            hours: self.hours,
            units: self.units,
            latency_ms: self.latency_ms,
        })
    }

    /// The record handed to a policy built against version 0.1 of the WIT package.
    pub fn to_wit_v0_1(&self) -> wit_v0_1::MatchInput {
        wit_v0_1::MatchInput {
            offer: wit_v0_1::OfferFacts {
                id: self.offer.id.clone(),
                provider: self.offer.provider.clone(),
                cluster: self.offer.cluster.clone(),
                hub: self.offer.hub.clone(),
                sku: self.offer.sku.clone(),
                sku_class: self.offer.sku_class.clone(),
                quantity: self.offer.quantity,
                window_start: self.offer.window_start,
                window_end: self.offer.window_end,
                ask_price: self.offer.ask_price.clone(),
                green_share: self.offer.green_share,
                attributes: self.offer.attributes.clone(),
            },
            bid: wit_v0_1::BidFacts {
                id: self.bid.id.clone(),
                buyer: self.bid.buyer.clone(),
                skus: self.bid.skus.clone(),
                quantity: self.bid.quantity,
                window_start: self.bid.window_start,
                window_end: self.bid.window_end,
                limit_price: self.bid.limit_price.clone(),
                data_origin: self.bid.data_origin.clone(),
                max_latency_ms: self.bid.max_latency_ms,
                min_green_share: self.bid.min_green_share,
                data_class: self.bid.data_class.clone(),
            },
            offer_hub: hub_to_wit_v0_1(&self.offer_hub),
            origin_hub: self.origin_hub.as_ref().map(hub_to_wit_v0_1),
            maker: match self.maker {
                suanli_sdk::Side::Bid => wit_v0_1::Side::Bid,
                suanli_sdk::Side::Offer => wit_v0_1::Side::Offer,
            },
            hours: self.hours,
            units: self.units,
            latency_ms: self.latency_ms,
        }
    }
}

impl PolicyOutput {
    /// Checks a pricing answer — `(unit price, levy in basis points)` or a rejection's reason,
    /// the same in every version of the interface: size, and a unit price that is a positive
    /// decimal with at most 6 fractional digits and a levy of at most 100 %.
    pub fn from_pricing(
        answer: Result<(String, u32), String>,
        output_bytes_max: usize,
    ) -> Result<Self, Fault> {
        match answer {
            Ok((unit_price, levy_bps)) => {
                if unit_price.len() > output_bytes_max {
                    return Err(Fault::OversizedOutput(output_bytes_max));
                }
                let price: Decimal = unit_price.parse().map_err(|_| {
                    Fault::BadOutput(format!(
                        "unit price {:?} is not a decimal",
                        truncate(&unit_price)
                    ))
                })?;
                let price = price.normalize();
                if price <= Decimal::ZERO || price.scale() > 6 || levy_bps > 10_000 {
                    return Err(Fault::BadOutput(format!(
                        "quote {price} with levy {levy_bps} bps is out of range"
                    )));
                }
                Ok(PolicyOutput::Quote {
                    unit_price: price.to_string(),
                    levy_bps,
                })
            }
            Err(reason) if reason.len() > output_bytes_max => {
                Err(Fault::OversizedOutput(output_bytes_max))
            }
            Err(reason) => Ok(PolicyOutput::Reject { reason }),
        }
    }

    /// Checks a compliance answer — allowed, or a denial's `(code, message)`: its size.
    pub fn from_compliance(
        answer: Result<(), (String, String)>,
        output_bytes_max: usize,
    ) -> Result<Self, Fault> {
        match answer {
            Ok(()) => Ok(PolicyOutput::Allow),
            Err((code, message)) if code.len() + message.len() > output_bytes_max => {
                Err(Fault::OversizedOutput(output_bytes_max))
            }
            Err((code, message)) => Ok(PolicyOutput::Deny { code, message }),
        }
    }

    /// The canonical JSON text a decision record keeps: the variant's fields and its tag
    /// `decision`, in sorted order, written directly.
    pub fn canonical(&self) -> String {
        let text = |value: &str| serde_json::to_string(value).unwrap_or_default();
        match self {
            PolicyOutput::Quote {
                unit_price,
                levy_bps,
            } => format!(
                r#"{{"decision":"quote","levy_bps":{levy_bps},"unit_price":{}}}"#,
                text(unit_price)
            ),
            PolicyOutput::Reject { reason } => {
                format!(r#"{{"decision":"reject","reason":{}}}"#, text(reason))
            }
            PolicyOutput::Allow => r#"{"decision":"allow"}"#.to_owned(),
            PolicyOutput::Deny { code, message } => format!(
                r#"{{"code":{},"decision":"deny","message":{}}}"#,
                text(code),
                text(message)
            ),
        }
    }
}

fn truncate(text: &str) -> String {
    text.chars().take(40).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> PolicyInput {
        serde_json::from_value(serde_json::json!({
            "offer": {"id": "0193e0a4-7d8f-7000-8000-00000000000a", "provider": "0193e0a4-7d8f-7000-8000-00000000000b",
                      "cluster": "zhongwei", "hub": "nx", "sku": "ai.metax-c500", "sku_class": "supercomputing",
                      "quantity": 8, "window_start": 1795824000, "window_end": 1796428800, "ask_price": "10.000001",
                      "green_share": 60, "attributes": [["qualification", "level-3"]]},
            "bid": {"id": "0193e0a4-7d8f-7000-8000-00000000000c", "buyer": "0193e0a4-7d8f-7000-8000-00000000000d",
                    "skus": ["ai.metax-c500"], "quantity": 2, "window_start": 1795852800, "window_end": 1795896000,
                    "limit_price": "99999999", "data_origin": "bth", "max_latency_ms": 20, "min_green_share": 30,
                    "data_class": "core"},
            "offer_hub": {"code": "nx", "tier": "west", "region": "west", "renewable_share": 50, "carbon_g_per_kwh": 480, "pue": "1.2"},
            "origin_hub": {"code": "bth", "tier": "east", "region": "north", "renewable_share": 30, "carbon_g_per_kwh": 650, "pue": "1.25"},
            "maker": "bid", "hours": 12, "units": 2, "latency_ms": 15
        }))
        .unwrap()
    }

    #[test]
    fn version_0_2_carries_every_fact_exactly() {
        let lean = input().to_wit().unwrap();
        assert_eq!(
            (lean.offer.id.high, lean.offer.id.low),
            uuid::Uuid::parse_str("0193e0a4-7d8f-7000-8000-00000000000a")
                .unwrap()
                .as_u64_pair()
        );
        assert_eq!(lean.bid.buyer.low, 0x8000_0000_0000_000d);
        assert_eq!(lean.offer.ask_price, 10_000_001);
        assert_eq!(lean.bid.limit_price, 99_999_999_000_000);
        assert_eq!(lean.offer_hub.pue, 1_200_000);
        assert_eq!(lean.offer.sku_class, wit::SkuClass::Supercomputing);
        assert_eq!(lean.bid.data_class, wit::DataClass::Core);
        assert_eq!(lean.offer_hub.tier, wit::Tier::West);
        let origin = lean.origin_hub.unwrap();
        assert_eq!(
            (origin.code.as_str(), origin.tier),
            ("bth", wit::Tier::East)
        );
        assert_eq!(lean.maker, wit::Side::Bid);
        assert_eq!(
            lean.offer.attributes,
            vec![("qualification".to_owned(), "level-3".to_owned())]
        );
        assert_eq!((lean.hours, lean.units, lean.latency_ms), (12, 2, Some(15)));
    }

    #[test]
    fn the_canonical_text_is_the_sorted_json_of_every_field() {
        let through_a_tree = |value: serde_json::Value| suanli_sdk::audit::canonical_json(&value);
        let mut odd = input();
        odd.offer.cluster = "中卫 \"east\" \\ \u{1}\n".into();
        odd.offer
            .attributes
            .push(("note".into(), "tab\there ✓".into()));
        let mut bare = input();
        (bare.origin_hub, bare.bid.data_origin, bare.latency_ms) = (None, None, None);
        bare.offer.attributes.clear();
        for input in [input(), odd, bare] {
            assert_eq!(
                input.canonical(),
                through_a_tree(serde_json::to_value(&input).unwrap())
            );
            let back: PolicyInput = serde_json::from_str(&input.canonical()).unwrap();
            assert_eq!(back, input);
        }
        for output in [
            PolicyOutput::Quote {
                unit_price: "11.4".into(),
                levy_bps: 50,
            },
            PolicyOutput::Reject {
                reason: "no \"way\" \\ \u{2}".into(),
            },
            PolicyOutput::Allow,
            PolicyOutput::Deny {
                code: "residency".into(),
                message: "stays in the north ✓\n".into(),
            },
        ] {
            assert_eq!(
                output.canonical(),
                through_a_tree(serde_json::to_value(&output).unwrap())
            );
            let back: PolicyOutput = serde_json::from_str(&output.canonical()).unwrap();
            assert_eq!(back, output);
        }
    }

    proptest::proptest! {
        /// Whole millionths are read digit by digit: the same as the decimal times a million.
        #[test]
        fn micros_are_the_decimal_in_millionths(
            whole in 0u64..1_000_000_000_000,
            fraction in proptest::option::of("[0-9]{0,6}"),
        ) {
            let text = match &fraction {
                Some(fraction) => format!("{whole}.{fraction}"),
                None => whole.to_string(),
            };
            let exact: Decimal = text.parse().unwrap();
            let millionths = exact * Decimal::from(1_000_000);
            proptest::prop_assert!(millionths.fract().is_zero());
            let expected = i64::try_from(millionths.trunc()).unwrap();
            proptest::prop_assert_eq!(micros("price", &text).unwrap(), expected);
        }
    }

    #[test]
    fn millionths_reach_the_largest_64_bit_integer_and_no_further() {
        assert_eq!(micros("price", "9223372036854.775807"), Ok(i64::MAX));
        assert!(micros("price", "9223372036854.775808").is_err());
        assert!(micros("price", "9223372036855").is_err());
        assert_eq!(micros("price", "0.000001"), Ok(1));
        assert_eq!(micros("price", "5."), Ok(5_000_000));
        assert_eq!(micros("price", "007.05"), Ok(7_050_000));
    }

    #[test]
    fn facts_version_0_2_cannot_carry_are_a_bad_input() {
        type Change = fn(&mut PolicyInput);
        let cases: [(&str, Change); 9] = [
            ("id", |input| input.offer.id = "o".into()),
            ("seven fractional digits", |input| {
                input.offer.ask_price = "1.0000001".into()
            }),
            ("not a decimal", |input| {
                input.bid.limit_price = "ten".into()
            }),
            ("an exponent", |input| input.bid.limit_price = "1e3".into()),
            ("a sign", |input| input.offer.ask_price = "+1".into()),
            ("no digits", |input| input.offer_hub.pue = ".5".into()),
            ("beyond 64 bits", |input| {
                input.bid.limit_price = "9999999999999999".into()
            }),
            ("tier", |input| input.offer_hub.tier = "north".into()),
            ("data class", |input| input.bid.data_class = "secret".into()),
        ];
        for (what, change) in cases {
            let mut odd = input();
            change(&mut odd);
            assert!(
                matches!(odd.to_wit(), Err(Fault::BadInput(_))),
                "{what}: {:?}",
                odd.to_wit().err()
            );
        }
    }
}
