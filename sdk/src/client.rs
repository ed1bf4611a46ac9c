//! An async HTTP client with one method per API operation.

use reqwest::{Method, RequestBuilder, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::audit::ChainVerifier;
use crate::error::Error;
use crate::paged::Paged;
use crate::types::*;

/// The largest page the exchange serves.
pub const PAGE_MAX: u32 = 500;

/// Attempts of a retried request, the first included.
const RETRY_ATTEMPTS_MAX: u32 = 4;

/// A connection to one exchange, optionally authenticated with a bearer token.
///
/// Cloning is cheap and shares the connection pool.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base_url: String,
    token: Option<String>,
}

/// How long connecting to the exchange may take.
pub const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// How long a response may go without sending anything.
pub const READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

impl Client {
    /// A client for the exchange at `base_url` (e.g. `http://127.0.0.1:8080`), without a token.
    /// Connecting gives up after [`CONNECT_TIMEOUT`], and a response that goes silent for
    /// [`READ_TIMEOUT`] is abandoned (a long export keeps going as long as data flows).
    pub fn new(base_url: impl Into<String>) -> Self {
        let base_url = base_url.into().trim_end_matches('/').to_owned();
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .read_timeout(READ_TIMEOUT)
            .build()
            .unwrap_or_default();
        Client {
            http,
            base_url,
            token: None,
        }
    }

    /// The same connection, sending `token` as its bearer token.
    pub fn with_token(&self, token: impl Into<String>) -> Self {
        Client {
            token: Some(token.into()),
            ..self.clone()
        }
    }

    /// Exchanges `api_key` for a token and returns a client that uses it.
    pub async fn login(&self, api_key: &str) -> Result<Self, Error> {
        let token = self.token(api_key).await?;
        Ok(self.with_token(token.access_token))
    }

