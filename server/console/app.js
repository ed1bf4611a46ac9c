// The Suanli web console. Plain JavaScript modules, no build step: it talks to this exchange's own
// REST API (same origin) and draws charts with Apache ECharts, served by the exchange too.
// The access token lives in sessionStorage (this tab only), never in a URL.

const TOKEN_KEY = "suanli.token";
const $ = (selector, root = document) => root.querySelector(selector);

// ---------------------------------------------------------------------------------------------
// Talking to the exchange

class ApiError extends Error {
  constructor(status, code, message) {
    super(`${message} (${code})`);
    this.status = status;
    this.code = code;
  }
}

async function api(method, path, body, { raw = false, contentType } = {}) {
  const headers = {};
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers.Authorization = `Bearer ${token}`;
  let payload;
  if (body instanceof Blob) {
    payload = body;
    headers["Content-Type"] = contentType || "application/octet-stream";
  } else if (body !== undefined) {
    payload = JSON.stringify(body);
    headers["Content-Type"] = "application/json";
  }
  const response = await fetch(path, { method, headers, body: payload });
  if (response.status === 401 && token && sessionStorage.getItem(TOKEN_KEY) === token) {
    // The token expired or was revoked (a new key, a suspension): back to the sign-in form.
    signOut("Your session ended; sign in again.");
  }
  if (!response.ok) {
    let code = `http_${response.status}`;
    let message = response.statusText;
    try {
      const error = await response.json();
      code = error.code || code;
      message = error.message || message;
    } catch (_) { /* not JSON */ }
    throw new ApiError(response.status, code, message);
  }
  if (raw) return response;
  if (response.status === 204) return null;
  return response.json();
}

const get = (path) => api("GET", path);
const post = (path, body) => api("POST", path, body);

function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") search.set(key, value);
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

