//! Request and response bodies of the REST API, exactly as API.md names them.
//!
//! Money and prices are [`Decimal`]s that travel as JSON strings; a JSON number where a decimal
//! is expected does not deserialize. Ids are UUIDs; times are RFC 3339 UTC.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// `as_str`, `parse` and `ALL` for an enum that travels as a name, from one table of its names.
/// The names are those serde uses on the wire (a test checks that they agree) and those the
/// database stores.
macro_rules! wire_names {
    ($enum:ident { $($variant:ident => $name:literal),+ $(,)? }) => {
        impl $enum {
            /// Every value, in declaration order.
            pub const ALL: &'static [$enum] = &[$($enum::$variant),+];

            /// The name used on the wire and in the database.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($enum::$variant => $name),+
                }
            }

            /// Parses the name; `None` for anything else.
            pub fn parse(name: &str) -> Option<Self> {
                match name {
                    $($name => Some($enum::$variant),)+
                    _ => None,
                }
            }
        }
    };
}

/// The error body of every non-2xx answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    /// Stable snake_case code, e.g. `invalid_body`, `insufficient_funds`.
    pub code: String,
    /// A sentence for people; may change between versions.
    pub message: String,
}

/// One page of a paged list; pass `next_cursor` back as `?cursor=` for the next page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Reference data

/// Whether a hub is in the east (near demand) or the west (cheap, renewable capacity).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    East,
    West,
}

/// A national computing hub with its clusters and the figures policies price by.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Hub {
    pub code: String,
    pub name: String,
    /// The hub's name in Chinese (`京津冀`, …) where the reference data has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name_zh: Option<String>,
    pub tier: Tier,
    /// The data-residency region the hub belongs to (`north`, `east`, `south`, `west`).
    pub region: String,
    /// Share of renewable power, whole percent 0–100.
    pub renewable_share: u8,
    pub carbon_g_per_kwh: u32,
    /// Power usage effectiveness, a decimal string such as `"1.25"`.
    #[serde(with = "rust_decimal::serde::str")]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub pue: Decimal,
    pub clusters: Vec<Cluster>,
}

/// A data-centre cluster inside a hub.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Cluster {
    pub code: String,
    pub name: String,
}

/// Round-trip latency between hubs in milliseconds: `ms[from][to]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Latency {
    pub ms: BTreeMap<String, BTreeMap<String, u32>>,
}

/// The three classes of compute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ComputeClass {
    General,
    Intelligent,
    Supercomputing,
}

/// A tradable unit of compute.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Sku {
    pub code: String,
    pub class: ComputeClass,
    /// What one unit-hour is: `vCPU-hour`, `card-hour` or `node-hour`.
    pub unit: String,
    /// Dense FP16 TFLOPS per unit, so buyers can compare accelerators; absent for CPUs.
    #[serde(
        default,
        with = "rust_decimal::serde::str_option",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub perf_fp16_tflops: Option<Decimal>,
    pub name: String,
}

// ---------------------------------------------------------------------------------------------
// Auth and participants

/// Exchanges an API key for a bearer token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    pub api_key: String,
}

/// A bearer token and how long it lives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenResponse {
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the token expires.
    pub expires_in: u64,
}

/// The kinds of participant, which are also the roles tokens carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ParticipantKind {
    Provider,
    Buyer,
    HubOperator,
    Regulator,
    Admin,
}

wire_names!(ParticipantKind {
    Provider => "provider",
    Buyer => "buyer",
    HubOperator => "hub_operator",
    Regulator => "regulator",
    Admin => "admin",
});

/// What kind of organisation a provider is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ProviderType {
    TelecomOperator,
    ComputeProvider,
    CloudVendor,
}

wire_names!(ProviderType {
    TelecomOperator => "telecom_operator",
    ComputeProvider => "compute_provider",
    CloudVendor => "cloud_vendor",
});

/// Creates a participant (admins only). Providers need `provider_type`; hub operators need `hub`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewParticipant {
    pub name: String,
    pub kind: ParticipantKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_type: Option<ProviderType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hub: Option<String>,
}

