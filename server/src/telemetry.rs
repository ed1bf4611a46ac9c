//! Structured logs (tracing) and Prometheus metrics.

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts, Registry,
    TextEncoder,
};

/// Installs the global log subscriber: `RUST_LOG` picks levels (default `info`), `format` is
/// `text` or `json`. Calling it twice is harmless (tests do).
pub fn init_logging(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _already_installed = if format == "json" {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// The exchange's metrics, registered in their own registry (no process-wide globals).
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    /// HTTP requests by method, route pattern and status.
    pub http_requests: IntCounterVec,
    /// HTTP latency by method and route pattern.
    pub http_request_seconds: HistogramVec,
    /// Changes of state by kind (`participant_created`, `deposit`, …), counted when committed.
    pub events: IntCounterVec,
    /// Orders by side and outcome (`accepted`, `replayed`, `refused`).
    pub orders: IntCounterVec,
    /// Contracts created (one per fill).
    pub contracts: IntCounter,
    /// Commands per committed batch of the sequenced writer.
    pub batch_commands: Histogram,
    /// Time to process and commit one batch.
    pub batch_seconds: Histogram,
    /// Time from a batch's hand-over to the committer until its transaction committed: the
    /// single writer's own pace (the next batch is matched meanwhile).
    pub batch_commit_seconds: Histogram,
    /// Time to settle one contract.
    pub settlement_seconds: Histogram,
    /// Policy evaluations that failed, by class (`out_of_fuel`, `deadline`, `memory`, …).
    pub policy_faults: IntCounterVec,
    /// Policy decisions by how they were made: `batch` (one sandbox call for many pairs) or
    /// `single` (one call for one pair).
    pub policy_decisions: IntCounterVec,
    /// Sandbox calls for a batch of pairs.
    pub policy_batch_calls: IntCounter,
}

impl Metrics {
    /// A fresh registry with every metric registered.
    pub fn new() -> Self {
        let registry = Registry::new();
        let http_requests = IntCounterVec::new(
            Opts::new("suanli_http_requests_total", "HTTP requests answered"),
            &["method", "route", "status"],
        )
        .expect("valid metric");
        let http_request_seconds = HistogramVec::new(
            HistogramOpts::new("suanli_http_request_seconds", "HTTP request latency"),
            &["method", "route"],
        )
        .expect("valid metric");
        let events = IntCounterVec::new(
            Opts::new("suanli_events_total", "state changes committed"),
            &["kind"],
        )
        .expect("valid metric");
        let orders = IntCounterVec::new(
            Opts::new("suanli_orders_total", "orders by side and outcome"),
            &["side", "outcome"],
        )
        .expect("valid metric");
        let contracts =
            IntCounter::new("suanli_contracts_total", "contracts created").expect("valid metric");
        let batch_commands = Histogram::with_opts(
            HistogramOpts::new("suanli_batch_commands", "commands per committed batch").buckets(
                vec![
                    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0,
                ],
            ),
        )
        .expect("valid metric");
        let batch_seconds = Histogram::with_opts(HistogramOpts::new(
            "suanli_batch_seconds",
            "time to process and commit a batch",
        ))
        .expect("valid metric");
        let batch_commit_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "suanli_batch_commit_seconds",
                "time from a batch's hand-over to the committer until it committed",
            )
            .buckets(vec![
                0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.0, 2.5,
            ]),
        )
        .expect("valid metric");
        let settlement_seconds = Histogram::with_opts(HistogramOpts::new(
            "suanli_settlement_seconds",
            "time to settle one contract",
        ))
        .expect("valid metric");
        registry
            .register(Box::new(settlement_seconds.clone()))
            .expect("registered once");
        let policy_faults = IntCounterVec::new(
            Opts::new(
                "suanli_policy_faults_total",
                "policy evaluations that failed",
            ),
            &["class"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(policy_faults.clone()))
            .expect("registered once");
        let policy_decisions = IntCounterVec::new(
            Opts::new(
                "suanli_policy_decisions_total",
                "policy decisions, by the call that made them: batch or single",
            ),
            &["call"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(policy_decisions.clone()))
            .expect("registered once");
        let policy_batch_calls = IntCounter::new(
            "suanli_policy_batch_calls_total",
            "sandbox calls for a batch of pairs (one that faults as a whole decides none of them)",
        )
        .expect("valid metric");
        registry
            .register(Box::new(policy_batch_calls.clone()))
            .expect("registered once");
        registry
            .register(Box::new(orders.clone()))
            .expect("registered once");
        registry
            .register(Box::new(contracts.clone()))
            .expect("registered once");
        registry
            .register(Box::new(batch_commands.clone()))
            .expect("registered once");
        registry
            .register(Box::new(batch_seconds.clone()))
            .expect("registered once");
        registry
            .register(Box::new(batch_commit_seconds.clone()))
            .expect("registered once");
        registry
            .register(Box::new(http_requests.clone()))
            .expect("registered once");
        registry
            .register(Box::new(http_request_seconds.clone()))
            .expect("registered once");
        registry
            .register(Box::new(events.clone()))
            .expect("registered once");
        Metrics {
            registry,
            http_requests,
            http_request_seconds,
            events,
            orders,
            contracts,
            batch_commands,
            batch_seconds,
            batch_commit_seconds,
            settlement_seconds,
            policy_faults,
            policy_decisions,
            policy_batch_calls,
        }
    }

    /// Everything in Prometheus text format.
    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        // Encoding into a Vec cannot fail for well-formed metrics.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buffer);
        String::from_utf8(buffer).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
