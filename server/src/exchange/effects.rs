//! What one batch changes: the writer applies each command to the engine here and collects the
//! rows, ledger transactions and typed audit events that [`crate::db::orders::write_batch`] then
//! writes in one transaction. Nothing here touches the database.

use std::collections::HashMap;

use chrono::{DateTime, TimeZone, Utc};
use rust_decimal::Decimal;
use suanli_sdk::{PlacedBid, PlacedOffer, Side, TimeInForce};
use uuid::Uuid;

use super::events::{AuditEvent, DenialFields, WindowFields};
use super::policies::HubPolicies;
use super::requests::WithdrawalRequest;
use super::{BidRequest, OfferRequest, Placed};
use crate::db::audit::SYSTEM_ACTOR;
use crate::db::ledger::{self, LedgerTransaction, kind};
use crate::db::orders::{BatchWrites, BidRow, ContractRow, OfferRow, OrderUpdate};
use crate::db::policies::DecisionRow;
use crate::db::reference::Reference;
use crate::db::settlement;
use crate::db::types::{StoredContractStatus, StoredWithdrawalStatus};
use crate::db::withdrawals::WithdrawalRow;
use crate::error::ApiError;
use crate::market::{BidOutcome, BidSpec, Engine, Fill, Removal, RemovalReason};
use crate::rules;

/// What the batch needs from the database, read before matching.
#[derive(Default)]
pub struct BatchReads {
    /// (owner, key) → (order id, request hash) of orders already placed under these keys.
    pub seen_offers: HashMap<(Uuid, String), (Uuid, String)>,
    pub seen_bids: HashMap<(Uuid, String), (Uuid, String)>,
    /// Available balances of the buyers placing bids in this batch.
    pub available: HashMap<Uuid, Decimal>,
    /// Facts of the contracts being settled in this batch.
    pub contract_facts: HashMap<Uuid, settlement::ContractFacts>,
    /// Settlements stored before, by contract.
    pub settled: HashMap<Uuid, settlement::SettlementRow>,
    /// Participants placing orders in this batch who are suspended.
    pub suspended: std::collections::HashSet<Uuid>,
    /// Withdrawals already requested under this batch's (participant, key) pairs.
    pub seen_withdrawals: HashMap<(Uuid, String), WithdrawalRow>,
    /// Balances of the non-buyer accounts withdrawals in this batch draw on.
    pub balances: HashMap<Uuid, Decimal>,
}

/// Collects the effects of one batch.
pub struct Effects<'a> {
    reference: &'a Reference,
    now: DateTime<Utc>,
    pub writes: BatchWrites,
    reads: BatchReads,
    pub contracts_created: u64,
    /// Participants suspended (before this batch, or earlier in it): their orders are refused.
    suspended: std::collections::HashSet<Uuid>,
}

impl<'a> Effects<'a> {
    pub fn new(reference: &'a Reference, now: DateTime<Utc>, mut reads: BatchReads) -> Self {
        let suspended = std::mem::take(&mut reads.suspended);
        Effects {
            reference,
            now,
            writes: BatchWrites::default(),
            reads,
            contracts_created: 0,
            suspended,
        }
    }

