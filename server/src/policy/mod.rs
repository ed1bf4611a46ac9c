//! The policy host: runs the hubs' WebAssembly policies in a sandbox. Knows wasmtime; knows
//! nothing of HTTP or the database.
//!
//! One [`wasmtime::Engine`] (pooling allocator, fuel, epoch interruption); each uploaded module is
//! validated and compiled once into an `InstancePre` ([`Compiled`]), cached by digest; every
//! evaluation gets a fresh `Store` with a fuel budget, a memory cap and a wall-clock deadline,
//! and nothing survives between evaluations. Policies may import nothing. Every failure is
//! classified ([`Fault`]) and fails closed: the caller treats it as "no trade".

pub mod input;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sha2::{Digest, Sha256};
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, Linker};
use wasmtime::{Engine, Store, Trap};

pub use input::{Pair, PolicyInput, PolicyOutput};

/// The host's side of every version of the WIT package: 0.3 (`policies/wit/`, what policies are
/// built against today: a batch of pairs per call), 0.2 (`policies/wit-0.2/`, the same types, one
/// pair per call) and 0.1 (`policies/wit-0.1/`), still accepted, so that a policy uploaded before
/// keeps running and replaying. 0.3 shares 0.2's Rust types: its types are 0.2's, unchanged.
mod bindings {
    pub mod v0_3 {
        pub mod pricing {
            wasmtime::component::bindgen!({
                world: "pricing",
                path: "../policies/wit",
                with: { "suanli:policy/types": super::super::v0_2::pricing::suanli::policy::types },
            });
        }
        pub mod compliance {
            wasmtime::component::bindgen!({
                world: "compliance",
                path: "../policies/wit",
                with: { "suanli:policy/types": super::super::v0_2::pricing::suanli::policy::types },
            });
        }
    }
    pub mod v0_2 {
        pub mod pricing {
            wasmtime::component::bindgen!({ world: "pricing", path: "../policies/wit-0.2" });
        }
        pub mod compliance {
            wasmtime::component::bindgen!({
                world: "compliance",
                path: "../policies/wit-0.2",
                with: { "suanli:policy/types": super::pricing::suanli::policy::types },
            });
        }
    }
    pub mod v0_1 {
        pub mod pricing {
            wasmtime::component::bindgen!({ world: "pricing", path: "../policies/wit-0.1" });
        }
        pub mod compliance {
            wasmtime::component::bindgen!({
                world: "compliance",
                path: "../policies/wit-0.1",
                with: { "suanli:policy/types": super::pricing::suanli::policy::types },
            });
        }
    }
}

/// The WIT types of version 0.1 of the policy interface.
pub use bindings::v0_1::pricing::suanli::policy::types as wit_v0_1;
/// The WIT types of versions 0.2 and 0.3 of the policy interface.
pub use bindings::v0_2::pricing::suanli::policy::types as wit;

/// What a policy decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PolicyKind {
    Pricing,
    Compliance,
}

impl PolicyKind {
    /// The snake_case name used on the wire and in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyKind::Pricing => "pricing",
            PolicyKind::Compliance => "compliance",
        }
    }

    /// Parses the snake_case name.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "pricing" => Some(PolicyKind::Pricing),
            "compliance" => Some(PolicyKind::Compliance),
            _ => None,
        }
    }
}

/// Limits of the sandbox, all configurable.
#[derive(Debug, Clone, Copy)]
pub struct SandboxLimits {
    /// Fuel for one evaluation (≈ 23 million per millisecond of guest time on this machine); a
    /// batch call may use this much per input.
    pub fuel_max: u64,
    /// Linear memory one evaluation may use.
    pub memory_bytes_max: usize,
    /// Wall-clock time one evaluation may take; a batch call, this much per input.
    pub deadline_ms: u64,
    /// Largest answer (sum of its strings) accepted.
    pub output_bytes_max: usize,
    /// Largest module accepted at upload.
    pub module_bytes_max: usize,
    /// Longest compilation accepted at upload.
    pub compile_ms_max: u64,
    /// Evaluations that may run at once (pooling allocator slots).
    pub concurrent_evaluations_max: u32,
    /// Uploads being encoded and compiled at once. A compile past its time bound is answered at
    /// once but keeps its slot until its thread really ends, so timed-out compiles cannot pile up.
    pub concurrent_compiles_max: u32,
    /// Compiled policies kept in memory (active ones are always kept).
    pub compiled_cache_max: usize,
}

impl Default for SandboxLimits {
    fn default() -> Self {
        SandboxLimits {
            fuel_max: 50_000_000,
            memory_bytes_max: 16 << 20,
            deadline_ms: 50,
            output_bytes_max: 4096,
            module_bytes_max: 4 << 20,
            compile_ms_max: 10_000,
            concurrent_evaluations_max: 16,
            concurrent_compiles_max: 2,
            compiled_cache_max: 64,
        }
    }
}