/// A random idempotency key (crypto.randomUUID needs a secure context; this works everywhere).
function idempotencyKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
  return `console-${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

// ---------------------------------------------------------------------------------------------
// Small helpers for the page

function escapeHtml(value) {
  return String(value ?? "").replace(/[&<>"']/g, (c) => ({
    "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;",
  })[c]);
}

/// Markup the page itself built (never data from the API, which cannot make one of these).
class Raw {
  constructor(text) { this.text = text; }
}

/// An HTML template whose interpolations are escaped (use `html.raw` to insert markup).
function html(strings, ...values) {
  const piece = (v) => (v instanceof Raw ? v.text : escapeHtml(v));
  return strings.reduce((out, part, i) => {
    if (i === 0) return part;
    const value = values[i - 1];
    return out + (Array.isArray(value) ? value.map(piece).join("") : piece(value)) + part;
  }, "");
}
html.raw = (text) => new Raw(text);

function say(message, kind = "info") {
  const status = $("#status");
  status.textContent = message;
  status.dataset.kind = kind;
}

function sayError(error) {
  say(error instanceof ApiError ? `Refused: ${error.message}` : `Failed: ${error.message}`, "error");
}

function when(at) {
  if (!at) return "";
  return at.replace("T", " ").replace(/:\d\d(\.\d+)?Z$/, "Z").replace(/:\d\dZ$/, "Z");
}

function hoursOf(window) {
  return window ? Math.round((new Date(window.end) - new Date(window.start)) / 3600_000) : "";
}

function windowText(window) {
  return window ? `${when(window.start)} → ${when(window.end)}` : "";
}

/// The start of the current UTC hour, as the API writes times.
function currentHour() {
  const now = new Date();
  now.setUTCMinutes(0, 0, 0);
  return now.toISOString().replace(".000Z", "Z");
}

function addHours(iso, hours) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) throw new Error(`"${iso}" is not a time such as ${currentHour()}`);
  return new Date(date.getTime() + hours * 3600_000).toISOString().replace(".000Z", "Z");
}

/// A table body from rows; `columns` are [heading, cell(row) → html string, class?].
function table(id, caption, columns, rows, empty = "Nothing yet.") {
  const head = columns.map(([title, , cls]) => `<th scope="col"${cls ? ` class="${cls}"` : ""}>${escapeHtml(title)}</th>`).join("");
  const body = rows.length
    ? rows.map((row) => `<tr>${columns.map(([, cell, cls]) => `<td${cls ? ` class="${cls}"` : ""}>${cell(row)}</td>`).join("")}</tr>`).join("")
    : `<tr><td colspan="${columns.length}" class="empty">${escapeHtml(empty)}</td></tr>`;
  return `<table id="${id}"><caption>${escapeHtml(caption)}</caption><thead><tr>${head}</tr></thead><tbody>${body}</tbody></table>`;
}

function field(id, label, input) {
  return `<div class="field"><label for="${id}">${escapeHtml(label)}</label>${input}</div>`;
}

function options(items, selected) {
  return items.map(([value, label]) => `<option value="${escapeHtml(value)}"${value === selected ? " selected" : ""}>${escapeHtml(label)}</option>`).join("");
}

/// Runs an action from a button, showing failures and keeping the button busy meanwhile.
async function busy(button, action) {
  button.disabled = true;
  try {
    await action();
  } catch (error) {
    sayError(error);
  } finally {
    button.disabled = false;
  }
}

// ---------------------------------------------------------------------------------------------
// Reference data and the public market view

const reference = { hubs: [], skus: [], clusters: [] };

function hubLabel(code) {
  const hub = reference.hubs.find((h) => h.code === code);
  if (!hub) return code || "";
  return hub.name_zh ? `${hub.name_zh} ${hub.name}` : hub.name;
}

function hubCell(code) {
  const hub = reference.hubs.find((h) => h.code === code);
  const tier = hub ? hub.tier : "";
  return `<span class="tier-${escapeHtml(tier)}" title="${escapeHtml(code)}">${escapeHtml(hubLabel(code))}<span class="sr"> (${escapeHtml(tier)})</span></span>`;
}

// Approximate positions (longitude, latitude) of each hub's clusters, for the diagram.
const HUB_POSITIONS = {
  bth: [115.0, 40.8], yrd: [119.9, 31.0], gba: [113.6, 24.8], cy: [105.8, 30.0],
  nmg: [111.7, 40.8], gz: [106.6, 26.6], gs: [107.6, 35.7], nx: [105.2, 37.5],
};

const charts = {};

function chart(id) {
  const element = document.getElementById(id);
  if (!element || typeof echarts === "undefined") return null;
  const existing = echarts.getInstanceByDom(element);
  return existing || echarts.init(element, null, { renderer: "canvas" });
}

/// The hubs as a diagram: east and west coloured, node size by unit-hours, edges for flows.
function drawHubMap(id, volumeByHub, flows = []) {
  const instance = chart(id);
  if (!instance) return;
  charts[id] = instance;
  const maxVolume = Math.max(1, ...Object.values(volumeByHub));
  const maxFlow = Math.max(1, ...flows.map((f) => f.unit_hours));
  instance.setOption({
    aria: { enabled: true },
    animation: false,
    tooltip: {},
    series: [{
      type: "graph",
      layout: "none",
      roam: false,
      label: { show: true, position: "right", formatter: (p) => p.data.fullName, fontSize: 11 },
      edgeSymbol: ["none", "arrow"],
      edgeSymbolSize: 8,
      data: reference.hubs.map((hub) => {
        const [lon, lat] = HUB_POSITIONS[hub.code] || [110, 30];
        const volume = volumeByHub[hub.code] || 0;
        return {
          name: hub.code,
          fullName: `${hub.name_zh || ""} ${hub.name}`.trim(),
          x: lon * 10, y: -lat * 10,
          symbolSize: 12 + 28 * Math.sqrt(volume / maxVolume),
          itemStyle: { color: hub.tier === "east" ? "#0a4f9e" : "#a34400" },
          tooltip: { formatter: `${escapeHtml(hubLabel(hub.code))} (${hub.tier}): ${volume} unit-hours` },
        };
      }),
      links: flows.map((flow) => ({
        source: flow.from, target: flow.to,
        lineStyle: { width: 1 + 7 * (flow.unit_hours / maxFlow), color: "#6b6b6b", curveness: 0.2 },
        tooltip: { formatter: `${escapeHtml(hubLabel(flow.from))} → ${escapeHtml(hubLabel(flow.to))}: ${flow.unit_hours} unit-hours` },
      })),
    }],
  }, true);
}

async function loadReference() {
  const [hubs, skus] = await Promise.all([get("/v1/hubs"), get("/v1/skus")]);
  reference.hubs = hubs;
  reference.skus = skus;
  reference.clusters = hubs.flatMap((hub) => hub.clusters.map((c) => ({ ...c, hub: hub.code })));
  $("#market-sku").innerHTML = options(skus.map((s) => [s.code, `${s.name} (${s.code})`]));
  $("#market-hub").innerHTML = `<option value="">All hubs 全国</option>${options(hubs.map((h) => [h.code, hubLabel(h.code)]))}`;
  // Open on what traded last, if anything did.
  const [latest] = await get("/v1/market/trades?limit=1");
  if (latest) $("#market-sku").value = latest.sku;
}

const market = { trades: [] };

async function refreshMarket() {
  const sku = $("#market-sku").value;
  const hub = $("#market-hub").value;
  const interval = $("#market-interval").value;
  const [candles, index, trades] = await Promise.all([
    get(`/v1/market/candles${query({ sku, hub, interval })}`),
    get(`/v1/market/index${query({ sku })}`),
    get(`/v1/market/trades${query({ sku, hub, limit: 50 })}`),
  ]);
  drawCandles(candles);
  drawIndex(index);
  market.trades = trades;
  drawTrades();
  const volume = {};
  for (const row of index.hubs) volume[row.hub] = row.unit_hours_7d;
  drawHubMap("hub-map", volume);
}

function drawCandles(candles) {
  $("#candles-empty").hidden = candles.length > 0;
  const instance = chart("candles-chart");
  if (!instance) return;
  charts["candles-chart"] = instance;
  instance.setOption({
    aria: { enabled: true },
    animation: false,
    tooltip: { trigger: "axis" },
    grid: [{ left: 60, right: 20, top: 20, height: "58%" }, { left: 60, right: 20, top: "75%", height: "15%" }],
    xAxis: [
      { type: "category", data: candles.map((c) => when(c.start)), gridIndex: 0, axisLabel: { show: false } },
      { type: "category", data: candles.map((c) => when(c.start)), gridIndex: 1 },
    ],
    yAxis: [
      { type: "value", scale: true, gridIndex: 0, name: "CNY / unit-hour" },
      { type: "value", gridIndex: 1, name: "unit-hours", splitNumber: 2 },
    ],
    series: [
      {
        name: "price", type: "candlestick", xAxisIndex: 0, yAxisIndex: 0,
        // ECharts' order: open, close, lowest, highest.
        data: candles.map((c) => [Number(c.open), Number(c.close), Number(c.low), Number(c.high)]),
        itemStyle: { color: "#1d6b2c", color0: "#b00020", borderColor: "#1d6b2c", borderColor0: "#b00020" },
      },
      {
        name: "unit-hours", type: "bar", xAxisIndex: 1, yAxisIndex: 1,
        data: candles.map((c) => c.unit_hours), itemStyle: { color: "#6b7fa3" },
      },
    ],
  }, true);
}

function drawIndex(index) {
  const rows = [{ ...index.national, hub: null }, ...index.hubs];
  $("#index-table tbody").innerHTML = rows.map((row) => html`<tr>
      <th scope="row">${html.raw(row.hub ? hubCell(row.hub) : "National 全国")}</th>
      <td class="num">${row.last_24h ?? "—"}</td><td class="num">${row.unit_hours_24h}</td>
      <td class="num">${row.last_7d ?? "—"}</td><td class="num">${row.unit_hours_7d}</td></tr>`).join("");
}

function drawTrades() {
  const body = $("#trades-table tbody");
  if (!market.trades.length) {
    body.innerHTML = `<tr><td colspan="7" class="empty">No trades yet.</td></tr>`;
    return;
  }
  body.innerHTML = market.trades.slice(0, 50).map((t) => html`<tr>
      <td>${when(t.created_at)}</td><td>${html.raw(hubCell(t.hub))}</td><td>${t.cluster}</td><td>${t.sku}</td>
      <td class="num">${t.units}</td><td class="num">${hoursOf(t.window)}</td>
      <td class="num">${t.unit_price}</td></tr>`).join("");
}

// The live market: trades and book changes through Server-Sent Events (the browser resumes after
// the last event id by itself).
let refreshTimer = null;
function scheduleRefresh() {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(() => refreshMarket().catch(sayError), 500);
}

let streamRetry = 1000;
function connectStream() {
  const live = $("#live-status");
  const source = new EventSource("/v1/market/stream");
  source.addEventListener("open", () => {
    live.dataset.state = "live";
    live.textContent = "live";
    streamRetry = 1000;
  });
  source.addEventListener("error", () => {
    live.dataset.state = "down";
    live.textContent = "reconnecting…";
    // The browser retries by itself unless the server refused the stream (busy, unavailable):
    // then start again a little later, and catch up on what was missed.
    if (source.readyState === EventSource.CLOSED) {
      setTimeout(() => { connectStream(); scheduleRefresh(); }, streamRetry);
      streamRetry = Math.min(streamRetry * 2, 30_000);
    }
  });
  source.addEventListener("trade", (event) => {
    const trade = JSON.parse(event.data);
    const sku = $("#market-sku").value;
    const hub = $("#market-hub").value;
    if ((!sku || trade.sku === sku) && (!hub || trade.hub === hub)) {
      market.trades.unshift(trade);
      drawTrades();
    }
    scheduleRefresh();
    if (desk.onTrade) desk.onTrade(trade);
  });
  source.addEventListener("book", () => { if (desk.onBook) desk.onBook(); });
}

// ---------------------------------------------------------------------------------------------
// Signing in

const desk = { me: null, onTrade: null, onBook: null, generation: 0 };

/// A fresh, empty desk section (dropping the previous desk's listeners), for a new generation.
function freshDesk() {
  desk.generation += 1;
  desk.onTrade = null;
  desk.onBook = null;
  const old = $("#desk");
  const section = old.cloneNode(false);
  old.replaceWith(section);
  return section;
}

/// `refresh` for the current desk only: at most one at a time, later calls folded into one, and
/// nothing drawn once the desk is gone (signed out, or another sign-in).
function deskRefresher(refresh) {
  const generation = desk.generation;
  let running = null;
  let again = false;
  const run = async () => {
    if (generation !== desk.generation) return;
    if (running) {
      again = true;
      return running;
    }
    running = (async () => {
      try {
        do {
          again = false;
          await refresh(() => generation === desk.generation);
        } while (again && generation === desk.generation);
      } finally {
        running = null;
      }
    })();
    return running;
  };
  let timer = null;
  run.soon = () => {
    clearTimeout(timer);
    timer = setTimeout(() => run().catch(sayError), 300);
  };
  return run;
}

async function signIn(apiKey) {
  const token = await post("/v1/auth/token", { api_key: apiKey });
  sessionStorage.setItem(TOKEN_KEY, token.access_token);
  await openDesk();
}

function signOut(message = "Signed out.") {
  sessionStorage.removeItem(TOKEN_KEY);
  desk.me = null;
  freshDesk().hidden = true;
  $("#signin-form").hidden = false;
  $("#signed-in").hidden = true;
  say(message, message === "Signed out." ? "info" : "error");
}

async function openDesk() {
  let me;
  try {
    me = await get("/v1/participants/me");
  } catch (error) {
    if (error.status === 401) {
      sessionStorage.removeItem(TOKEN_KEY);
      say("Your session ended; sign in again.", "error");
      return;
    }
    throw error;
  }
  desk.me = me;
  $("#signin-form").hidden = true;
  $("#signed-in").hidden = false;
  $("#who").textContent = `${me.name} · ${me.kind.replace("_", " ")}${me.hub ? ` · ${hubLabel(me.hub)}` : ""}`;
  const open = { provider: providerDesk, buyer: buyerDesk, hub_operator: hubOperatorDesk, regulator: regulatorDesk }[me.kind];
  const section = freshDesk();
  section.hidden = false;
  if (!open) {
    section.innerHTML = html`<h2 id="desk-title">${me.kind} desk</h2>
      <p>This console has desks for providers, buyers, hub operators and regulators. Administrators
      use the command line (<code>suanli</code>) or the API.</p>`;
    return;
  }
  await open(section, me);
  say(`Signed in as ${me.name}.`, "ok");
}

// ---------------------------------------------------------------------------------------------
// Desks shared pieces

/// The newest `count` statement entries, newest first (the statement pages oldest first).
async function latestEntries(count) {
  let page = await get("/v1/accounts/me/entries?limit=500");
  let entries = page.items;
  for (let pages = 1; page.next_cursor && pages < 20; pages += 1) {
    page = await get(`/v1/accounts/me/entries${query({ limit: 500, cursor: page.next_cursor })}`);
    entries = entries.concat(page.items).slice(-count);
  }
  return entries.slice(-count).reverse();
}

async function accountPanel() {
  const account = await get("/v1/accounts/me");
  return html`<p id="account" class="panel">Available <strong id="account-available">${account.available}</strong> ${account.currency}
    · held <strong id="account-held">${account.held}</strong> ${account.currency}</p>`;
}

function contractColumns({ withParties = false, actions = null } = {}) {
  const columns = [
    ["Contract", (c) => `<code>${escapeHtml(c.id.slice(0, 8))}</code>`],
    ["Hub", (c) => hubCell(c.hub)],
    ["Cluster", (c) => escapeHtml(c.cluster)],
    ["SKU", (c) => escapeHtml(c.sku)],
    ["Units", (c) => escapeHtml(c.units), "num"],
    ["Window", (c) => escapeHtml(windowText(c.window))],
    ["Unit price", (c) => escapeHtml(c.unit_price), "num"],
    ["Notional", (c) => escapeHtml(c.notional), "num"],
    ["Status", (c) => escapeHtml(c.status)],
  ];
  if (withParties) {
    columns.push(["Buyer", (c) => `<code>${escapeHtml(c.buyer_id.slice(0, 8))}</code>`]);
    columns.push(["Provider", (c) => `<code>${escapeHtml(c.provider_id.slice(0, 8))}</code>`]);
  }
  if (actions) columns.push(["", actions]);
  return columns;
}

function reasonsList(reasons) {
  if (!reasons || !reasons.length) return "";
  return `<ul class="reasons">${reasons.map((r) => html`<li><code>${r.code}</code> ${r.hub ? `(${hubLabel(r.hub)}) ` : ""}${r.message}</li>`).join("")}</ul>`;
}

function windowFields(prefix) {
  return field(`${prefix}-start`, "Window start (UTC, whole hour)", `<input id="${prefix}-start" value="${currentHour()}" size="22" required>`)
    + field(`${prefix}-hours`, "Hours", `<input id="${prefix}-hours" type="number" min="1" max="8784" value="4" required>`);
}

function readWindow(prefix) {
  let typed = $(`#${prefix}-start`).value.trim();
  // Times are UTC: a time typed without a zone is read as UTC, not as the browser's zone.
  if (/^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d)?$/.test(typed)) typed += "Z";
  const hours = Number($(`#${prefix}-hours`).value);
  const start = addHours(typed, 0);
  return { start, end: addHours(start, hours) };
}