    /// Settles a contract: pro-rata charge, refund, fee, levy, provider's pay; once.
    pub fn settle(
        &mut self,
        provider: Uuid,
        contract: Uuid,
        delivery: &suanli_sdk::NewDelivery,
        exchange_fee_bps: u32,
        hub_levy_accounts: &HashMap<String, Uuid>,
    ) -> Result<suanli_sdk::Settlement, ApiError> {
        let outcome = rules::settlement::decide(
            self.reads.contract_facts.get(&contract),
            self.reads.settled.get(&contract),
            provider,
            delivery,
            exchange_fee_bps,
        )?;
        let (facts, contracted, amounts) = match outcome {
            rules::settlement::Outcome::Repeat(first) => return Ok(first),
            rules::settlement::Outcome::New {
                facts,
                contracted,
                amounts,
            } => (facts, contracted, amounts),
        };
        rules::settlement::check_started(&facts, self.now)?;
        let levy_account = *hub_levy_accounts
            .get(&facts.hub)
            .ok_or_else(|| ApiError::internal(format!("no levy account for hub {}", facts.hub)))?;
        // The provider is paid what was charged, then pays the fee and the levy out of it: its
        // statement shows what it earned and what was taken, line by line.
        let provider_account = ledger::participant_account_id(facts.provider_id, kind::PROVIDER);
        let transaction_id = self.ledger(
            "settlement",
            contract,
            vec![
                (ledger::contract_escrow_account(contract), -facts.notional),
                (
                    ledger::participant_account_id(facts.buyer_id, kind::BUYER_AVAILABLE),
                    amounts.refunded,
                ),
                (provider_account, amounts.charged),
            ],
        );
        for (transaction_kind, account, amount) in [
            (
                "settlement_fee",
                ledger::EXCHANGE_FEES_ACCOUNT,
                amounts.exchange_fee,
            ),
            ("settlement_levy", levy_account, amounts.hub_levy),
        ] {
            if amount > Decimal::ZERO {
                self.ledger(
                    transaction_kind,
                    contract,
                    vec![(provider_account, -amount), (account, amount)],
                );
            }
        }
        self.credit_available(facts.buyer_id, amounts.refunded);
        for (account, amount) in [
            (
                ledger::participant_account_id(facts.provider_id, kind::PROVIDER),
                amounts.provider_paid,
            ),
            (levy_account, amounts.hub_levy),
        ] {
            if let Some(balance) = self.reads.balances.get_mut(&account) {
                *balance += amount;
            }
        }
        let row = settlement::new_row(
            &facts,
            &amounts,
            delivery,
            exchange_fee_bps,
            transaction_id,
            self.now,
        );
        self.audit(
            provider.to_string(),
            AuditEvent::ContractSettled {
                contract_id: contract,
                delivered_unit_hours: delivery.delivered_unit_hours,
                contracted_unit_hours: contracted,
                charged: amounts.charged.to_string(),
                refunded: amounts.refunded.to_string(),
                provider_paid: amounts.provider_paid.to_string(),
                exchange_fee: amounts.exchange_fee.to_string(),
                hub_levy: amounts.hub_levy.to_string(),
                transaction_id,
            },
        );
        let wire = row.to_wire();
        self.reads.settled.insert(contract, row.clone());
        self.writes.settlements.push(row);
        Ok(wire)
    }

    /// Refuses a window that began before the batch's current hour (the hour turned while the
    /// order waited): its first hours are gone.
    fn refuse_past_window(&self, start_hour: i64) -> Result<(), ApiError> {
        Ok(rules::window::check_start(
            start_hour,
            self.now.timestamp(),
        )?)
    }

    /// Suspends `participant`: cancels its resting orders (releasing bids' holds) and marks it
    /// suspended; returns how many orders were cancelled.
    pub fn suspend(
        &mut self,
        engine: &mut Engine,
        participant: Uuid,
        reason: &str,
        actor: &str,
    ) -> u32 {
        let mut cancelled = 0;
        for seq in engine.resting_orders_of(participant) {
            if let Ok(removal) = engine.cancel(seq, participant) {
                self.removal(removal, actor.to_owned());
                cancelled += 1;
            }
        }
        self.suspended.insert(participant);
        self.writes
            .suspensions
            .push((participant, reason.to_owned()));
        self.audit(
            actor.to_owned(),
            AuditEvent::ParticipantSuspended {
                participant_id: participant,
                reason: reason.to_owned(),
                orders_cancelled: cancelled,
            },
        );
        cancelled
    }

    fn refuse_suspended(&self, participant: Uuid) -> Result<(), ApiError> {
        if self.suspended.contains(&participant) {
            return Err(ApiError::unauthorized(
                "participant_suspended",
                "this participant is suspended",
            ));
        }
        Ok(())
    }