/// Why an upload was refused.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("the module is larger than {0} bytes")]
    TooLarge(usize),
    #[error(
        "not a WebAssembly component, nor a core module carrying a component type section: {0}"
    )]
    NotAComponent(String),
    #[error("the policy imports `{0}`; policies may import nothing")]
    Imports(String),
    #[error(
        "the policy does not export the `{0}` world of suanli:policy 0.3.0 (nor of 0.2.0 or 0.1.0): {1}"
    )]
    WrongWorld(&'static str, String),
    #[error("compiling took longer than {0} ms")]
    CompileTimeout(u64),
    #[error("compilation failed: {0}")]
    Compile(String),
    #[error("{0} policies are being compiled already; retry shortly")]
    Busy(u32),
}

/// Why an evaluation produced no decision. Every fault fails closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Fault {
    #[error("out of fuel")]
    OutOfFuel,
    #[error("wall-clock deadline passed")]
    Deadline,
    #[error("memory limit reached")]
    Memory,
    #[error("stack overflow")]
    StackOverflow,
    #[error("trap: {0}")]
    Trap(String),
    #[error("bad output: {0}")]
    BadOutput(String),
    #[error("output larger than {0} bytes")]
    OversizedOutput(usize),
    #[error("quote below the ask")]
    PriceBelowAsk,
    #[error("the sandbox could not start: {0}")]
    Instantiate(String),
    /// The input cannot be put in the policy's interface (a fact the exchange never produces: an
    /// id that is not a UUID, a price with more than 6 fractional digits, an unknown class).
    #[error("bad input: {0}")]
    BadInput(String),
    /// The hub's active policy is not compiled in this process (it failed to compile, or is
    /// still compiling): nothing it judges may trade.
    #[error("the active policy {0} is not available")]
    Unavailable(String),
    /// The hub spent its policy budget for this order or batch; its remaining candidates are
    /// skipped.
    #[error("the hub's policy budget is spent: {0}")]
    BudgetExhausted(String),
    /// A pair of a batch call, evaluated again alone, got another answer: the policy's answers
    /// depend on more than their own pair, so the call's decisions are discarded.
    #[error("a batch call's answer differs from the pair's own: {0}")]
    BatchMismatch(String),
}

impl Fault {
    /// A short snake_case class, for metrics and records.
    pub fn class(&self) -> &'static str {
        match self {
            Fault::OutOfFuel => "out_of_fuel",
            Fault::Deadline => "deadline",
            Fault::Memory => "memory",
            Fault::StackOverflow => "stack_overflow",
            Fault::Trap(_) => "trap",
            Fault::BadOutput(_) => "bad_output",
            Fault::OversizedOutput(_) => "oversized_output",
            Fault::PriceBelowAsk => "price_below_ask",
            Fault::Instantiate(_) => "instantiate",
            Fault::BadInput(_) => "bad_input",
            Fault::Unavailable(_) => "policy_unavailable",
            Fault::BudgetExhausted(_) => "hub_budget_exhausted",
            Fault::BatchMismatch(_) => "batch_mismatch",
        }
    }
}

/// One evaluation's result, with the fuel it used.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    pub output: Result<PolicyOutput, Fault>,
    pub fuel_used: u64,
}

/// One batch call's result: an answer per input, in the inputs' order, or the fault that stopped
/// the whole call; and the fuel the call used in all.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchEvaluation {
    pub outputs: Result<Vec<Result<PolicyOutput, Fault>>, Fault>,
    pub fuel_used: u64,
}

/// A policy prepared for instantiation: one that decides a batch of pairs per call (0.3), or one
/// pair (0.2, 0.1).
enum Pre {
    Batch(BatchPre),
    Single(SinglePre),
}

/// A 0.3 policy, checked against its world, with its one export (`price-all` or `check-all`),
/// which is called directly so that the inputs can be lowered from the callers' records by
/// reference.
enum BatchPre {
    Pricing(
        bindings::v0_3::pricing::PricingPre<Sandbox>,
        wasmtime::component::ComponentExportIndex,
    ),
    Compliance(
        bindings::v0_3::compliance::CompliancePre<Sandbox>,
        wasmtime::component::ComponentExportIndex,
    ),
}