/// A participant as others may see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Participant {
    pub id: Uuid,
    pub name: String,
    pub kind: ParticipantKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_type: Option<ProviderType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hub: Option<String>,
    pub created_at: DateTime<Utc>,
    /// Suspended by an admin: its tokens and API key are refused until it is reinstated.
    #[serde(default)]
    pub suspended: bool,
}

/// Why an admin suspends a participant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Suspension {
    pub reason: String,
}

/// A freshly created participant with its API key, which is shown this once and never again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreatedParticipant {
    #[serde(flatten)]
    pub participant: Participant,
    pub api_key: String,
}

// ---------------------------------------------------------------------------------------------
// Money

/// Credits a buyer's available balance: the stand-in for a bank transfer in (admins only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewDeposit {
    /// CNY, > 0, at most 2 fractional digits.
    #[serde(with = "crate::decimal::plain")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "10000.00"))]
    pub amount: Decimal,
    /// The bank transfer's reference, kept for reconciliation.
    pub reference: String,
    /// Reusing a key returns the original deposit; reusing it with another body is a 409.
    pub idempotency_key: String,
}

/// A recorded deposit and the ledger transaction that credited it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Deposit {
    pub id: Uuid,
    pub participant_id: Uuid,
    #[serde(with = "rust_decimal::serde::str")]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub amount: Decimal,
    pub currency: String,
    pub reference: String,
    pub idempotency_key: String,
    /// The balanced ledger transaction that moved the money.
    pub transaction_id: Uuid,
    pub created_at: DateTime<Utc>,
}

/// A participant's money: what it can spend and what open bids hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Account {
    #[serde(with = "rust_decimal::serde::str")]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub available: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub held: Decimal,
    /// Always `CNY`.
    pub currency: String,
}

/// A request to pay money out of the exchange (buyers, providers, hub operators).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewWithdrawal {
    /// CNY, more than zero, at most 2 fractional digits.
    #[serde(with = "crate::decimal::plain")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "500.00"))]
    pub amount: Decimal,
    /// Where the money goes (a bank account), 1–200 characters.
    pub destination: String,
    pub idempotency_key: String,
}

/// Where a withdrawal stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum WithdrawalStatus {
    /// Requested: the money left `available` and waits for the bank transfer.
    Pending,
    /// Paid out: the money has left the exchange.
    Paid,
    /// Refused: the money is back in `available`.
    Rejected,
}

wire_names!(WithdrawalStatus {
    Pending => "pending",
    Paid => "paid",
    Rejected => "rejected",
});

/// A withdrawal as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Withdrawal {
    pub id: Uuid,
    pub participant_id: Uuid,
    #[serde(with = "rust_decimal::serde::str")]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub amount: Decimal,
    pub currency: String,
    pub destination: String,
    pub status: WithdrawalStatus,
    pub idempotency_key: String,
    /// The bank's reference of the transfer, once paid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bank_reference: Option<String>,
    /// Why it was rejected, once rejected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub created_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_at: Option<DateTime<Utc>>,
}

/// Marks a withdrawal paid (admin).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct WithdrawalPaid {
    /// 1–200 characters.
    pub bank_reference: String,
}

/// Rejects a withdrawal (admin).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct WithdrawalRejected {
    /// 1–500 characters.
    pub reason: String,
}

/// One line of a statement: a ledger entry on one of the caller's accounts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StatementEntry {
    pub at: DateTime<Utc>,
    /// `deposit`, `hold`, `release`, `fill`, `settlement`, `fee`, `levy`, `withdrawal`,
    /// `withdrawal_returned`.
    pub kind: String,
    /// What the movement belongs to: a bid, contract or withdrawal id, or a deposit's reference.
    pub reference: String,
    /// Signed CNY: positive into the account.
    #[serde(with = "rust_decimal::serde::str")]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub amount: Decimal,
    /// The account's balance after this entry.
    #[serde(with = "rust_decimal::serde::str")]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub balance_after: Decimal,
    /// `available` or `held`.
    pub account: String,
}

// ---------------------------------------------------------------------------------------------
// Audit

