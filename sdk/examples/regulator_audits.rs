//! A regulator recomputes the audit chain itself, then exports contracts with settlements.
//!
//! `SUANLI_API_KEY=sk_… cargo run -p suanli-sdk --example regulator_audits` against
//! `scripts/demo` (use the printed key of the regulator).

use suanli_sdk::{AuditFilter, Client, ExportFormat};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("SUANLI_URL").unwrap_or_else(|_| "http://127.0.0.1:8080".into());
    let regulator = Client::new(url)
        .login(&std::env::var("SUANLI_API_KEY")?)
        .await?;
    // Trust nothing the server says about the chain: download it and recompute every hash.
    let verdict = regulator
        .verify_audit_chain(500, |checked| eprint!("\r{checked} entries checked"))
        .await?;
    eprintln!();
    match verdict.first_bad_seq {
        None => println!(
            "chain ok: {} entries, head {}",
            verdict.entries, verdict.head_hash
        ),
        Some(seq) => println!("chain broken at seq {seq}"),
    }
    let mut file = std::fs::File::create("settlements.csv")?;
    let bytes = regulator
        .audit_export(
            ExportFormat::Csv,
            &AuditFilter::default(),
            &mut file,
            |_| {},
        )
        .await?;
    println!("wrote {bytes} bytes to settlements.csv");
    Ok(())
}
