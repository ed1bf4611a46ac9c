//! A hostile pricing policy, for tests of the sandbox only. The offer attribute `mode` picks the
//! misbehaviour: `loop`, `memory`, `recursion`, `trap`, `garbage`, `oversized`, `below-ask`, or
//! `neighbours` (the ask plus one millionth for every pair this instance priced before: alone the
//! ask, later in a batch call more); without it the policy quotes the ask, like a good one, and
//! with `units` the ask plus one millionth per unit of the pair (a good policy whose answer
//! depends on the units).

suanli_policy_sdk::pricing_policy!(price);

pub fn price(input: &MatchInput) -> Result<Quote, Rejection> {
    let mode = input
        .offer
        .attributes
        .iter()
        .find(|(key, _)| key == "mode")
        .map(|(_, value)| value.as_str());
    let unit_price = match mode {
        Some("loop") => loop {
            std::hint::black_box(0u64);
        },
        Some("memory") => {
            let mut hoard: Vec<Vec<u8>> = Vec::new();
            loop {
                hoard.push(vec![1u8; 1 << 20]);
                std::hint::black_box(&hoard);
            }
        }
        Some("recursion") => recurse(std::hint::black_box(1)).to_string(),
        Some("trap") => panic!("a policy that gives up"),
        Some("garbage") => "not-a-number".to_owned(),
        Some("oversized") => "1".repeat(1 << 20),
        Some("below-ask") => "0.000001".to_owned(),
        Some("neighbours") => {
            static SEEN: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);
            let seen = SEEN.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            suanli_policy_sdk::format_micros(input.offer.ask_price + seen)
        }
        Some("units") => {
            suanli_policy_sdk::format_micros(input.offer.ask_price + i64::from(input.units))
        }
        _ => suanli_policy_sdk::format_micros(input.offer.ask_price),
    };
    Ok(Quote {
        unit_price,
        levy_bps: 0,
    })
}

#[expect(unconditional_recursion, reason = "overflowing the stack is the point")]
fn recurse(depth: u64) -> u64 {
    let deeper = recurse(std::hint::black_box(depth + 1));
    std::hint::black_box(deeper + depth)
}
