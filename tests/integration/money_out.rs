//! Money out and statements: withdrawals from request to paid or rejected, to the fen, once per
//! key, visible to their owner and the admin only, and each participant's statement with its
//! running balance; the ledger's invariants hold with withdrawals in flight.

use rust_decimal::Decimal;
use suanli_sdk::{
    Client, NewDelivery, NewWithdrawal, ParticipantKind, WithdrawalPaid, WithdrawalRejected,
    WithdrawalStatus,
};
use suanli_tests::{TestExchange, new_bid, new_offer, window};

use crate::code_of;

const SKU: &str = "ai.metax-c500";

fn withdrawal(amount: &str, key: &str) -> NewWithdrawal {
    NewWithdrawal {
        amount: amount.parse().unwrap(),
        destination: "ICBC 6222 0000 1234".into(),
        idempotency_key: key.into(),
    }
}

fn d(text: &str) -> Decimal {
    text.parse().unwrap()
}

/// The regulator's verdict on chain and invariants, with the failing checks named.
async fn invariants_hold(regulator: &Client) {
    let verdict = regulator.audit_verify().await.unwrap();
    let broken: Vec<_> = verdict
        .invariants
        .iter()
        .filter(|check| !check.ok)
        .collect();
    assert!(verdict.ok && broken.is_empty(), "{broken:?}");
    assert!(
        verdict
            .invariants
            .iter()
            .any(|check| check.name == "pending_payouts_equal_pending_withdrawals")
    );
}