// ---------------------------------------------------------------------------------------------
// Provider desk: offers, contracts, delivery, earnings, withdrawals

async function providerDesk(section) {
  const clusterOptions = options(reference.clusters.map((c) => [c.code, `${c.name} — ${hubLabel(c.hub)}`]));
  const skuOptions = options(reference.skus.map((s) => [s.code, `${s.name} (${s.code})`]));
  section.innerHTML = html`<h2 id="desk-title">Provider desk</h2>
    <div id="account-slot"></div>
    <form id="offer-form" class="form panel" aria-labelledby="offer-title">
      <h3 id="offer-title" class="full">List an offer</h3>
      ${html.raw(field("offer-cluster", "Cluster", `<select id="offer-cluster">${clusterOptions}</select>`))}
      ${html.raw(field("offer-sku", "SKU", `<select id="offer-sku">${skuOptions}</select>`))}
      ${html.raw(field("offer-quantity", "Units", `<input id="offer-quantity" type="number" min="1" value="8" required>`))}
      ${html.raw(windowFields("offer"))}
      ${html.raw(field("offer-price", "Ask price (CNY per unit-hour)", `<input id="offer-price" value="10.00" inputmode="decimal" required>`))}
      ${html.raw(field("offer-green", "Green share %", `<input id="offer-green" type="number" min="0" max="100" value="50" required>`))}
      <button id="offer-submit" type="submit">List offer</button>
    </form>
    <div id="offer-result" aria-live="polite"></div>
    <div id="offers-slot" class="panel"></div>
    <div id="contracts-slot" class="panel"></div>
    <div id="statement-slot" class="panel"></div>
    <form id="withdrawal-form" class="form panel" aria-labelledby="withdrawal-title">
      <h3 id="withdrawal-title" class="full">Take money out</h3>
      ${html.raw(field("withdrawal-amount", "Amount (CNY)", `<input id="withdrawal-amount" inputmode="decimal" required>`))}
      ${html.raw(field("withdrawal-destination", "Bank account", `<input id="withdrawal-destination" required>`))}
      <button id="withdrawal-submit" type="submit">Request withdrawal</button>
    </form>
    <div id="withdrawals-slot" class="panel"></div>`;

  const refresh = deskRefresher(async (live) => {
    const [account, offers, contracts, entries, withdrawals] = await Promise.all([
      accountPanel(), get("/v1/offers?limit=50"), get("/v1/contracts?limit=50"),
      latestEntries(50), get("/v1/withdrawals?limit=50"),
    ]);
    if (!live()) return;
    $("#account-slot").innerHTML = account;
    $("#offers-slot").innerHTML = table("offers-table", "My offers", [
      ["Offer", (o) => `<code>${escapeHtml(o.id.slice(0, 8))}</code>`],
      ["Cluster", (o) => escapeHtml(o.cluster)], ["SKU", (o) => escapeHtml(o.sku)],
      ["Units", (o) => escapeHtml(o.quantity), "num"], ["Remaining", (o) => escapeHtml(o.remaining), "num"],
      ["Window", (o) => escapeHtml(windowText(o.window))], ["Ask", (o) => escapeHtml(o.ask_price), "num"],
      ["Status", (o) => escapeHtml(o.status)],
      ["", (o) => (o.status === "open" || o.status === "partially_filled"
        ? `<button type="button" class="secondary" data-cancel-offer="${escapeHtml(o.id)}" aria-label="Cancel offer ${escapeHtml(o.id.slice(0, 8))}">Cancel</button>` : "")],
    ], offers.items);
    $("#contracts-slot").innerHTML = table("provider-contracts", "Contracts (report delivery once the window has started)",
      contractColumns({
        actions: (c) => (c.status === "active"
          ? `<label class="sr" for="deliver-${escapeHtml(c.id)}">Delivered unit-hours</label>
             <input id="deliver-${escapeHtml(c.id)}" type="number" min="0" value="${escapeHtml(c.units * c.hours)}" size="6">
             <button type="button" data-deliver="${escapeHtml(c.id)}" aria-label="Report delivery of contract ${escapeHtml(c.id.slice(0, 8))}">Report delivery</button>` : ""),
      }), contracts.items);
    $("#statement-slot").innerHTML = table("statement", "Earnings statement (latest first)", [
      ["When", (e) => escapeHtml(when(e.at))], ["Kind", (e) => escapeHtml(e.kind)],
      ["Reference", (e) => `<code>${escapeHtml(e.reference)}</code>`],
      ["Amount", (e) => escapeHtml(e.amount), "num"], ["Balance after", (e) => escapeHtml(e.balance_after), "num"],
      ["Account", (e) => escapeHtml(e.account)],
    ], entries, "No movements yet.");
    $("#withdrawals-slot").innerHTML = table("withdrawals-table", "Withdrawals", [
      ["When", (w) => escapeHtml(when(w.created_at))], ["Amount", (w) => escapeHtml(w.amount), "num"],
      ["Destination", (w) => escapeHtml(w.destination)], ["Status", (w) => escapeHtml(w.status)],
      ["Bank reference / reason", (w) => escapeHtml(w.bank_reference || w.reason || "")],
    ], withdrawals.items);
  });

  $("#offer-form").addEventListener("submit", (event) => {
    event.preventDefault();
    busy($("#offer-submit"), async () => {
      const placed = await post("/v1/offers", {
        cluster: $("#offer-cluster").value,
        sku: $("#offer-sku").value,
        quantity: Number($("#offer-quantity").value),
        window: readWindow("offer"),
        ask_price: $("#offer-price").value.trim(),
        green_share: Number($("#offer-green").value),
        idempotency_key: idempotencyKey(),
      });
      $("#offer-result").innerHTML = html`<p class="ok">Offer <code>${placed.offer.id}</code> is ${placed.offer.status}
        (${placed.offer.remaining} units unsold, ${placed.contracts.length} contract(s) made).</p>`;
      say("Offer listed.", "ok");
      await refresh();
    });
  });
  $("#withdrawal-form").addEventListener("submit", (event) => {
    event.preventDefault();
    busy($("#withdrawal-submit"), async () => {
      const withdrawal = await post("/v1/withdrawals", {
        amount: $("#withdrawal-amount").value.trim(),
        destination: $("#withdrawal-destination").value.trim(),
        idempotency_key: idempotencyKey(),
      });
      say(`Withdrawal of ${withdrawal.amount} requested (${withdrawal.status}).`, "ok");
      await refresh();
    });
  });
  section.addEventListener("click", (event) => {
    const cancel = event.target.closest("[data-cancel-offer]");
    if (cancel) {
      busy(cancel, async () => {
        await api("DELETE", `/v1/offers/${cancel.dataset.cancelOffer}`);
        say("Offer cancelled.", "ok");
        await refresh();
      });
    }
    const deliver = event.target.closest("[data-deliver]");
    if (deliver) {
      const id = deliver.dataset.deliver;
      busy(deliver, async () => {
        const settlement = await post(`/v1/contracts/${id}/delivery`, {
          delivered_unit_hours: Number($(`#deliver-${CSS.escape(id)}`).value),
          idempotency_key: idempotencyKey(),
        });
        say(`Settled: paid ${settlement.provider_paid}, buyer refunded ${settlement.refunded}.`, "ok");
        await refresh();
      });
    }
  });
  desk.onTrade = refresh.soon;
  await refresh();
}