/// A batch call's parameters: the inputs' records, by reference.
type BatchParams<'a> = (&'a [&'a wit::MatchInput],);
/// `price-all`'s answers.
type PriceAll = (Vec<Result<wit::Quote, wit::Rejection>>,);
/// `check-all`'s answers.
type CheckAll = (Vec<Result<(), wit::Denial>>,);

enum SinglePre {
    PricingV0_2(bindings::v0_2::pricing::PricingPre<Sandbox>),
    ComplianceV0_2(bindings::v0_2::compliance::CompliancePre<Sandbox>),
    PricingV0_1(bindings::v0_1::pricing::PricingPre<Sandbox>),
    ComplianceV0_1(bindings::v0_1::compliance::CompliancePre<Sandbox>),
}

/// A validated, compiled policy, ready to instantiate many times.
pub struct Compiled {
    pub digest: String,
    pub kind: PolicyKind,
    pre: Pre,
}

impl Compiled {
    /// The version of the WIT package the policy was built against: `0.3.0`, `0.2.0` or `0.1.0`.
    pub fn interface_version(&self) -> &'static str {
        match self.pre {
            Pre::Batch(_) => "0.3.0",
            Pre::Single(SinglePre::PricingV0_2(_) | SinglePre::ComplianceV0_2(_)) => "0.2.0",
            Pre::Single(SinglePre::PricingV0_1(_) | SinglePre::ComplianceV0_1(_)) => "0.1.0",
        }
    }

    /// Whether the policy decides many pairs in one call (version 0.3); earlier versions take one
    /// pair per call, each in a fresh instance.
    pub fn decides_in_batches(&self) -> bool {
        matches!(self.pre, Pre::Batch(_))
    }
}

/// The per-evaluation state: only the memory limiter.
struct Sandbox {
    memory_bytes_max: usize,
    memory_exceeded: bool,
}