#[actix_web::test]
async fn a_provider_takes_its_earnings_out_once_and_the_admin_pays_it() {
    let exchange = TestExchange::start().await;
    let (_, provider) = exchange
        .participant(ParticipantKind::Provider, "Ningxia Cloud")
        .await;
    let (_, buyer) = exchange.funded_buyer("Model Lab", "1000").await;
    let (_, regulator) = exchange
        .participant(ParticipantKind::Regulator, "Regulator")
        .await;

    // Earn: 2 units × 3 hours × 10.5 = 63 CNY, settled in full (this hour's window).
    provider
        .place_offer(&new_offer("zhongwei", SKU, 2, window(0, 3), "10.5"))
        .await
        .unwrap();
    let placed = buyer
        .place_bid(&new_bid(SKU, 2, window(0, 3), "12"))
        .await
        .unwrap();
    let contract = &placed.contracts[0];
    let settlement = provider
        .report_delivery(
            contract.id,
            &NewDelivery {
                delivered_unit_hours: 6,
                idempotency_key: "delivery".into(),
            },
        )
        .await
        .unwrap();
    let earned = settlement.provider_paid;
    assert_eq!(provider.account().await.unwrap().available, earned);

    // Take 50.25 out: it leaves `available` at once, to the fen.
    let first = provider
        .withdraw(&withdrawal("50.25", "payout-1"))
        .await
        .unwrap();
    assert_eq!(
        (first.status, first.amount, first.currency.as_str()),
        (WithdrawalStatus::Pending, d("50.25"), "CNY")
    );
    let left = earned - d("50.25");
    assert_eq!(provider.account().await.unwrap().available, left);
    invariants_hold(&regulator).await;

    // The same request again is the same withdrawal; the same key for another amount is refused;
    // more than is available is refused. None of them moves money.
    let again = provider
        .withdraw(&withdrawal("50.25", "payout-1"))
        .await
        .unwrap();
    assert_eq!(again, first);
    assert_eq!(
        code_of(provider.withdraw(&withdrawal("50.26", "payout-1")).await),
        (409, "idempotency_conflict".into())
    );
    assert_eq!(
        code_of(provider.withdraw(&withdrawal("1000", "payout-2")).await),
        (422, "insufficient_funds".into())
    );
    assert_eq!(
        code_of(provider.withdraw(&withdrawal("0.001", "payout-3")).await),
        (400, "invalid_amount".into())
    );
    assert_eq!(provider.account().await.unwrap().available, left);

    // Only the admin decides; the buyer and the regulator may not, nor withdraw the regulator.
    let paid = WithdrawalPaid {
        bank_reference: "ICBC-TX-0001".into(),
    };
    assert_eq!(
        code_of(buyer.mark_withdrawal_paid(first.id, &paid).await),
        (403, "forbidden".into())
    );
    assert_eq!(
        code_of(regulator.withdraw(&withdrawal("1", "r")).await),
        (403, "forbidden".into())
    );
    let decided = exchange
        .admin
        .mark_withdrawal_paid(first.id, &paid)
        .await
        .unwrap();
    assert_eq!(decided.status, WithdrawalStatus::Paid);
    assert_eq!(decided.bank_reference.as_deref(), Some("ICBC-TX-0001"));
    assert!(decided.decided_at.is_some());
    // Repeating the decision is harmless; changing it is refused.
    assert_eq!(
        exchange
            .admin
            .mark_withdrawal_paid(first.id, &paid)
            .await
            .unwrap(),
        decided
    );
    assert_eq!(
        code_of(
            exchange
                .admin
                .reject_withdrawal(
                    first.id,
                    &WithdrawalRejected {
                        reason: "too late".into()
                    }
                )
                .await
        ),
        (409, "withdrawal_decided".into())
    );
    assert_eq!(provider.account().await.unwrap().available, left);
    invariants_hold(&regulator).await;
    assert_eq!(
        exchange.count("SELECT balance FROM accounts WHERE kind = 'payouts_pending'"),
        0
    );

    // The provider's statement: the settlement in, the withdrawal out, each with the balance
    // after it.
    let statement = provider.full_statement(None, None).await.unwrap();
    let lines: Vec<(&str, Decimal, Decimal)> = statement
        .iter()
        .map(|entry| (entry.kind.as_str(), entry.amount, entry.balance_after))
        .collect();
    // What was charged, the exchange's fee out of it (no levy: Ningxia has no pricing policy
    // here), then the withdrawal.
    let charged = settlement.charged;
    assert!(settlement.exchange_fee > Decimal::ZERO && settlement.hub_levy.is_zero());
    assert_eq!(
        lines,
        vec![
            ("settlement", charged, charged),
            ("fee", -settlement.exchange_fee, earned),
            ("withdrawal", d("-50.25"), left),
        ]
    );
    assert_eq!(statement[0].reference, contract.id.to_string());
    assert_eq!(statement[2].reference, first.id.to_string());
    assert!(statement.iter().all(|entry| entry.account == "available"));

    // The buyer's statement runs to its balances, on both accounts.
    let entries = buyer.full_statement(None, None).await.unwrap();
    let kinds: Vec<&str> = entries.iter().map(|entry| entry.kind.as_str()).collect();
    assert_eq!(kinds[0], "deposit");
    assert!(
        kinds.contains(&"hold") && kinds.contains(&"fill"),
        "{kinds:?}"
    );
    let last = |account: &str| {
        entries
            .iter()
            .rev()
            .find(|entry| entry.account == account)
            .map(|entry| entry.balance_after)
    };
    let account = buyer.account().await.unwrap();
    assert_eq!(last("available"), Some(account.available));
    assert_eq!(last("held").unwrap_or_default(), account.held);
    // Paged, and cut by time: nothing before the first entry, everything from it.
    let page = buyer.statement(None, None, None, 1).await.unwrap();
    assert_eq!(page.items.len(), 1);
    let rest = buyer
        .statement(None, None, page.next_cursor.as_deref(), 500)
        .await
        .unwrap();
    assert_eq!(rest.items.len(), entries.len() - 1);
    let before = entries[0].at;
    assert!(
        buyer
            .full_statement(None, Some(before))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        buyer
            .full_statement(Some(before), None)
            .await
            .unwrap()
            .len(),
        entries.len()
    );

    // Every step is in the audit log.
    let log = regulator.audit_log(0, 500).await.unwrap();
    let kinds: Vec<&str> = log.items.iter().map(|entry| entry.kind.as_str()).collect();
    assert!(
        kinds.contains(&"withdrawal_requested") && kinds.contains(&"withdrawal_paid"),
        "{kinds:?}"
    );
}