    pub fn place_offer(
        &mut self,
        engine: &mut Engine,
        policies: &mut HubPolicies<'_>,
        request: &OfferRequest,
    ) -> Result<Placed<PlacedOffer>, ApiError> {
        self.refuse_suspended(request.spec.provider)?;
        let key = (request.spec.provider, request.idempotency_key.clone());
        if let Some((id, hash)) = self.reads.seen_offers.get(&key) {
            return replay(
                *id,
                hash,
                &request.request_hash,
                request.request_hash_as_written.as_deref(),
            );
        }
        self.refuse_past_window(request.spec.window.start)?;
        policies.begin_order();
        let judged = policies.decisions.len();
        let outcome = engine.submit_offer(request.spec.clone(), self.now.timestamp(), policies);
        let denials = compliance_denials(request.spec.id, "offer", &policies.decisions[judged..]);
        self.reads
            .seen_offers
            .insert(key, (request.spec.id, request.request_hash.clone()));
        let spec = &request.spec;
        let row = OfferRow {
            id: spec.id,
            seq: outcome.state.seq as i64,
            provider_id: spec.provider,
            cluster: spec.cluster.clone(),
            hub: self.reference.hub_by_id(spec.hub).code.clone(),
            sku: self.reference.sku_by_id(spec.sku).code.clone(),
            quantity: spec.quantity as i32,
            window_start: request.window.start,
            window_end: request.window.end,
            ask_price: spec.ask_price,
            green_share: i16::from(spec.green_share),
            attributes: serde_json::Value::Object(request.attributes.clone()),
            status: outcome.state.status.into(),
            remaining: outcome.state.remaining as i32,
            idempotency_key: request.idempotency_key.clone(),
            request_hash: request.request_hash.clone(),
            created_at: self.now,
            updated_at: self.now,
        };
        self.audit(
            spec.provider.to_string(),
            AuditEvent::OfferAccepted {
                offer_id: row.id,
                seq: row.seq,
                provider_id: row.provider_id,
                cluster: row.cluster.clone(),
                hub: row.hub.clone(),
                sku: row.sku.clone(),
                quantity: row.quantity,
                window: WindowFields {
                    start: row.window_start,
                    end: row.window_end,
                },
                ask_price: row.ask_price.normalize().to_string(),
                green_share: row.green_share,
            },
        );
        if let Some(denials) = denials {
            self.audit(SYSTEM_ACTOR.to_owned(), denials);
        }
        let offer = row.to_wire();
        self.writes.new_offers.push(row);
        let contracts = outcome.fills.iter().map(|fill| self.fill(fill)).collect();
        Ok(Placed::New(PlacedOffer { offer, contracts }))
    }