    /// The bearer token this client sends, if any.
    pub fn bearer_token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// The exchange's base URL, without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The full URL of `path` (which starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url, path)
    }

    /// A request to `path` carrying this client's token, for calls the typed methods don't cover.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let builder = self.http.request(method, self.url(path));
        match &self.token {
            Some(token) => builder.bearer_auth(token),
            None => builder,
        }
    }

    async fn send<T: DeserializeOwned>(&self, builder: RequestBuilder) -> Result<T, Error> {
        let response = builder.send().await?;
        decode(response).await
    }

    /// Sends a request whose repetition is harmless (a read, or a create that carries an
    /// idempotency key in its body), retrying transient failures: no connection, a connection cut
    /// before the answer arrived, 502 and 503. The body (and so its idempotency key) is the same
    /// on every attempt; a 4xx is never retried.
    async fn send_retrying<T: DeserializeOwned>(
        &self,
        builder: RequestBuilder,
    ) -> Result<T, Error> {
        let mut attempt = 0;
        loop {
            let Some(this_attempt) = builder.try_clone() else {
                return self.send(builder).await;
            };
            attempt += 1;
            let last = attempt >= RETRY_ATTEMPTS_MAX;
            match this_attempt.send().await {
                Ok(response) if !last && matches!(response.status().as_u16(), 502 | 503) => {}
                Ok(response) => return decode(response).await,
                Err(error) if !last && (error.is_connect() || error.is_request()) => {}
                Err(error) => return Err(error.into()),
            }
            // Back off a little before the next attempt: 50 ms, 100 ms, 200 ms…
            tokio::time::sleep(std::time::Duration::from_millis(25 << attempt)).await;
        }
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, Error> {
        self.send_retrying(self.request(Method::GET, path)).await
    }

    async fn post_idempotent<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, Error> {
        self.send_retrying(self.request(Method::POST, path).json(body))
            .await
    }

    async fn post<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, Error> {
        self.send(self.request(Method::POST, path).json(body)).await
    }

    /// `GET /healthz`: the process is up.
    pub async fn healthz(&self) -> Result<Health, Error> {
        self.get("/healthz").await
    }

    /// `GET /readyz`: the process can reach its database, and whether it applies orders.
    pub async fn readyz(&self) -> Result<Readiness, Error> {
        self.get("/readyz").await
    }

    /// `GET /v1/hubs`: the eight hubs with their clusters and figures.
    pub async fn hubs(&self) -> Result<Vec<Hub>, Error> {
        self.get("/v1/hubs").await
    }

    /// `GET /v1/hubs/latency`: the hub-to-hub latency matrix.
    pub async fn hub_latency(&self) -> Result<Latency, Error> {
        self.get("/v1/hubs/latency").await
    }

    /// `GET /v1/skus`: what can be traded.
    pub async fn skus(&self) -> Result<Vec<Sku>, Error> {
        self.get("/v1/skus").await
    }

    /// `POST /v1/auth/token`: exchanges an API key for a bearer token.
    pub async fn token(&self, api_key: &str) -> Result<TokenResponse, Error> {
        self.post(
            "/v1/auth/token",
            &TokenRequest {
                api_key: api_key.to_owned(),
            },
        )
        .await
    }

    /// `POST /v1/participants` (admin): creates a participant; its API key is in the answer only.
    pub async fn create_participant(
        &self,
        new: &NewParticipant,
    ) -> Result<CreatedParticipant, Error> {
        self.post("/v1/participants", new).await
    }

    /// `GET /v1/participants/me`: who this token belongs to.
    pub async fn me(&self) -> Result<Participant, Error> {
        self.get("/v1/participants/me").await
    }

    /// `POST /v1/participants/me/keys`: a new API key for the caller (shown once); the old key
    /// and every token issued before stop working at once, this client's token included.
    pub async fn rotate_key(&self) -> Result<CreatedParticipant, Error> {
        self.post("/v1/participants/me/keys", &serde_json::json!({}))
            .await
    }

    /// `POST /v1/participants/{id}/suspend` (admin): its tokens and key are refused from now on
    /// and its resting orders are cancelled.
    pub async fn suspend_participant(
        &self,
        participant: Uuid,
        reason: &str,
    ) -> Result<Participant, Error> {
        self.post(
            &format!("/v1/participants/{participant}/suspend"),
            &Suspension {
                reason: reason.to_owned(),
            },
        )
        .await
    }

    /// `POST /v1/participants/{id}/reinstate` (admin): lifts a suspension.
    pub async fn reinstate_participant(&self, participant: Uuid) -> Result<Participant, Error> {
        self.post(
            &format!("/v1/participants/{participant}/reinstate"),
            &serde_json::json!({}),
        )
        .await
    }

    /// `POST /v1/participants/{id}/deposits` (admin): credits a buyer. Retrying with the same
    /// `idempotency_key` returns the first deposit and credits nothing more.
    pub async fn deposit(&self, participant: Uuid, deposit: &NewDeposit) -> Result<Deposit, Error> {
        self.post_idempotent(&format!("/v1/participants/{participant}/deposits"), deposit)
            .await
    }

    /// `GET /v1/accounts/me`: the caller's available and held money.
    pub async fn account(&self) -> Result<Account, Error> {
        self.get("/v1/accounts/me").await
    }

    /// `POST /v1/offers` (provider): lists capacity; the answer carries the contracts made at once.
    pub async fn place_offer(&self, offer: &NewOffer) -> Result<PlacedOffer, Error> {
        self.post_idempotent("/v1/offers", offer).await
    }

    /// `GET /v1/offers/{id}`.
    pub async fn offer(&self, id: Uuid) -> Result<Offer, Error> {
        self.get(&format!("/v1/offers/{id}")).await
    }

    /// `GET /v1/offers`: one page of the caller's offers (a regulator's: everyone's), newest first.
    pub async fn offers(
        &self,
        status: Option<OrderStatus>,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<Page<Offer>, Error> {
        let builder = self
            .request(Method::GET, "/v1/offers")
            .query(&list_query(status, cursor, limit));
        self.send_retrying(builder).await
    }

    /// `DELETE /v1/offers/{id}`: cancels the unfilled part.
    pub async fn cancel_offer(&self, id: Uuid) -> Result<Offer, Error> {
        self.send(self.request(Method::DELETE, &format!("/v1/offers/{id}")))
            .await
    }

    /// The offers the caller may see, newest first, read lazily `page_size` at a time.
    pub fn offers_paged(&self, status: Option<OrderStatus>, page_size: u32) -> Paged<'_, Offer> {
        Paged::new(
            move |cursor| async move { self.offers(status, cursor.as_deref(), page_size).await },
        )
    }

    /// Every offer the caller may see (all pages), newest first.
    pub async fn all_offers(&self, status: Option<OrderStatus>) -> Result<Vec<Offer>, Error> {
        self.offers_paged(status, PAGE_MAX).collect().await
    }

    /// The bids the caller may see, newest first, read lazily `page_size` at a time.
    pub fn bids_paged(&self, status: Option<OrderStatus>, page_size: u32) -> Paged<'_, Bid> {
        Paged::new(
            move |cursor| async move { self.bids(status, cursor.as_deref(), page_size).await },
        )
    }

    /// Every bid the caller may see (all pages), newest first.
    pub async fn all_bids(&self, status: Option<OrderStatus>) -> Result<Vec<Bid>, Error> {
        self.bids_paged(status, PAGE_MAX).collect().await
    }

    /// The contracts the caller may see, newest first, read lazily `page_size` at a time.
    pub fn contracts_paged(
        &self,
        hub: Option<&str>,
        sku: Option<&str>,
        page_size: u32,
    ) -> Paged<'_, Contract> {
        let (hub, sku) = (hub.map(str::to_owned), sku.map(str::to_owned));
        Paged::new(move |cursor| {
            let (hub, sku) = (hub.clone(), sku.clone());
            async move {
                self.contracts(hub.as_deref(), sku.as_deref(), cursor.as_deref(), page_size)
                    .await
            }
        })
    }

    /// Every contract the caller may see (all pages), newest first.
    pub async fn all_contracts(
        &self,
        hub: Option<&str>,
        sku: Option<&str>,
    ) -> Result<Vec<Contract>, Error> {
        self.contracts_paged(hub, sku, PAGE_MAX).collect().await
    }

    /// `POST /v1/bids` (buyer): holds the money, matches at once, rests the rest (GTC/GTD).
    pub async fn place_bid(&self, bid: &NewBid) -> Result<PlacedBid, Error> {
        self.post_idempotent("/v1/bids", bid).await
    }

    /// `GET /v1/bids/{id}`.
    pub async fn bid(&self, id: Uuid) -> Result<Bid, Error> {
        self.get(&format!("/v1/bids/{id}")).await
    }

    /// `GET /v1/bids`: one page of the caller's bids (a regulator's: everyone's), newest first.
    pub async fn bids(
        &self,
        status: Option<OrderStatus>,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<Page<Bid>, Error> {
        let builder = self
            .request(Method::GET, "/v1/bids")
            .query(&list_query(status, cursor, limit));
        self.send_retrying(builder).await
    }

    /// `DELETE /v1/bids/{id}`: cancels the unfilled part and releases its hold.
    pub async fn cancel_bid(&self, id: Uuid) -> Result<Bid, Error> {
        self.send(self.request(Method::DELETE, &format!("/v1/bids/{id}")))
            .await
    }

    /// `GET /v1/contracts/{id}`.
    pub async fn contract(&self, id: Uuid) -> Result<Contract, Error> {
        self.get(&format!("/v1/contracts/{id}")).await
    }

    /// `GET /v1/contracts`: one page of the caller's contracts, newest first.
    pub async fn contracts(
        &self,
        hub: Option<&str>,
        sku: Option<&str>,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<Page<Contract>, Error> {
        let mut query = vec![("limit", limit.to_string())];
        query.extend(hub.map(|hub| ("hub", hub.to_owned())));
        query.extend(sku.map(|sku| ("sku", sku.to_owned())));
        query.extend(cursor.map(|cursor| ("cursor", cursor.to_owned())));
        self.send(self.request(Method::GET, "/v1/contracts").query(&query))
            .await
    }

    /// `POST /v1/contracts/{id}/delivery` (the contract's provider): reports delivery and settles.
    /// Retrying with the same `idempotency_key` returns the same settlement.
    pub async fn report_delivery(
        &self,
        contract: Uuid,
        delivery: &NewDelivery,
    ) -> Result<Settlement, Error> {
        self.post_idempotent(&format!("/v1/contracts/{contract}/delivery"), delivery)
            .await
    }

    /// `POST /v1/quotes` (buyer): what `bid` would get against the current book, with nothing
    /// written or held. The bid's `idempotency_key` is not sent.
    pub async fn quote(&self, bid: &NewBid) -> Result<Quote, Error> {
        let mut body = serde_json::to_value(bid).map_err(|error| Error::Unexpected {
            status: reqwest::StatusCode::OK,
            detail: error.to_string(),
        })?;
        if let Some(fields) = body.as_object_mut() {
            fields.remove("idempotency_key");
        }
        self.send_retrying(self.request(Method::POST, "/v1/quotes").json(&body))
            .await
    }

    /// `POST /v1/withdrawals` (buyer, provider, hub operator): asks for money to be paid out; the
    /// amount leaves `available` at once. Retrying with the same `idempotency_key` returns the same
    /// withdrawal.
    pub async fn withdraw(&self, withdrawal: &NewWithdrawal) -> Result<Withdrawal, Error> {
        self.post_idempotent("/v1/withdrawals", withdrawal).await
    }

    /// `GET /v1/withdrawals`: one page of the caller's withdrawals (the admin's: everyone's),
    /// newest first.
    pub async fn withdrawals(
        &self,
        status: Option<WithdrawalStatus>,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<Page<Withdrawal>, Error> {
        let mut query = vec![("limit", limit.to_string())];
        query.extend(status.map(|status| ("status", status.as_str().to_owned())));
        query.extend(cursor.map(|cursor| ("cursor", cursor.to_owned())));
        self.send_retrying(self.request(Method::GET, "/v1/withdrawals").query(&query))
            .await
    }

    /// Every withdrawal the caller may see (all pages), newest first.
    pub async fn all_withdrawals(
        &self,
        status: Option<WithdrawalStatus>,
    ) -> Result<Vec<Withdrawal>, Error> {
        Paged::new(move |cursor| async move {
            self.withdrawals(status, cursor.as_deref(), PAGE_MAX).await
        })
        .collect()
        .await
    }

    /// `POST /v1/withdrawals/{id}/paid` (admin): the money has left the exchange. Repeating it
    /// with the same bank reference returns the same withdrawal.
    pub async fn mark_withdrawal_paid(
        &self,
        withdrawal: Uuid,
        paid: &WithdrawalPaid,
    ) -> Result<Withdrawal, Error> {
        self.post_idempotent(&format!("/v1/withdrawals/{withdrawal}/paid"), paid)
            .await
    }

    /// `POST /v1/withdrawals/{id}/rejected` (admin): the money goes back to `available`.
    /// Repeating it with the same reason returns the same withdrawal.
    pub async fn reject_withdrawal(
        &self,
        withdrawal: Uuid,
        rejected: &WithdrawalRejected,
    ) -> Result<Withdrawal, Error> {
        self.post_idempotent(&format!("/v1/withdrawals/{withdrawal}/rejected"), rejected)
            .await
    }

    /// `GET /v1/accounts/me/entries`: one page of the caller's statement, oldest first, entries
    /// made in `[from, to)`.
    pub async fn statement(
        &self,
        from: Option<chrono::DateTime<chrono::Utc>>,
        to: Option<chrono::DateTime<chrono::Utc>>,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<Page<StatementEntry>, Error> {
        let mut query = vec![("limit", limit.to_string())];
        query.extend(from.map(|from| ("from", from.to_rfc3339())));
        query.extend(to.map(|to| ("to", to.to_rfc3339())));
        query.extend(cursor.map(|cursor| ("cursor", cursor.to_owned())));
        self.send_retrying(
            self.request(Method::GET, "/v1/accounts/me/entries")
                .query(&query),
        )
        .await
    }

    /// The caller's whole statement for `[from, to)` (all pages), oldest first.
    pub async fn full_statement(
        &self,
        from: Option<chrono::DateTime<chrono::Utc>>,
        to: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<Vec<StatementEntry>, Error> {
        Paged::new(move |cursor| async move {
            self.statement(from, to, cursor.as_deref(), PAGE_MAX).await
        })
        .collect()
        .await
    }

    /// `GET /v1/hubs/{hub}/contracts` (that hub's operator, regulators): contracts made in the
    /// hub in `[from, to)`, newest first.
    pub async fn hub_contracts(
        &self,
        hub: &str,
        from: Option<chrono::DateTime<chrono::Utc>>,
        to: Option<chrono::DateTime<chrono::Utc>>,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<Page<Contract>, Error> {
        let mut query = vec![("limit", limit.to_string())];
        query.extend(from.map(|from| ("from", from.to_rfc3339())));
        query.extend(to.map(|to| ("to", to.to_rfc3339())));
        query.extend(cursor.map(|cursor| ("cursor", cursor.to_owned())));
        self.send_retrying(
            self.request(Method::GET, &format!("/v1/hubs/{}/contracts", segment(hub)))
                .query(&query),
        )
        .await
    }

    /// `GET /v1/hubs/{hub}/decisions` (that hub's operator, regulators): every policy decision
    /// taken for the hub, newest first; `kind` (`pricing`, `compliance`) and `outcome`
    /// (`allowed`, `denied`, `quoted`, `rejected`, `fault`) narrow it.
    pub async fn hub_decisions(
        &self,
        hub: &str,
        kind: Option<&str>,
        outcome: Option<&str>,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<Page<HubDecision>, Error> {
        let mut query = vec![("limit", limit.to_string())];
        query.extend(kind.map(|kind| ("kind", kind.to_owned())));
        query.extend(outcome.map(|outcome| ("outcome", outcome.to_owned())));
        query.extend(cursor.map(|cursor| ("cursor", cursor.to_owned())));
        self.send_retrying(
            self.request(Method::GET, &format!("/v1/hubs/{}/decisions", segment(hub)))
                .query(&query),
        )
        .await
    }

    /// `GET /v1/hubs/{hub}/faults` (that hub's operator, regulators): policy faults, newest first.
    pub async fn hub_faults(
        &self,
        hub: &str,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<Page<HubFault>, Error> {
        let mut query = vec![("limit", limit.to_string())];
        query.extend(cursor.map(|cursor| ("cursor", cursor.to_owned())));
        self.send_retrying(
            self.request(Method::GET, &format!("/v1/hubs/{}/faults", segment(hub)))
                .query(&query),
        )
        .await
    }

    /// `GET /v1/audit/contracts` (regulator): contracts with their settlements, newest first.
    pub async fn audit_contracts(
        &self,
        filter: &AuditFilter,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<Page<AuditedContract>, Error> {
        let mut query = filter.query();
        query.push(("limit", limit.to_string()));
        query.extend(cursor.map(|cursor| ("cursor", cursor.to_owned())));
        self.send(
            self.request(Method::GET, "/v1/audit/contracts")
                .query(&query),
        )
        .await
    }

    /// `GET /v1/audit/export` (regulator): every contract in `[from, to)` as CSV or JSON Lines,
    /// written to `out` as it streams in; `progress` gets the bytes received so far. Returns the
    /// bytes written.
    pub async fn audit_export(
        &self,
        format: ExportFormat,
        filter: &AuditFilter,
        out: &mut (impl std::io::Write + ?Sized),
        mut progress: impl FnMut(u64),
    ) -> Result<u64, Error> {
        let mut query = filter.query();
        query.push(("format", format.as_str().to_owned()));
        let mut response = self
            .request(Method::GET, "/v1/audit/export")
            .query(&query)
            .send()
            .await?;
        if !response.status().is_success() {
            return decode::<()>(response).await.map(|_| 0);
        }
        let mut written = 0;
        while let Some(chunk) = response.chunk().await? {
            out.write_all(&chunk).map_err(|error| Error::Unexpected {
                status: reqwest::StatusCode::OK,
                detail: error.to_string(),
            })?;
            written += chunk.len() as u64;
            progress(written);
        }
        Ok(written)
    }

    /// `GET /v1/audit/stats` (regulator).
    pub async fn audit_stats(&self, filter: &AuditFilter) -> Result<Stats, Error> {
        self.send(
            self.request(Method::GET, "/v1/audit/stats")
                .query(&filter.query()),
        )
        .await
    }

    /// `POST /v1/hubs/{hub}/policies?kind=` (that hub's operator): uploads a policy module.
    pub async fn upload_policy(
        &self,
        hub: &str,
        kind: &str,
        module: Vec<u8>,
    ) -> Result<PolicySummary, Error> {
        let builder = self
            .request(Method::POST, &format!("/v1/hubs/{hub}/policies"))
            .query(&[("kind", kind)])
            .header(reqwest::header::CONTENT_TYPE, "application/wasm")
            .body(module);
        self.send(builder).await
    }

    /// `GET /v1/hubs/{hub}/policies`: every stored version, with which is active.
    pub async fn policies(&self, hub: &str) -> Result<Vec<PolicySummary>, Error> {
        self.get(&format!("/v1/hubs/{hub}/policies")).await
    }

    /// `POST /v1/hubs/{hub}/policies/{digest}/activate`.
    pub async fn activate_policy(&self, hub: &str, digest: &str) -> Result<PolicySummary, Error> {
        self.send(self.request(
            Method::POST,
            &format!("/v1/hubs/{hub}/policies/{digest}/activate"),
        ))
        .await
    }

    /// `POST /v1/hubs/{hub}/policies/{digest}/dry-run`: evaluates without activating.
    pub async fn dry_run_policy(
        &self,
        hub: &str,
        digest: &str,
        request: &DryRunRequest,
    ) -> Result<PolicyDecision, Error> {
        self.post(
            &format!("/v1/hubs/{hub}/policies/{digest}/dry-run"),
            request,
        )
        .await
    }

    /// `GET /v1/policies/{digest}/module`: the stored bytes.
    pub async fn policy_module(&self, digest: &str) -> Result<Vec<u8>, Error> {
        let response = self
            .request(Method::GET, &format!("/v1/policies/{digest}/module"))
            .send()
            .await?;
        if !response.status().is_success() {
            return decode::<Vec<u8>>(response).await;
        }
        Ok(response.bytes().await?.to_vec())
    }

    /// `POST /v1/audit/contracts/{id}/replay` (regulator): re-executes a contract's decisions.
    pub async fn replay_contract(&self, contract: Uuid) -> Result<ReplayReport, Error> {
        self.send(self.request(
            Method::POST,
            &format!("/v1/audit/contracts/{contract}/replay"),
        ))
        .await
    }

    /// `GET /v1/market/book`: resting orders aggregated by price.
    pub async fn market_book(
        &self,
        sku: Option<&str>,
        hub: Option<&str>,
    ) -> Result<MarketBook, Error> {
        let mut query = Vec::new();
        query.extend(sku.map(|sku| ("sku", sku)));
        query.extend(hub.map(|hub| ("hub", hub)));
        self.send(self.request(Method::GET, "/v1/market/book").query(&query))
            .await
    }

    /// `GET /v1/market/trades`: recent contracts without participant ids.
    pub async fn market_trades(
        &self,
        sku: Option<&str>,
        hub: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Trade>, Error> {
        let mut query = vec![("limit", limit.to_string())];
        query.extend(sku.map(|sku| ("sku", sku.to_owned())));
        query.extend(hub.map(|hub| ("hub", hub.to_owned())));
        self.send(self.request(Method::GET, "/v1/market/trades").query(&query))
            .await
    }

    /// `GET /v1/market/candles`: the candles of `sku` (in `hub`, or all hubs) starting in
    /// `[from, to)` (defaults: the 168 intervals up to now), oldest first.
    pub async fn candles(
        &self,
        sku: &str,
        hub: Option<&str>,
        interval: CandleInterval,
        from: Option<chrono::DateTime<chrono::Utc>>,
        to: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<Vec<Candle>, Error> {
        let mut query = vec![
            ("sku", sku.to_owned()),
            ("interval", interval.as_str().to_owned()),
        ];
        query.extend(hub.map(|hub| ("hub", hub.to_owned())));
        query.extend(from.map(|from| ("from", from.to_rfc3339())));
        query.extend(to.map(|to| ("to", to.to_rfc3339())));
        self.send_retrying(
            self.request(Method::GET, "/v1/market/candles")
                .query(&query),
        )
        .await
    }

    /// `GET /v1/market/index`: the price index of `sku`, nationally and per hub.
    pub async fn market_index(&self, sku: &str) -> Result<MarketIndex, Error> {
        self.send_retrying(
            self.request(Method::GET, "/v1/market/index")
                .query(&[("sku", sku)]),
        )
        .await
    }

    /// `GET /v1/audit/log` (regulator): entries after `after_seq`, at most `limit` of them.
    pub async fn audit_log(&self, after_seq: i64, limit: u32) -> Result<AuditPage, Error> {
        self.get(&format!(
            "/v1/audit/log?after_seq={after_seq}&limit={limit}"
        ))
        .await
    }

    /// `GET /v1/audit/checkpoint`: the latest signed checkpoint, as the signed note's text.
    /// Check it with [`crate::proof::verify_checkpoint`] against a pinned key.
    pub async fn checkpoint(&self) -> Result<String, Error> {
        let response = self
            .request(Method::GET, "/v1/audit/checkpoint")
            .send()
            .await?;
        let status = response.status();
        if status.is_success() {
            return Ok(response.text().await?);
        }
        decode::<String>(response).await
    }

    /// `GET /v1/audit/checkpoint/key` (public): the checkpoint signing key.
    pub async fn checkpoint_key(&self) -> Result<CheckpointKey, Error> {
        self.get("/v1/audit/checkpoint/key").await
    }

    /// `GET /v1/audit/proof/inclusion` (regulator): the proof that entry `seq` is in the tree of
    /// `tree_size` entries.
    pub async fn inclusion_proof(&self, seq: i64, tree_size: u64) -> Result<InclusionProof, Error> {
        self.get(&format!(
            "/v1/audit/proof/inclusion?seq={seq}&tree_size={tree_size}"
        ))
        .await
    }

    /// `GET /v1/audit/proof/consistency` (regulator): the proof that the tree of `second` entries
    /// extends the tree of `first`.
    pub async fn consistency_proof(
        &self,
        first: u64,
        second: u64,
    ) -> Result<ConsistencyProof, Error> {
        self.get(&format!(
            "/v1/audit/proof/consistency?first={first}&second={second}"
        ))
        .await
    }

    /// `GET /v1/contracts/{id}/proof` (its parties, regulators): the contract's audit entries
    /// with their inclusion proofs against the latest checkpoint. Check it with
    /// [`crate::proof::verify_contract_proof`].
    pub async fn contract_proof(&self, id: Uuid) -> Result<ContractProof, Error> {
        self.get(&format!("/v1/contracts/{id}/proof")).await
    }

    /// The leaf hashes (RFC 6962, of each entry's `canonical`) of the first `count` entries of
    /// the audit log, downloaded `page_size` at a time: what a regulator recomputes a checkpoint's
    /// root from ([`crate::proof::root`]).
    pub async fn audit_leaf_hashes(
        &self,
        count: u64,
        page_size: u32,
    ) -> Result<Vec<crate::proof::Hash>, Error> {
        let mut leaves = Vec::with_capacity(count as usize);
        let mut after_seq = 0;
        while (leaves.len() as u64) < count {
            let page = self.audit_log(after_seq, page_size).await?;
            let Some(last) = page.items.last().map(|entry| entry.seq) else {
                break;
            };
            for entry in page
                .items
                .iter()
                .take((count - leaves.len() as u64) as usize)
            {
                let expected = leaves.len() as i64 + 1;
                let leaf = crate::proof::entry_leaf_hash(entry)
                    .ok()
                    .filter(|_| entry.seq == expected)
                    .ok_or_else(|| Error::Unexpected {
                        status: reqwest::StatusCode::OK,
                        detail: format!(
                            "audit entry {} (expected {expected}) is out of place or not its own fields",
                            entry.seq
                        ),
                    })?;
                leaves.push(leaf);
            }
            after_seq = last;
        }
        Ok(leaves)
    }

    /// `GET /v1/audit/verify` (regulator): the server's own check of the chain.
    pub async fn audit_verify(&self) -> Result<AuditVerification, Error> {
        self.get("/v1/audit/verify").await
    }

    /// Downloads the whole audit log, `page_size` entries at a time, and recomputes the chain
    /// here, trusting nothing the server says about it. `progress` is called after every page
    /// with the number of entries checked so far.
    pub async fn verify_audit_chain(
        &self,
        page_size: u32,
        mut progress: impl FnMut(u64),
    ) -> Result<AuditVerification, Error> {
        let mut verifier = ChainVerifier::new();
        let mut after_seq = 0;
        let mut checked = 0;
        loop {
            let page = self.audit_log(after_seq, page_size).await?;
            verifier.push_page(&page.items);
            checked += page.items.len() as u64;
            progress(checked);
            match page.next_after_seq {
                Some(next) if !page.items.is_empty() => after_seq = next,
                _ => break,
            }
        }
        Ok(verifier.finish())
    }
}

/// Which contracts a regulator's query covers; every field is optional.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub from: Option<chrono::DateTime<chrono::Utc>>,
    pub to: Option<chrono::DateTime<chrono::Utc>>,
    pub hub: Option<String>,
    pub sku: Option<String>,
    pub participant: Option<Uuid>,
}

impl AuditFilter {
    fn query(&self) -> Vec<(&'static str, String)> {
        let mut query = Vec::new();
        query.extend(self.from.map(|at| {
            (
                "from",
                at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            )
        }));
        query.extend(self.to.map(|at| {
            (
                "to",
                at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            )
        }));
        query.extend(self.hub.clone().map(|hub| ("hub", hub)));
        query.extend(self.sku.clone().map(|sku| ("sku", sku)));
        query.extend(self.participant.map(|id| ("participant", id.to_string())));
        query
    }
}

/// The formats of `GET /v1/audit/export`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Csv,
    JsonLines,
}

impl ExportFormat {
    fn as_str(self) -> &'static str {
        match self {
            ExportFormat::Csv => "csv",
            ExportFormat::JsonLines => "jsonl",
        }
    }
}

/// `text` as one path segment: anything but letters, digits, `-` and `_` percent-encoded, so that
/// a code a user typed cannot reach another path.
fn segment(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' => (byte as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

fn list_query(
    status: Option<OrderStatus>,
    cursor: Option<&str>,
    limit: u32,
) -> Vec<(&'static str, String)> {
    let mut query = vec![("limit", limit.to_string())];
    query.extend(status.map(|status| ("status", status.as_str().to_owned())));
    query.extend(cursor.map(|cursor| ("cursor", cursor.to_owned())));
    query
}

/// Turns a response into `T`, or into [`Error::Api`] when the server refused.
pub(crate) async fn decode<T: DeserializeOwned>(response: Response) -> Result<T, Error> {
    let status = response.status();
    let bytes = response.bytes().await?;
    if status.is_success() {
        return serde_json::from_slice(&bytes).map_err(|error| Error::Unexpected {
            status,
            detail: error.to_string(),
        });
    }
    match serde_json::from_slice::<ErrorBody>(&bytes) {
        Ok(body) => Err(Error::Api {
            status,
            code: body.code,
            message: body.message,
        }),
        Err(_) => Err(Error::Unexpected {
            status,
            detail: String::from_utf8_lossy(&bytes).into_owned(),
        }),
    }
}
