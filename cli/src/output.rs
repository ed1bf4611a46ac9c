//! What the command line prints: JSON or tables, times in the chosen zone, and standard output
//! that ends quietly when its reader goes away.

use std::io::Write;

use crate::*;

pub(crate) fn print_json<T: Serialize + ?Sized>(value: &T) -> anyhow::Result<()> {
    out!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// How an answer looks to people: a table. With `--json` the answer itself is printed instead.
pub(crate) trait Human {
    fn print(&self);
}

/// Prints `value` as JSON (`--json`) or as people read it.
pub(crate) fn show<T: Serialize + Human + ?Sized>(json: bool, value: &T) -> anyhow::Result<()> {
    if json {
        print_json(value)
    } else {
        value.print();
        Ok(())
    }
}

impl<T> Human for Vec<T>
where
    [T]: Human,
{
    fn print(&self) {
        self.as_slice().print();
    }
}

/// One item shows as a table of one row.
macro_rules! one_row {
    ($($item:ty),+) => {$(
        impl Human for $item {
            fn print(&self) {
                std::slice::from_ref(self).print();
            }
        }
    )+};
}

one_row!(
    suanli_sdk::Offer,
    suanli_sdk::Bid,
    suanli_sdk::Contract,
    suanli_sdk::Withdrawal,
    suanli_sdk::PolicySummary
);

impl Human for [suanli_sdk::PolicySummary] {
    fn print(&self) {
        let mut table = Table::new(["digest", "hub", "kind", "status", "bytes"]);
        for policy in self {
            table.row([
                policy.digest.clone(),
                policy.hub.clone(),
                policy.kind.clone(),
                policy.status.clone(),
                policy.size_bytes.to_string(),
            ]);
        }
        table.print();
    }
}

/// Writes to standard output; see [`out!`].
pub(crate) fn write_out(text: std::fmt::Arguments<'_>) {
    let mut stdout = std::io::stdout().lock();
    if let Err(error) = stdout.write_fmt(text).and_then(|()| stdout.flush()) {
        if error.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: cannot write to standard output: {error}");
        std::process::exit(1);
    }
}

/// Says that a listing shows only its newest `limit` rows.
pub(crate) fn more_hint(more: bool, limit: u32) {
    if more {
        eprintln!("(the newest {limit}; more with --limit, up to 500)");
    }
}

/// A CSV field: quoted when it must be, and never read as a formula by a spreadsheet.
pub(crate) fn csv_field(text: &str) -> String {
    let text = if text.starts_with(['=', '+', '-', '@']) {
        format!("'{text}")
    } else {
        text.to_owned()
    };
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

impl Human for [suanli_sdk::Withdrawal] {
    fn print(&self) {
        let mut table = Table::new([
            "id",
            "amount",
            "destination",
            "status",
            "requested",
            "bank reference / reason",
        ]);
        for withdrawal in self {
            table.row([
                withdrawal.id.to_string(),
                format!("{} {}", withdrawal.amount, withdrawal.currency),
                withdrawal.destination.clone(),
                withdrawal.status.as_str().to_owned(),
                time_text(withdrawal.created_at),
                withdrawal
                    .bank_reference
                    .clone()
                    .or_else(|| withdrawal.reason.clone())
                    .unwrap_or_default(),
            ]);
        }
        table.print();
    }
}

impl Human for [suanli_sdk::Offer] {
    fn print(&self) {
        let mut table = Table::new([
            "id",
            "hub",
            "cluster",
            "sku",
            "qty",
            "remaining",
            "ask",
            "green %",
            "window",
            "status",
        ]);
        for offer in self {
            table.row([
                offer.id.to_string(),
                offer.hub.clone(),
                offer.cluster.clone(),
                offer.sku.clone(),
                offer.quantity.to_string(),
                offer.remaining.to_string(),
                offer.ask_price.to_string(),
                offer.green_share.to_string(),
                window_text(&offer.window),
                offer.status.as_str().into(),
            ]);
        }
        table.print();
    }
}

impl Human for [suanli_sdk::Bid] {
    fn print(&self) {
        let mut table = Table::new([
            "id",
            "skus",
            "qty",
            "remaining",
            "limit",
            "held",
            "window",
            "tif",
            "status",
        ]);
        for bid in self {
            table.row([
                bid.id.to_string(),
                bid.skus.join(" "),
                bid.quantity.to_string(),
                bid.remaining.to_string(),
                bid.limit_price.to_string(),
                bid.held.to_string(),
                window_text(&bid.window),
                bid.time_in_force.as_str().into(),
                bid.status.as_str().into(),
            ]);
        }
        table.print();
    }
}

impl Human for [suanli_sdk::Contract] {
    fn print(&self) {
        let mut table = Table::new([
            "id",
            "hub",
            "sku",
            "units",
            "hours",
            "unit price",
            "notional",
            "status",
        ]);
        for contract in self {
            table.row([
                contract.id.to_string(),
                contract.hub.clone(),
                contract.sku.clone(),
                contract.units.to_string(),
                contract.hours.to_string(),
                contract.unit_price.to_string(),
                contract.notional.to_string(),
                format!("{:?}", contract.status).to_lowercase(),
            ]);
        }
        table.print();
    }
}

/// Why units did not trade, one line each.
pub(crate) fn print_reasons(reasons: &[suanli_sdk::Reason]) {
    if reasons.is_empty() {
        return;
    }
    out!("\nwhy units did not trade:");
    for reason in reasons {
        match &reason.hub {
            Some(hub) => out!("  {} ({hub}): {}", reason.code, reason.message),
            None => out!("  {}: {}", reason.code, reason.message),
        }
    }
}

/// A time zone to show times in.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Zone {
    Utc,
    Local,
    Named(chrono_tz::Tz),
}

pub(crate) fn parse_zone(text: &str) -> Result<Zone, String> {
    match text {
        "UTC" | "utc" | "Z" => Ok(Zone::Utc),
        "local" => Ok(Zone::Local),
        name => name.parse::<chrono_tz::Tz>().map(Zone::Named).map_err(|_| {
            format!("unknown time zone `{name}`: UTC, local, or a name such as Asia/Shanghai")
        }),
    }
}

/// The zone chosen with `--tz`, for the whole run.
pub(crate) static ZONE: std::sync::OnceLock<Zone> = std::sync::OnceLock::new();

/// A time in the chosen zone, with the zone shown.
pub(crate) fn time_text(at: DateTime<Utc>) -> String {
    const FORMAT: &str = "%Y-%m-%d %H:%M";
    match ZONE.get().copied().unwrap_or(Zone::Utc) {
        Zone::Utc => format!("{} UTC", at.format(FORMAT)),
        Zone::Local => at
            .with_timezone(&chrono::Local)
            .format("%Y-%m-%d %H:%M %:z")
            .to_string(),
        Zone::Named(zone) => at
            .with_timezone(&zone)
            .format("%Y-%m-%d %H:%M %Z")
            .to_string(),
    }
}

pub(crate) fn window_text(window: &Window) -> String {
    format!("{} → {}", time_text(window.start), time_text(window.end))
}

/// Asks a yes/no question on the terminal; no terminal means no.
pub(crate) fn confirm(question: &str) -> anyhow::Result<bool> {
    use std::io::IsTerminal;
    if !std::io::stdin().is_terminal() {
        return Ok(false);
    }
    eprint!("{question}");
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}
