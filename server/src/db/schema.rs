// The diesel schema of `migrations/`. Kept in step with the SQL by hand (diesel_cli is not part
// of the build); the store tests exercise every table through it, so a drift fails them.

diesel::table! {
    hubs (code) {
        code -> Text,
        name -> Text,
        tier -> Text,
        region -> Text,
        renewable_share -> Int2,
        carbon_g_per_kwh -> Int4,
        pue -> Numeric,
        name_zh -> Nullable<Text>,
    }
}

diesel::table! {
    clusters (code) {
        code -> Text,
        name -> Text,
        hub -> Text,
    }
}

diesel::table! {
    hub_latency (from_hub, to_hub) {
        from_hub -> Text,
        to_hub -> Text,
        ms -> Int4,
    }
}

diesel::table! {
    skus (code) {
        code -> Text,
        name -> Text,
        class -> Text,
        unit -> Text,
        perf_fp16_tflops -> Nullable<Numeric>,
    }
}

diesel::table! {
    participants (id) {
        id -> Uuid,
        name -> Text,
        kind -> Text,
        provider_type -> Nullable<Text>,
        hub -> Nullable<Text>,
        api_key_id -> Text,
        api_key_hash -> Text,
        created_at -> Timestamptz,
        suspended_at -> Nullable<Timestamptz>,
        suspension_reason -> Nullable<Text>,
        key_epoch -> Int4,
        credentials_changed_at -> Timestamptz,
    }
}