/// One entry of the hash-chained audit log. See [`crate::audit`] for how `hash` is computed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditEntry {
    /// Gapless, starting at 1.
    pub seq: i64,
    /// RFC 3339 UTC with microseconds, exactly as hashed.
    pub at: String,
    /// The participant id that caused the change, or `system`.
    pub actor: String,
    /// What happened, e.g. `participant_created`, `deposit`.
    pub kind: String,
    pub payload: serde_json::Value,
    /// The hashed text: `{"actor","at","kind","payload","seq"}` with sorted keys, no whitespace.
    pub canonical: String,
    /// Lowercase hex SHA-256 of the previous entry (64 zeros for the first).
    pub prev_hash: String,
    /// Lowercase hex `sha256(prev_hash_bytes || canonical_bytes)`.
    pub hash: String,
}

/// One page of the audit log; pass `next_after_seq` back as `?after_seq=`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditPage {
    pub items: Vec<AuditEntry>,
    pub next_after_seq: Option<i64>,
}

/// The result of checking the whole chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditVerification {
    pub ok: bool,
    /// How many entries were checked.
    pub entries: u64,
    /// The hash of the last entry (64 zeros for an empty log).
    pub head_hash: String,
    /// The first entry whose link, canonical text or hash does not hold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_bad_seq: Option<i64>,
    /// The server's check of the ledger and book invariants (absent in a client's own check of
    /// the chain). `ok` is false if any of them fails.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub invariants: Vec<InvariantCheck>,
}

/// Answer of `/healthz` and `/readyz`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Health {
    pub status: String,
}

/// Answer of `/readyz`: the database is reachable, and whether this node applies orders.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Readiness {
    /// `ready`.
    pub status: String,
    /// `ok`.
    pub database: String,
    /// `leader` (this node applies orders and settlements) or `follower` (another node does).
    pub writer: String,
    /// This node's name.
    pub node: String,
    /// Where the leader listens (its advertised URL), when one holds the matching lease.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader: Option<String>,
    /// With a read replica configured: `fresh` (it serves the replica-tolerant reads) or
    /// `lagging` (they go to the primary).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replica: Option<String>,
    /// How far behind the primary the replica was at its last check, milliseconds (an upper
    /// bound: the age of the last lease renewal it replayed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replica_lag_ms: Option<i64>,
}

// ---------------------------------------------------------------------------------------------
// Orders

/// A delivery window: whole UTC hours `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Window {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

/// The life of an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    Open,
    PartiallyFilled,
    Filled,
    Cancelled,
    Expired,
}

wire_names!(OrderStatus {
    Open => "open",
    PartiallyFilled => "partially_filled",
    Filled => "filled",
    Cancelled => "cancelled",
    Expired => "expired",
});

impl OrderStatus {
    /// Whether the order still rests in the book.
    pub fn is_resting(self) -> bool {
        matches!(self, OrderStatus::Open | OrderStatus::PartiallyFilled)
    }
}

/// How long a bid may rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum TimeInForce {
    /// Good till cancelled (or until its window starts).
    #[default]
    #[serde(rename = "GTC")]
    Gtc,
    /// Immediate or cancel: fill what it can now, cancel the rest.
    #[serde(rename = "IOC")]
    Ioc,
    /// Fill or kill: fill completely now or not at all.
    #[serde(rename = "FOK")]
    Fok,
    /// Good till date: rests until `expires_at`.
    #[serde(rename = "GTD")]
    Gtd,
}

wire_names!(TimeInForce {
    Gtc => "GTC",
    Ioc => "IOC",
    Fok => "FOK",
    Gtd => "GTD",
});

/// How sensitive the data behind a bid is; residency policies decide where each may go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum DataClass {
    #[default]
    General,
    Important,
    Core,
}

wire_names!(DataClass {
    General => "general",
    Important => "important",
    Core => "core",
});

/// Which side of a match rested first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Bid,
    Offer,
}

wire_names!(Side {
    Bid => "bid",
    Offer => "offer",
});

