/* copybot dashboard (docs/dashboard.md). Every value from the daemon is put in the page as text
   (textContent, setAttribute), never parsed as HTML: ids and symbols come from config and venues.
   The control token lives in sessionStorage and goes out only in an Authorization header.

   Live updates: the server-sent event stream of /dashboard/events, read with fetch() because
   EventSource cannot send the Authorization header (needed when the API listens beyond loopback,
   and the token must never be in a URL). The page reconnects by itself with a backoff; every
   `state` event is the whole document, so the first one after a reconnect re-syncs the page. */
"use strict";

(() => {
  const TOKEN_KEY = "copybot.token";
  const SILENCE_MS = 15000; // the server sends a state at least every 5 s: a silent stream is dead
  const page = { token: sessionStorage.getItem(TOKEN_KEY) || "", doc: null, events: 0, reconnects: 0 };
  const $ = (id) => document.getElementById(id);
  const OUTCOME_WORDS = { at_target: "at target", unfilled: "not filled" };

  // -- building DOM from data, as text --------------------------------------------------------

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined) continue;
      if (k === "class") e.className = v;
      else e.setAttribute(k, String(v));
    }
    for (const c of children) {
      if (c === null || c === undefined) continue;
      e.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }

  function money(value) {
    if (value === null || value === undefined || value === "") return "–";
    const n = Number(value);
    if (!isFinite(n)) return String(value);
    const [int, frac] = Math.abs(n).toFixed(2).split(".");
    return (n < 0 && Number(frac) + Number(int) > 0 ? "-" : "") + int.replace(/\B(?=(\d{3})+(?!\d))/g, ",") + "." + frac;
  }

  function pct(value) {
    if (value === null || value === undefined) return "–";
    return (Number(value) * 100).toFixed(2) + "%";
  }

  function num(value, digits) {
    if (value === null || value === undefined) return "–";
    return Number(value).toFixed(digits);
  }

  function signClass(value) {
    if (value === null || value === undefined) return null;
    const n = Number(value);
    return n > 0 ? "pos" : n < 0 ? "neg" : null;
  }

  function cell(text, attrs) {
    return el("td", attrs, text);
  }

  function stateBadge(state, reason) {
    return el("span", { class: `badge state-${state.toLowerCase()}`, title: reason || null, "data-field": "state" }, state);
  }

  function time(ms) {
    return new Date(ms).toLocaleTimeString([], { hour12: false });
  }

  // -- sections -------------------------------------------------------------------------------

  function renderHeader(status) {
    const g = $("global-state");
    g.className = `badge state-${status.state.toLowerCase()}`;
    g.textContent = status.kill_switch ? "HALTED (kill switch)" : status.state.toUpperCase();
    g.title = status.state_reason || "";
    $("uptime").textContent = `up ${Math.round(status.uptime_s)} s · copy lag p50 ${num(status.internal_lag_ms.p50, 1)} ms`;
  }

  function renderLeads(doc) {
    const head = el("tr", {},
      ...["Lead", "AUM", "Cap", "Followers", "7 d", "30 d", "90 d", "All", "Max drawdown", "Win rate", "Trades",
        "Copier PnL", "Stream"].map((h) => el("th", {}, h)));
    const rows = doc.leads.map((r) => {
      const stream = (doc.status.leads[r.lead] || {}).stream || {};
      return el("tr", { "data-lead": r.lead },
        cell(r.lead, { class: "text" }),
        cell(money(r.aum), { "data-field": "aum", "data-value": r.aum }),
        cell(money(r.cap)),
        cell(r.followers, { "data-field": "followers" }),
        cell(pct(r.return_7d), { class: signClass(r.return_7d) }),
        cell(pct(r.return_30d), { class: signClass(r.return_30d) }),
        cell(pct(r.return_90d), { class: signClass(r.return_90d) }),
        cell(pct(r.return_all), { class: signClass(r.return_all) }),
        cell(pct(r.max_drawdown)),
        cell(pct(r.win_rate)),
        cell(r.trades === null ? "–" : r.trades),
        cell(money(r.copier_pnl), { class: signClass(r.copier_pnl), "data-field": "copier_pnl" }),
        cell(stream.live && stream.fresh ? "live" : stream.live ? "stale" : "down", { class: "text" }));
    });
    $("leads").replaceChildren(el("thead", {}, head), el("tbody", {}, ...rows));
  }

  function duration(seconds) {
    if (seconds === null || seconds === undefined) return "–";
    for (const [unit, size] of [["d", 86400], ["h", 3600], ["min", 60]]) {
      if (seconds >= size) return `${(seconds / size).toFixed(1)} ${unit}`;
    }
    return `${Math.round(seconds)} s`;
  }

  // AUM change = net flows + performance per lead over the last day, and retention (docs/aum.md).
  function renderFlows(doc) {
    const flows = doc.flows || {};
    const head = el("tr", {}, ...["Lead", "Start AUM", "Net flows", "Performance", "End AUM", "Joined", "Left",
      "Churn", "Following", "Median time followed"].map((h) => el("th", {}, h)));
    const rows = Object.entries(flows).map(([lead, f]) => {
      const p = f.period;
      const r = f.retention;
      return el("tr", { "data-lead": lead },
        cell(lead, { class: "text" }),
        cell(money(p.start_aum), { "data-field": "start_aum", "data-value": p.start_aum }),
        cell(money(p.net_flows), { class: signClass(p.net_flows), "data-field": "net_flows", "data-value": p.net_flows }),
        cell(money(p.performance),
          { class: signClass(p.performance), "data-field": "performance", "data-value": p.performance }),
        cell(money(p.end_aum), { "data-field": "end_aum", "data-value": p.end_aum }),
        cell(p.joined, { "data-field": "joined" }),
        cell(p.left, { "data-field": "left" }),
        cell(p.churn === null ? "–" : pct(p.churn)),
        cell(r.following, { "data-field": "following" }),
        cell(duration(r.median_followed_s), { title: `${r.censored} of ${r.spells} still following: counted up to now` }));
    });
    $("flows").replaceChildren(el("thead", {}, head), el("tbody", {}, ...rows));
    const events = [];
    for (const [lead, f] of Object.entries(flows)) {
      for (const e of f.recent) events.push([lead, e]);
    }
    events.sort((a, b) => b[1].ts_ms - a[1].ts_ms);
    $("flow-events").replaceChildren(...events.slice(0, 10).map(([lead, e]) =>
      el("li", { "data-lead": lead, "data-follower": e.follower, "data-kind": e.kind },
        el("span", { class: "muted" }, time(e.ts_ms)), " ",
        el("span", { class: "kind" }, e.kind), `${e.follower} → ${lead} `,
        el("span", { class: signClass(e.amount) }, money(e.amount)), el("span", { class: "muted" }, ` by ${e.actor}`))));
  }

  function controls(follower) {
    return ["halt", "reduce-only", "resume"].map((action) =>
      el("button", { type: "button", class: "ctl", "data-action": action, "data-follower": follower }, action));
  }

  function renderFollowers(doc) {
    const status = doc.status;
    const cards = doc.leads.map((lead) => {
      const ids = (status.leads[lead.lead] || {}).followers || [];
      const head = el("tr", {}, ...["Follower", "State", "Allocation", "Equity", "Queue", "Orders", "Last copy lag",
        "Slippage (mean / p90 bps)", "Control"].map((h) => el("th", {}, h)));
      const rows = [];
      for (const fid of ids) {
        const f = status.followers[fid];
        const extra = doc.followers[fid] || {};
        if (!f) continue;
        const slip = extra.slippage_bps;
        rows.push(el("tr", { "data-follower": fid, "data-lead": lead.lead },
          cell(fid, { class: "text" }),
          el("td", {}, stateBadge(f.state, f.reason)),
          cell(money(lead.allocations[fid]), { "data-field": "allocation", "data-value": lead.allocations[fid] }),
          cell(money(f.equity), { "data-field": "equity", "data-value": f.equity }),
          cell(f.queue),
          cell(f.orders_sent, { "data-field": "orders_sent" }),
          cell(extra.last_lag_ms === null || extra.last_lag_ms === undefined ? "–" : `${num(extra.last_lag_ms, 1)} ms`,
            { "data-field": "last_lag_ms" }),
          cell(slip ? `${num(slip.mean, 2)} / ${num(slip.p90, 2)} (${slip.count})` : "–"),
          el("td", {}, ...controls(fid))));
      }
      // The owner's hand-traded part of the position (docs/config.md, "Manual trades").
      const handNote = (p) => (p.manual && Number(p.manual) !== 0
        ? `${p.manual} traded by hand (copybot's own: ${p.own})` : "");
      const posHead = el("tr", {}, ...["Follower", "Symbol", "Position", "Target", "", "Note"].map((h) =>
        el("th", { class: ["Symbol", "Note"].includes(h) ? "text" : null }, h)));
      const posRows = [];
      for (const fid of ids) {
        const f = status.followers[fid];
        if (!f) continue;
        for (const [symbol, p] of Object.entries(f.positions)) {
          posRows.push(el("tr", { "data-follower": fid, "data-symbol": symbol, class: p.match ? null : "mismatch" },
            cell(fid, { class: "text" }), cell(symbol, { class: "text" }),
            cell(p.position, { "data-field": "position" }), cell(p.target, { "data-field": "target" }),
            cell(p.match ? "on target" : "off target"),
            cell(p.clipped || p.residual_below_min || handNote(p), { class: "text" })));
        }
      }
      // Each follower's results with this lead (status.followers[id].pnl, docs/pnl.md).
      const pnlHead = el("tr", {}, ...["Follower", "Window", "Realized", "Unrealized", "Fees", "Funding",
        "Slippage", "Net", "Fills"].map((h) => el("th", {}, h)));
      const pnlRows = [];
      for (const fid of ids) {
        const f = status.followers[fid];
        const mine = f && f.pnl && f.pnl.leads ? f.pnl.leads[lead.lead] : null;
        if (!mine) continue;
        for (const [span, t] of Object.entries(mine.windows)) {
          pnlRows.push(el("tr", { "data-follower": fid, "data-window": span },
            cell(fid, { class: "text" }), cell(span, { class: "text" }),
            cell(money(t.realized), { "data-field": "realized", "data-value": t.realized }),
            cell(span === "all" ? money(mine.unrealized) : "",
              { "data-field": "unrealized", "data-value": span === "all" ? mine.unrealized : "" }),
            cell(money(t.fees), { "data-field": "fees", "data-value": t.fees }),
            cell(money(t.funding), { "data-field": "funding", "data-value": t.funding }),
            cell(money(t.slippage), { "data-field": "slippage", "data-value": t.slippage }),
            cell(money(t.net), { "data-field": "net", "data-value": t.net }),
            cell(t.fills, { "data-field": "fills" })));
        }
      }
      return el("div", { class: "lead-card", "data-lead": lead.lead },
        el("h3", {}, `Lead ${lead.lead}`),
        el("table", { class: "grid followers" }, el("thead", {}, head), el("tbody", {}, ...rows)),
        el("table", { class: "grid positions" }, el("thead", {}, posHead), el("tbody", {}, ...posRows)),
        el("table", { class: "grid results" }, el("caption", {}, "Results of the copy"),
          el("thead", {}, pnlHead), el("tbody", {}, ...pnlRows)));
    });
    $("followers").replaceChildren(...cards);
    updateControls();
  }

  function renderTimeline(doc) {
    const items = doc.timeline.map((t) => {
      const outcomes = t.followers.map((o) => {
        let text = `${o.follower}: ${OUTCOME_WORDS[o.outcome] || o.outcome}`;
        if (o.filled_qty) text += ` ${o.filled_qty} @ ${o.avg_price}`;
        if (o.why) text += ` (${o.why})`;
        return el("span", { class: `chip o-${o.outcome}`, "data-follower": o.follower, "data-outcome": o.outcome }, text);
      });
      return el("li", { "data-trade": t.trade_id, "data-lead": t.lead },
        el("div", { class: "fill-head" },
          el("span", { class: "muted" }, time(t.recorded_ts)),
          el("span", {}, t.lead),
          el("span", { class: `side-${t.side}` }, t.side),
          el("span", {}, `${t.qty} ${t.symbol} @ ${t.price}`),
          el("span", { class: "muted" }, `${t.source} · ${t.status}`)),
        el("div", { class: "outcomes" }, ...outcomes));
    });
    $("timeline").replaceChildren(...items);
  }

  function renderHealth(doc) {
    const status = doc.status;
    const head = el("tr", {}, ...["Lead stream", "Live", "Fresh", "Age", "Sessions", "Reconnects", "Last error"]
      .map((h) => el("th", {}, h)));
    const rows = Object.entries(status.leads).map(([id, l]) => el("tr", { "data-lead": id },
      cell(id, { class: "text" }), cell(l.stream.live ? "yes" : "no"), cell(l.stream.fresh ? "yes" : "no"),
      cell(l.stream.age_s === null ? "–" : `${num(l.stream.age_s, 1)} s`), cell(l.stream.sessions),
      cell(l.stream.reconnects), cell(l.stream.last_error || "", { class: "text" })));
    const failing = Object.entries(status.workers || {}).filter(([, w]) => w.failing || !w.running);
    const workers = el("p", { class: failing.length ? "mismatch" : "muted" }, failing.length
      ? `workers in trouble: ${failing.map(([name]) => name).join(", ")}`
      : `all ${Object.keys(status.workers || {}).length} workers running`);
    $("health").replaceChildren(el("table", { class: "grid" }, el("thead", {}, head), el("tbody", {}, ...rows)), workers);
    $("alerts").replaceChildren(...doc.alerts.map((a) => el("li", {},
      el("span", { class: "muted" }, `${time(a.ts)} `), el("span", { class: "kind" }, a.kind),
      el("span", {}, a.subject || ""), el("span", { class: "muted" },
        a.detail === null ? "" : ` ${typeof a.detail === "string" ? a.detail : JSON.stringify(a.detail)}`))));
  }

  function renderCharts(charts) {
    const C = window.copybotCharts;
    C.chart($("chart-aum"), Object.entries(charts.aum).map(([lead, pts]) => ({ name: lead,
      points: pts.map(([ts, v]) => [ts, Number(v)]) })), { x: "time" });
    C.chart($("chart-slippage"), [{ name: "follower fills", points: charts.slippage_vs_aum.map(([a, b]) => [Number(a), Number(b)]) }],
      { scatter: true, zero: true });
    const byFollower = {};
    for (const [ts, fid, lag] of charts.copy_lag) (byFollower[fid] = byFollower[fid] || []).push([ts, lag]);
    C.chart($("chart-lag"), Object.entries(byFollower).map(([name, points]) => ({ name, points })),
      { scatter: true, x: "time", zero: true });
  }

  function render(doc) {
    page.doc = doc;
    renderHeader(doc.status);
    renderLeads(doc);
    renderFlows(doc);
    renderFollowers(doc);
    renderTimeline(doc);
    renderHealth(doc);
  }

  // -- the event stream -----------------------------------------------------------------------

  function authHeaders() {
    return page.token ? { Authorization: `Bearer ${page.token}` } : {};
  }

  function setConn(state) {
    document.body.setAttribute("data-conn", state);
    $("conn").textContent = state + (page.reconnects ? ` · ${page.reconnects} reconnect(s)` : "");
  }

  function onEvent(block) {
    let event = "message", data = "";
    for (const line of block.split("\n")) {
      if (line.startsWith("event:")) event = line.slice(6).trim();
      else if (line.startsWith("data:")) data += line.slice(5).trim();
    }
    if (!data) return;
    page.events += 1;
    document.body.setAttribute("data-seq", String(page.events));
    try {
      const payload = JSON.parse(data);
      if (event === "state") render(payload);
      else if (event === "charts") renderCharts(payload);
    } catch (err) {
      // A document this page cannot draw must not drop the stream into a reconnect loop.
      console.error(`copybot dashboard: cannot show a ${event} event: ${err}`);
    }
  }

  let current = null;
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  async function stream() {
    let backoff = 500;
    for (;;) {
      const ctrl = new AbortController();
      current = ctrl;
      let last = Date.now();
      const watchdog = setInterval(() => { if (Date.now() - last > SILENCE_MS) ctrl.abort(); }, 1000);
      try {
        const resp = await fetch("/dashboard/events", { headers: authHeaders(), cache: "no-store", signal: ctrl.signal });
        if (resp.status === 401) {
          setConn("token needed");
          message("This daemon listens beyond loopback: type the token to see its data.");
          await new Promise((resolve) => { page.onToken = resolve; });
          continue;
        }
        if (!resp.ok || !resp.body) throw new Error(`HTTP ${resp.status}`);
        setConn("live");
        backoff = 500;
        const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          last = Date.now();
          buffer += value.replace(/\r\n/g, "\n");
          let end;
          while ((end = buffer.indexOf("\n\n")) >= 0) {
            onEvent(buffer.slice(0, end));
            buffer = buffer.slice(end + 2);
          }
        }
      } catch (err) {
        // network error, a daemon restart or the watchdog: reconnect below
      } finally {
        clearInterval(watchdog);
      }
      page.reconnects += 1;
      setConn("reconnecting");
      document.body.setAttribute("data-reconnects", String(page.reconnects));
      await sleep(backoff);
      backoff = Math.min(backoff * 2, 5000);
    }
  }

  // -- control --------------------------------------------------------------------------------

  function message(text) {
    $("message").textContent = text;
  }

  function updateControls() {
    for (const b of document.querySelectorAll("button.ctl")) {
      b.disabled = !page.token;
      b.title = page.token ? "" : "type the control token first";
    }
  }

  async function control(action, follower) {
    if (!page.token) {
      message("Type the control token first.");
      return;
    }
    const body = { reason: "dashboard" };
    if (follower) body.follower = follower;
    try {
      const resp = await fetch(`/control/${encodeURIComponent(action)}`, {
        method: "POST", cache: "no-store", body: JSON.stringify(body),
        headers: { ...authHeaders(), "Content-Type": "application/json" },
      });
      const data = await resp.json().catch(() => ({}));
      message(resp.ok ? `${action} ${follower || "all followers"}: done (${data.state})`
        : `${action} refused: ${data.error || `HTTP ${resp.status}`}`);
    } catch (err) {
      message(`${action} failed: the daemon did not answer`);
    }
  }

  function setToken(value) {
    page.token = value;
    if (value) sessionStorage.setItem(TOKEN_KEY, value);
    else sessionStorage.removeItem(TOKEN_KEY);
    $("token").value = "";
    $("token").placeholder = value ? "token set for this tab" : "bearer token";
    updateControls();
    if (page.onToken) { const resume = page.onToken; page.onToken = null; resume(); }
    else if (current) current.abort(); // reconnect with the new header
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("token-use").addEventListener("click", () => { setToken($("token").value.trim()); message("Token set for this tab."); });
    $("token").addEventListener("keydown", (e) => { if (e.key === "Enter") $("token-use").click(); });
    $("token-forget").addEventListener("click", () => { setToken(""); message("Token forgotten."); });
    document.addEventListener("click", (e) => {
      const b = e.target.closest("button.ctl");
      if (b) control(b.getAttribute("data-action"), b.getAttribute("data-follower"));
    });
    if (page.token) $("token").placeholder = "token set for this tab";
    updateControls();
    stream();
  });
})();
