//! Logging in, one's key, participants (admins), and who one is.

use crate::*;

/// `suanli login`: exchanges the key for a token and keeps it.
pub(crate) async fn login(
    cli: &Cli,
    anonymous: &Client,
    url: &str,
    api_key: &str,
    keep_key: bool,
    json: bool,
) -> anyhow::Result<()> {
    let me = log_in(cli, anonymous, url, api_key, keep_key)
        .await?
        .me()
        .await?;
    if json {
        return print_json(&me);
    }
    out!("logged in as {} ({}, {})", me.name, me.kind.as_str(), me.id);
    Ok(())
}

/// `suanli keys rotate`: a new key, shown once, and a login with it.
pub(crate) async fn rotate_key(
    cli: &Cli,
    client: &Client,
    anonymous: &Client,
    url: &str,
    keep_key: bool,
    json: bool,
) -> anyhow::Result<()> {
    let rotated = client.rotate_key().await?;
    // Shown before anything else can fail: the old key no longer works.
    if json {
        print_json(&rotated)?;
    } else {
        out!("new API key (shown once; the old key and its tokens no longer work):");
        out!("{}", rotated.api_key);
    }
    log_in(cli, anonymous, url, &rotated.api_key, keep_key).await?;
    Ok(())
}

/// `suanli participants suspend|reinstate` (admins).
pub(crate) async fn participants(
    client: &Client,
    command: &Participants,
    json: bool,
) -> anyhow::Result<()> {
    let participant = match command {
        Participants::Suspend { id, reason } => client.suspend_participant(*id, reason).await?,
        Participants::Reinstate { id } => client.reinstate_participant(*id).await?,
    };
    if json {
        return print_json(&participant);
    }
    let standing = if participant.suspended {
        "suspended"
    } else {
        "in good standing"
    };
    out!(
        "{} ({}, {}) is {standing}",
        participant.name,
        participant.kind.as_str(),
        participant.id
    );
    Ok(())
}

/// `suanli whoami`.
pub(crate) async fn whoami(client: &Client, json: bool) -> anyhow::Result<()> {
    let me = client.me().await?;
    if json {
        return print_json(&me);
    }
    out!("{} ({}, {})", me.name, me.kind.as_str(), me.id);
    Ok(())
}