/// Lists capacity (providers).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewOffer {
    pub cluster: String,
    pub sku: String,
    /// Units available in every hour of the window, 1–1,000,000.
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 1_000_000))]
    pub quantity: u32,
    pub window: Window,
    /// The provider's floor, CNY per unit-hour, at most 6 fractional digits.
    #[serde(with = "crate::decimal::plain")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "12.500000"))]
    pub ask_price: Decimal,
    /// Share of renewable power behind this capacity, whole percent 0–100.
    pub green_share: u8,
    /// Free-form facts about the capacity (interconnect, region tags…), a JSON object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributes: Option<serde_json::Map<String, serde_json::Value>>,
    pub idempotency_key: String,
}

/// An offer as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Offer {
    pub id: Uuid,
    pub provider_id: Uuid,
    pub cluster: String,
    pub hub: String,
    pub sku: String,
    pub quantity: u32,
    pub window: Window,
    #[serde(with = "rust_decimal::serde::str")]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub ask_price: Decimal,
    pub green_share: u8,
    pub attributes: serde_json::Map<String, serde_json::Value>,
    pub status: OrderStatus,
    /// Units still free in every hour of the window.
    pub remaining: u32,
    pub idempotency_key: String,
    pub created_at: DateTime<Utc>,
}

/// The answer to placing an offer: the offer and the contracts it produced at once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PlacedOffer {
    pub offer: Offer,
    pub contracts: Vec<Contract>,
}

/// Bids for capacity (buyers).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewBid {
    /// Acceptable SKUs, one or more.
    pub skus: Vec<String>,
    /// Units wanted in every hour of the window, 1–1,000,000.
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 1_000_000))]
    pub quantity: u32,
    pub window: Window,
    /// The most the buyer pays, CNY per unit-hour, at most 6 fractional digits.
    #[serde(with = "crate::decimal::plain")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "15.000000"))]
    pub limit_price: Decimal,
    /// Hubs where the work may run; absent means any (subject to `max_latency_ms`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hubs: Option<Vec<String>>,
    /// The hub the data comes from; its compliance policy must let the data leave.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_origin: Option<String>,
    /// Only hubs within this round-trip latency of `data_origin`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_latency_ms: Option<u32>,
    /// Whole percent 0–100 (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_green_share: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_class: Option<DataClass>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_in_force: Option<TimeInForce>,
    /// Required for GTD, refused otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    /// Fewest units worth filling at once (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_fill: Option<u32>,
    pub idempotency_key: String,
}

/// A bid as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Bid {
    pub id: Uuid,
    pub buyer_id: Uuid,
    pub skus: Vec<String>,
    pub quantity: u32,
    pub window: Window,
    #[serde(with = "rust_decimal::serde::str")]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub limit_price: Decimal,
    /// The hubs the bid may run in, after applying `max_latency_ms`.
    pub hubs: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_origin: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_latency_ms: Option<u32>,
    pub min_green_share: u8,
    pub data_class: DataClass,
    pub time_in_force: TimeInForce,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    pub min_fill: u32,
    pub status: OrderStatus,
    /// Units not yet filled (zero once filled, cancelled or expired).
    pub remaining: u32,
    /// Money still held for the remaining units, CNY.
    #[serde(with = "rust_decimal::serde::str")]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub held: Decimal,
    pub idempotency_key: String,
    pub created_at: DateTime<Utc>,
    /// Why units stayed unfilled when the bid was matched (absent once it is filled).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<Reason>,
}

/// The answer to placing a bid: the bid and the contracts it produced at once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PlacedBid {
    pub bid: Bid,
    pub contracts: Vec<Contract>,
    /// Why units stayed unfilled (the same as `bid.reasons`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<Reason>,
}

/// Why some of a bid's units did not trade: a code (`no_offer_in_window`, `price_above_limit`,
/// `latency_exceeded`, `green_share_below`, `compliance_denied`, `pricing_rejected`,
/// `capacity_sold_out`, `policy_fault`, `fok_not_filled`, `min_fill_not_reached`,
/// `window_started`, `candidates_exhausted`, `insufficient_funds`), a message for people (for
/// `compliance_denied`, the policy's own reason) and the hub it concerns, if one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Reason {
    pub code: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hub: Option<String>,
}