// ---------------------------------------------------------------------------------------------
// Buyer desk: quote, bid (with reasons), bids, contracts arriving live

async function buyerDesk(section) {
  const skuOptions = options(reference.skus.map((s) => [s.code, `${s.name} (${s.code})`]));
  const hubOptions = options(reference.hubs.map((h) => [h.code, hubLabel(h.code)]));
  section.innerHTML = html`<h2 id="desk-title">Buyer desk</h2>
    <div id="account-slot"></div>
    <form id="bid-form" class="form panel" aria-labelledby="bid-title">
      <h3 id="bid-title" class="full">Quote, then bid</h3>
      ${html.raw(field("bid-sku", "SKU", `<select id="bid-sku">${skuOptions}</select>`))}
      ${html.raw(field("bid-quantity", "Units", `<input id="bid-quantity" type="number" min="1" value="4" required>`))}
      ${html.raw(windowFields("bid"))}
      ${html.raw(field("bid-limit", "Limit price (CNY per unit-hour)", `<input id="bid-limit" value="12.00" inputmode="decimal" required>`))}
      ${html.raw(field("bid-hubs", "Hubs (none chosen: any)", `<select id="bid-hubs" multiple size="3">${hubOptions}</select>`))}
      ${html.raw(field("bid-origin", "Data origin hub", `<select id="bid-origin"><option value="">—</option>${hubOptions}</select>`))}
      ${html.raw(field("bid-latency", "Max latency ms", `<input id="bid-latency" type="number" min="1">`))}
      ${html.raw(field("bid-green", "Min green share %", `<input id="bid-green" type="number" min="0" max="100">`))}
      ${html.raw(field("bid-tif", "Time in force", `<select id="bid-tif">${options([["GTC", "good till cancelled"], ["IOC", "immediate or cancel"], ["FOK", "fill or kill"]])}</select>`))}
      <button id="quote-button" type="button" class="secondary">Quote</button>
      <button id="bid-button" type="submit">Place bid</button>
    </form>
    <div id="quote-result" class="panel" aria-live="polite" hidden></div>
    <div id="bid-result" class="panel" aria-live="polite" hidden></div>
    <div id="bids-slot" class="panel"></div>
    <div id="contracts-slot" class="panel"></div>`;

  const bidBody = () => {
    const hubs = [...$("#bid-hubs").selectedOptions].map((o) => o.value);
    const latency = $("#bid-latency").value;
    const green = $("#bid-green").value;
    return {
      skus: [$("#bid-sku").value],
      quantity: Number($("#bid-quantity").value),
      window: readWindow("bid"),
      limit_price: $("#bid-limit").value.trim(),
      hubs: hubs.length ? hubs : undefined,
      data_origin: $("#bid-origin").value || undefined,
      max_latency_ms: latency ? Number(latency) : undefined,
      min_green_share: green ? Number(green) : undefined,
      time_in_force: $("#bid-tif").value,
    };
  };

  const refresh = deskRefresher(async (live) => {
    const [account, bids, contracts] = await Promise.all([
      accountPanel(), get("/v1/bids?limit=50"), get("/v1/contracts?limit=50"),
    ]);
    if (!live()) return;
    $("#account-slot").innerHTML = account;
    $("#bids-slot").innerHTML = table("bids-table", "My bids", [
      ["Bid", (b) => `<code>${escapeHtml(b.id.slice(0, 8))}</code>`],
      ["SKUs", (b) => escapeHtml(b.skus.join(", "))], ["Units", (b) => escapeHtml(b.quantity), "num"],
      ["Remaining", (b) => escapeHtml(b.remaining), "num"], ["Window", (b) => escapeHtml(windowText(b.window))],
      ["Limit", (b) => escapeHtml(b.limit_price), "num"], ["Status", (b) => escapeHtml(b.status)],
      ["Why unfilled", (b) => reasonsList(b.reasons)],
      ["", (b) => (b.status === "open" || b.status === "partially_filled"
        ? `<button type="button" class="secondary" data-cancel-bid="${escapeHtml(b.id)}" aria-label="Cancel bid ${escapeHtml(b.id.slice(0, 8))}">Cancel</button>` : "")],
    ], bids.items);
    $("#contracts-slot").innerHTML = table("buyer-contracts", "My contracts (live)", contractColumns(), contracts.items);
  });

  $("#quote-button").addEventListener("click", () => busy($("#quote-button"), async () => {
    const quote = await post("/v1/quotes", bidBody());
    const result = $("#quote-result");
    result.hidden = false;
    result.innerHTML = html`<h3>Quote</h3>
      <p>Total <strong id="quote-total">${quote.total_notional}</strong> CNY; hold <strong>${quote.hold}</strong>;
      unfilled units <strong id="quote-unfilled">${quote.unfilled_units}</strong>.</p>
      ${html.raw(table("quote-fills", "Fills the bid would get now", [
        ["Hub", (f) => hubCell(f.hub)], ["Cluster", (f) => escapeHtml(f.cluster)], ["SKU", (f) => escapeHtml(f.sku)],
        ["Units", (f) => escapeHtml(f.units), "num"], ["Unit price", (f) => escapeHtml(f.unit_price), "num"],
        ["Notional", (f) => escapeHtml(f.notional), "num"],
      ], quote.fills, "No offer would fill it now."))}
      ${html.raw(reasonsList(quote.reasons))}`;
    say("Quoted: nothing was written or held.", "ok");
  }));
  $("#bid-form").addEventListener("submit", (event) => {
    event.preventDefault();
    busy($("#bid-button"), async () => {
      const placed = await post("/v1/bids", { ...bidBody(), idempotency_key: idempotencyKey() });
      const result = $("#bid-result");
      result.hidden = false;
      result.innerHTML = html`<h3>Bid <code>${placed.bid.id.slice(0, 8)}</code>: ${placed.bid.status}</h3>
        <p>${placed.contracts.length} contract(s) now; ${placed.bid.remaining} unit(s) remaining.</p>
        ${html.raw(reasonsList(placed.reasons))}`;
      say("Bid placed.", "ok");
      await refresh();
    });
  });
  section.addEventListener("click", (event) => {
    const cancel = event.target.closest("[data-cancel-bid]");
    if (cancel) {
      busy(cancel, async () => {
        await api("DELETE", `/v1/bids/${cancel.dataset.cancelBid}`);
        say("Bid cancelled; its hold is released.", "ok");
        await refresh();
      });
    }
  });
  desk.onTrade = refresh.soon;
  await refresh();
}

