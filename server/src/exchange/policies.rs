//! The hubs' WebAssembly policies as matching sees them: [`HubPolicies`] implements the engine's
//! [`Policies`] trait by evaluating the active policy of each hub in the sandbox.
//!
//! Three rules keep one hub's policy from hurting anyone else, or from failing open:
//! - **Fail closed.** An active policy that is not compiled here ([`ActivePolicy::Unavailable`])
//!   or that faults judges "no trade", for compliance and pricing alike; it never falls back to
//!   "allow" or to the built-in price.
//! - **Everything recorded.** Every evaluation, allowed or denied, quoted or rejected, or failed,
//!   becomes a [`DecisionRow`]; every failure also a [`FaultRecord`].
//! - **A budget per hub.** Each hub may spend at most [`HubBudget`] fuel and wall time on one
//!   incoming order, and at most so much wall time per batch; beyond it that hub's remaining
//!   candidates are skipped, with one `hub_budget_exhausted` fault recorded per order.
//!
//! A policy built against version 0.3 of the interface decides in batches: when the engine
//! announces an incoming order's candidates ([`Policies::prepare`]), each hub's policy is called
//! once for all of its pairs (compliance of the offers' hubs, then of the data-origin hubs for
//! the pairs still allowed, then pricing for the pairs allowed by both), and `allow`/`price`
//! answer from those results, recording each decision exactly as a one-pair call would, with
//! its share of the call's fuel. A batch call may spend half of what is left of the hub's budget;
//! one that faults as a whole (a trap, fuel, the deadline) decides nothing, and its pairs are
//! evaluated one by one with the rest, so a pair that traps fails alone and the pairs before a
//! costly one still decide. One call in `HubBudget::batch_check_every` has one pair evaluated
//! again alone with the call's own limits; a different answer (or a fault) discards the call
//! (`batch_mismatch`) and the policy is never called with a batch again in this process.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rust_decimal::Decimal;

use crate::db::policies::{DecisionRow, FaultRecord};
use crate::db::reference::Reference;
use crate::market::{
    Allowance, BuiltInRules, Decided, DecisionRecord, HubId, PairFacts, Policies, PriceDecision,
};
use crate::policy::input::{BidFacts, HubFacts, OfferFacts};
use crate::policy::{Compiled, Fault, Pair, PolicyHost, PolicyInput, PolicyKind, PolicyOutput};
use uuid::Uuid;

/// A decision made ahead in a batch call: the output and its share of the call's fuel.
type Prepared = (Result<PolicyOutput, Fault>, u64);

/// The active policy of a hub and kind, as this process can run it.
#[derive(Clone)]
pub enum ActivePolicy {
    Ready(Arc<Compiled>),
    /// Active, but not compiled here: every pair it would judge fails closed.
    Unavailable {
        digest: String,
    },
}

impl ActivePolicy {
    fn digest(&self) -> &str {
        match self {
            ActivePolicy::Ready(policy) => &policy.digest,
            ActivePolicy::Unavailable { digest } => digest,
        }
    }
}

/// The active policy of each (hub, kind).
pub type ActivePolicies = HashMap<(HubId, PolicyKind), ActivePolicy>;

/// What one hub may spend on policy evaluations.
#[derive(Debug, Clone, Copy)]
pub struct HubBudget {
    /// Fuel over all of a hub's evaluations for one incoming order.
    pub order_fuel_max: u64,
    /// Wall time over all of a hub's evaluations for one incoming order.
    pub order_wall_ms_max: u64,
    /// Wall time over all of a hub's evaluations in one batch of the writer.
    pub batch_wall_ms_max: u64,
    /// One in this many batch calls (over the process) has one pair evaluated again alone; a
    /// different answer discards the call. 0 never checks.
    pub batch_check_every: u64,
}