/// One fill a quote foresees.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QuoteFill {
    pub hub: String,
    pub cluster: String,
    pub sku: String,
    pub units: u32,
    #[serde(with = "rust_decimal::serde::str")]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub unit_price: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub notional: Decimal,
}

/// What a bid would get against the current book, with nothing written or held.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Quote {
    pub fills: Vec<QuoteFill>,
    pub unfilled_units: u32,
    #[serde(with = "rust_decimal::serde::str")]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub total_notional: Decimal,
    /// What placing the bid would hold from `available` at once: `limit_price × hours`, rounded
    /// up to the fen, times `quantity` (rounded per unit, so that every fill's share covers its
    /// notional; the part fills do not use comes back as they happen).
    #[serde(with = "rust_decimal::serde::str")]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub hold: Decimal,
    pub reasons: Vec<Reason>,
}

/// Whether a contract still awaits delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ContractStatus {
    Active,
    Settled,
}

wire_names!(ContractStatus {
    Active => "active",
    Settled => "settled",
});

/// What one fill created: `units` of `sku` for every hour of `window`, at `unit_price`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Contract {
    pub id: Uuid,
    pub bid_id: Uuid,
    pub offer_id: Uuid,
    pub buyer_id: Uuid,
    pub provider_id: Uuid,
    pub hub: String,
    pub cluster: String,
    pub sku: String,
    pub units: u32,
    pub window: Window,
    pub hours: u32,
    #[serde(with = "rust_decimal::serde::str")]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub unit_price: Decimal,
    /// `unit_price × units × hours`, rounded half-even to the fen.
    #[serde(with = "rust_decimal::serde::str")]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub notional: Decimal,
    /// The hub's levy from the pricing decision, basis points of the charge.
    pub levy_bps: u32,
    /// Which side rested first.
    pub maker: Side,
    pub status: ContractStatus,
    /// The policy decisions that produced the contract (empty under the built-in rules).
    pub decisions: Vec<serde_json::Value>,
    pub created_at: DateTime<Utc>,
}

/// One price level of the public book.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BookLevel {
    #[serde(with = "rust_decimal::serde::str")]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub price: Decimal,
    /// Units resting at this price.
    pub units: u64,
    pub orders: u64,
    /// The hubs of the orders at this price (offers: where the capacity is; bids: where the
    /// work may run).
    #[serde(default)]
    pub hubs: Vec<String>,
    /// The lowest and highest green share at this price, percent (offers: what they offer;
    /// bids: the minimum they ask for).
    #[serde(default)]
    pub green_share_min: u8,
    #[serde(default)]
    pub green_share_max: u8,
    /// The earliest start and latest end of the orders' windows at this price.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<Window>,
}

/// Resting offers (asks, lowest first) and bids (highest first), aggregated by price.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MarketBook {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sku: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hub: Option<String>,
    pub offers: Vec<BookLevel>,
    pub bids: Vec<BookLevel>,
}

/// How long one candle lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum CandleInterval {
    /// One UTC hour.
    #[default]
    #[serde(rename = "1h")]
    Hour,
    /// One UTC day.
    #[serde(rename = "1d")]
    Day,
}

wire_names!(CandleInterval {
    Hour => "1h",
    Day => "1d",
});

impl CandleInterval {
    /// Its length in seconds.
    pub fn seconds(self) -> i64 {
        match self {
            CandleInterval::Hour => 3_600,
            CandleInterval::Day => 86_400,
        }
    }
}

/// `event: trade` of `GET /v1/market/stream`: a contract as the public sees it (no participant).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MarketTrade {
    pub contract_id: Uuid,
    pub hub: String,
    pub cluster: String,
    pub sku: String,
    pub units: u32,
    pub hours: u32,
    pub window: Window,
    #[serde(with = "rust_decimal::serde::str")]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub unit_price: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub notional: Decimal,
    /// Which side rested first.
    pub maker: Side,
    pub created_at: DateTime<Utc>,
}

/// `event: book` of `GET /v1/market/stream`: one price level of one SKU after a change, as
/// `GET /v1/market/book?sku=` aggregates it over all hubs. `units` 0: the level is gone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BookChange {
    /// `offer` (an ask level) or `bid`.
    pub side: Side,
    pub sku: String,
    #[serde(with = "rust_decimal::serde::str")]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub price: Decimal,
    /// Units resting at this price now.
    pub units: u64,
    /// Orders resting at this price now.
    pub orders: u64,
}