// ---------------------------------------------------------------------------------------------
// Hub operator desk: its hub's contracts, decisions (filtered), faults, policies with dry-run

async function hubOperatorDesk(section, me) {
  const hub = me.hub;
  const sample = {
    offer: {
      cluster: (reference.clusters.find((c) => c.hub === hub) || {}).code, sku: reference.skus[0]?.code,
      quantity: 4, window: { start: currentHour(), end: addHours(currentHour(), 2) }, ask_price: "10.00",
      green_share: 50, idempotency_key: "dry-run-offer",
    },
    bid: {
      skus: [reference.skus[0]?.code], quantity: 4, window: { start: currentHour(), end: addHours(currentHour(), 2) },
      limit_price: "12.00", idempotency_key: "dry-run-bid",
    },
  };
  section.innerHTML = html`<h2 id="desk-title">Hub operator desk — ${hubLabel(hub)}</h2>
    <div id="hub-contracts-slot" class="panel"></div>
    <div class="panel">
      <div class="controls">
        <label for="decisions-kind">Kind</label>
        <select id="decisions-kind">${html.raw(options([["", "all"], ["pricing", "pricing"], ["compliance", "compliance"]]))}</select>
        <label for="decisions-outcome">Outcome</label>
        <select id="decisions-outcome">${html.raw(options([["", "all"], ["allowed", "allowed"], ["denied", "denied"], ["quoted", "quoted"], ["rejected", "rejected"], ["fault", "fault"]]))}</select>
      </div>
      <div id="decisions-slot"></div>
    </div>
    <div id="faults-slot" class="panel"></div>
    <div id="policies-slot" class="panel"></div>
    <form id="upload-form" class="form panel" aria-labelledby="upload-title">
      <h3 id="upload-title" class="full">Upload a policy (WebAssembly component)</h3>
      ${html.raw(field("upload-kind", "Kind", `<select id="upload-kind">${options([["pricing", "pricing"], ["compliance", "compliance"]])}</select>`))}
      ${html.raw(field("upload-file", "Module file (.wasm)", `<input id="upload-file" type="file" accept=".wasm,application/wasm" required>`))}
      <button id="upload-submit" type="submit">Upload</button>
    </form>
    <form id="dry-run-form" class="panel" aria-labelledby="dry-run-title">
      <h3 id="dry-run-title">Dry-run a policy</h3>
      <div class="controls">
        <label for="dry-run-digest">Policy</label>
        <select id="dry-run-digest"></select>
      </div>
      <label for="dry-run-body">Offer and bid (JSON)</label>
      <textarea id="dry-run-body" spellcheck="false">${JSON.stringify(sample, null, 2)}</textarea>
      <button id="dry-run-button" type="submit">Dry-run</button>
      <pre id="dry-run-result" class="mono" aria-live="polite"></pre>
    </form>`;

  const base = `/v1/hubs/${encodeURIComponent(hub)}`;
  let decisionsAsked = 0;
  const refreshDecisions = async () => {
    // Only the answer to the latest question is drawn (filters change faster than answers come).
    const asked = ++decisionsAsked;
    const decisions = await get(`${base}/decisions${query({ kind: $("#decisions-kind").value, outcome: $("#decisions-outcome").value, limit: 50 })}`);
    if (asked !== decisionsAsked || !section.isConnected) return;
    $("#decisions-slot").innerHTML = table("decisions-table", "Policy decisions", [
      ["When", (d) => escapeHtml(when(d.at))], ["Kind", (d) => escapeHtml(d.kind)],
      ["Outcome", (d) => escapeHtml(d.outcome)], ["Policy", (d) => `<code>${escapeHtml(d.policy_digest.slice(0, 12))}</code>`],
      ["Bid", (d) => `<code>${escapeHtml(d.bid_id.slice(0, 8))}</code>`],
      ["Output", (d) => `<code>${escapeHtml(JSON.stringify(d.output))}</code>`], ["Fuel", (d) => escapeHtml(d.fuel_used), "num"],
    ], decisions.items, "No decisions match.");
  };
  const refresh = deskRefresher(async (live) => {
    const [contracts, faults, policies] = await Promise.all([
      get(`${base}/contracts?limit=50`), get(`${base}/faults?limit=50`), get(`${base}/policies`),
    ]);
    if (!live()) return;
    $("#hub-contracts-slot").innerHTML = table("hub-contracts", "Contracts made in this hub", contractColumns({ withParties: true }), contracts.items);
    $("#faults-slot").innerHTML = table("faults-table", "Policy faults", [
      ["When", (f) => escapeHtml(when(f.at))], ["Kind", (f) => escapeHtml(f.kind)], ["Class", (f) => escapeHtml(f.class)],
      ["Policy", (f) => `<code>${escapeHtml(f.policy_digest.slice(0, 12))}</code>`], ["Message", (f) => escapeHtml(f.message)],
    ], faults.items, "No faults.");
    $("#policies-slot").innerHTML = table("policies-table", "Policies", [
      ["Digest", (p) => `<code>${escapeHtml(p.digest.slice(0, 16))}</code>`], ["Kind", (p) => escapeHtml(p.kind)],
      ["Status", (p) => escapeHtml(p.status)], ["Size", (p) => escapeHtml(p.size_bytes), "num"],
      ["Uploaded", (p) => escapeHtml(when(p.uploaded_at))],
      ["", (p) => (p.status !== "active" ? `<button type="button" class="secondary" data-activate="${escapeHtml(p.digest)}" aria-label="Activate policy ${escapeHtml(p.digest.slice(0, 12))}">Activate</button>` : "")],
    ], policies, "No policies uploaded.");
    const digest = $("#dry-run-digest");
    const chosen = digest.value;
    digest.innerHTML = options(policies.map((p) => [p.digest, `${p.kind} ${p.digest.slice(0, 12)} (${p.status})`]), chosen);
    await refreshDecisions();
  });

  $("#decisions-kind").addEventListener("change", () => refreshDecisions().catch(sayError));
  $("#decisions-outcome").addEventListener("change", () => refreshDecisions().catch(sayError));
  $("#upload-form").addEventListener("submit", (event) => {
    event.preventDefault();
    busy($("#upload-submit"), async () => {
      const file = $("#upload-file").files[0];
      const stored = await api("POST", `${base}/policies${query({ kind: $("#upload-kind").value })}`, file, { contentType: "application/wasm" });
      say(`Stored ${stored.kind} policy ${stored.digest.slice(0, 12)} (${stored.size_bytes} bytes).`, "ok");
      await refresh();
    });
  });
  $("#dry-run-form").addEventListener("submit", (event) => {
    event.preventDefault();
    busy($("#dry-run-button"), async () => {
      let body;
      try {
        body = JSON.parse($("#dry-run-body").value);
      } catch (error) {
        throw new Error(`the offer and bid are not JSON: ${error.message}`);
      }
      const decision = await post(`${base}/policies/${encodeURIComponent($("#dry-run-digest").value)}/dry-run`, body);
      $("#dry-run-result").textContent = JSON.stringify(decision, null, 2);
      say("Dry-run done: nothing was written.", "ok");
    });
  });
  section.addEventListener("click", (event) => {
    const activate = event.target.closest("[data-activate]");
    if (activate) {
      busy(activate, async () => {
        await post(`${base}/policies/${encodeURIComponent(activate.dataset.activate)}/activate`);
        say("Policy activated.", "ok");
        await refresh();
      });
    }
  });
  desk.onTrade = (trade) => { if (trade.hub === hub) refresh.soon(); };
  await refresh();
}