impl Default for HubBudget {
    fn default() -> Self {
        HubBudget {
            order_fuel_max: 50_000_000,
            order_wall_ms_max: 5,
            batch_wall_ms_max: 10,
            batch_check_every: 16,
        }
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct Spend {
    fuel: u64,
    wall: Duration,
}

/// Policies of the hubs for one batch of matching.
pub struct HubPolicies<'a> {
    pub host: &'a PolicyHost,
    pub active: &'a ActivePolicies,
    pub reference: &'a Reference,
    pub budget: HubBudget,
    /// Faults seen so far, to be stored with the batch.
    pub faults: Vec<FaultRecord>,
    /// Every evaluation so far, to be stored with the batch.
    pub decisions: Vec<DecisionRow>,
    /// What each hub spent on the current incoming order.
    order_spend: HashMap<HubId, Spend>,
    /// What each hub spent in this batch.
    batch_spend: HashMap<HubId, Duration>,
    /// What each hub spent on quotes in this batch: quotes have a batch budget of their own, so
    /// that they can neither spend the orders' nor run without bound.
    quote_batch_spend: HashMap<HubId, Duration>,
    /// Hubs whose policy could not run (unavailable, or budget spent) for the current order,
    /// already recorded.
    exhausted: HashSet<HubId>,
    /// The inputs of the current order's pairs, by (bid, offer, units): built once per pair and
    /// units (an incoming offer announces a pair again with more units after a refusal).
    inputs: HashMap<(Uuid, Uuid, u32), PairInput>,
    /// Decisions made ahead by batch calls for the pairs announced (last, or earlier in the
    /// order and announced again with the same facts), by (hub, kind, bid, offer, units), taken
    /// when the engine asks about the same pair with the same units.
    prepared: HashMap<(HubId, PolicyKind, Uuid, Uuid, u32), Prepared>,
    /// Whether any active policy decides in batches.
    batches: bool,
    /// How the decisions so far were made (quotes' included).
    pub calls: Calls,
}

/// A pair's input (with its WIT record once a call needed it: one for all of the pair's calls),
/// and its canonical text once a record needed it.
struct PairInput {
    input: Pair,
    canonical: std::cell::OnceCell<String>,
}

impl PairInput {
    fn canonical(&self) -> &str {
        self.canonical
            .get_or_init(|| self.input.input().canonical())
    }
}

/// How many decisions were made in batch calls and in one-pair calls, and how many batch calls.
#[derive(Debug, Default, Clone, Copy)]
pub struct Calls {
    pub batched: u64,
    pub single: u64,
    pub batches: u64,
}

impl<'a> HubPolicies<'a> {
    pub fn new(
        host: &'a PolicyHost,
        active: &'a ActivePolicies,
        reference: &'a Reference,
        budget: HubBudget,
    ) -> Self {
        HubPolicies {
            host,
            active,
            reference,
            budget,
            faults: Vec::new(),
            decisions: Vec::new(),
            order_spend: HashMap::new(),
            batch_spend: HashMap::new(),
            quote_batch_spend: HashMap::new(),
            exhausted: HashSet::new(),
            inputs: HashMap::new(),
            prepared: HashMap::new(),
            batches: active.values().any(|policy| {
                matches!(policy, ActivePolicy::Ready(compiled) if compiled.decides_in_batches())
            }),
            calls: Calls::default(),
        }
    }

    /// The same policies deciding every pair in a call of its own, as policies of earlier
    /// interface versions do: what batch calls are compared with.
    pub fn one_pair_calls(mut self) -> Self {
        self.batches = false;
        self
    }

    /// Runs `quote` (the evaluation of a bid that is not placed) against the quotes' own batch
    /// budget, and forgets every decision and fault it made: a quote changes nothing, not even
    /// what the batch's orders may spend.
    pub fn quoting<T>(&mut self, quote: impl FnOnce(&mut Self) -> T) -> T {
        let (decisions, faults) = (self.decisions.len(), self.faults.len());
        std::mem::swap(&mut self.batch_spend, &mut self.quote_batch_spend);
        let answer = quote(self);
        std::mem::swap(&mut self.batch_spend, &mut self.quote_batch_spend);
        self.decisions.truncate(decisions);
        self.faults.truncate(faults);
        answer
    }