impl wasmtime::ResourceLimiter for Sandbox {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_bytes_max {
            self.memory_exceeded = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

/// The sandbox: one engine for every policy.
pub struct PolicyHost {
    engine: Engine,
    linker: Linker<Sandbox>,
    limits: SandboxLimits,
    stop_ticker: Arc<AtomicBool>,
    /// Compiles running now, timed out or not.
    compiling: Arc<std::sync::atomic::AtomicU32>,
    /// The `suanli-server` executable, when this process is one: each compile is first tried in a
    /// child process (`suanli-server compile-check`), which is killed at the time bound, so a
    /// module that compiles too slowly costs no more than the bound.
    compile_checker: std::sync::OnceLock<std::path::PathBuf>,
    /// Batch calls counted so far, for the spot checks of their answers.
    batch_calls: std::sync::atomic::AtomicU64,
    /// Policies whose answers in a batch call differed from a pair's own: never called with a
    /// batch again in this process.
    caught: std::sync::Mutex<std::collections::HashSet<String>>,
}

/// A compile slot, given back when the thread doing the work ends.
struct CompileSlot(Arc<std::sync::atomic::AtomicU32>);

impl Drop for CompileSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Drop for PolicyHost {
    fn drop(&mut self) {
        self.stop_ticker.store(true, Ordering::Relaxed);
    }
}

/// SHA-256 of a module, lowercase hex: its content address.
pub fn digest(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl PolicyHost {
    /// An engine with the pooling allocator sized for `limits`, fuel metering and an epoch
    /// ticker (one tick per millisecond) for deadlines.
    pub fn new(limits: SandboxLimits) -> anyhow::Result<Arc<Self>> {
        let mut pooling = wasmtime::PoolingAllocationConfig::default();
        let slots = limits.concurrent_evaluations_max.max(1);
        pooling.total_component_instances(slots);
        pooling.total_core_instances(slots * 4);
        pooling.total_memories(slots * 2);
        pooling.total_tables(slots * 2);
        pooling.max_memory_size(limits.memory_bytes_max.max(1 << 16));
        // Reset the first pages of a slot with memset rather than giving them back to the kernel:
        // a policy's stack, data and small heap live there (the example policies are linked with a
        // 32 KiB stack, so all of it fits the first 64 KiB page), and page faults plus TLB
        // shootdowns cost more than the copy.
        pooling.linear_memory_keep_resident(MEMORY_KEPT_RESIDENT_BYTES);
        // The same for a policy's function table: a few entries, reset in place rather than given
        // back to the kernel (each give-back is a TLB shootdown across every core).
        pooling.table_keep_resident(TABLE_KEPT_RESIDENT_BYTES);
        let mut config = wasmtime::Config::new();
        config.wasm_component_model(true);
        config.consume_fuel(true);
        config.epoch_interruption(true);
        config.max_wasm_stack(256 * 1024);
        // A decision must replay to the same bytes on any machine: every NaN a computation
        // produces is made canonical (WebAssembly otherwise leaves its sign and payload to the
        // processor), relaxed SIMD takes its deterministic form, and nothing shared between
        // threads validates (wasmtime is built without its `threads` feature, so a module with
        // shared memory is refused at upload). Fuel is not part of that promise: it counts the
        // engine's instructions and may differ between wasmtime versions; replay compares output.
        config.cranelift_nan_canonicalization(true);
        config.relaxed_simd_deterministic(true);
        config.wasm_shared_everything_threads(false);
        config.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pooling));
        let engine = Engine::new(&config)
            .map_err(|error| anyhow::anyhow!("Failed to create the policy engine: {error}"))?;
        let stop_ticker = Arc::new(AtomicBool::new(false));
        let (ticking, stop) = (engine.clone(), stop_ticker.clone());
        std::thread::Builder::new()
            .name("suanli-policy-epoch".into())
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(1));
                    ticking.increment_epoch();
                }
            })?;
        let mut linker = Linker::new(&engine);
        for version in TYPES_INTERFACE_VERSIONS {
            linker.instance(version).map_err(|error| {
                anyhow::anyhow!("Failed to provide the type interface {version}: {error}")
            })?;
        }
        Ok(Arc::new(PolicyHost {
            linker,
            engine,
            limits,
            stop_ticker,
            compiling: Default::default(),
            compile_checker: Default::default(),
            batch_calls: Default::default(),
            caught: Default::default(),
        }))
    }

    /// The limits this host enforces.
    pub fn limits(&self) -> SandboxLimits {
        self.limits
    }

    /// Counts a batch call: its number in this process, from 0.
    pub fn count_batch_call(&self) -> u64 {
        self.batch_calls.fetch_add(1, Ordering::Relaxed)
    }

    /// Notes that the policy `digest` answered differently in a batch call than alone.
    pub fn catch(&self, digest: &str) {
        self.caught
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(digest.to_owned());
    }

    /// Whether the policy `digest` was caught answering differently in a batch call than alone.
    pub fn caught(&self, digest: &str) -> bool {
        self.caught
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains(digest)
    }

    /// Tries every compile in a child process first: `executable` must be `suanli-server` (whose
    /// hidden `compile-check` subcommand does it).
    pub fn set_compile_checker(&self, executable: std::path::PathBuf) {
        let _ = self.compile_checker.set(executable);
    }

    /// Compiles `bytes` in a child process, killed at the compile time bound: a module that takes
    /// longer is refused without this process doing the work. Whether it compiles at all is left
    /// to the compile in this process, which then gives the precise reason.
    fn check_in_child(&self, kind: PolicyKind, bytes: &[u8]) -> Result<(), UploadError> {
        use std::io::Write;
        use std::os::unix::process::ExitStatusExt;
        let Some(executable) = self.compile_checker.get() else {
            return Ok(());
        };
        let mut child = std::process::Command::new(executable)
            .args(["compile-check", "--kind", kind.as_str()])
            // The child needs nothing of this process's settings, and must not see its secrets.
            .env_clear()
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .map_err(|error| UploadError::Compile(format!("no compile process: {error}")))?;
        let bound = Duration::from_millis(self.limits.compile_ms_max);
        let started = std::time::Instant::now();
        let written = child.stdin.take().map(|mut stdin| stdin.write_all(bytes));
        loop {
            let timed_out = started.elapsed() >= bound;
            match child.try_wait() {
                // A compiler that crashed on the module: refuse it rather than crash here too.
                Ok(Some(status)) if !timed_out && status.signal().is_some() => {
                    return Err(UploadError::Compile(
                        "the compiler crashed on this module".into(),
                    ));
                }
                Ok(Some(_)) if !timed_out => return Ok(()),
                Ok(None) if !timed_out => std::thread::sleep(Duration::from_millis(2)),
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return match written {
                        Some(Err(error)) if !timed_out => {
                            Err(UploadError::Compile(format!("compile process: {error}")))
                        }
                        _ => Err(UploadError::CompileTimeout(self.limits.compile_ms_max)),
                    };
                }
            }
        }
    }

    /// Takes a compile slot, or refuses when every slot is taken.
    fn compile_slot(&self) -> Result<CompileSlot, UploadError> {
        let max = self.limits.concurrent_compiles_max.max(1);
        if self.compiling.fetch_add(1, Ordering::SeqCst) >= max {
            self.compiling.fetch_sub(1, Ordering::SeqCst);
            return Err(UploadError::Busy(max));
        }
        Ok(CompileSlot(self.compiling.clone()))
    }

    /// Runs `work` on a thread of its own holding a compile slot, and waits for it at most the
    /// compile time bound. Past the bound the caller is answered; the thread keeps its slot until
    /// it ends, so at most `concurrent_compiles_max` compiles ever run.
    fn bounded<T: Send + 'static>(
        &self,
        slot: CompileSlot,
        work: impl FnOnce(&Engine) -> Result<T, UploadError> + Send + 'static,
    ) -> Result<T, UploadError> {
        let (sender, receiver) = std::sync::mpsc::channel();
        let engine = self.engine.clone();
        std::thread::Builder::new()
            .name("suanli-policy-compile".into())
            .spawn(move || {
                let _slot = slot;
                let _ = sender.send(work(&engine));
            })
            .map_err(|error| UploadError::Compile(format!("no compile thread: {error}")))?;
        match receiver.recv_timeout(Duration::from_millis(self.limits.compile_ms_max)) {
            Ok(result) => result,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                Err(UploadError::CompileTimeout(self.limits.compile_ms_max))
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => Err(UploadError::Compile(
                "the compiler stopped on this module".into(),
            )),
        }
    }

    /// Validates and compiles an uploaded module: size, form (a component, or a core module with
    /// wit-bindgen's type section, which is wrapped here), no imports, the expected world, and a
    /// bounded time for wrapping and compiling together. Returns the component's bytes (what is
    /// stored) and the compiled policy.
    pub fn prepare_upload(
        self: &Arc<Self>,
        kind: PolicyKind,
        bytes: &[u8],
    ) -> Result<(Vec<u8>, Arc<Compiled>), UploadError> {
        if bytes.len() > self.limits.module_bytes_max {
            return Err(UploadError::TooLarge(self.limits.module_bytes_max));
        }
        if !wasmparser::Parser::is_component(bytes) && !wasmparser::Parser::is_core_wasm(bytes) {
            return Err(UploadError::NotAComponent("no WebAssembly header".into()));
        }
        // One slot for both the child's try and the compile here.
        let slot = self.compile_slot()?;
        self.check_in_child(kind, bytes)?;
        let owned = bytes.to_vec();
        let (component_bytes, component) = self.bounded(slot, move |engine| {
            let component_bytes = if wasmparser::Parser::is_component(&owned) {
                owned
            } else {
                if !carries_component_type(&owned) {
                    return Err(UploadError::NotAComponent(
                        "a core module without wit-bindgen's component-type section".into(),
                    ));
                }
                wit_component::ComponentEncoder::default()
                    .module(&owned)
                    .and_then(|encoder| encoder.validate(true).encode())
                    .map_err(|error| UploadError::NotAComponent(format!("{error:#}")))?
            };
            let component = Component::new(engine, &component_bytes)
                .map_err(|error| UploadError::Compile(format!("{error:#}")))?;
            Ok((component_bytes, component))
        })?;
        let compiled = self.finish(kind, &component_bytes, &component)?;
        Ok((component_bytes, compiled))
    }

    /// Compiles a stored component (already validated once) under the compile time bound.
    pub fn compile(
        self: &Arc<Self>,
        kind: PolicyKind,
        component_bytes: &[u8],
    ) -> Result<Arc<Compiled>, UploadError> {
        let slot = self.compile_slot()?;
        self.check_in_child(kind, component_bytes)?;
        let owned = component_bytes.to_vec();
        let component = self.bounded(slot, move |engine| {
            Component::new(engine, &owned)
                .map_err(|error| UploadError::Compile(format!("{error:#}")))
        })?;
        self.finish(kind, component_bytes, &component)
    }

    /// Checks a compiled component's imports and world and prepares its instantiation.
    fn finish(
        &self,
        kind: PolicyKind,
        component_bytes: &[u8],
        component: &Component,
    ) -> Result<Arc<Compiled>, UploadError> {
        // The only import allowed is the WIT package's own type-only interface: it carries record
        // and enum definitions, no function, so the host provides it empty.
        for (name, item) in component.component_type().imports(&self.engine) {
            let types_only = match item.ty {
                ComponentItem::ComponentInstance(instance) => instance
                    .exports(&self.engine)
                    .all(|(_, export)| matches!(export.ty, ComponentItem::Type(_))),
                _ => false,
            };
            if !(types_only && name.starts_with(TYPES_INTERFACE)) {
                return Err(UploadError::Imports(name.to_owned()));
            }
        }
        let instance_pre = self
            .linker
            .instantiate_pre(component)
            .map_err(|error| UploadError::Compile(format!("{error:#}")))?;
        // The current version first; policies built against 0.2 or 0.1 are accepted too. The
        // error named is the current version's, the one a new policy should be built against.
        let pre = match kind {
            PolicyKind::Pricing => {
                match bindings::v0_3::pricing::PricingPre::new(instance_pre.clone()) {
                    Ok(pre) => Pre::Batch(BatchPre::Pricing(
                        pre,
                        export_index(component, "price-all")?,
                    )),
                    Err(error) => bindings::v0_2::pricing::PricingPre::new(instance_pre.clone())
                        .map(SinglePre::PricingV0_2)
                        .or_else(|_| {
                            bindings::v0_1::pricing::PricingPre::new(instance_pre)
                                .map(SinglePre::PricingV0_1)
                        })
                        .map(Pre::Single)
                        .map_err(|_| UploadError::WrongWorld("pricing", format!("{error:#}")))?,
                }
            }
            PolicyKind::Compliance => {
                match bindings::v0_3::compliance::CompliancePre::new(instance_pre.clone()) {
                    Ok(pre) => Pre::Batch(BatchPre::Compliance(
                        pre,
                        export_index(component, "check-all")?,
                    )),
                    Err(error) => {
                        bindings::v0_2::compliance::CompliancePre::new(instance_pre.clone())
                            .map(SinglePre::ComplianceV0_2)
                            .or_else(|_| {
                                bindings::v0_1::compliance::CompliancePre::new(instance_pre)
                                    .map(SinglePre::ComplianceV0_1)
                            })
                            .map(Pre::Single)
                            .map_err(|_| {
                                UploadError::WrongWorld("compliance", format!("{error:#}"))
                            })?
                    }
                }
            }
        };
        Ok(Arc::new(Compiled {
            digest: digest(component_bytes),
            kind,
            pre,
        }))
    }

    /// Runs one evaluation in a fresh instance under every limit.
    pub fn evaluate(&self, policy: &Compiled, input: &PolicyInput) -> Evaluation {
        self.evaluate_within(
            policy,
            &Pair::new(input.clone()),
            self.limits.fuel_max,
            self.limits.deadline_ms,
        )
    }

    /// A fresh store with `fuel` and a deadline of `deadline_ms` epoch ticks for a call that
    /// answers `answers` pairs, or why not. What the host copies out of the guest's answer is
    /// bounded too (wasmtime's "hostcall fuel", in bytes): twice the guest's memory (what one
    /// answer could always make the host copy: two strings as large as the memory), plus the
    /// output limit per answer with room for the list itself. So a batch's answer, a list whose
    /// entries could all point at one large string, costs the host no more than one answer did.
    fn store(&self, fuel: u64, deadline_ms: u64, answers: usize) -> Result<Store<Sandbox>, Fault> {
        let mut store = Store::new(
            &self.engine,
            Sandbox {
                memory_bytes_max: self.limits.memory_bytes_max,
                memory_exceeded: false,
            },
        );
        store.limiter(|sandbox| sandbox);
        store
            .set_fuel(fuel)
            .map_err(|_| Fault::Instantiate("fuel".into()))?;
        store.set_epoch_deadline(deadline_ms.max(1));
        store.epoch_deadline_trap();
        let per_answer = self
            .limits
            .output_bytes_max
            .saturating_mul(2)
            .saturating_add(256);
        store.set_hostcall_fuel(
            self.limits
                .memory_bytes_max
                .saturating_mul(2)
                .saturating_add(per_answer.saturating_mul(answers.max(1))),
        );
        Ok(store)
    }

    /// Runs one evaluation with at most `fuel` and `deadline_ms` (each capped by the sandbox's
    /// own limits): what is left of a hub's budget. A policy that decides in batches gets a batch
    /// of one.
    pub fn evaluate_within(
        &self,
        policy: &Compiled,
        input: &Pair,
        fuel: u64,
        deadline_ms: u64,
    ) -> Evaluation {
        let pre = match &policy.pre {
            Pre::Single(pre) => pre,
            Pre::Batch(_) => {
                let batch = self.evaluate_batch_within(policy, &[input], fuel, deadline_ms);
                let output = batch.outputs.and_then(|mut outputs| {
                    outputs
                        .pop()
                        .unwrap_or_else(|| Err(Fault::BadOutput("no answer".into())))
                });
                return Evaluation {
                    output,
                    fuel_used: batch.fuel_used,
                };
            }
        };
        let fuel = fuel.min(self.limits.fuel_max);
        let mut store = match self.store(fuel, deadline_ms.min(self.limits.deadline_ms), 1) {
            Ok(store) => store,
            Err(fault) => {
                return Evaluation {
                    output: Err(fault),
                    fuel_used: 0,
                };
            }
        };
        let output_max = self.limits.output_bytes_max;
        let result = match pre {
            SinglePre::PricingV0_2(pre) => match input.record() {
                Ok(wit_input) => pre
                    .instantiate(&mut store)
                    .and_then(|instance| instance.call_price(&mut store, wit_input))
                    .map(|answer| PolicyOutput::from_pricing(quoted(answer), output_max)),
                Err(fault) => Ok(Err(fault)),
            },
            SinglePre::ComplianceV0_2(pre) => match input.record() {
                Ok(wit_input) => pre
                    .instantiate(&mut store)
                    .and_then(|instance| instance.call_check(&mut store, wit_input))
                    .map(|answer| PolicyOutput::from_compliance(checked(answer), output_max)),
                Err(fault) => Ok(Err(fault)),
            },
            SinglePre::PricingV0_1(pre) => {
                let wit_input = input.input().to_wit_v0_1();
                pre.instantiate(&mut store)
                    .and_then(|instance| instance.call_price(&mut store, &wit_input))
                    .map(|answer| {
                        let answer = answer
                            .map(|quote| (quote.unit_price, quote.levy_bps))
                            .map_err(|rejection| rejection.reason);
                        PolicyOutput::from_pricing(answer, output_max)
                    })
            }
            SinglePre::ComplianceV0_1(pre) => {
                let wit_input = input.input().to_wit_v0_1();
                pre.instantiate(&mut store)
                    .and_then(|instance| instance.call_check(&mut store, &wit_input))
                    .map(|answer| {
                        let answer = answer.map_err(|denial| (denial.code, denial.message));
                        PolicyOutput::from_compliance(answer, output_max)
                    })
            }
        };
        let fuel_used = fuel.saturating_sub(store.get_fuel().unwrap_or(0));
        let output = match result {
            Ok(output) => output,
            Err(error) => Err(classify(&error, store.data().memory_exceeded)),
        };
        Evaluation { output, fuel_used }
    }

    /// Evaluates every input in one call, in one fresh instance, with at most `fuel` and
    /// `deadline_ms` for the whole call (capped by the sandbox's limits times the number of
    /// inputs). An input that cannot be put in the interface gets a `bad_input` answer and is
    /// not sent; a fault of the call (fuel, deadline, memory, trap, a wrong number of answers)
    /// is the batch's. A policy of an earlier version is evaluated pair by pair, each in a fresh
    /// instance, within the fuel and time the earlier pairs left.
    pub fn evaluate_batch_within(
        &self,
        policy: &Compiled,
        inputs: &[&Pair],
        fuel: u64,
        deadline_ms: u64,
    ) -> BatchEvaluation {
        let count = u64::try_from(inputs.len()).unwrap_or(u64::MAX).max(1);
        let fuel = fuel.min(self.limits.fuel_max.saturating_mul(count));
        let deadline_ms = deadline_ms.min(self.limits.deadline_ms.saturating_mul(count));
        let Pre::Batch(pre) = &policy.pre else {
            let (mut outputs, mut fuel_used) = (Vec::with_capacity(inputs.len()), 0u64);
            let started = std::time::Instant::now();
            for input in inputs {
                let left = fuel.saturating_sub(fuel_used);
                let elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
                let Some(time_left) = deadline_ms.checked_sub(elapsed_ms).filter(|ms| *ms > 0)
                else {
                    outputs.push(Err(Fault::Deadline));
                    continue;
                };
                let evaluation = self.evaluate_within(policy, input, left, time_left);
                fuel_used = fuel_used.saturating_add(evaluation.fuel_used);
                outputs.push(evaluation.output);
            }
            return BatchEvaluation {
                outputs: Ok(outputs),
                fuel_used,
            };
        };
        let mut outputs: Vec<Result<PolicyOutput, Fault>> = Vec::with_capacity(inputs.len());
        let mut sent = Vec::with_capacity(inputs.len());
        for input in inputs {
            match input.record() {
                Ok(wit_input) => {
                    sent.push(wit_input);
                    // Filled in from the answers below.
                    outputs.push(Ok(PolicyOutput::Allow));
                }
                Err(fault) => outputs.push(Err(fault)),
            }
        }
        if sent.is_empty() {
            return BatchEvaluation {
                outputs: Ok(outputs),
                fuel_used: 0,
            };
        }
        let mut store = match self.store(fuel, deadline_ms, sent.len()) {
            Ok(store) => store,
            Err(fault) => {
                return BatchEvaluation {
                    outputs: Err(fault),
                    fuel_used: 0,
                };
            }
        };
        let output_max = self.limits.output_bytes_max;
        let params: BatchParams<'_> = (&sent,);
        let answers: wasmtime::Result<Vec<Result<PolicyOutput, Fault>>> = match pre {
            BatchPre::Pricing(pre, export) => {
                call_export::<PriceAll>(pre.instance_pre(), export, &mut store, params).map(
                    |(answers,)| {
                        answers
                            .into_iter()
                            .map(|answer| PolicyOutput::from_pricing(quoted(answer), output_max))
                            .collect()
                    },
                )
            }
            BatchPre::Compliance(pre, export) => {
                call_export::<CheckAll>(pre.instance_pre(), export, &mut store, params).map(
                    |(answers,)| {
                        answers
                            .into_iter()
                            .map(|answer| {
                                PolicyOutput::from_compliance(checked(answer), output_max)
                            })
                            .collect()
                    },
                )
            }
        };
        let fuel_used = fuel.saturating_sub(store.get_fuel().unwrap_or(0));
        let answers = match answers {
            Ok(answers) if answers.len() == sent.len() => answers,
            Ok(answers) => {
                return BatchEvaluation {
                    outputs: Err(Fault::BadOutput(format!(
                        "{} answers to {} inputs",
                        answers.len(),
                        sent.len()
                    ))),
                    fuel_used,
                };
            }
            Err(error) => {
                return BatchEvaluation {
                    outputs: Err(classify(&error, store.data().memory_exceeded)),
                    fuel_used,
                };
            }
        };
        let mut answers = answers.into_iter();
        for output in outputs.iter_mut().filter(|output| output.is_ok()) {
            if let Some(answer) = answers.next() {
                *output = answer;
            }
        }
        BatchEvaluation {
            outputs: Ok(outputs),
            fuel_used,
        }
    }
}