    pub fn place_bid(
        &mut self,
        engine: &mut Engine,
        policies: &mut HubPolicies<'_>,
        request: &BidRequest,
    ) -> Result<Placed<PlacedBid>, ApiError> {
        let buyer = request.spec.buyer;
        self.refuse_suspended(buyer)?;
        let key = (buyer, request.idempotency_key.clone());
        if let Some((id, hash)) = self.reads.seen_bids.get(&key) {
            return replay(
                *id,
                hash,
                &request.request_hash,
                request.request_hash_as_written.as_deref(),
            );
        }
        // A window of the current hour buys capacity now: such a bid fills at once or expires.
        self.refuse_past_window(request.spec.window.start)?;
        if request
            .spec
            .expires_at
            .is_some_and(|at| at <= self.now.timestamp())
        {
            return Err(ApiError::unprocessable(
                "expiry_passed",
                "the bid expired before it could be placed",
            ));
        }
        let hold = self.hold(request)?;
        policies.begin_order();
        let judged = policies.decisions.len();
        let outcome = engine.submit_bid(request.spec.clone(), self.now.timestamp(), policies);
        let denials = compliance_denials(request.spec.id, "bid", &policies.decisions[judged..]);
        let mut reasons = outcome.reasons.clone();
        if outcome.state.status != suanli_sdk::OrderStatus::Filled {
            self.note_latency(engine, request, &mut reasons);
        }
        let reasons = self.wire_reasons(reasons);
        self.reads
            .seen_bids
            .insert(key, (request.spec.id, request.request_hash.clone()));
        let spec = &request.spec;
        let row = bid_row(request, &outcome, &reasons, self.now);
        self.audit_bid_accepted(&row, spec.min_fill, hold);
        if let Some(denials) = denials {
            self.audit(SYSTEM_ACTOR.to_owned(), denials);
        }
        let bid_wire = row.to_wire();
        self.writes.new_bids.push(row);
        let contracts = outcome.fills.iter().map(|fill| self.fill(fill)).collect();
        if outcome.hold_released > Decimal::ZERO {
            self.release(buyer, spec.id, outcome.hold_released);
            self.audit_bid_unfilled(spec, &outcome);
        }
        let mut bid = bid_wire;
        if !bid.status.is_resting() {
            bid.held = Decimal::ZERO;
        }
        Ok(Placed::New(PlacedBid {
            bid,
            contracts,
            reasons,
        }))
    }

    /// Moves what `request` holds from its buyer's available money to held money, or refuses it.
    fn hold(&mut self, request: &BidRequest) -> Result<Decimal, ApiError> {
        let buyer = request.spec.buyer;
        let hold = request.hold();
        let available = self
            .reads
            .available
            .get(&buyer)
            .copied()
            .unwrap_or_default();
        if available < hold {
            return Err(ApiError::unprocessable(
                "insufficient_funds",
                format!("the bid holds {hold} CNY; {available} CNY is available"),
            ));
        }
        self.reads.available.insert(buyer, available - hold);
        self.ledger(
            "bid_hold",
            request.spec.id,
            vec![
                (
                    ledger::participant_account_id(buyer, kind::BUYER_AVAILABLE),
                    -hold,
                ),
                (
                    ledger::participant_account_id(buyer, kind::BUYER_HELD),
                    hold,
                ),
            ],
        );
        Ok(hold)
    }

    fn audit_bid_accepted(&mut self, row: &BidRow, min_fill: u32, hold: Decimal) {
        self.audit(
            row.buyer_id.to_string(),
            AuditEvent::BidAccepted {
                bid_id: row.id,
                seq: row.seq,
                buyer_id: row.buyer_id,
                skus: row.skus.clone(),
                quantity: row.quantity,
                window: WindowFields {
                    start: row.window_start,
                    end: row.window_end,
                },
                limit_price: row.limit_price.normalize().to_string(),
                requested_hubs: row.requested_hubs.clone(),
                hubs: row.hubs.clone(),
                data_origin: row.data_origin.clone(),
                max_latency_ms: row.max_latency_ms.and_then(|ms| u32::try_from(ms).ok()),
                min_green_share: row.min_green_share,
                data_class: row.data_class.0,
                time_in_force: row.time_in_force.0,
                expires_at: row.expires_at,
                min_fill,
                hold: hold.to_string(),
            },
        );
    }

    /// The unfilled rest of a bid that does not rest: why, and what its buyer got back.
    fn audit_bid_unfilled(&mut self, spec: &BidSpec, outcome: &BidOutcome) {
        let expired = outcome.state.status == suanli_sdk::OrderStatus::Expired;
        self.audit(
            spec.buyer.to_string(),
            AuditEvent::BidUnfilled {
                bid_id: spec.id,
                reason: if expired {
                    "window_started"
                } else {
                    unfilled_reason(spec.time_in_force)
                },
                expired,
                unfilled: spec.quantity - outcome.fills.iter().map(|f| f.units).sum::<u32>(),
                hold_released: outcome.hold_released.to_string(),
            },
        );
    }