    /// Starts the budgets of a new incoming order.
    pub fn begin_order(&mut self) {
        self.order_spend.clear();
        self.exhausted.clear();
        self.inputs.clear();
        self.prepared.clear();
    }

    /// What is left of `hub`'s budget: (fuel, wall time), or why nothing is.
    fn allowance(&self, hub: HubId) -> Result<(u64, Duration), String> {
        let order = self.order_spend.get(&hub).copied().unwrap_or_default();
        let batch = self.batch_spend.get(&hub).copied().unwrap_or_default();
        let fuel_left = self.budget.order_fuel_max.saturating_sub(order.fuel);
        let order_wall_left =
            Duration::from_millis(self.budget.order_wall_ms_max).saturating_sub(order.wall);
        let batch_wall_left =
            Duration::from_millis(self.budget.batch_wall_ms_max).saturating_sub(batch);
        if fuel_left == 0 {
            return Err(format!("{} fuel spent on this order", order.fuel));
        }
        if order_wall_left.is_zero() {
            return Err(format!("{} ms spent on this order", order.wall.as_millis()));
        }
        if batch_wall_left.is_zero() {
            return Err(format!("{} ms spent in this batch", batch.as_millis()));
        }
        Ok((fuel_left, order_wall_left.min(batch_wall_left)))
    }

    /// The pair's input, built on first need and kept for the rest of the order.
    fn input_of(&mut self, pair: &PairFacts<'_>) -> &PairInput {
        let reference = self.reference;
        self.inputs
            .entry((pair.bid.id, pair.offer.id, pair.units))
            .or_insert_with(|| PairInput {
                input: Pair::new(policy_input(pair, reference)),
                canonical: Default::default(),
            })
    }

    /// The input of a pair already built for this order.
    fn built_input(&self, pair: &PairFacts<'_>) -> &PairInput {
        &self.inputs[&(pair.bid.id, pair.offer.id, pair.units)]
    }

    /// Keeps a fault of `hub`'s policy of `kind` (`digest`), with its message and the input the
    /// policy was given.
    fn record_fault(
        &mut self,
        (hub, kind, digest): (HubId, PolicyKind, &str),
        class: &str,
        message: &str,
        input: String,
    ) {
        self.faults.push(FaultRecord {
            hub: self.reference.hub_by_id(hub).code.clone(),
            kind: kind.as_str().into(),
            digest: digest.to_owned(),
            class: class.into(),
            message: message.replace('\0', ""),
            input,
        });
    }

    /// Charges `hub` for an evaluation: fuel and wall time, to the order and to the batch.
    fn charge(&mut self, hub: HubId, fuel: u64, elapsed: Duration) {
        let spend = self.order_spend.entry(hub).or_default();
        spend.fuel = spend.fuel.saturating_add(fuel);
        spend.wall += elapsed;
        *self.batch_spend.entry(hub).or_default() += elapsed;
    }

