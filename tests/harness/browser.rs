//! A real browser for the web console's tests: headless Chromium driven over WebDriver
//! (chromedriver, started per test on a free 127.0.0.1 port). `scripts/setup --tests` installs
//! both from Debian's packages.
//!
//! Every wait has a deadline; when one passes (or a test's check fails through [`Browser::check`])
//! a screenshot of the page is saved under `target/console-screenshots/` before the test panics.
//! With `SUANLI_SCREENSHOTS=1` every [`Browser::snapshot`] is saved, failing or not.
//!
//! One browser runs at a time (a 2-core machine runs the rest of the suite beside it), and each
//! has a profile folder of its own, by which a failed test's Chromium is found and stopped.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// How long a page may take to show what a test waits for.
pub const WAIT: Duration = Duration::from_secs(30);

pub struct Browser {
    pub client: Client,
    driver: Child,
    name: String,
    profile: PathBuf,
    _turn: tokio::sync::SemaphorePermit<'static>,
}

/// Whose turn it is to run a browser.
static TURN: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(1);

impl Browser {
    /// Starts chromedriver and a headless Chromium session; `name` names its screenshots.
    pub async fn start(name: &str) -> Self {
        let turn = TURN
            .acquire()
            .await
            .expect("the browser turn is never closed");
        let profile = std::env::temp_dir().join(format!("suanli-console-{}", uuid::Uuid::new_v4()));
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port for chromedriver")
            .port();
        let mut driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start chromedriver (scripts/setup --tests installs it)");
        // chromedriver says when it listens; read its first lines until it does.
        let stdout = driver.stdout.take().expect("chromedriver's stdout");
        let mut lines = BufReader::new(stdout).lines();
        let started = tokio::time::timeout(WAIT, async {
            while let Ok(Some(line)) = lines.next_line().await {
                if line.contains("started successfully") {
                    return true;
                }
            }
            false
        })
        .await
        .unwrap_or(false);
        assert!(started, "chromedriver did not start on port {port}");
        // Keep draining its output so it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });

        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": chromium(),
                "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                         "--disable-gpu", "--window-size=1400,1800", "--lang=en-US",
                         format!("--user-data-dir={}", profile.display())],
            }),
        );
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .expect("a Chromium session through chromedriver");
        Browser {
            client,
            driver,
            name: name.to_owned(),
            profile,
            _turn: turn,
        }
    }

    /// Opens `url` and waits until the console says it is ready (reference data and market
    /// loaded, stream connecting).
    pub async fn open(&self, url: &str) {
        self.client.goto(url).await.expect("open the page");
        self.wait_until(
            "the console to load",
            "return document.body.dataset.ready === 'true';",
        )
        .await;
    }

    /// Runs `script` (a function body) in the page and returns its result.
    pub async fn script(&self, script: &str) -> Value {
        match self.client.execute(script, vec![]).await {
            Ok(value) => value,
            Err(error) => {
                self.fail(&format!("script failed: {error}\n{script}"))
                    .await
            }
        }
    }

    /// Waits until `script` returns `true`.
    pub async fn wait_until(&self, what: &str, script: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            if self.client.execute(script, vec![]).await.ok() == Some(Value::Bool(true)) {
                return;
            }
            if Instant::now() > deadline {
                self.fail(&format!("waited {WAIT:?} for {what}")).await;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The text of the element `css`, once it exists.
    pub async fn text(&self, css: &str) -> String {
        let element = self.find(css).await;
        match element.text().await {
            Ok(text) => text,
            Err(error) => self.fail(&format!("cannot read {css}: {error}")).await,
        }
    }

    /// Waits until the element `css` exists and its text contains `needle`; returns the text.
    pub async fn wait_for_text(&self, css: &str, needle: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Ok(element) = self.client.find(Locator::Css(css)).await
                && let Ok(text) = element.text().await
                && text.contains(needle)
            {
                return text;
            }
            if Instant::now() > deadline {
                let seen = match self.client.find(Locator::Css(css)).await {
                    Ok(element) => element.text().await.unwrap_or_default(),
                    Err(_) => "(no such element)".into(),
                };
                self.fail(&format!(
                    "waited {WAIT:?} for {css} to say {needle:?}; it says {seen:?}"
                ))
                .await;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The element `css`, waiting for it to appear.
    pub async fn find(&self, css: &str) -> fantoccini::elements::Element {
        match self
            .client
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Css(css))
            .await
        {
            Ok(element) => element,
            Err(error) => self.fail(&format!("no element {css}: {error}")).await,
        }
    }

    /// Types `value` into the input `css`, replacing what it held.
    pub async fn fill(&self, css: &str, value: &str) {
        let element = self.find(css).await;
        element.clear().await.expect("clear the input");
        element.send_keys(value).await.expect("type into the input");
    }

    /// Chooses the option whose value is `value` in the select `css`.
    pub async fn choose(&self, css: &str, value: &str) {
        let element = self.find(css).await;
        if let Err(error) = element.select_by_value(value).await {
            self.fail(&format!("no option {value:?} in {css}: {error}"))
                .await;
        }
    }

    /// Clicks the element `css`.
    pub async fn click(&self, css: &str) {
        let element = self.find(css).await;
        if let Err(error) = element.click().await {
            self.fail(&format!("cannot click {css}: {error}")).await;
        }
    }

    /// Signs in with `api_key` through the page's form and waits for the desk titled `desk`.
    pub async fn sign_in(&self, api_key: &str, desk: &str) {
        self.fill("#signin-key", api_key).await;
        self.click("#signin-button").await;
        self.wait_for_text("#desk-title", desk).await;
    }

    /// Fails the test with `message` unless `ok`, saving a screenshot first.
    pub async fn check(&self, ok: bool, message: &str) {
        if !ok {
            self.fail(message).await;
        }
    }

    /// Saves a screenshot named `label` when `SUANLI_SCREENSHOTS` is set (to look at a desk).
    pub async fn snapshot(&self, label: &str) {
        if std::env::var_os("SUANLI_SCREENSHOTS").is_some() {
            self.save_screenshot(label).await;
        }
    }

    async fn save_screenshot(&self, label: &str) -> Option<PathBuf> {
        let folder =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/console-screenshots");
        let png = self.client.screenshot().await.ok()?;
        std::fs::create_dir_all(&folder).ok()?;
        let path = folder.join(format!("{}-{label}.png", self.name));
        std::fs::write(&path, png).ok()?;
        Some(path)
    }

    async fn fail(&self, message: &str) -> ! {
        let saved = self.save_screenshot("failure").await;
        let status = self
            .client
            .find(Locator::Css("#status"))
            .await
            .ok()
            .map(|element| async move { element.text().await.unwrap_or_default() });
        let status = match status {
            Some(text) => text.await,
            None => String::new(),
        };
        panic!(
            "{message}\n  page status line: {status:?}\n  screenshot: {}",
            saved.map_or("(none)".into(), |path| path.display().to_string())
        );
    }

    /// Ends the browser session and its driver.
    pub async fn close(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill().await;
    }
}

impl Drop for Browser {
    /// After a failure (no [`Browser::close`]), stops this test's Chromium too: chromedriver dies
    /// with its handle, but the browser it started would outlive it.
    fn drop(&mut self) {
        let _ = std::process::Command::new("pkill")
            .args(["-f", "--"])
            .arg(format!("--user-data-dir={}", self.profile.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// Debian's Chromium (`/usr/bin/chromium`), or whatever `chromium` the PATH has.
fn chromium() -> String {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|path| std::path::Path::new(path).exists())
        .unwrap_or("chromium")
        .to_owned()
}