    /// What a bid would get now: the same checks and the same engine plan as
    /// [`Effects::place_bid`], with nothing written or held (the policies' records are dropped by
    /// the caller).
    pub fn quote(
        &mut self,
        engine: &Engine,
        policies: &mut HubPolicies<'_>,
        request: &BidRequest,
    ) -> Result<suanli_sdk::Quote, ApiError> {
        self.refuse_suspended(request.spec.buyer)?;
        self.refuse_past_window(request.spec.window.start)?;
        if request
            .spec
            .expires_at
            .is_some_and(|at| at <= self.now.timestamp())
        {
            return Err(ApiError::unprocessable(
                "expiry_passed",
                "the bid would expire before it could be placed",
            ));
        }
        policies.begin_order();
        let quote = engine.quote_bid(&request.spec, self.now.timestamp(), policies);
        let mut reasons = quote.reasons;
        if quote.unfilled > 0 {
            self.note_latency(engine, request, &mut reasons);
        }
        let hold = request.hold();
        let available = self
            .reads
            .available
            .get(&request.spec.buyer)
            .copied()
            .unwrap_or_default();
        if available < hold {
            reasons.insert(
                0,
                crate::market::Reason {
                    code: crate::market::ReasonCode::InsufficientFunds,
                    hub: None,
                    message: format!("the bid would hold {hold} CNY; {available} CNY is available"),
                },
            );
        }
        let fills: Vec<suanli_sdk::QuoteFill> = quote
            .fills
            .iter()
            .map(|fill| suanli_sdk::QuoteFill {
                hub: self.reference.hub_by_id(fill.hub).code.clone(),
                cluster: fill.cluster.clone(),
                sku: self.reference.sku_by_id(fill.sku).code.clone(),
                units: fill.units,
                unit_price: fill.unit_price.normalize(),
                notional: fill.notional.normalize(),
            })
            .collect();
        Ok(suanli_sdk::Quote {
            total_notional: fills
                .iter()
                .map(|fill| fill.notional)
                .sum::<Decimal>()
                .normalize(),
            fills,
            unfilled_units: quote.unfilled,
            hold: hold.normalize(),
            reasons: self.wire_reasons(reasons),
        })
    }

    /// Moves a withdrawal's amount from the participant's account to `payouts_pending`, once per
    /// idempotency key.
    pub fn withdraw(
        &mut self,
        request: &WithdrawalRequest,
    ) -> Result<suanli_sdk::Withdrawal, ApiError> {
        let key = (request.participant, request.idempotency_key.clone());
        if let Some(existing) = self.reads.seen_withdrawals.get(&key) {
            return if existing.request_hash == request.request_hash {
                Ok(existing.to_wire())
            } else {
                Err(ApiError::conflict(
                    "idempotency_conflict",
                    "this idempotency key was already used for a different withdrawal",
                ))
            };
        }
        self.refuse_suspended(request.participant)?;
        let available = if request.buyer {
            self.reads.available.get(&request.participant).copied()
        } else {
            self.reads.balances.get(&request.account).copied()
        }
        .unwrap_or_default();
        if available < request.amount {
            return Err(ApiError::unprocessable(
                "insufficient_funds",
                format!(
                    "{} CNY is available; the withdrawal asks for {}",
                    available.normalize(),
                    request.amount
                ),
            ));
        }
        if request.buyer {
            self.reads
                .available
                .insert(request.participant, available - request.amount);
        } else {
            self.reads
                .balances
                .insert(request.account, available - request.amount);
        }
        let transaction_id = self.ledger(
            "withdrawal_request",
            request.id,
            vec![
                (request.account, -request.amount),
                (ledger::PAYOUTS_PENDING_ACCOUNT, request.amount),
            ],
        );
        let row = WithdrawalRow {
            id: request.id,
            seq: 0,
            participant_id: request.participant,
            account_id: request.account,
            amount: request.amount,
            destination: request.destination.clone(),
            status: StoredWithdrawalStatus(suanli_sdk::WithdrawalStatus::Pending),
            idempotency_key: request.idempotency_key.clone(),
            request_hash: request.request_hash.clone(),
            bank_reference: None,
            reason: None,
            decided_by: None,
            created_at: self.now,
            decided_at: None,
        };
        self.audit(
            request.participant.to_string(),
            AuditEvent::WithdrawalRequested {
                withdrawal_id: request.id,
                participant_id: request.participant,
                amount: request.amount.to_string(),
                currency: "CNY",
                destination: request.destination.clone(),
                transaction_id,
            },
        );
        let wire = row.to_wire();
        self.reads.seen_withdrawals.insert(key, row.clone());
        self.writes.withdrawals.push(row);
        Ok(wire)
    }