    /// Evaluates `hub`'s active policy of `kind` on the pair, within the hub's budget, or takes
    /// the decision a batch call made ahead; `None` if the hub has no such policy.
    fn run(
        &mut self,
        hub: HubId,
        kind: PolicyKind,
        pair: &PairFacts<'_>,
    ) -> Option<(Result<PolicyOutput, Fault>, DecisionRecord)> {
        let policy = self.active.get(&(hub, kind))?.clone();
        let hub_code = self.reference.hub_by_id(hub).code.clone();
        // A decision made ahead stands (it was paid for), unless its policy has since been
        // caught answering differently alone: then the pair is decided alone.
        let prepared = self
            .prepared
            .remove(&(hub, kind, pair.bid.id, pair.offer.id, pair.units))
            .filter(|_| !self.host.caught(policy.digest()));
        let allowance = self.allowance(hub);
        let refused = match (&prepared, &policy, &allowance) {
            (Some(_), _, _) => None,
            (None, ActivePolicy::Unavailable { digest }, _) => {
                Some(Fault::Unavailable(digest.clone()))
            }
            (None, ActivePolicy::Ready(_), Err(spent)) => {
                Some(Fault::BudgetExhausted(spent.clone()))
            }
            (None, ActivePolicy::Ready(_), Ok(_)) => None,
        };
        if let Some(fault) = refused {
            // A policy that cannot run, or a spent budget, is recorded once per order and hub;
            // the hub's later pairs for that order are skipped at once.
            if !self.exhausted.insert(hub) {
                let record = DecisionRecord {
                    policy_digest: policy.digest().to_owned(),
                    kind: kind.as_str().into(),
                    hub: hub_code,
                    input: String::new(),
                    output: fault_json(&fault),
                    fuel_used: 0,
                };
                return Some((Err(fault), record));
            }
        }
        let canonical_input = self.input_of(pair).canonical().to_owned();
        let (output, fuel_used) = match (prepared, &policy, allowance) {
            (Some(prepared), _, _) => {
                self.calls.batched += 1;
                prepared
            }
            (None, ActivePolicy::Unavailable { digest }, _) => {
                (Err(Fault::Unavailable(digest.clone())), 0)
            }
            (None, ActivePolicy::Ready(_), Err(spent)) => (Err(Fault::BudgetExhausted(spent)), 0),
            (None, ActivePolicy::Ready(compiled), Ok((fuel, wall))) => {
                // The epoch ticks once a millisecond: round the wall allowance up to whole ticks.
                let deadline_ms =
                    u64::try_from(wall.as_micros().div_ceil(1000)).unwrap_or(u64::MAX);
                let host = self.host;
                let input = &self.input_of(pair).input;
                let started = Instant::now();
                let evaluation = host.evaluate_within(compiled, input, fuel, deadline_ms);
                self.charge(hub, evaluation.fuel_used, started.elapsed());
                self.calls.single += 1;
                (evaluation.output, evaluation.fuel_used)
            }
        };
        let output_json = match &output {
            Ok(output) => output.canonical(),
            Err(fault) => {
                self.record_fault(
                    (hub, kind, policy.digest()),
                    fault.class(),
                    &fault.to_string(),
                    canonical_input.clone(),
                );
                fault_json(fault)
            }
        };
        if !matches!(output, Err(Fault::BudgetExhausted(_))) {
            self.decisions.push(DecisionRow {
                hub: hub_code.clone(),
                kind: kind.as_str(),
                digest: policy.digest().to_owned(),
                outcome: outcome_of(&output),
                bid_id: pair.bid.id,
                offer_id: pair.offer.id,
                input: canonical_input.clone(),
                output: output_json.clone(),
                fuel_used,
                denial: match &output {
                    Ok(PolicyOutput::Deny { code, message }) => Some(denial_text(code, message)),
                    _ => None,
                },
            });
        }
        let record = DecisionRecord {
            policy_digest: policy.digest().to_owned(),
            kind: kind.as_str().into(),
            hub: hub_code,
            input: canonical_input,
            output: output_json,
            fuel_used,
        };
        Some((output, record))
    }

