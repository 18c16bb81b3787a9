// The bench screen. Plain JS, no library: every element is built with textContent, so a file
// name or a reason from the server is never read as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
let session = null;          // the open slide session {id, name, planned}
let bestFocus = 0;           // the sharpest live frame seen, for the focus meter's scale

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = text;
  if (cls) e.className = cls;
  return e;
}

// The same rule as alledge.device.slide.record_status.
function statusOf(r) {
  if (r.status) return r.status;
  if ("error" in r) return "error";
  return r.label ? "ok" : "error";
}

const STATUS_WORDS = {
  ok: "Answered",
  out_of_domain: "Out of domain: this image is not like the smear fields the model knows",
  rejected: "Rejected",
  error: "Could not classify",
};

function statusLine(r) {
  const st = statusOf(r);
  const why = r.reason || r.error;
  return (STATUS_WORDS[st] || st) + (why && st !== "ok" ? ": " + why : "");
}

async function api(url, options) {
  const resp = await fetch(url, Object.assign({credentials: "same-origin"}, options || {}));
  let body = null;
  try { body = await resp.json(); } catch (e) { body = {error: "HTTP " + resp.status}; }
  return {ok: resp.ok, status: resp.status, body, resultId: resp.headers.get("X-Alledge-Result")};
}

function probTable(r) {
  const t = el("table", null, "probs");
  const inSet = new Set(r.prediction_set || []);
  for (const [cls, p] of Object.entries(r.probabilities || {})) {
    const tr = el("tr", null, inSet.has(cls) ? "in-set" : "");
    tr.append(el("td", cls), el("td", p.toFixed(3)));
    const barCell = el("td");
    const bar = el("div", null, "bar");
    bar.style.width = Math.round(p * 120) + "px";
    barCell.append(bar);
    tr.append(barCell);
    t.append(tr);
  }
  return t;
}

function showResult(r, imageUrl) {
  const card = $("result");
  const st = statusOf(r);
  card.className = "card " + st;
  card.replaceChildren();
  card.append(el("div", statusLine(r), "status"));
  if (r.label && st === "ok") card.append(el("div", "Class: " + r.label, "label"));
  else if (r.label && st !== "error") {
    card.append(el("div", "The model's guess, not a result: " + r.label, "label"));
  }
  if (r.probabilities) card.append(probTable(r));
  if (r.prediction_set) {
    card.append(el("div", "Prediction set: {" + r.prediction_set.join(", ") + "}" +
      (r.prediction_set.length > 1 ? " (the model cannot tell these apart here)" : "")));
  }
  if (imageUrl) {
    const img = el("img");
    img.src = imageUrl;
    img.alt = "the classified image";
    card.append(img);
  }
  const meta = [r.path, r.latency_ms !== undefined ? r.latency_ms.toFixed(0) + " ms" : null,
                r.bundle].filter(Boolean).join(" · ");
  card.append(el("div", meta, "note"));
  card.append(el("div", "Research tool, not a diagnosis.", "disclaimer"));
}

function sessionQuery() { return session ? "?session=" + session.id : ""; }

async function upload(file) {
  const form = new FormData();
  form.append("image", file, file.name);
  showBusy("Classifying " + file.name + " …");
  const res = await api("/api/classify" + sessionQuery(), {method: "POST", body: form});
  showResult(res.body, res.ok ? URL.createObjectURL(file) : null);
  await afterResult();
}

async function capture() {
  showBusy("Capturing …");
  const res = await api("/api/capture" + sessionQuery(), {method: "POST"});
  showResult(res.body, res.resultId ? "/api/thumbs/" + res.resultId : null);
  await afterResult();
}

function showBusy(text) {
  const card = $("result");
  card.className = "card";
  card.replaceChildren(el("div", text, "note"));
}

async function afterResult() {
  if (session) await showSession();
  await loadHistory();
}

// --- live view -------------------------------------------------------------------------
async function pollLive() {
  const res = await api("/api/live");
  if (!res.ok || !res.body.source) {
    $("live-none").hidden = false;
    $("live-none").textContent = (res.body && res.body.error) ||
      "No camera. Capture is off; upload saved images instead.";
    $("capture").disabled = true;
    return;
  }
  $("live-box").hidden = false;
  const img = $("live");
  const next = () => { img.src = "/api/live.jpg?t=" + Date.now(); };
  img.onload = () => setTimeout(next, 250);
  img.onerror = () => setTimeout(next, 1000);
  next();
  setInterval(updateGate, 500);
}

