//! The kept login: the exchange's address, the token and when it expires, and the API key when
//! the user asked to keep it. One file, mode 0600.

use std::io::Write;

use crate::*;

/// What `login` keeps.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct Saved {
    pub(crate) url: Option<String>,
    pub(crate) token: Option<String>,
    /// When the token expires, Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) expires_at: Option<i64>,
    /// The API key, only when the user asked to keep it (`login --keep-key`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) api_key: Option<String>,
    /// The pinned checkpoint verifier key of this exchange.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) checkpoint_key: Option<String>,
    /// The last checkpoint verified here (the signed note): a new one must extend it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) last_checkpoint: Option<String>,
}

/// Logs in with `api_key` and keeps the token (and the key, if asked).
pub(crate) async fn log_in(
    cli: &Cli,
    anonymous: &Client,
    url: &str,
    api_key: &str,
    keep_key: bool,
) -> anyhow::Result<Client> {
    let token = anonymous.token(api_key).await?;
    let expires_at =
        chrono::Utc::now().timestamp() + i64::try_from(token.expires_in).unwrap_or(i64::MAX / 2);
    save(
        cli,
        &Saved {
            url: Some(url.to_owned()),
            token: Some(token.access_token.clone()),
            expires_at: Some(expires_at),
            api_key: keep_key.then(|| api_key.to_owned()),
            // The checkpoint pins belong to this exchange only.
            ..load(cli)
                .ok()
                .filter(|saved| saved.url.as_deref() == Some(url))
                .unwrap_or_default()
        },
    )?;
    Ok(anonymous.with_token(token.access_token))
}

/// Seconds before expiry at which a kept key is used to log in again.
pub(crate) const RELOGIN_MARGIN_S: i64 = 60;

pub(crate) fn config_path(cli: &Cli) -> anyhow::Result<PathBuf> {
    if let Some(path) = &cli.config {
        return Ok(path.clone());
    }
    let home = std::env::var_os("HOME").context("HOME is not set; pass --config")?;
    Ok(PathBuf::from(home).join(".config/suanli/config.json"))
}

pub(crate) fn load(cli: &Cli) -> anyhow::Result<Saved> {
    let path = config_path(cli)?;
    match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text).with_context(|| {
            format!(
                "the config file {} is not one `suanli login` wrote; remove it and log in again",
                path.display()
            )
        }),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(Saved::default()),
        Err(error) => {
            Err(error).with_context(|| format!("cannot read the config file {}", path.display()))
        }
    }
}

pub(crate) fn save(cli: &Cli, saved: &Saved) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let path = config_path(cli)?;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)?;
    // `mode` applies only to a new file: an older one keeps its mode unless it is set here.
    use std::os::unix::fs::PermissionsExt;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    file.write_all(serde_json::to_string_pretty(saved)?.as_bytes())?;
    Ok(())
}