diesel::table! {
    accounts (id) {
        id -> Uuid,
        kind -> Text,
        participant_id -> Nullable<Uuid>,
        hub -> Nullable<Text>,
        contract_id -> Nullable<Uuid>,
        balance -> Numeric,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    ledger_transactions (id) {
        id -> Uuid,
        kind -> Text,
        reference -> Text,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    ledger_entries (id) {
        id -> Int8,
        transaction_id -> Uuid,
        account_id -> Uuid,
        amount -> Numeric,
        created_at -> Timestamptz,
        balance_after -> Numeric,
    }
}

diesel::table! {
    deposits (id) {
        id -> Uuid,
        participant_id -> Uuid,
        amount -> Numeric,
        reference -> Text,
        idempotency_key -> Text,
        created_by -> Uuid,
        transaction_id -> Uuid,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    audit_log (seq) {
        seq -> Int8,
        at -> Timestamptz,
        actor -> Text,
        kind -> Text,
        payload -> Jsonb,
        canonical -> Text,
        prev_hash -> Text,
        hash -> Text,
    }
}

diesel::table! {
    audit_head (singleton) {
        singleton -> Bool,
        seq -> Int8,
        hash -> Text,
    }
}

diesel::table! {
    audit_tree_hashes (idx) {
        idx -> Int8,
        hash -> Bytea,
    }
}

diesel::table! {
    audit_tree (singleton) {
        singleton -> Bool,
        size -> Int8,
    }
}

diesel::table! {
    matching_lease (singleton) {
        singleton -> Bool,
        token -> Int8,
        holder -> Nullable<Uuid>,
        node -> Text,
        address -> Text,
        expires_at -> Timestamptz,
        renewed_at -> Timestamptz,
    }
}

diesel::table! {
    audit_checkpoints (tree_size) {
        tree_size -> Int8,
        root_hash -> Bytea,
        key_name -> Text,
        note -> Text,
        signed_at -> Timestamptz,
    }
}

diesel::table! {
    offers (id) {
        id -> Uuid,
        seq -> Int8,
        provider_id -> Uuid,
        cluster -> Text,
        hub -> Text,
        sku -> Text,
        quantity -> Int4,
        window_start -> Timestamptz,
        window_end -> Timestamptz,
        ask_price -> Numeric,
        green_share -> Int2,
        attributes -> Jsonb,
        status -> Text,
        remaining -> Int4,
        idempotency_key -> Text,
        request_hash -> Text,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    bids (id) {
        id -> Uuid,
        seq -> Int8,
        buyer_id -> Uuid,
        skus -> Array<Text>,
        quantity -> Int4,
        window_start -> Timestamptz,
        window_end -> Timestamptz,
        limit_price -> Numeric,
        hubs -> Array<Text>,
        requested_hubs -> Nullable<Array<Text>>,
        data_origin -> Nullable<Text>,
        max_latency_ms -> Nullable<Int4>,
        min_green_share -> Int2,
        data_class -> Text,
        time_in_force -> Text,
        expires_at -> Nullable<Timestamptz>,
        min_fill -> Int4,
        unit_hold -> Numeric,
        status -> Text,
        remaining -> Int4,
        idempotency_key -> Text,
        request_hash -> Text,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        reasons -> Jsonb,
    }
}

diesel::table! {
    contracts (id) {
        id -> Uuid,
        seq -> Int8,
        bid_id -> Uuid,
        offer_id -> Uuid,
        buyer_id -> Uuid,
        provider_id -> Uuid,
        hub -> Text,
        cluster -> Text,
        sku -> Text,
        data_origin -> Nullable<Text>,
        units -> Int4,
        window_start -> Timestamptz,
        window_end -> Timestamptz,
        hours -> Int4,
        unit_price -> Numeric,
        notional -> Numeric,
        levy_bps -> Int4,
        maker -> Text,
        status -> Text,
        decisions -> Jsonb,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    settlements (contract_id) {
        contract_id -> Uuid,
        delivered_unit_hours -> Int8,
        charged -> Numeric,
        refunded -> Numeric,
        provider_paid -> Numeric,
        exchange_fee -> Numeric,
        hub_levy -> Numeric,
        exchange_fee_bps -> Int4,
        idempotency_key -> Text,
        transaction_id -> Uuid,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    policy_modules (digest) {
        digest -> Text,
        bytes -> Bytea,
        size_bytes -> Int4,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    hub_policies (hub, kind, digest) {
        hub -> Text,
        kind -> Text,
        digest -> Text,
        uploaded_by -> Uuid,
        uploaded_at -> Timestamptz,
    }
}

diesel::table! {
    active_policies (hub, kind) {
        hub -> Text,
        kind -> Text,
        digest -> Text,
        activated_by -> Uuid,
        activated_at -> Timestamptz,
    }
}

diesel::table! {
    policy_faults (id) {
        id -> Int8,
        at -> Timestamptz,
        hub -> Text,
        kind -> Text,
        digest -> Text,
        class -> Text,
        message -> Text,
        input -> Text,
    }
}

diesel::table! {
    policy_decisions (id) {
        id -> Int8,
        at -> Timestamptz,
        hub -> Text,
        kind -> Text,
        digest -> Text,
        outcome -> Text,
        bid_id -> Uuid,
        offer_id -> Uuid,
        input -> Text,
        output -> Text,
        fuel_used -> Int8,
    }
}

diesel::table! {
    withdrawals (id) {
        id -> Uuid,
        seq -> Int8,
        participant_id -> Uuid,
        account_id -> Uuid,
        amount -> Numeric,
        destination -> Text,
        status -> Text,
        idempotency_key -> Text,
        request_hash -> Text,
        bank_reference -> Nullable<Text>,
        reason -> Nullable<Text>,
        decided_by -> Nullable<Uuid>,
        created_at -> Timestamptz,
        decided_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    market_candles (sku, hub, interval, start) {
        sku -> Text,
        hub -> Text,
        interval -> Text,
        start -> Timestamptz,
        open -> Numeric,
        high -> Numeric,
        low -> Numeric,
        close -> Numeric,
        price_unit_hours -> Numeric,
        unit_hours -> Int8,
        notional -> Numeric,
        contracts -> Int8,
    }
}

diesel::table! {
    book_levels (side, sku, price) {
        side -> Text,
        sku -> Text,
        price -> Numeric,
        units -> Int8,
        orders -> Int8,
    }
}

diesel::table! {
    market_events (id) {
        id -> Int8,
        kind -> Text,
        data -> Jsonb,
        created_at -> Timestamptz,
    }
}

diesel::joinable!(clusters -> hubs (hub));
// Not foreign keys since `..._ledger_references_per_statement`: a trigger checks each statement's
// entries name existing records (`diesel print-schema` would leave these two out).
diesel::joinable!(ledger_entries -> accounts (account_id));
diesel::joinable!(ledger_entries -> ledger_transactions (transaction_id));
diesel::joinable!(settlements -> contracts (contract_id));
diesel::joinable!(hub_policies -> policy_modules (digest));

diesel::allow_tables_to_appear_in_same_query!(
    audit_tree_hashes,
    audit_tree,
    matching_lease,
    audit_checkpoints,
    hubs,
    clusters,
    hub_latency,
    skus,
    participants,
    accounts,
    ledger_transactions,
    ledger_entries,
    deposits,
    audit_log,
    audit_head,
    offers,
    bids,
    contracts,
    settlements,
    policy_modules,
    hub_policies,
    active_policies,
    policy_faults,
    policy_decisions,
    withdrawals,
    market_candles,
    market_events,
    book_levels,
);