    /// Adds `latency_exceeded` when offers the bid could take lie in hubs its latency bound
    /// ruled out.
    fn note_latency(
        &self,
        engine: &Engine,
        request: &BidRequest,
        reasons: &mut Vec<crate::market::Reason>,
    ) {
        if request.latency_excluded.is_empty() {
            return;
        }
        let spec = &request.spec;
        if let Some((hub, ask)) = engine.cheapest_offer_in(spec, request.latency_excluded) {
            let origin = request.data_origin.as_deref().unwrap_or("the data origin");
            reasons.push(crate::market::Reason {
                code: crate::market::ReasonCode::LatencyExceeded,
                hub: Some(hub),
                message: format!(
                    "an offer at {} CNY lies beyond {} ms of {origin}",
                    ask.normalize(),
                    request.max_latency_ms.unwrap_or_default()
                ),
            });
        }
    }

    /// Reasons as the API shows them.
    fn wire_reasons(&self, reasons: Vec<crate::market::Reason>) -> Vec<suanli_sdk::Reason> {
        reasons
            .into_iter()
            .map(|reason| suanli_sdk::Reason {
                code: reason.code.as_str().to_owned(),
                // Policies' texts reach JSON and jsonb: no control characters, bounded.
                message: crate::validate::printable(&reason.message, 500),
                hub: reason
                    .hub
                    .map(|hub| self.reference.hub_by_id(hub).code.clone()),
            })
            .collect()
    }

    /// Turns a fill into a contract, its escrow funding and its audit entry.
    fn fill(&mut self, fill: &Fill) -> suanli_sdk::Contract {
        let contract_id = Uuid::new_v4();
        let hours = fill.window.len();
        let row = ContractRow {
            id: contract_id,
            seq: 0,
            bid_id: fill.bid_id,
            offer_id: fill.offer_id,
            buyer_id: fill.buyer,
            provider_id: fill.provider,
            hub: self.reference.hub_by_id(fill.hub).code.clone(),
            cluster: fill.cluster.clone(),
            sku: self.reference.sku_by_id(fill.sku).code.clone(),
            data_origin: fill
                .data_origin
                .map(|hub| self.reference.hub_by_id(hub).code.clone()),
            units: fill.units as i32,
            window_start: hour_start(fill.window.start),
            window_end: hour_start(fill.window.end),
            hours: hours as i32,
            unit_price: fill.unit_price,
            notional: fill.notional,
            levy_bps: fill.levy_bps as i32,
            maker: fill.maker.into(),
            status: StoredContractStatus(suanli_sdk::ContractStatus::Active),
            decisions: serde_json::to_value(&fill.decisions)
                .unwrap_or_else(|_| serde_json::json!([])),
            created_at: self.now,
        };
        self.ledger(
            "fill",
            contract_id,
            vec![
                (
                    ledger::participant_account_id(fill.buyer, kind::BUYER_HELD),
                    -(fill.notional + fill.hold_released),
                ),
                (ledger::contract_escrow_account(contract_id), fill.notional),
                (
                    ledger::participant_account_id(fill.buyer, kind::BUYER_AVAILABLE),
                    fill.hold_released,
                ),
            ],
        );
        self.credit_available(fill.buyer, fill.hold_released);
        let counterparty = fill.counterparty;
        match counterparty.side {
            Side::Bid => {
                self.writes
                    .bid_updates
                    .insert(counterparty.id, update_of(&counterparty));
            }
            Side::Offer => {
                self.writes
                    .offer_updates
                    .insert(counterparty.id, update_of(&counterparty));
            }
        }
        self.audit(
            SYSTEM_ACTOR.to_owned(),
            AuditEvent::ContractCreated {
                contract_id,
                bid_id: row.bid_id,
                offer_id: row.offer_id,
                buyer_id: row.buyer_id,
                provider_id: row.provider_id,
                hub: row.hub.clone(),
                cluster: row.cluster.clone(),
                sku: row.sku.clone(),
                units: row.units,
                window: WindowFields {
                    start: row.window_start,
                    end: row.window_end,
                },
                unit_price: row.unit_price.normalize().to_string(),
                notional: row.notional.to_string(),
                levy_bps: row.levy_bps,
                maker: row.maker.0,
            },
        );
        self.contracts_created += 1;
        // The answer goes to the incoming order's owner, a party.
        let contract = row.to_party_wire();
        self.writes.contracts.push(row);
        contract
    }

