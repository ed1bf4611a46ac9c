//! One module per command group; `run` reads the kept login and dispatches.

mod audit;
mod contracts;
mod hub;
mod market;
mod money;
mod orders;
mod policy;
mod reference;
mod session;

use crate::*;

/// Runs one command.
pub(crate) async fn run(cli: Cli) -> anyhow::Result<()> {
    let _ = ZONE.set(cli.tz);
    let saved = load(&cli)?;
    let url = cli
        .url
        .clone()
        .or(saved.url.clone())
        .unwrap_or_else(|| "http://127.0.0.1:8080".into());
    let anonymous = Client::new(url.clone());
    let mut client = match &saved.token {
        Some(token) => anonymous.with_token(token.clone()),
        None => anonymous.clone(),
    };
    // A kept key logs in again by itself when the token is about to expire.
    let expiring = saved
        .expires_at
        .is_some_and(|at| at - RELOGIN_MARGIN_S <= chrono::Utc::now().timestamp());
    if let (Some(api_key), true, false) = (
        &saved.api_key,
        expiring,
        matches!(cli.command, Command::Login { .. }),
    ) {
        client = log_in(&cli, &anonymous, &url, api_key, true).await?;
    }
    let json = cli.json;
    match &cli.command {
        Command::Login { api_key, keep_key } => {
            session::login(&cli, &anonymous, &url, api_key, *keep_key, json).await
        }
        Command::Keys(Keys::Rotate) => {
            let keep_key = saved.api_key.is_some();
            session::rotate_key(&cli, &client, &anonymous, &url, keep_key, json).await
        }
        Command::Participants(command) => session::participants(&client, command, json).await,
        Command::Whoami => session::whoami(&client, json).await,
        Command::Hubs {
            view: Some(HubsView::Latency),
        } => reference::latency(&anonymous, json).await,
        Command::Hubs { view: None } => reference::hubs(&anonymous, json).await,
        Command::Skus => reference::skus(&anonymous, json).await,
        Command::Balance => money::balance(&client, json).await,
        Command::Withdraw {
            amount,
            destination,
            idempotency_key,
        } => money::withdraw(&client, *amount, destination, idempotency_key.clone(), json).await,
        Command::Withdrawals(command) => money::withdrawals(&client, command, json).await,
        Command::Statement { from, to, csv } => {
            money::statement(&client, *from, *to, *csv, json).await
        }
        Command::Offers(command) => orders::offers(&client, command, json).await,
        Command::Bids(command) => orders::bids(&client, command, json).await,
        Command::Contracts(command) => contracts::contracts(&client, command, json).await,
        Command::Policy(command) => policy::policy(&client, command, json).await,
        Command::Audit(command) => audit::audit(&cli, &client, command, json).await,
        Command::Market(command) => market::market(&anonymous, command, json).await,
        Command::Hub(command) => hub::hub(&client, command, json).await,
    }
}

/// The hub a command is about: the one given, or the caller's own (hub operators).
pub(crate) async fn own_hub(client: &Client, given: &Option<String>) -> anyhow::Result<String> {
    if let Some(hub) = given {
        return Ok(hub.clone());
    }
    client
        .me()
        .await?
        .hub
        .context("name the hub with --hub (only a hub operator's token names one)")
}

/// A policy digest from a unique prefix of one of the hub's stored digests.
pub(crate) async fn full_digest(client: &Client, hub: &str, given: &str) -> anyhow::Result<String> {
    if given.len() == 64 {
        return Ok(given.to_owned());
    }
    let policies = client.policies(hub).await?;
    let matching: Vec<&str> = policies
        .iter()
        .map(|policy| policy.digest.as_str())
        .filter(|digest| digest.starts_with(given))
        .collect();
    match matching.as_slice() {
        [one] => Ok((*one).to_owned()),
        [] => bail!("no policy of hub {hub} has a digest starting with {given}"),
        _ => bail!(
            "{} policies of hub {hub} have digests starting with {given}; give more characters",
            matching.len()
        ),
    }
}