/// Instantiates a 0.3 policy in `store` and calls its export with the inputs' records. The
/// export was checked against the world at upload, so a failed lookup is the host's fault
/// (`instantiate`), not the policy's.
fn call_export<Answers>(
    pre: &wasmtime::component::InstancePre<Sandbox>,
    export: &wasmtime::component::ComponentExportIndex,
    store: &mut Store<Sandbox>,
    params: BatchParams<'_>,
) -> wasmtime::Result<Answers>
where
    Answers: wasmtime::component::ComponentNamedList + wasmtime::component::Lift,
{
    let instance = pre.instantiate(&mut *store)?;
    let call = instance
        .get_typed_func::<BatchParams<'_>, Answers>(&mut *store, export)
        .map_err(|error| wasmtime::Error::new(Fault::Instantiate(format!("{error:#}"))))?;
    call.call(&mut *store, params)
}

/// A pricing answer of version 0.2 or 0.3 as (unit price, levy) or the rejection's reason.
fn quoted(answer: Result<wit::Quote, wit::Rejection>) -> Result<(String, u32), String> {
    answer
        .map(|quote| (quote.unit_price, quote.levy_bps))
        .map_err(|rejection| rejection.reason)
}

/// A compliance answer of version 0.2 or 0.3 as the denial's (code, message).
fn checked(answer: Result<(), wit::Denial>) -> Result<(), (String, String)> {
    answer.map_err(|denial| (denial.code, denial.message))
}