    /// Records an order leaving the book (cancel or expiry) and releases what it held.
    pub fn removal(&mut self, removal: Removal, actor: String) {
        let state = removal.state;
        let expired = removal.reason == RemovalReason::Expired;
        let (seq, unfilled, hold_released) = (
            state.seq as i64,
            removal.unfilled,
            removal.hold_released.to_string(),
        );
        let event = match state.side {
            Side::Bid => {
                self.writes.bid_updates.insert(state.id, update_of(&state));
                if removal.hold_released > Decimal::ZERO {
                    self.release(removal.owner, state.id, removal.hold_released);
                }
                AuditEvent::BidRemoved {
                    bid_id: state.id,
                    seq,
                    unfilled,
                    hold_released,
                    expired,
                }
            }
            Side::Offer => {
                self.writes
                    .offer_updates
                    .insert(state.id, update_of(&state));
                AuditEvent::OfferRemoved {
                    offer_id: state.id,
                    seq,
                    unfilled,
                    hold_released,
                    expired,
                }
            }
        };
        self.audit(actor, event);
    }

    fn release(&mut self, buyer: Uuid, order: Uuid, amount: Decimal) {
        self.ledger(
            "hold_release",
            order,
            vec![
                (
                    ledger::participant_account_id(buyer, kind::BUYER_HELD),
                    -amount,
                ),
                (
                    ledger::participant_account_id(buyer, kind::BUYER_AVAILABLE),
                    amount,
                ),
            ],
        );
        self.credit_available(buyer, amount);
    }

    fn credit_available(&mut self, buyer: Uuid, amount: Decimal) {
        if let Some(balance) = self.reads.available.get_mut(&buyer) {
            *balance += amount;
        }
    }

    fn ledger(&mut self, kind: &'static str, reference: Uuid, legs: Vec<(Uuid, Decimal)>) -> Uuid {
        let id = Uuid::new_v4();
        self.writes.ledger.push(LedgerTransaction {
            id,
            kind,
            reference: reference.to_string(),
            legs,
        });
        id
    }

    fn audit(&mut self, actor: String, event: AuditEvent) {
        self.writes.audit.push((
            actor,
            event.kind(),
            crate::db::audit::salted(event.payload()),
        ));
    }
}

/// The original order for a retry: its request hashes the same as the stored order's (or, for an
/// order stored before prices were normalised for hashing, as its price was written).
fn replay<T>(
    id: Uuid,
    stored_hash: &str,
    request_hash: &str,
    as_written: Option<&str>,
) -> Result<Placed<T>, ApiError> {
    if stored_hash == request_hash || as_written == Some(stored_hash) {
        Ok(Placed::Existing(id))
    } else {
        Err(ApiError::conflict(
            "idempotency_conflict",
            "this idempotency key was already used for a different order",
        ))
    }
}