#[actix_web::test]
async fn a_rejected_withdrawal_comes_back_and_others_see_none_of_it() {
    let exchange = TestExchange::start().await;
    let (buyer, client) = exchange.funded_buyer("Model Lab", "1000").await;
    let (_, other) = exchange.funded_buyer("Other Lab", "10").await;
    let (_, regulator) = exchange
        .participant(ParticipantKind::Regulator, "Regulator")
        .await;
    let (_, operator) = exchange
        .participant(ParticipantKind::HubOperator, "Ningxia hub")
        .await;

    let pending = client.withdraw(&withdrawal("100.10", "w-1")).await.unwrap();
    assert_eq!(client.account().await.unwrap().available, d("899.9"));
    // A bid cannot spend what a withdrawal set aside.
    let mut greedy = new_bid(SKU, 1, window(2, 1), "900");
    greedy.idempotency_key = "greedy".into();
    assert_eq!(
        code_of(client.place_bid(&greedy).await),
        (422, "insufficient_funds".into())
    );
    invariants_hold(&regulator).await;

    // Own only: another buyer sees none of it and cannot decide it; the admin sees everything.
    assert!(other.all_withdrawals(None).await.unwrap().is_empty());
    assert!(other.full_statement(None, None).await.unwrap().len() == 1);
    assert_eq!(
        code_of(
            other
                .reject_withdrawal(
                    pending.id,
                    &WithdrawalRejected {
                        reason: "mine now".into()
                    }
                )
                .await
        ),
        (403, "forbidden".into())
    );
    assert_eq!(
        client.all_withdrawals(None).await.unwrap(),
        vec![pending.clone()]
    );
    let all = exchange
        .admin
        .all_withdrawals(Some(WithdrawalStatus::Pending))
        .await
        .unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].participant_id, buyer.participant.id);
    assert_eq!(
        code_of(regulator.full_statement(None, None).await),
        (403, "forbidden".into())
    );

    // Rejected: the money is back, to the fen; the statement shows both movements.
    let rejected = exchange
        .admin
        .reject_withdrawal(
            pending.id,
            &WithdrawalRejected {
                reason: "the account name does not match".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(rejected.status, WithdrawalStatus::Rejected);
    assert_eq!(client.account().await.unwrap().available, d("1000"));
    let kinds: Vec<(String, Decimal)> = client
        .full_statement(None, None)
        .await
        .unwrap()
        .into_iter()
        .map(|entry| (entry.kind, entry.balance_after))
        .collect();
    assert_eq!(
        kinds,
        vec![
            ("deposit".into(), d("1000")),
            ("withdrawal".into(), d("899.9")),
            ("withdrawal_returned".into(), d("1000")),
        ]
    );
    invariants_hold(&regulator).await;
    assert!(
        exchange
            .admin
            .all_withdrawals(Some(WithdrawalStatus::Pending))
            .await
            .unwrap()
            .is_empty()
    );

    // A hub operator withdraws from its hub's levy, which is empty here.
    assert_eq!(
        code_of(operator.withdraw(&withdrawal("1", "levy")).await),
        (422, "insufficient_funds".into())
    );
    // Bad input changes nothing.
    let mut blank = withdrawal("5", "blank");
    blank.destination = " ".into();
    assert_eq!(
        code_of(client.withdraw(&blank).await),
        (400, "invalid_field".into())
    );
    assert_eq!(
        code_of(
            exchange
                .admin
                .mark_withdrawal_paid(
                    uuid::Uuid::new_v4(),
                    &WithdrawalPaid {
                        bank_reference: "x".into()
                    }
                )
                .await
        ),
        (404, "not_found".into())
    );
    assert_eq!(exchange.count("SELECT count(*) FROM withdrawals"), 1);
    // Times PostgreSQL would refuse, or a range the wrong way round, are the client's mistake.
    for (query, code) in [
        ("from=-5000-01-01T00:00:00Z", "invalid_field"),
        ("to=20000-01-01T00:00:00Z", "invalid_field"),
        (
            "from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z",
            "invalid_range",
        ),
    ] {
        for path in ["/v1/accounts/me/entries", "/v1/hubs/nx/contracts"] {
            let who = if path.starts_with("/v1/hubs") {
                &operator
            } else {
                &client
            };
            let response = who
                .request(reqwest::Method::GET, &format!("{path}?{query}"))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status().as_u16(), 400, "{path}?{query}");
            let body: serde_json::Value = response.json().await.unwrap();
            // A year chrono cannot read at all is refused while decoding the query.
            assert!(
                body["code"] == code || body["code"] == "invalid_query",
                "{path}?{query}: {body}"
            );
        }
    }
}