/// Compiled policies by digest, shared by everyone who evaluates: filled when a policy is
/// uploaded, activated, or found active at start-up; the sequenced writer only reads it, so it
/// never compiles. It keeps at most `entries_max` policies, dropping the oldest that is not
/// pinned; the writer pins the active ones, which are never dropped.
pub struct Registry {
    entries_max: usize,
    inner: std::sync::Mutex<RegistryInner>,
}

#[derive(Default)]
struct RegistryInner {
    compiled: std::collections::HashMap<String, Arc<Compiled>>,
    /// Digests in the order they were added.
    order: std::collections::VecDeque<String>,
    pinned: std::collections::HashSet<String>,
}

impl Default for Registry {
    fn default() -> Self {
        Registry::new(SandboxLimits::default().compiled_cache_max)
    }
}

impl Registry {
    pub fn new(entries_max: usize) -> Self {
        Registry {
            entries_max: entries_max.max(1),
            inner: Default::default(),
        }
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, RegistryInner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The compiled policy with this digest, if it is kept in this process.
    pub fn get(&self, digest: &str) -> Option<Arc<Compiled>> {
        self.inner().compiled.get(digest).cloned()
    }

    /// Keeps a compiled policy, dropping the oldest unpinned ones beyond the bound.
    pub fn insert(&self, policy: Arc<Compiled>) {
        let mut inner = self.inner();
        if inner
            .compiled
            .insert(policy.digest.clone(), policy.clone())
            .is_none()
        {
            inner.order.push_back(policy.digest.clone());
        }
        let mut scanned = 0;
        while inner.compiled.len() > self.entries_max && scanned < inner.order.len() {
            let Some(oldest) = inner.order.pop_front() else {
                break;
            };
            if inner.pinned.contains(&oldest) || oldest == policy.digest {
                inner.order.push_back(oldest);
                scanned += 1;
            } else {
                inner.compiled.remove(&oldest);
            }
        }
    }

    /// Pins exactly these digests (the active policies): they are never dropped.
    pub fn pin(&self, digests: std::collections::HashSet<String>) {
        self.inner().pinned = digests;
    }

    /// How many compiled policies are kept.
    pub fn len(&self) -> usize {
        self.inner().compiled.len()
    }

    /// Whether none is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Bytes at the start of each pooled memory reset in place between evaluations.
const MEMORY_KEPT_RESIDENT_BYTES: usize = 256 << 10;

/// Bytes at the start of each pooled table reset in place between evaluations.
const TABLE_KEPT_RESIDENT_BYTES: usize = 16 << 10;

/// The WIT package's type-only interface, the one thing a policy may import.
const TYPES_INTERFACE: &str = "suanli:policy/types@";
const TYPES_INTERFACE_VERSIONS: [&str; 3] = [
    "suanli:policy/types@0.3.0",
    "suanli:policy/types@0.2.0",
    "suanli:policy/types@0.1.0",
];

/// The index of a component's exported function `name`, which its world was checked to have.
fn export_index(
    component: &Component,
    name: &str,
) -> Result<wasmtime::component::ComponentExportIndex, UploadError> {
    component
        .get_export_index(None, name)
        .ok_or_else(|| UploadError::Compile(format!("no export `{name}`")))
}

/// Whether a core module carries a `component-type` custom section (wit-bindgen puts one there).
fn carries_component_type(bytes: &[u8]) -> bool {
    wasmparser::Parser::new(0).parse_all(bytes).any(|payload| {
        matches!(payload, Ok(wasmparser::Payload::CustomSection(section)) if section.name().starts_with("component-type"))
    })
}

fn classify(error: &wasmtime::Error, memory_exceeded: bool) -> Fault {
    if let Some(fault) = error.downcast_ref::<Fault>() {
        return fault.clone();
    }
    match error.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => Fault::OutOfFuel,
        Some(Trap::Interrupt) => Fault::Deadline,
        Some(Trap::StackOverflow) => Fault::StackOverflow,
        _ if memory_exceeded => Fault::Memory,
        Some(trap) => Fault::Trap(trap.to_string()),
        None => Fault::Trap(format!("{error:#}")),
    }
}