/// The audit entry for the compliance refusals among `decisions` (those of one incoming order),
/// grouped by hub and policy; none if there were none.
fn compliance_denials(
    order: Uuid,
    side: &'static str,
    decisions: &[DecisionRow],
) -> Option<AuditEvent> {
    let mut denials: Vec<DenialFields> = Vec::new();
    for (decision, reason) in decisions
        .iter()
        .filter_map(|d| d.denial.as_ref().map(|reason| (d, reason)))
    {
        match denials
            .iter_mut()
            .find(|d| d.hub == decision.hub && d.policy_digest == decision.digest)
        {
            Some(denial) => denial.pairs += 1,
            None => denials.push(DenialFields {
                hub: decision.hub.clone(),
                policy_digest: decision.digest.clone(),
                pairs: 1,
                reason: reason.clone(),
            }),
        }
    }
    (!denials.is_empty()).then_some(AuditEvent::ComplianceDenied {
        order_id: order,
        side,
        denials,
    })
}

/// What the database keeps of an order's state after a command.
fn update_of(state: &crate::market::OrderState) -> OrderUpdate {
    OrderUpdate {
        remaining: state.remaining as i32,
        status: state.status,
        min_fill: state.min_fill as i32,
    }
}

fn unfilled_reason(time_in_force: TimeInForce) -> &'static str {
    match time_in_force {
        TimeInForce::Fok => "fill_or_kill",
        TimeInForce::Ioc => "immediate_or_cancel",
        _ => "minimum_fill_unreachable",
    }
}

fn hour_start(hour: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(hour * 3600, 0)
        .single()
        .expect("hours come from valid windows")
}

/// The row of a bid as the engine left it.
fn bid_row(
    request: &BidRequest,
    outcome: &BidOutcome,
    reasons: &[suanli_sdk::Reason],
    now: DateTime<Utc>,
) -> BidRow {
    let spec = &request.spec;
    BidRow {
        id: spec.id,
        seq: outcome.state.seq as i64,
        buyer_id: spec.buyer,

        skus: request.sku_codes.clone(),
        quantity: spec.quantity as i32,
        window_start: request.window.start,
        window_end: request.window.end,
        limit_price: spec.limit_price,
        hubs: request.hub_codes.clone(),
        requested_hubs: request.requested_hubs.clone(),
        data_origin: request.data_origin.clone(),
        max_latency_ms: request.max_latency_ms.map(|ms| ms as i32),
        min_green_share: i16::from(spec.min_green_share),
        data_class: spec.data_class.into(),
        time_in_force: spec.time_in_force.into(),
        expires_at: request.expires_at,
        min_fill: outcome.state.min_fill as i32,
        unit_hold: spec.unit_hold,
        status: outcome.state.status.into(),
        remaining: outcome.state.remaining as i32,
        idempotency_key: request.idempotency_key.clone(),
        request_hash: request.request_hash.clone(),
        created_at: now,
        updated_at: now,
        reasons: serde_json::to_value(reasons).unwrap_or_else(|_| serde_json::json!([])),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_retry_matches_the_stored_hash_normalised_or_as_written_and_nothing_else() {
        let id = Uuid::from_u128(7);
        let original = |result: Result<Placed<()>, ApiError>| matches!(result, Ok(Placed::Existing(found)) if found == id);
        // Stored since prices are normalised, retried with either spelling.
        assert!(original(replay(id, "n", "n", None)));
        assert!(original(replay(id, "n", "n", Some("w"))));
        // Stored before: the hash of the price as written.
        assert!(original(replay(id, "w", "n", Some("w"))));
        // A different order under the same key.
        let conflict = replay::<()>(id, "other", "n", Some("w"));
        assert!(matches!(conflict, Err(error) if error.code == "idempotency_conflict"));
    }
}
