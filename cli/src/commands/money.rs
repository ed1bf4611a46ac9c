//! One's money: the balance, the statement, withdrawals (and the admin's decisions on them).

use crate::*;

/// `suanli balance`.
pub(crate) async fn balance(client: &Client, json: bool) -> anyhow::Result<()> {
    let account = client.account().await?;
    if json {
        return print_json(&account);
    }
    out!(
        "available {} {}  held {} {}",
        account.available,
        account.currency,
        account.held,
        account.currency
    );
    Ok(())
}

/// `suanli withdraw`.
pub(crate) async fn withdraw(
    client: &Client,
    amount: Decimal,
    destination: &str,
    idempotency_key: Option<String>,
    json: bool,
) -> anyhow::Result<()> {
    let withdrawal = client
        .withdraw(&NewWithdrawal {
            amount,
            destination: destination.to_owned(),
            idempotency_key: key(idempotency_key),
        })
        .await?;
    if json {
        return print_json(&withdrawal);
    }
    withdrawal.print();
    Ok(())
}

/// `suanli withdrawals list|paid|rejected`.
pub(crate) async fn withdrawals(
    client: &Client,
    command: &Withdrawals,
    json: bool,
) -> anyhow::Result<()> {
    let withdrawals = match command {
        Withdrawals::List { status } => {
            let status = status
                .as_deref()
                .map(|name| {
                    WithdrawalStatus::parse(name)
                        .with_context(|| format!("unknown status {name} (pending, paid, rejected)"))
                })
                .transpose()?;
            client.all_withdrawals(status).await?
        }
        Withdrawals::Paid { id, bank_reference } => vec![
            client
                .mark_withdrawal_paid(
                    *id,
                    &WithdrawalPaid {
                        bank_reference: bank_reference.clone(),
                    },
                )
                .await?,
        ],
        Withdrawals::Rejected { id, reason } => vec![
            client
                .reject_withdrawal(
                    *id,
                    &WithdrawalRejected {
                        reason: reason.clone(),
                    },
                )
                .await?,
        ],
    };
    if json {
        return print_json(&withdrawals);
    }
    withdrawals.print();
    Ok(())
}

/// `suanli statement`.
pub(crate) async fn statement(
    client: &Client,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    csv: bool,
    json: bool,
) -> anyhow::Result<()> {
    let entries = client.full_statement(from, to).await?;
    if json {
        return print_json(&entries);
    }
    if csv {
        out!("at,kind,reference,account,amount,balance_after");
        for entry in &entries {
            out!(
                "{},{},{},{},{},{}",
                entry.at.to_rfc3339(),
                entry.kind,
                csv_field(&entry.reference),
                entry.account,
                entry.amount,
                entry.balance_after
            );
        }
        return Ok(());
    }
    let mut table = Table::new([
        "at",
        "kind",
        "account",
        "amount",
        "balance after",
        "reference",
    ]);
    for entry in &entries {
        table.row([
            time_text(entry.at),
            entry.kind.clone(),
            entry.account.clone(),
            entry.amount.to_string(),
            entry.balance_after.to_string(),
            entry.reference.clone(),
        ]);
    }
    table.print();
    Ok(())
}