    /// Evaluates one pair of a batch call again, alone (the `round`-th checked call picks which,
    /// from the last back, so that consecutive checks visit every position), with the limits the
    /// whole call had (`limits`: fuel, deadline in ms), and says how its answer differs from the
    /// call's, if it does, with the pair's index in `pairs`. A pair that faults alone where the
    /// call answered it differs too: one pair alone must do within what all of them did together
    /// (unless what is left of the hub's budget was less than the call had, and the fault is the
    /// budget's). A check that cannot run finds nothing.
    #[allow(clippy::too_many_arguments)]
    fn check_one(
        &mut self,
        hub: HubId,
        kind: PolicyKind,
        compiled: &Compiled,
        pairs: &[PairFacts<'_>],
        indices: &[usize],
        outputs: &[Result<PolicyOutput, Fault>],
        round: u64,
        limits: (u64, u64),
    ) -> Option<(Fault, usize)> {
        let decided: Vec<usize> = (0..outputs.len())
            .filter(|position| outputs[*position].is_ok())
            .collect();
        if decided.len() < 2 {
            return None;
        }
        // From the last pair back: the last is the one most exposed to its neighbours.
        let back = usize::try_from(round).unwrap_or(0) % decided.len();
        let position = decided[decided.len() - 1 - back];
        let (fuel_left, wall_left) = self.allowance(hub).ok()?;
        let wall_left_ms = u64::try_from(wall_left.as_millis()).unwrap_or(u64::MAX);
        let (fuel, deadline_ms) = limits;
        let full_limits = fuel_left >= fuel && wall_left_ms >= deadline_ms;
        let pair = &pairs[indices[position]];
        let host = self.host;
        let started = Instant::now();
        let alone = host.evaluate_within(
            compiled,
            &self.built_input(pair).input,
            fuel.min(fuel_left),
            deadline_ms.min(wall_left_ms.max(1)),
        );
        self.charge(hub, alone.fuel_used, started.elapsed());
        let in_batch = outputs[position].as_ref().ok()?;
        let alone = match alone.output {
            Ok(alone) if alone == *in_batch => return None,
            Ok(alone) => alone.canonical(),
            Err(Fault::OutOfFuel | Fault::Deadline) if !full_limits => return None,
            Err(fault) => fault_json(&fault),
        };
        let fault = Fault::BatchMismatch(format!(
            "{} pair {} of {}: {} in the call, {alone} alone",
            kind.as_str(),
            position + 1,
            outputs.len(),
            in_batch.canonical(),
        ));
        Some((fault, indices[position]))
    }

    /// Decides ahead, in one batch call per hub, the pairs of `live` that `hub_of` sends to a
    /// hub whose active policy of `kind` decides in batches; keeps the decisions for `run`. A
    /// pair stays live for the next stage if this stage did not judge it (no such policy or no
    /// such hub) or allowed it; it leaves if it was refused, or if its decision was not made
    /// ahead (one-pair policies, a spent budget, a batch call that faulted), since what follows
    /// then is for the one-by-one path to find out.
    fn prepare_stage(
        &mut self,
        pairs: &[PairFacts<'_>],
        kind: PolicyKind,
        hub_of: impl Fn(&PairFacts<'_>) -> Option<HubId>,
        live: &mut [bool],
    ) {
        let mut by_hub: Vec<(HubId, Vec<usize>)> = Vec::new();
        for (index, pair) in pairs.iter().enumerate() {
            let Some(hub) = hub_of(pair).filter(|_| live[index]) else {
                continue;
            };
            if !self.active.contains_key(&(hub, kind)) {
                continue;
            }
            let key = (hub, kind, pair.bid.id, pair.offer.id, pair.units);
            if let Some((output, _)) = self.prepared.get(&key) {
                // Decided ahead already, with these facts.
                live[index] =
                    kind != PolicyKind::Compliance || matches!(output, Ok(PolicyOutput::Allow));
                continue;
            }
            match by_hub.iter_mut().find(|(known, _)| *known == hub) {
                Some((_, indices)) => indices.push(index),
                None => by_hub.push((hub, vec![index])),
            }
        }
        for (hub, indices) in by_hub {
            let compiled = match self.active.get(&(hub, kind)) {
                Some(ActivePolicy::Ready(compiled))
                    if compiled.decides_in_batches() && !self.host.caught(&compiled.digest) =>
                {
                    compiled.clone()
                }
                _ => {
                    indices.iter().for_each(|index| live[*index] = false);
                    continue;
                }
            };
            // A batch call gets half of what is left of the hub's budget: if it fails as a whole
            // (one pair loops, or the pairs together cost more), its pairs are still evaluated
            // one by one with the other half, so the first of them in ask order still trade.
            let (fuel, deadline_ms) = match self.allowance(hub) {
                Ok((fuel, wall)) => (
                    fuel / 2,
                    u64::try_from(wall.as_micros() / 2 / 1000).unwrap_or(u64::MAX),
                ),
                Err(_) => (0, 0),
            };
            // At least two ticks of the epoch clock: a one-tick deadline may fire at once.
            if fuel == 0 || deadline_ms < 2 {
                indices.iter().for_each(|index| live[*index] = false);
                continue;
            }
            for index in &indices {
                self.input_of(&pairs[*index]);
            }
            let inputs: Vec<&Pair> = indices
                .iter()
                .map(|index| &self.built_input(&pairs[*index]).input)
                .collect();
            let started = Instant::now();
            let batch = self
                .host
                .evaluate_batch_within(&compiled, &inputs, fuel, deadline_ms);
            self.charge(hub, batch.fuel_used, started.elapsed());
            self.calls.batches += 1;
            let batch_number = self.host.count_batch_call();
            let outputs = match batch.outputs {
                Ok(outputs) => outputs,
                Err(fault) => {
                    // Recorded with every input of the call (a JSON array), so that the operator
                    // sees why the hub's pairs were then evaluated one by one.
                    let inputs: Vec<&str> = indices
                        .iter()
                        .map(|index| self.built_input(&pairs[*index]).canonical())
                        .collect();
                    let input = format!("[{}]", inputs.join(","));
                    self.record_fault(
                        (hub, kind, &compiled.digest),
                        fault.class(),
                        &format!("a batch call of {} pairs: {fault}", indices.len()),
                        input,
                    );
                    indices.iter().for_each(|index| live[*index] = false);
                    continue;
                }
            };
            let every = self.budget.batch_check_every;
            if every > 0 && batch_number.is_multiple_of(every) {
                let mismatch = self.check_one(
                    hub,
                    kind,
                    &compiled,
                    pairs,
                    &indices,
                    &outputs,
                    batch_number / every,
                    (fuel, deadline_ms),
                );
                if let Some((fault, checked)) = mismatch {
                    // Caught once, never trusted with a batch again in this process.
                    self.host.catch(&compiled.digest);
                    let input = self.built_input(&pairs[checked]).canonical().to_owned();
                    self.record_fault(
                        (hub, kind, &compiled.digest),
                        fault.class(),
                        &fault.to_string(),
                        input,
                    );
                    indices.iter().for_each(|index| live[*index] = false);
                    continue;
                }
            }
            // The call's fuel is shared by the pairs it was sent (a pair the interface cannot
            // carry was not).
            let sent =
                |output: &Result<PolicyOutput, Fault>| !matches!(output, Err(Fault::BadInput(_)));
            let count = outputs.iter().filter(|output| sent(output)).count();
            let count = u64::try_from(count).unwrap_or(u64::MAX).max(1);
            let (share, mut rest) = (batch.fuel_used / count, batch.fuel_used % count);
            for (index, output) in indices.iter().zip(outputs) {
                let pair = &pairs[*index];
                live[*index] =
                    matches!(output, Ok(PolicyOutput::Allow)) || kind != PolicyKind::Compliance;
                let fuel = if sent(&output) {
                    share + std::mem::take(&mut rest)
                } else {
                    0
                };
                self.prepared.insert(
                    (hub, kind, pair.bid.id, pair.offer.id, pair.units),
                    (output, fuel),
                );
            }
        }
    }
}

/// A compliance policy's refusal as people read it: `code: message`, without control
/// characters (a policy's text goes into JSON and PostgreSQL), at most 500 characters.
fn denial_text(code: &str, message: &str) -> String {
    let text = if message.is_empty() {
        code.to_owned()
    } else {
        format!("{code}: {message}")
    };
    crate::validate::printable(&text, 500)
}

/// How an evaluation's result is filed.
fn outcome_of(output: &Result<PolicyOutput, Fault>) -> &'static str {
    match output {
        Ok(PolicyOutput::Allow) => "allowed",
        Ok(PolicyOutput::Deny { .. }) => "denied",
        Ok(PolicyOutput::Quote { .. }) => "quoted",
        Ok(PolicyOutput::Reject { .. }) => "rejected",
        Err(_) => "fault",
    }
}

/// How a fault is written in a decision record's output.
pub fn fault_json(fault: &Fault) -> String {
    suanli_sdk::audit::canonical_json(
        &serde_json::json!({"fault": fault.class(), "message": fault.to_string()}),
    )
}

impl Policies for HubPolicies<'_> {
    fn allow(&mut self, pair: &PairFacts<'_>) -> Decided<Allowance> {
        let mut hubs = vec![pair.offer.hub];
        if let Some(origin) = pair
            .bid
            .data_origin
            .filter(|origin| *origin != pair.offer.hub)
        {
            hubs.push(origin);
        }
        let mut records = Vec::new();
        for hub in hubs {
            let Some((output, record)) = self.run(hub, PolicyKind::Compliance, pair) else {
                continue;
            };
            records.push(record);
            let refusal = match output {
                Ok(PolicyOutput::Allow) => continue,
                Ok(PolicyOutput::Deny { code, message }) => Allowance::Denied {
                    hub,
                    reason: denial_text(&code, &message),
                },
                Ok(other) => Allowance::Failed {
                    hub,
                    message: format!("unexpected answer {other:?}"),
                },
                Err(fault) => Allowance::Failed {
                    hub,
                    message: fault.to_string(),
                },
            };
            return Decided {
                decision: refusal,
                records,
            };
        }
        Decided {
            decision: Allowance::Allowed,
            records,
        }
    }

    fn price(&mut self, pair: &PairFacts<'_>) -> Decided<PriceDecision> {
        // No active pricing policy: the built-in rule. An active one that cannot run is a
        // rejection (below), never the built-in rule.
        let Some((output, record)) = self.run(pair.offer.hub, PolicyKind::Pricing, pair) else {
            return BuiltInRules.price(pair);
        };
        let decision = match output {
            Ok(PolicyOutput::Quote {
                unit_price,
                levy_bps,
            }) => match unit_price.parse::<Decimal>() {
                Ok(unit_price) => PriceDecision::Quote {
                    unit_price,
                    levy_bps,
                },
                Err(_) => PriceDecision::Failed {
                    message: format!("unparsable unit price {unit_price:?}"),
                },
            },
            Ok(PolicyOutput::Reject { reason }) => PriceDecision::Reject { reason },
            Ok(other) => PriceDecision::Failed {
                message: format!("unexpected answer {other:?}"),
            },
            Err(fault) => PriceDecision::Failed {
                message: fault.to_string(),
            },
        };
        Decided {
            decision,
            records: vec![record],
        }
    }

    fn quote_below_ask(&mut self, pair: &PairFacts<'_>, unit_price: Decimal) {
        let active = self.active;
        if let Some(policy) = active.get(&(pair.offer.hub, PolicyKind::Pricing)) {
            let input = self.input_of(pair).canonical().to_owned();
            self.record_fault(
                (pair.offer.hub, PolicyKind::Pricing, policy.digest()),
                Fault::PriceBelowAsk.class(),
                &format!("quoted {unit_price} below the ask {}", pair.offer.ask_price),
                input,
            );
        }
    }

    fn prepares(&self) -> bool {
        self.batches
    }

    fn prepare(&mut self, pairs: &[PairFacts<'_>]) {
        // Nothing more will be announced for this order: what was decided ahead still answers
        // the same facts.
        if pairs.is_empty() {
            return;
        }
        // Decisions made ahead for pairs announced again with the same facts stand (an incoming
        // offer announces its remaining candidates again after a refusal); the others belong to
        // pairs no longer coming.
        let coming: HashSet<(Uuid, Uuid, u32)> = pairs
            .iter()
            .map(|pair| (pair.bid.id, pair.offer.id, pair.units))
            .collect();
        self.prepared
            .retain(|(_, _, bid, offer, units), _| coming.contains(&(*bid, *offer, *units)));
        if pairs.len() < 2 {
            return;
        }
        let mut live = vec![true; pairs.len()];
        self.prepare_stage(
            pairs,
            PolicyKind::Compliance,
            |pair| Some(pair.offer.hub),
            &mut live,
        );
        self.prepare_stage(
            pairs,
            PolicyKind::Compliance,
            |pair| {
                pair.bid
                    .data_origin
                    .filter(|origin| *origin != pair.offer.hub)
            },
            &mut live,
        );
        self.prepare_stage(
            pairs,
            PolicyKind::Pricing,
            |pair| Some(pair.offer.hub),
            &mut live,
        );
    }
}

fn hub_facts(reference: &Reference, hub: HubId) -> HubFacts {
    let hub = reference.hub_by_id(hub);
    HubFacts {
        code: hub.code.clone(),
        tier: match hub.tier {
            suanli_sdk::Tier::East => "east".into(),
            suanli_sdk::Tier::West => "west".into(),
        },
        region: hub.region.clone(),
        renewable_share: hub.renewable_share,
        carbon_g_per_kwh: hub.carbon_g_per_kwh,
        pue: hub.pue.to_string(),
    }
}

/// A compute class's name on the wire (its serde name: a test checks they agree).
fn class_name(class: suanli_sdk::ComputeClass) -> &'static str {
    match class {
        suanli_sdk::ComputeClass::General => "general",
        suanli_sdk::ComputeClass::Intelligent => "intelligent",
        suanli_sdk::ComputeClass::Supercomputing => "supercomputing",
    }
}

/// Everything a policy may know about a pair, from the pair and the reference data.
pub fn policy_input(pair: &PairFacts<'_>, reference: &Reference) -> PolicyInput {
    let (offer, bid) = (pair.offer, pair.bid);
    let offer_hub = hub_facts(reference, offer.hub);
    let origin_hub = bid.data_origin.map(|origin| hub_facts(reference, origin));
    let latency_ms = origin_hub
        .as_ref()
        .and_then(|origin| reference.latency_ms(&origin.code, &offer_hub.code));
    let sku = reference.sku_by_id(offer.sku);
    PolicyInput {
        offer: OfferFacts {
            id: offer.id.to_string(),
            provider: offer.provider.to_string(),
            cluster: offer.cluster.clone(),
            hub: offer_hub.code.clone(),
            sku: sku.code.clone(),
            sku_class: class_name(sku.class).into(),
            quantity: offer.quantity,
            window_start: offer.window.start_seconds(),
            window_end: offer.window.end_seconds(),
            ask_price: offer.ask_price.normalize().to_string(),
            green_share: offer.green_share,
            attributes: offer.attributes.clone(),
        },
        bid: BidFacts {
            id: bid.id.to_string(),
            buyer: bid.buyer.to_string(),
            skus: bid
                .skus
                .iter()
                .map(|sku| reference.sku_by_id(*sku).code.clone())
                .collect(),
            quantity: bid.quantity,
            window_start: bid.window.start_seconds(),
            window_end: bid.window.end_seconds(),
            limit_price: bid.limit_price.normalize().to_string(),
            data_origin: origin_hub.as_ref().map(|hub| hub.code.clone()),
            max_latency_ms: bid.max_latency_ms,
            min_green_share: bid.min_green_share,
            data_class: bid.data_class.as_str().into(),
        },
        offer_hub,
        origin_hub,
        maker: pair.maker,
        hours: pair.hours,
        units: pair.units,
        latency_ms,
    }
}

#[cfg(test)]
mod tests {
    use suanli_sdk::ComputeClass;

    #[test]
    fn a_class_is_named_as_on_the_wire() {
        for class in [
            ComputeClass::General,
            ComputeClass::Intelligent,
            ComputeClass::Supercomputing,
        ] {
            assert_eq!(
                serde_json::to_value(class).unwrap(),
                serde_json::json!(super::class_name(class))
            );
        }
    }
}