/// What one market stream event says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MarketUpdate {
    Trade(MarketTrade),
    Book(BookChange),
}

/// One event of `GET /v1/market/stream`; `id` resumes the stream after it (`Last-Event-ID`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarketEvent {
    pub id: i64,
    pub update: MarketUpdate,
}

/// The contracts of one SKU (in one hub, or all) made in one interval: prices per unit-hour.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Candle {
    /// The interval's first instant (UTC).
    pub start: DateTime<Utc>,
    /// The unit price of the interval's first contract.
    #[serde(with = "rust_decimal::serde::str")]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub open: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub high: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub low: Decimal,
    /// The unit price of the interval's last contract.
    #[serde(with = "rust_decimal::serde::str")]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub close: Decimal,
    /// The unit-hour-weighted average unit price, rounded half-even to 6 decimals.
    #[serde(with = "rust_decimal::serde::str")]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub vwap: Decimal,
    pub unit_hours: u64,
    /// Σ notional, CNY.
    #[serde(with = "rust_decimal::serde::str")]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub notional: Decimal,
    pub contracts: u64,
}

/// The unit-hour-weighted average unit price of one market over the last 24 hours and 7 days
/// (`null` when nothing traded).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IndexRow {
    /// The hub, or absent for the national index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hub: Option<String>,
    #[serde(with = "rust_decimal::serde::str_option", default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub last_24h: Option<Decimal>,
    pub unit_hours_24h: u64,
    #[serde(with = "rust_decimal::serde::str_option", default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub last_7d: Option<Decimal>,
    pub unit_hours_7d: u64,
}

/// A SKU's price index: nationally and per hub.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MarketIndex {
    pub sku: String,
    /// The index covers trades up to this instant (the last 24 h and 7 d before it, by whole
    /// UTC hours: the current hour counts).
    pub as_of: DateTime<Utc>,
    pub national: IndexRow,
    /// Hubs that traded the SKU in the last 7 days.
    pub hubs: Vec<IndexRow>,
}

/// A recent contract as the public sees it: every field of [`Contract`] but the participant ids
/// (`buyer_id`, `provider_id`) and the policy decisions (whose inputs name the participants).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Trade {
    pub id: Uuid,
    pub bid_id: Uuid,
    pub offer_id: Uuid,
    pub hub: String,
    pub cluster: String,
    pub sku: String,
    pub units: u32,
    pub window: Window,
    pub hours: u32,
    #[serde(with = "rust_decimal::serde::str")]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub unit_price: Decimal,
    /// `unit_price × units × hours`, rounded half-even to the fen.
    #[serde(with = "rust_decimal::serde::str")]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub notional: Decimal,
    /// The hub's levy from the pricing decision, basis points of the charge.
    pub levy_bps: u32,
    /// Which side rested first.
    pub maker: Side,
    pub status: ContractStatus,
    pub created_at: DateTime<Utc>,
}

// ---------------------------------------------------------------------------------------------
// Settlement and the regulator's view

/// The provider's report of what it delivered, which settles the contract.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewDelivery {
    /// Unit-hours delivered, at most `units × hours` of the contract.
    pub delivered_unit_hours: u64,
    pub idempotency_key: String,
}

/// How a contract was paid out. `charged = provider_paid + exchange_fee + hub_levy` and
/// `charged + refunded = notional`, to the fen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Settlement {
    pub contract_id: Uuid,
    pub delivered_unit_hours: u64,
    /// What the buyer pays: the notional pro rata to delivery, rounded half-even to the fen.
    #[serde(with = "rust_decimal::serde::str")]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub charged: Decimal,
    /// The undelivered part, back to the buyer.
    #[serde(with = "rust_decimal::serde::str")]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub refunded: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub provider_paid: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub exchange_fee: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub hub_levy: Decimal,
    pub exchange_fee_bps: u32,
    pub idempotency_key: String,
    pub settled_at: DateTime<Utc>,
}