async function updateGate() {
  const res = await api("/api/live");
  if (!res.ok) return;
  const s = res.body, gate = $("gate");
  if (s.error) { gate.className = "gate bad"; gate.textContent = s.error; }
  else if (s.verdict) {
    gate.className = "gate " + (s.verdict.ok ? "ok" : "bad");
    gate.textContent = s.verdict.ok ? "Frame passes the quality gate"
      : "Would be rejected: " + s.verdict.reason + " (" + s.verdict.detail + ")";
  }
  if (s.quality) {
    // scaled to the sharpest frame seen so far: turn the focus knob until the bar peaks
    const v = s.quality.sharpness;
    bestFocus = Math.max(bestFocus, v);
    const m = $("focus");
    m.max = Math.max(100, bestFocus * 1.1);
    m.optimum = m.max;
    m.low = s.thresholds.min_sharpness;
    m.value = v;
    $("focus-value").textContent = v.toFixed(0) + " (sharpest so far " + bestFocus.toFixed(0) +
      "; below " + s.thresholds.min_sharpness + " is out of focus)";
  }
}

// --- slide session ---------------------------------------------------------------------
async function startSession(ev) {
  ev.preventDefault();
  const res = await api("/api/sessions", {method: "POST", body: new FormData($("session-form"))});
  if (!res.ok) { $("session").textContent = res.body.error; return; }
  session = res.body;
  $("session-end").hidden = false;
  await showSession();
  await loadSessions(session.id);
}

function endSession() {
  session = null;
  $("session-end").hidden = true;
  $("session").replaceChildren(el("div", "No session open: results are kept outside any slide.",
                                      "note"));
}

async function showSession() {
  const res = await api("/api/sessions/" + session.id);
  if (!res.ok) return;
  const {fields, summary} = res.body;
  const box = $("session");
  box.replaceChildren();
  box.append(el("div", `Slide ${session.name}: field ${fields.length} of ${session.planned}` +
    (fields.length >= session.planned ? " — all planned fields read" : "")));
  const t = el("table");
  fields.forEach((f, i) => {
    const tr = el("tr");
    tr.append(el("td", String(i + 1)), el("td", statusLine(f.record)),
              el("td", f.record.label || ""));
    t.append(tr);
  });
  box.append(t);
  const s = el("div", null, "summary");
  s.append(el("div", summary.call === "inconclusive"
    ? "Slide: inconclusive — " + summary.why : "Slide call: " + summary.call + " (" + summary.why + ")",
    "call"));
  s.append(el("div", `answered ${summary.answered} · out of domain ${summary.out_of_domain} · ` +
                     `rejected ${summary.rejected} · errors ${summary.error}`));
  const mean = Object.entries(summary.mean_probabilities)
    .map(([c, p]) => c + " " + p.toFixed(3)).join("  ");
  if (mean) s.append(el("div", "mean probabilities over answered fields: " + mean));
  s.append(el("div", "Rule: " + summary.rule, "note"));
  box.append(s);
}

// --- history ---------------------------------------------------------------------------
async function loadSessions(select) {
  const res = await api("/api/sessions");
  if (!res.ok) return;
  const sel = $("history-session");
  const keep = select !== undefined ? String(select) : sel.value;
  sel.replaceChildren(el("option", "all"));
  sel.firstChild.value = "";
  for (const s of res.body.sessions) {
    const o = el("option", `${s.id}: ${s.name}`);
    o.value = String(s.id);
    sel.append(o);
  }
  sel.value = keep;
  await loadHistory();
}

async function loadHistory() {
  const sid = $("history-session").value;
  const q = sid ? "?session=" + sid : "";
  $("csv").href = "/api/history.csv" + q;
  const res = await api("/api/history" + q);
  if (!res.ok) return;
  const body = $("history").tBodies[0];
  body.replaceChildren();
  for (const r of res.body.results) {
    const tr = el("tr");
    const thumb = el("td");
    if (r.thumbnail) {
      const img = el("img");
      img.src = "/api/thumbs/" + r.id;
      img.alt = r.source || "";
      img.loading = "lazy";
      thumb.append(img);
    }
    const p = r.probabilities[r.label];
    tr.append(thumb, el("td", r.time.replace("T", " ").slice(0, 19)),
              el("td", r.frame === null ? r.source : `${r.source} #${r.frame}`),
              el("td", r.status), el("td", r.label),
              el("td", p === undefined ? "" : p.toFixed(3)),
              el("td", r.session_id === null ? "" : String(r.session_id)));
    body.append(tr);
  }
}

$("image").addEventListener("change", (ev) => {
  const f = ev.target.files[0];
  if (f) upload(f).finally(() => { ev.target.value = ""; });
});
$("capture").addEventListener("click", capture);
$("session-form").addEventListener("submit", startSession);
$("session-end").addEventListener("click", endSession);
$("history-session").addEventListener("change", loadHistory);
pollLive();
loadSessions();