// ---------------------------------------------------------------------------------------------
// Regulator desk: chain and checkpoint, flows and green share, contract search, exports, denials

async function regulatorDesk(section) {
  const hubOptions = options(reference.hubs.map((h) => [h.code, hubLabel(h.code)]));
  const skuOptions = options(reference.skus.map((s) => [s.code, s.code]));
  section.innerHTML = html`<h2 id="desk-title">Regulator desk</h2>
    <div class="grid">
      <div class="panel">
        <h3>Audit chain</h3>
        <button id="verify-button" type="button">Verify the chain</button>
        <div id="verify-result" aria-live="polite"></div>
        <h3>Signed checkpoint</h3>
        <pre id="checkpoint-status" class="mono"></pre>
      </div>
      <figure class="panel">
        <figcaption>East→west flows: unit-hours contracted in a western hub for data from an eastern one</figcaption>
        <div id="flow-map" class="chart" role="img" aria-label="Diagram of flows between hubs"></div>
      </figure>
      <div id="stats-slot" class="panel wide"></div>
      <form id="search-form" class="form panel wide" aria-labelledby="search-title">
        <h3 id="search-title" class="full">Contracts</h3>
        ${html.raw(field("search-hub", "Hub", `<select id="search-hub"><option value="">any</option>${hubOptions}</select>`))}
        ${html.raw(field("search-sku", "SKU", `<select id="search-sku"><option value="">any</option>${skuOptions}</select>`))}
        ${html.raw(field("search-participant", "Participant id", `<input id="search-participant" size="36" spellcheck="false">`))}
        ${html.raw(field("search-from", "From (UTC)", `<input id="search-from" placeholder="2026-01-01T00:00:00Z" size="22">`))}
        ${html.raw(field("search-to", "To (UTC)", `<input id="search-to" size="22">`))}
        <button id="search-button" type="submit">Search</button>
        <button id="export-csv" type="button" class="secondary">Export CSV (From–To)</button>
        <button id="export-jsonl" type="button" class="secondary">Export JSON lines (From–To)</button>
        <p id="export-result" aria-live="polite" class="full"></p>
      </form>
      <div id="search-slot" class="panel wide"></div>
      <div id="denials-slot" class="panel wide"></div>
    </div>`;

  const search = () => ({
    hub: $("#search-hub").value, sku: $("#search-sku").value, participant: $("#search-participant").value.trim(),
    from: $("#search-from").value.trim(), to: $("#search-to").value.trim(),
  });
  let searchesAsked = 0;
  const runSearch = async () => {
    const asked = ++searchesAsked;
    const found = await get(`/v1/audit/contracts${query({ ...search(), limit: 100 })}`);
    if (asked !== searchesAsked || !section.isConnected) return;
    $("#search-slot").innerHTML = table("search-table", "Contracts found", [
      ...contractColumns({ withParties: true }),
      ["Data origin", (a) => escapeHtml(a.data_origin ? hubLabel(a.data_origin) : "")],
      ["Charged", (a) => escapeHtml(a.settlement ? a.settlement.charged : ""), "num"],
    ], found.items, "No contract matches.");
  };
  const refresh = deskRefresher(async (live) => {
    const stats = await get("/v1/audit/stats");
    if (!live()) return;
    const flows = stats.east_to_west.map((row) => {
      const [from, to] = row.key.split("→");
      return { from, to, unit_hours: row.unit_hours, row };
    });
    const volume = {};
    for (const row of stats.by_hub) volume[row.key] = row.unit_hours;
    drawHubMap("flow-map", volume, flows.filter((f) => HUB_POSITIONS[f.from] && HUB_POSITIONS[f.to]));
    $("#stats-slot").innerHTML = html`<h3>Volume and green share</h3>
      <p>Green share of delivered unit-hours: <strong id="green-share">${stats.green_share_of_delivered}</strong>
      (of ${stats.delivered_unit_hours} delivered unit-hours).</p>
      ${html.raw(table("flows-table", "East→west flows", [
        ["From (data)", (f) => hubCell(f.from)], ["To (compute)", (f) => hubCell(f.to)],
        ["Contracts", (f) => escapeHtml(f.row.contracts), "num"], ["Unit-hours", (f) => escapeHtml(f.unit_hours), "num"],
        ["Value", (f) => escapeHtml(f.row.value), "num"],
      ], flows, "No east→west contracts yet."))}
      ${html.raw(table("by-hub-table", "By hub", [
        ["Hub", (r) => hubCell(r.key)], ["Contracts", (r) => escapeHtml(r.contracts), "num"],
        ["Unit-hours", (r) => escapeHtml(r.unit_hours), "num"], ["Value", (r) => escapeHtml(r.value), "num"],
        ["Delivered", (r) => escapeHtml(r.delivered_unit_hours), "num"], ["Charged", (r) => escapeHtml(r.charged), "num"],
      ], stats.by_hub))}`;
    await loadCheckpoint();
    if (live()) await loadDenials();
    if (live()) await runSearch();
  });
  const loadCheckpoint = async () => {
    const element = $("#checkpoint-status");
    try {
      const response = await api("GET", "/v1/audit/checkpoint", undefined, { raw: true });
      element.textContent = await response.text();
    } catch (error) {
      element.textContent = error.status === 404
        ? "This exchange has not published a signed checkpoint yet."
        : `Could not read the checkpoint: ${error.message}`;
    }
  };
  const loadDenials = async () => {
    const pages = await Promise.all(reference.hubs.map((hub) =>
      get(`/v1/hubs/${encodeURIComponent(hub.code)}/decisions?kind=compliance&outcome=denied&limit=20`)));
    const denials = pages.flatMap((page) => page.items).sort((a, b) => (a.at < b.at ? 1 : -1)).slice(0, 50);
    $("#denials-slot").innerHTML = table("denials-table", "Compliance denials (latest)", [
      ["When", (d) => escapeHtml(when(d.at))], ["Hub", (d) => hubCell(d.hub)],
      ["Policy", (d) => `<code>${escapeHtml(d.policy_digest.slice(0, 12))}</code>`],
      ["Bid", (d) => `<code>${escapeHtml(d.bid_id.slice(0, 8))}</code>`],
      ["Reason", (d) => `<code>${escapeHtml(JSON.stringify(d.output))}</code>`],
    ], denials, "No compliance denials.");
  };
  let exportUrl = null;
  const exportAs = (format) => async () => {
    // The export covers every contract made between From and To (the other filters are the
    // search's); it is read whole into this tab before it can be saved.
    const { from, to } = search();
    const response = await api("GET", `/v1/audit/export${query({ format, from, to })}`, undefined, { raw: true });
    const text = await response.text();
    const lines = text.split("\n").filter((line) => line.length > 0).length;
    if (exportUrl) URL.revokeObjectURL(exportUrl);
    const url = URL.createObjectURL(new Blob([text], { type: format === "csv" ? "text/csv" : "application/x-ndjson" }));
    const link = document.createElement("a");
    exportUrl = url;
    link.href = url;
    link.download = `suanli-contracts.${format === "csv" ? "csv" : "jsonl"}`;
    link.textContent = `Save ${link.download}`;
    const result = $("#export-result");
    result.textContent = `Exported ${lines} line(s) as ${format}. `;
    result.append(link);
    say(`Export ready: ${lines} line(s).`, "ok");
  };

  $("#verify-button").addEventListener("click", () => busy($("#verify-button"), async () => {
    const verification = await get("/v1/audit/verify");
    const broken = (verification.invariants || []).filter((check) => !check.ok);
    $("#verify-result").innerHTML = html`<p class="${verification.ok ? "ok" : "error"}" id="verify-verdict">
        ${verification.ok ? "Chain intact"
          : verification.first_bad_seq != null ? `Chain broken at entry ${verification.first_bad_seq}`
            : "Chain intact, but an invariant is broken"}:
        ${verification.entries} entries, head <code>${verification.head_hash.slice(0, 16)}</code>.</p>
      ${html.raw(broken.length ? `<ul>${broken.map((b) => html`<li class="error">${b.name}: ${b.detail || "broken"}</li>`).join("")}</ul>` : "")}`;
    say(verification.ok ? "The audit chain verifies." : "The audit chain does NOT verify.", verification.ok ? "ok" : "error");
  }));
  $("#search-form").addEventListener("submit", (event) => {
    event.preventDefault();
    busy($("#search-button"), runSearch);
  });
  $("#export-csv").addEventListener("click", () => busy($("#export-csv"), exportAs("csv")));
  $("#export-jsonl").addEventListener("click", () => busy($("#export-jsonl"), exportAs("jsonl")));
  desk.onTrade = refresh.soon;
  await refresh();
}

// ---------------------------------------------------------------------------------------------
// Start

async function start() {
  $("#signin-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const input = $("#signin-key");
    const key = input.value.trim();
    input.value = "";
    busy($("#signin-button"), () => signIn(key));
  });
  $("#signout-button").addEventListener("click", signOut);
  for (const id of ["#market-sku", "#market-hub", "#market-interval"]) {
    $(id).addEventListener("change", () => refreshMarket().catch(sayError));
  }
  window.addEventListener("resize", () => Object.values(charts).forEach((c) => c.resize()));
  await loadReference();
  await refreshMarket().catch(sayError);
  connectStream();
  if (sessionStorage.getItem(TOKEN_KEY)) await openDesk();
  document.body.dataset.ready = "true";
}

start().catch(sayError);
