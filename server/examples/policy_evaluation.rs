//! Benchmark of policy decisions of a real example policy (from `target/policies/`, built by
//! `scripts/build-policies`) on one thread: one isolated decision (a fresh instance, one call,
//! drop; median and p99 over 20,000), then the decisions of one incoming order's candidates made
//! in one batch call (a fresh instance for the batch; 16 pairs unless told, as an order crossing
//! 16 offers of one hub; median per call and per decision over 5,000 calls). Every decision
//! makes and drops its own WIT record inside the timing: the worst case (on the order path, a
//! pair's record is made once and shared by its calls). A policy of
//! interface version 0.2 or 0.1 takes the batch one pair per call, each in a fresh instance.
//!
//! `cargo run --release -p suanli-server --example policy_evaluation [policy-name [pairs]]`

use std::time::Instant;

use suanli_server::policy::{Pair, PolicyHost, PolicyInput, PolicyKind, SandboxLimits};

fn main() -> anyhow::Result<()> {
    let name = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "west-green-pricing".into());
    let bytes = std::fs::read(format!("target/policies/{name}.wasm")).map_err(|error| {
        anyhow::anyhow!("target/policies/{name}.wasm: {error}; run scripts/build-policies")
    })?;
    let kind = if name.ends_with("pricing") {
        PolicyKind::Pricing
    } else {
        PolicyKind::Compliance
    };
    let host = PolicyHost::new(SandboxLimits::default())?;
    let started = Instant::now();
    let (_, policy) = host
        .prepare_upload(kind, &bytes)
        .map_err(|error| anyhow::anyhow!("{error}"))?;
    println!(
        "{name}: {} bytes, validated and compiled in {:.1} ms",
        bytes.len(),
        started.elapsed().as_secs_f64() * 1000.0
    );
    let input: PolicyInput = serde_json::from_value(serde_json::json!({
        "offer": {"id": "0193e0a4-7d8f-7000-8000-000000000001", "provider": "0193e0a4-7d8f-7000-8000-000000000002", "cluster": "zhongwei", "hub": "nx", "sku": "ai.metax-c500",
                  "sku_class": "intelligent", "quantity": 8, "window_start": 1795824000, "window_end": 1796428800,
                  "ask_price": "10.5", "green_share": 60, "attributes": [["qualification", "level-3"]]},
        "bid": {"id": "0193e0a4-7d8f-7000-8000-000000000003", "buyer": "0193e0a4-7d8f-7000-8000-000000000004", "skus": ["ai.metax-c500"], "quantity": 2, "window_start": 1795852800,
                "window_end": 1795896000, "limit_price": "14.25", "data_origin": "bth", "max_latency_ms": 20,
                "min_green_share": 30, "data_class": "important"},
        "offer_hub": {"code": "nx", "tier": "west", "region": "west", "renewable_share": 50, "carbon_g_per_kwh": 480, "pue": "1.2"},
        "origin_hub": {"code": "bth", "tier": "east", "region": "north", "renewable_share": 30, "carbon_g_per_kwh": 650, "pue": "1.25"},
        "maker": "offer", "hours": 12, "units": 2, "latency_ms": 15
    }))?;
    let limits = host.limits();
    // Each decision's input is wrapped before the call (outside the timing); its WIT record is
    // made in the call and dropped after it (inside the timing).
    let one =
        |pair: &Pair| host.evaluate_within(&policy, pair, limits.fuel_max, limits.deadline_ms);
    // Warm up the allocator's slots and the caches.
    for _ in 0..2_000 {
        one(&Pair::new(input.clone()));
    }
    let mut samples = Vec::with_capacity(20_000);
    let mut fuel = 0;
    for _ in 0..20_000 {
        let pair = Pair::new(input.clone());
        let started = Instant::now();
        let evaluation = one(&pair);
        drop(pair);
        samples.push(started.elapsed());
        fuel = evaluation.fuel_used;
        assert!(evaluation.output.is_ok(), "{:?}", evaluation.output);
    }
    samples.sort();
    let at = |per_mille| percentile_us(&samples, per_mille);
    println!(
        "one decision (fresh instance + call + drop), 20000 runs: median {:.1} µs, p99 {:.1} µs, p99.9 {:.1} µs; fuel {fuel}",
        at(500),
        at(990),
        at(999),
    );
    let batch_size: u32 = match std::env::args().nth(2) {
        Some(pairs) => pairs.parse()?,
        None => 16,
    };
    let pairs: Vec<PolicyInput> = (0..batch_size.max(1))
        .map(|index| {
            let mut pair = input.clone();
            let id = 0x0193e0a4_7d8f_7000_8000_000000000100 + u128::from(index);
            pair.offer.id = uuid::Uuid::from_u128(id).to_string();
            pair.units = 1 + index % 4;
            pair
        })
        .collect();
    // Fresh pairs for each call, wrapped outside the timing, converted and dropped inside it.
    let wrapped = || -> Vec<Pair> { pairs.iter().cloned().map(Pair::new).collect() };
    let batch = |wrapped: &[Pair]| {
        let wrapped: Vec<&Pair> = wrapped.iter().collect();
        host.evaluate_batch_within(&policy, &wrapped, limits.fuel_max, limits.deadline_ms)
    };
    for _ in 0..500 {
        batch(&wrapped());
    }
    let mut samples = Vec::with_capacity(5_000);
    for _ in 0..5_000 {
        let fresh = wrapped();
        let started = Instant::now();
        let evaluation = batch(&fresh);
        drop(fresh);
        samples.push(started.elapsed());
        fuel = evaluation.fuel_used;
        let outputs = evaluation
            .outputs
            .map_err(|fault| anyhow::anyhow!("{fault}"))?;
        assert!(outputs.iter().all(Result::is_ok), "{outputs:?}");
    }
    samples.sort();
    let at = |per_mille| percentile_us(&samples, per_mille);
    println!(
        "{} decisions in one batch call (interface {}), 5000 runs: median {:.1} µs per call, {:.2} µs per decision, p99 {:.1} µs per call; fuel {fuel}",
        pairs.len(),
        policy.interface_version(),
        at(500),
        at(500) / f64::from(batch_size.max(1)),
        at(990),
    );
    Ok(())
}

/// The sample at `per_mille` thousandths of the sorted `samples`, in microseconds.
fn percentile_us(samples: &[std::time::Duration], per_mille: usize) -> f64 {
    samples[samples.len() * per_mille / 1000].as_secs_f64() * 1e6
}
