// openmer review page: plain JavaScript, no library, nothing fetched from another origin.
"use strict";

const $ = (sel) => document.querySelector(sel);
const NO_LABEL = new Set(["no_speech", "error"]);
const NOT_AN_EMOTION = "not an emotion";
const COLORS = ["#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f"];

const state = { models: [], job: null, result: null, reviews: new Map(), threshold: null, range: [0, 1], playEnd: null,
                selected: null, timer: null };

// ------------------------------------------------------------------ HTTP (bearer token when the service asks)
function token() { return sessionStorage.getItem("openmer-token") || ""; }
function authHeaders() { const t = token(); return t ? { Authorization: "Bearer " + t } : {}; }
async function api(path, options = {}) {
  const res = await fetch(path, { ...options, headers: { ...(options.headers || {}), ...authHeaders() } });
  if (res.status === 401) {
    const t = window.prompt("This service needs its access token:");
    if (t) { sessionStorage.setItem("openmer-token", t.trim()); return api(path, options); }
  }
  let body = null;
  const type = res.headers.get("content-type") || "";
  body = type.includes("json") ? await res.json() : await res.text();
  if (!res.ok) throw new Error((body && body.error) || res.statusText);
  return body;
}
function withToken(url) { const t = token(); return t ? url + (url.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(t) : url; }

function esc(text) {
  return String(text).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}
function status(text) { $("#status").textContent = text; }
function fmt(s) {
  if (s == null || !isFinite(s)) return "";
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
  const ss = sec.toFixed(1).padStart(4, "0");
  return (h ? h + ":" + String(m).padStart(2, "0") : String(m)) + ":" + ss;
}

// ------------------------------------------------------------------ models
async function loadModels() {
  const data = await api("/v1/models");
  state.models = data.models;
  const sel = $("#run");
  sel.innerHTML = "";
  for (const m of data.models) {
    const o = document.createElement("option");
    o.value = m.name;
    o.textContent = `${m.name} (${m.method}: ${m.classes.join(", ")})`;
    sel.append(o);
  }
  showModel();
}
function showModel() {
  const m = state.models.find((x) => x.name === $("#run").value) || state.models[0];
  if (!m) return;
  const th = m.threshold;
  $("#model-info").textContent = `${m.method} on ${m.modalities.join(" + ")}; known: ${m.classes.join(", ")}; ` +
    `threshold ${th.value.toFixed(3)} accepts ${(th.acceptance * 100).toFixed(0)} % of known ${th.source} clips`;
}

// ------------------------------------------------------------------ upload and progress
function chosen(file) {
  $("#start").disabled = !file;
  if (file) status(`ready: ${file.name} (${(file.size / 1048576).toFixed(1)} MB)`);
}
function upload() {
  const file = $("#file").files[0];
  if (!file) return;
  const form = new FormData();
  form.append("file", file, file.name);
  const subs = $("#transcript").files[0];
  if (subs) form.append("transcript", subs, subs.name);
  form.append("run", $("#run").value);
  const xhr = new XMLHttpRequest();
  xhr.open("POST", "/v1/timeline");
  for (const [k, v] of Object.entries(authHeaders())) xhr.setRequestHeader(k, v);
  xhr.upload.onprogress = (e) => { if (e.lengthComputable) { $("#progress").value = e.loaded / e.total; status(`uploading ${Math.round(100 * e.loaded / e.total)} %`); } };
  xhr.onload = () => {
    let body = {};
    try { body = JSON.parse(xhr.responseText); } catch (e) { body = { error: xhr.statusText }; }
    if (xhr.status !== 202) { status("refused: " + (body.error || xhr.status)); return; }
    location.hash = "job=" + body.id;
    follow(body.id);
  };
  xhr.onerror = () => status("the upload failed (connection)");
  $("#start").disabled = true;
  xhr.send(form);
}
async function follow(id) {
  clearTimeout(state.timer);
  let job;
  try { job = await api(`/v1/jobs/${id}`); } catch (e) { status(String(e.message)); return; }
  $("#progress").value = job.progress;
  if (job.state === "done") { status(`done: ${job.name}`); show(job); loadJobs(); return; }
  if (job.state === "failed") { status("failed: " + job.error); return; }
  if (job.state === "interrupted") { status("interrupted: " + job.error); offerResume(job); return; }
  status(`${job.state}: ${job.name}, ${Math.round(job.progress * 100)} % (${fmt(job.done_s)} of ${fmt(job.duration_s)})`);
  state.timer = setTimeout(() => follow(id), 500);
}
function offerResume(job) {
  const b = document.createElement("button");
  b.type = "button"; b.textContent = "Resume"; b.id = "resume";
  b.onclick = async () => { b.remove(); await api(`/v1/jobs/${job.id}/resume`, { method: "POST" }); follow(job.id); };
  $("#status").after(b);
}
async function loadJobs() {
  let data;
  try { data = await api("/v1/jobs"); } catch (e) { return; }
  const ul = $("#jobs");
  ul.innerHTML = "";
  for (const j of data.jobs) {
    const li = document.createElement("li");
    const a = document.createElement("a");
    a.href = "#job=" + j.id;
    a.textContent = `${j.name} (${j.state}, ${new Date(j.created * 1000).toLocaleString()})`;
    li.append(a);
    ul.append(li);
  }
}

// ------------------------------------------------------------------ labels at a threshold (no scoring)
function argmax(a) { let k = 0; for (let i = 1; i < a.length; i++) if (a[i] > a[k]) k = i; return k; }
function windowLabel(w, th) {
  if (!w.scored) return w.label;
  return w.confidence >= th ? state.result.classes[argmax(w.probabilities)] : "unknown";
}
// A segment keeps its extent; its label at threshold `th` is the label that covers most of it among
// the (smoothed) windows whose tiles overlap it. At the run's threshold this is the server's label.
function segmentLabel(seg, th) {
  if (NO_LABEL.has(seg.label)) return seg.label;
  const weight = new Map();
  for (let i = seg.w0; i < seg.w1; i++) {
    const w = state.result.windows[i];
    if (!w.scored) continue;
    const overlap = Math.min(w.t1, seg.end_s) - Math.max(w.t0, seg.start_s);
    if (overlap <= 0) continue;
    const lab = windowLabel(w, th);
    weight.set(lab, (weight.get(lab) || 0) + overlap);
  }
  let best = seg.label, most = -1;
  for (const [lab, v] of weight) if (v > most) { best = lab; most = v; }
  return best;
}

// ------------------------------------------------------------------ drawing
function show(job) {
  state.job = job;
  state.result = job.result;
  state.reviews = new Map(job.reviews.map((r) => [r.segment, r]));
  state.threshold = job.result.threshold;
  $("#timeline-section").hidden = false;
  $("#review-section").hidden = false;
  $("#job-name").textContent = job.name;
  // the slider spans the confidences of this recording and the run's threshold (a method's
  // confidence is not always a probability: ARPL's, for one, is a distance-based score)
  const confs = job.result.windows.filter((w) => w.scored).map((w) => w.confidence);
  let lo = Math.min(state.threshold, ...confs), hi = Math.max(state.threshold, ...confs);
  if (lo >= 0 && hi <= 1) { lo = 0; hi = 1; } else { const pad = 0.01 * (hi - lo || 1); lo -= pad; hi += pad; }
  state.range = [lo, hi];
  const slider = $("#threshold");
  slider.min = lo; slider.max = hi; slider.step = (hi - lo) / 400;
  slider.value = state.threshold;
  $("#threshold-value").textContent = Number(state.threshold).toFixed(3);
  const media = document.createElement(job.kind === "video" ? "video" : "audio");
  media.id = "player";
  media.controls = true;
  media.preload = "auto";
  media.src = withToken(job.media_url);
  media.addEventListener("timeupdate", () => {
    if (state.playEnd != null && media.currentTime >= state.playEnd) { media.pause(); state.playEnd = null; }
  });
  $("#media").replaceChildren(media);
  redraw();
}
function redraw() {
  drawChart();
  drawList();
}
function svgEl(name, attrs, parent) {
  const el = document.createElementNS("http://www.w3.org/2000/svg", name);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  if (parent) parent.append(el);
  return el;
}
function drawChart() {
  const r = state.result, th = state.threshold;
  const W = 1200, H = 210, left = 44, right = 10, top = 8, lane = 130, band = 24;
  const duration = r.summary.duration_s || (r.windows.length ? r.windows[r.windows.length - 1].end_s : 1);
  const x = (t) => left + (W - left - right) * (t / duration);
  const y = (p) => top + lane * (1 - p);
  const [lo, hi] = state.range;
  const scaled = lo !== 0 || hi !== 1;
  const yc = (c) => y((c - lo) / (hi - lo));  // confidence and threshold on the slider's scale
  const svg = svgEl("svg", { viewBox: `0 0 ${W} ${H}`, role: "img" });
  // unknown segments shaded behind the lines
  r.segments.forEach((s) => {
    if (segmentLabel(s, th) === "unknown") svgEl("rect", { x: x(s.start_s), y: top, width: Math.max(1, x(s.end_s) - x(s.start_s)), height: lane, fill: "#c0392b", opacity: 0.12 }, svg);
  });
  for (const p of [0, 0.5, 1]) {
    svgEl("line", { x1: left, x2: W - right, y1: y(p), y2: y(p), stroke: "#d5dbe1" }, svg);
    svgEl("text", { x: left - 6, y: y(p) + 4, "text-anchor": "end", "font-size": 11, fill: "#5b6570" }, svg).textContent = p.toFixed(1);
  }
  // class probabilities (smoothed) and the confidence, over window centres; a gap where unscored
  const lines = r.classes.map((c, k) => ({ name: "p(" + c + ")", color: COLORS[k % COLORS.length], y: (w) => y(w.probabilities[k]), dash: "" }));
  lines.push({ name: scaled ? `confidence (${lo.toFixed(2)} to ${hi.toFixed(2)} on the same axis)` : "confidence",
               color: "#000", y: (w) => yc(w.confidence), dash: "4 3" });
  for (const ln of lines) {
    let d = "", pen = false;
    for (const w of r.windows) {
      if (!w.scored) { pen = false; continue; }
      const cx = x((w.start_s + w.end_s) / 2), cy = ln.y(w);
      d += (pen ? "L" : "M") + cx.toFixed(1) + " " + cy.toFixed(1) + " ";
      pen = true;
    }
    if (d) svgEl("path", { d, fill: "none", stroke: ln.color, "stroke-width": 1.5, "stroke-dasharray": ln.dash }, svg);
  }
  svgEl("line", { x1: left, x2: W - right, y1: yc(th), y2: yc(th), stroke: "#c0392b", "stroke-width": 1.5, "stroke-dasharray": "6 3" }, svg);
  // the label sits above the line, or below it when the line runs along the top of the lane
  const labelY = yc(th) - 4 < top + 11 ? yc(th) + 13 : yc(th) - 4;
  svgEl("text", { x: W - right - 4, y: labelY, "text-anchor": "end", "font-size": 11, fill: "#c0392b" }, svg).textContent = "threshold " + th.toFixed(3);
  // the segments band: one rect per segment, clickable
  const by = top + lane + 10;
  r.segments.forEach((s) => {
    const lab = segmentLabel(s, th);
    if (lab === "no_speech") return;
    const k = r.classes.indexOf(lab);
    const fill = lab === "unknown" ? "#c0392b" : lab === "error" ? "#f39c12" : COLORS[k % COLORS.length];
    const rect = svgEl("rect", { x: x(s.start_s), y: by, width: Math.max(1, x(s.end_s) - x(s.start_s)), height: band, fill,
                                 class: "seg" + (lab === "unknown" ? " unknown" : "") + (state.selected === s.n ? " selected" : ""),
                                 "data-segment": s.n, "data-label": lab }, svg);
    svgEl("title", {}, rect).textContent = `#${s.n} ${lab} ${fmt(s.start_s)}-${fmt(s.end_s)}`;
    rect.addEventListener("click", () => play(s.n));
  });
  // time axis
  const step = niceStep(duration / 10);
  for (let t = 0; t <= duration + 1e-9; t += step) {
    svgEl("text", { x: x(t), y: H - 4, "text-anchor": "middle", "font-size": 11, fill: "#5b6570" }, svg).textContent = fmt(t).replace(/\.0$/, "");
  }
  $("#chart").replaceChildren(svg);
  const legend = $("#legend");
  legend.innerHTML = "";
  for (const ln of lines) legend.insertAdjacentHTML("beforeend", `<span><i style="background:${ln.color}"></i>${esc(ln.name)}</span>`);
  legend.insertAdjacentHTML("beforeend", `<span><i style="background:#c0392b"></i>unknown (confidence below the threshold)</span>`);
}
function niceStep(raw) {
  for (const s of [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600]) if (s >= raw) return s;
  return 7200;
}
function drawList() {
  const r = state.result, th = state.threshold;
  const rows = r.segments.map((s) => ({ s, lab: segmentLabel(s, th), len: s.end_s - s.start_s }))
    .filter((x) => x.lab !== "no_speech");
  rows.sort((a, b) => ((b.lab === "unknown") - (a.lab === "unknown")) || (b.len - a.len) || (a.s.n - b.s.n));
  const n_unknown = rows.filter((x) => x.lab === "unknown").length;
  $("#counts").textContent = `${n_unknown} unknown of ${rows.length} segments; ${state.reviews.size} reviewed`;
  const tbody = $("#segments tbody");
  tbody.innerHTML = "";
  for (const { s, lab, len } of rows) {
    const tr = document.createElement("tr");
    tr.dataset.segment = s.n;
    tr.dataset.label = lab;
    if (state.selected === s.n) tr.classList.add("selected");
    const review = state.reviews.get(s.n);
    tr.innerHTML = `<td class="num">${s.n}</td><td class="num">${fmt(s.start_s)}</td><td class="num">${fmt(s.end_s)}</td>` +
      `<td class="num">${len.toFixed(1)} s</td><td><span class="label ${lab === "unknown" ? "unknown" : ""}">${esc(lab)}</span></td>` +
      `<td class="num">${s.confidence == null ? "" : s.confidence.toFixed(3)}</td>` +
      `<td><button type="button" class="play" aria-label="play segment ${s.n}">&#9654; play</button></td><td class="review"></td>`;
    tr.querySelector(".play").addEventListener("click", () => play(s.n));
    tr.addEventListener("keydown", (e) => { if (e.key === "p" && e.target.tagName !== "INPUT") { e.preventDefault(); play(s.n); } });
    tr.querySelector(".review").append(reviewControls(s, review));
    tbody.append(tr);
  }
}
function reviewControls(s, review) {
  const box = document.createElement("span");
  const sel = document.createElement("select");
  sel.className = "choice";
  sel.setAttribute("aria-label", `label of segment ${s.n}`);
  const options = [["", "label..."], ...state.result.classes.map((c) => [c, c]), [NOT_AN_EMOTION, NOT_AN_EMOTION], ["__new__", "new emotion word..."]];
  for (const [v, t] of options) { const o = document.createElement("option"); o.value = v; o.textContent = t; sel.append(o); }
  const word = document.createElement("input");
  word.className = "word"; word.placeholder = "emotion word"; word.hidden = true;
  word.setAttribute("aria-label", `new emotion word for segment ${s.n}`);
  const note = document.createElement("input");
  note.className = "note"; note.placeholder = "note"; note.setAttribute("aria-label", `note on segment ${s.n}`);
  const save = document.createElement("button");
  save.type = "button"; save.className = "save"; save.textContent = "Save";
  const mark = document.createElement("span");
  mark.className = "mark";
  if (review) {
    const known = state.result.classes.includes(review.label) || review.label === NOT_AN_EMOTION;
    sel.value = known ? review.label : "__new__";
    if (!known) { word.hidden = false; word.value = review.label; }
    note.value = review.note || "";
    mark.className = "mark reviewed";
    mark.textContent = " \u2713 reviewed: " + review.label;
  }
  sel.addEventListener("change", () => { word.hidden = sel.value !== "__new__"; if (!word.hidden) word.focus(); });
  save.addEventListener("click", async () => {
    const label = sel.value === "__new__" ? word.value.trim() : sel.value;
    if (!label) { mark.textContent = " choose a label first"; return; }
    try {
      const r = await api(`/v1/jobs/${state.job.id}/segments/${s.n}/review`, {
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ label, note: note.value }) });
      state.reviews.set(s.n, r);
      mark.className = "mark reviewed";
      mark.textContent = " \u2713 reviewed: " + r.label;
      $("#counts").textContent = $("#counts").textContent.replace(/\d+ reviewed$/, `${state.reviews.size} reviewed`);
    } catch (e) { mark.className = "mark"; mark.textContent = " " + e.message; }
  });
  box.append(sel, word, note, save, mark);
  return box;
}

