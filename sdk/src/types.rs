//! Request and response bodies of the REST API, exactly as API.md names them.
//!
//! Money and prices are [`Decimal`]s that travel as JSON strings; a JSON number where a decimal
//! is expected does not deserialize. Ids are UUIDs; times are RFC 3339 UTC.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

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
    #[serde(default, with = "rust_decimal::serde::str_option", skip_serializing_if = "Option::is_none")]
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

impl ParticipantKind {
    /// The snake_case name used on the wire, in tokens and in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            ParticipantKind::Provider => "provider",
            ParticipantKind::Buyer => "buyer",
            ParticipantKind::HubOperator => "hub_operator",
            ParticipantKind::Regulator => "regulator",
            ParticipantKind::Admin => "admin",
        }
    }

    /// Parses the snake_case name; `None` for anything else.
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "provider" => ParticipantKind::Provider,
            "buyer" => ParticipantKind::Buyer,
            "hub_operator" => ParticipantKind::HubOperator,
            "regulator" => ParticipantKind::Regulator,
            "admin" => ParticipantKind::Admin,
            _ => return None,
        })
    }
}

/// What kind of organisation a provider is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ProviderType {
    TelecomOperator,
    ComputeProvider,
    CloudVendor,
}

impl ProviderType {
    /// The snake_case name used on the wire and in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderType::TelecomOperator => "telecom_operator",
            ProviderType::ComputeProvider => "compute_provider",
            ProviderType::CloudVendor => "cloud_vendor",
        }
    }

    /// Parses the snake_case name; `None` for anything else.
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "telecom_operator" => ProviderType::TelecomOperator,
            "compute_provider" => ProviderType::ComputeProvider,
            "cloud_vendor" => ProviderType::CloudVendor,
            _ => return None,
        })
    }
}

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
    #[serde(with = "rust_decimal::serde::str")]
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
}

/// Answer of `/healthz` and `/readyz`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Health {
    pub status: String,
}