/// A contract with its settlement, if it has one (the regulator's listing and export).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditedContract {
    #[serde(flatten)]
    pub contract: Contract,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_origin: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settlement: Option<Settlement>,
}

/// Volume and value of contracts in one group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StatsRow {
    /// The hub, SKU or class code; for flows `origin→hub`.
    pub key: String,
    pub contracts: u64,
    /// Contracted unit-hours.
    pub unit_hours: u64,
    /// Contracted value (notional), CNY.
    #[serde(with = "rust_decimal::serde::str")]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub value: Decimal,
    /// Of these, the contracts settled so far.
    #[serde(default)]
    pub settled_contracts: u64,
    /// Unit-hours delivered, as settled.
    #[serde(default)]
    pub delivered_unit_hours: u64,
    /// Charged value: what the settled contracts charged their buyers for what was delivered,
    /// CNY (unsettled contracts count zero here).
    #[serde(with = "rust_decimal::serde::str", default)]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub charged: Decimal,
}

/// What regulators watch, computed from the contract and settlement records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Stats {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<DateTime<Utc>>,
    pub by_hub: Vec<StatsRow>,
    pub by_sku: Vec<StatsRow>,
    pub by_class: Vec<StatsRow>,
    /// Contracts whose data comes from an eastern hub and whose compute runs in a western one.
    pub east_to_west: Vec<StatsRow>,
    /// Unit-hours delivered (settled contracts).
    pub delivered_unit_hours: u64,
    /// Share of delivered unit-hours backed by renewable power (weighted by each offer's green
    /// share), percent with 2 decimals.
    #[serde(with = "rust_decimal::serde::str")]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub green_share_of_delivered: Decimal,
}

/// One invariant of the ledger and the book, checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InvariantCheck {
    pub name: String,
    pub ok: bool,
    /// For a broken invariant: what breaks it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Hub policies

/// A stored policy version of a hub.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PolicySummary {
    /// SHA-256 of the component, lowercase hex: its content address.
    pub digest: String,
    /// `pricing` or `compliance`.
    pub kind: String,
    pub hub: String,
    /// `stored` or `active`.
    pub status: String,
    pub size_bytes: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uploaded_at: Option<DateTime<Utc>>,
}

/// A dry run: evaluate a stored policy on an offer and a bid without activating it. The orders
/// are checked as if placed (each needs its `idempotency_key`, which is not stored); nothing is
/// written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct DryRunRequest {
    pub offer: NewOffer,
    pub bid: NewBid,
    /// Which side rested first (default: the offer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maker: Option<Side>,
}

/// What a policy decided, or why it could not.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PolicyDecision {
    pub policy_digest: String,
    pub kind: String,
    /// The policy's answer (`{"decision":"quote","unit_price",…}`, `allow`, `deny`, `reject`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<serde_json::Value>,
    /// When the evaluation failed: its class (`out_of_fuel`, `deadline`, `memory`, `trap`…).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault: Option<String>,
    pub fuel_used: u64,
    /// The canonical input the policy saw.
    pub input: serde_json::Value,
}

/// One policy evaluation taken for a hub while matching (the hub operator's view).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HubDecision {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub hub: String,
    /// `pricing` or `compliance`.
    pub kind: String,
    pub policy_digest: String,
    /// `allowed`, `denied`, `quoted`, `rejected` or `fault`.
    pub outcome: String,
    pub bid_id: Uuid,
    pub offer_id: Uuid,
    /// The canonical input the policy saw.
    pub input: serde_json::Value,
    /// The policy's output (or the fault), canonical JSON.
    pub output: serde_json::Value,
    pub fuel_used: u64,
}

/// A policy fault in a hub: a policy that trapped, ran out of fuel or time, or answered wrongly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HubFault {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub hub: String,
    pub kind: String,
    pub policy_digest: String,
    /// `out_of_fuel`, `deadline`, `memory`, `trap`, `policy_unavailable`, `hub_budget_exhausted`,
    /// `batch_mismatch`…
    pub class: String,
    pub message: String,
    /// The canonical input, when there was one; for a fault of a batch call as a whole (one call
    /// for many pairs), the array of every input of the call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<serde_json::Value>,
}