// ------------------------------------------------------------------ playing exactly one segment
function play(n) {
  const s = state.result.segments[n];
  const media = $("#player");
  if (!s || !media) return;
  state.selected = n;
  for (const el of document.querySelectorAll(".selected")) el.classList.remove("selected");
  for (const el of document.querySelectorAll(`[data-segment="${n}"]`)) el.classList.add("selected");
  state.playEnd = s.end_s;
  const start = () => { media.currentTime = s.start_s; media.play().catch(() => {}); };
  if (media.readyState >= 1) start(); else media.addEventListener("loadedmetadata", start, { once: true });
}

// ------------------------------------------------------------------ export
async function exportReviews(format) {
  const res = await fetch("/v1/reviews/export?format=" + format, { headers: authHeaders() });
  if (!res.ok) { status("export failed: " + res.status); return; }
  const text = format === "json" ? JSON.stringify(await res.json(), null, 2) : await res.text();
  const a = document.createElement("a");
  a.href = URL.createObjectURL(new Blob([text], { type: format === "json" ? "application/json" : "text/csv" }));
  a.download = "reviews." + format;
  a.id = "export-link";
  document.body.append(a);
  a.click();
  a.remove();
  window.lastExport = text;  // what was exported (read by the page's test)
}

// ------------------------------------------------------------------ wiring
function openFromHash() {
  const m = /job=([0-9a-f]{32})/.exec(location.hash);
  if (m) follow(m[1]);
}
window.addEventListener("DOMContentLoaded", async () => {
  const drop = $("#drop");
  drop.addEventListener("click", () => $("#file").click());
  drop.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); $("#file").click(); } });
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault(); drop.classList.remove("over");
    if (e.dataTransfer.files.length) { $("#file").files = e.dataTransfer.files; chosen(e.dataTransfer.files[0]); }
  });
  $("#file").addEventListener("change", () => chosen($("#file").files[0]));
  $("#start").addEventListener("click", upload);
  $("#run").addEventListener("change", showModel);
  $("#threshold").addEventListener("input", () => {
    state.threshold = Number($("#threshold").value);
    $("#threshold-value").textContent = state.threshold.toFixed(3);
    redraw();
  });
  $("#threshold-reset").addEventListener("click", () => {
    state.threshold = state.result.threshold;
    $("#threshold").value = state.threshold;
    $("#threshold-value").textContent = state.threshold.toFixed(3);
    redraw();
  });
  $("#export-csv").addEventListener("click", () => exportReviews("csv"));
  $("#export-json").addEventListener("click", () => exportReviews("json"));
  window.addEventListener("hashchange", openFromHash);
  try { await loadModels(); } catch (e) { status("cannot reach the service: " + e.message); }
  loadJobs();
  openFromHash();
});