/// One recorded decision of a contract, re-executed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReplayedDecision {
    pub policy_digest: String,
    pub kind: String,
    pub matches: bool,
    /// The output recorded when the contract was made (canonical JSON).
    pub recorded: String,
    /// The output of re-executing the stored module on the stored input.
    pub replayed: String,
}

/// The replay of every decision behind a contract.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReplayReport {
    pub decisions: Vec<ReplayedDecision>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each name table says what serde says, both ways.
    fn agrees<T>(all: &[T], name: fn(T) -> &'static str, parse: fn(&str) -> Option<T>)
    where
        T: Copy + PartialEq + std::fmt::Debug + Serialize + serde::de::DeserializeOwned,
    {
        for &value in all {
            let json = serde_json::to_value(value).unwrap();
            assert_eq!(json, serde_json::Value::from(name(value)), "{value:?}");
            assert_eq!(serde_json::from_value::<T>(json).unwrap(), value);
            assert_eq!(parse(name(value)), Some(value));
        }
        assert_eq!(parse("no such name"), None);
    }

    #[test]
    fn every_wire_name_is_the_one_serde_uses() {
        agrees(
            ParticipantKind::ALL,
            ParticipantKind::as_str,
            ParticipantKind::parse,
        );
        agrees(ProviderType::ALL, ProviderType::as_str, ProviderType::parse);
        agrees(
            WithdrawalStatus::ALL,
            WithdrawalStatus::as_str,
            WithdrawalStatus::parse,
        );
        agrees(OrderStatus::ALL, OrderStatus::as_str, OrderStatus::parse);
        agrees(TimeInForce::ALL, TimeInForce::as_str, TimeInForce::parse);
        agrees(DataClass::ALL, DataClass::as_str, DataClass::parse);
        agrees(Side::ALL, Side::as_str, Side::parse);
        agrees(
            ContractStatus::ALL,
            ContractStatus::as_str,
            ContractStatus::parse,
        );
        agrees(
            CandleInterval::ALL,
            CandleInterval::as_str,
            CandleInterval::parse,
        );
    }
}

/// The key that signs checkpoints (`GET /v1/audit/checkpoint/key`, public).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CheckpointKey {
    /// The key's name in signatures (the checkpoint's origin).
    pub key_name: String,
    /// Base64 of the 32-byte Ed25519 public key.
    pub public_key: String,
    /// The C2SP note verifier key `<name>+<hex key hash>+<base64(0x01 ‖ key)>`: what to pin.
    pub verifier_key: String,
}

/// That the entry `leaf_index + 1` is in the tree of `tree_size` entries (RFC 6962 audit path).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InclusionProof {
    pub leaf_index: u64,
    pub tree_size: u64,
    /// The tree's root, lowercase hex.
    pub root_hash: String,
    /// Sibling hashes from the leaf up, lowercase hex.
    pub audit_path: Vec<String>,
}

/// That the tree of `second` entries extends the tree of `first` (RFC 6962 consistency proof).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConsistencyProof {
    pub first: u64,
    pub second: u64,
    /// The trees' roots, lowercase hex.
    pub first_root_hash: String,
    pub second_root_hash: String,
    /// Lowercase hex hashes.
    pub proof: Vec<String>,
}

/// One of a contract's audit entries with its inclusion proof.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProvenEntry {
    pub entry: AuditEntry,
    pub leaf_index: u64,
    /// Lowercase hex hashes, from the leaf up.
    pub audit_path: Vec<String>,
}

/// A contract's audit entries proven against the latest checkpoint (`GET /v1/contracts/{id}/proof`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ContractProof {
    pub contract_id: Uuid,
    /// The latest signed checkpoint (a C2SP signed note).
    pub checkpoint: String,
    pub tree_size: u64,
    /// The checkpoint's root, lowercase hex.
    pub root_hash: String,
    /// The contract's entries the checkpoint covers, each with its proof.
    pub entries: Vec<ProvenEntry>,
    /// The contract's entries newer than the checkpoint: proven once the next one is signed.
    pub pending: Vec<AuditEntry>,
}
