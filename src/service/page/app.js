// The synthscan page: recordings go to POST /v1/analyze on the server that served the page;
// results are drawn from the JSON it returns. Nothing is loaded from anywhere else, and no
// text from a file or a server is ever parsed as HTML.
"use strict";

const LIMITS = "The detector is wrong on some recordings: at its thresholds it flags about 2 % of " +
  "genuine recordings in its held-out tests and misses most voices of some modern and commercial " +
  "systems, especially through a phone line. A synthetic verdict is a reason to look closer, not proof; " +
  "a genuine verdict does not clear a recording.";

const WORDS = {
  synthetic: "Looks machine-made",
  genuine: "Looks like a real voice",
  inconclusive: "Not enough speech to judge",
};

const STATUS_TEXT = {
  400: "The server could not read the request.",
  401: "The server needs an access token: enter it under \u201cAccess token\u201d.",
  408: "The recording took too long to arrive.",
  413: "The recording is too large for this server.",
  422: "The recording could not be analysed.",
  429: "Too many wrong tokens from this computer; wait a few seconds.",
  503: "The server is busy or shutting down; try again shortly.",
};

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

function svgEl(tag, attrs) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  return node;
}

function fmtTime(s) {
  const m = Math.floor(s / 60);
  return `${m}:${(s - 60 * m).toFixed(1).padStart(4, "0")}`;
}

function scoreText(score) {
  return score === null || score === undefined ? "none" : score.toFixed(3);
}

async function sha256Hex(buffer) {
  if (!window.crypto || !crypto.subtle) return null;
  const digest = await crypto.subtle.digest("SHA-256", buffer);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

// The score along the recording: one bar per segment, its height the score; the threshold a
// dashed line. Segments over the threshold are also hatched, so colour is not the only cue.
function timeline(segments, duration, threshold, label) {
  const w = 1000, h = 56;
  const svg = svgEl("svg", { class: "timeline", viewBox: `0 0 ${w} ${h}`, role: "img", "aria-label": label });
  const defs = svgEl("defs", {});
  const pattern = svgEl("pattern", { id: "hatch", width: 6, height: 6, patternUnits: "userSpaceOnUse", patternTransform: "rotate(45)" });
  pattern.append(svgEl("rect", { width: 6, height: 6, fill: "#a4161a" }));
  pattern.append(svgEl("line", { x1: 0, y1: 0, x2: 0, y2: 6, stroke: "#fff", "stroke-width": 2 }));
  defs.append(pattern);
  svg.append(defs);
  svg.append(svgEl("rect", { x: 0, y: 0, width: w, height: h, fill: "none", stroke: "#888" }));
  const span = Math.max(duration, 0.001);
  for (const s of segments) {
    const x = (s.start_s / span) * w, width = Math.max(((s.end_s - s.start_s) / span) * w, 1);
    const height = s.score * (h - 4);
    const over = s.score >= threshold;
    svg.append(svgEl("rect", { x, y: h - 2 - height, width, height, fill: over ? "url(#hatch)" : "#1d5c9b" }));
  }
  const ty = h - 2 - threshold * (h - 4);
  svg.append(svgEl("line", { x1: 0, y1: ty, x2: w, y2: ty, stroke: "#1b1b1b", "stroke-dasharray": "6 4" }));
  return svg;
}

// Each row has a button that plays the recording from the start of that stretch.
function segmentTable(segments, threshold, player) {
  const table = el("table", {}, el("caption", {}, "Stretches of speech and their scores"));
  table.append(el("tr", {}, el("th", { scope: "col" }, "from"), el("th", { scope: "col" }, "to"),
    el("th", { scope: "col" }, "score"), el("th", { scope: "col" }, "reading"), el("th", { scope: "col" }, "listen")));
  for (const s of segments) {
    const play = el("button", { type: "button", class: "play" }, `Play from ${fmtTime(s.start_s)}`);
    play.addEventListener("click", () => seek(player, s.start_s));
    table.append(el("tr", {}, el("td", {}, fmtTime(s.start_s)), el("td", {}, fmtTime(s.end_s)),
      el("td", {}, s.score.toFixed(3)), el("td", {}, s.score >= threshold ? "machine-like" : "voice-like"),
      el("td", {}, play)));
  }
  return table;
}

function seek(player, seconds) {
  player.currentTime = seconds;
  player.play().catch(() => {});
}

// The waveform on the same time axis as the score timelines (peak per column); a click plays
// from that point. Formats the browser cannot decode (G.711 or ADPCM WAV) get a sentence.
async function waveform(file, duration, player) {
  const box = el("div", { class: "waveform-box" });
  try {
    const context = new AudioContext();
    const audio = await context.decodeAudioData(await file.arrayBuffer());
    context.close();
    const data = audio.getChannelData(0);
    const w = 1000, h = 60, span = Math.max(duration, audio.duration, 0.001);
    const svg = svgEl("svg", { class: "waveform", viewBox: `0 0 ${w} ${h}`, role: "img",
      "aria-label": "Waveform; click to listen from that point" });
    const columns = Math.max(1, Math.round((audio.duration / span) * w));
    const step = Math.max(1, Math.floor(data.length / columns));
    for (let x = 0; x < columns; x++) {
      let peak = 0;
      for (let i = x * step; i < Math.min((x + 1) * step, data.length); i++) peak = Math.max(peak, Math.abs(data[i]));
      const bar = Math.max(peak * h, 1);
      svg.append(svgEl("rect", { x, y: (h - bar) / 2, width: 1, height: bar, fill: "#444" }));
    }
    svg.addEventListener("click", (e) => {
      const r = svg.getBoundingClientRect();
      seek(player, ((e.clientX - r.left) / r.width) * span);
    });
    box.append(svg);
  } catch (_) {
    box.append(el("p", { class: "help" }, "This browser cannot draw or play this recording's format; the scores above still hold."));
  }
  return box;
}

// A self-contained report to keep with the recording.
function evidence(file, digest, report, analysedAt) {
  const esc = (t) => String(t).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
  const parts = (report.legs || report.channels || [report]).map((p, i) => {
    const rows = (p.segments || []).map((s) =>
      `<tr><td>${esc(fmtTime(s.start_s))}</td><td>${esc(fmtTime(s.end_s))}</td><td>${esc(s.score.toFixed(3))}</td></tr>`).join("");
    const name = report.legs ? `leg ${i} (${esc(p.source)} \u2192 ${esc(p.destination)})` : report.channels ? `channel ${i}` : "recording";
    return `<h2>${name}: ${esc(WORDS[p.verdict])}</h2><p>score ${esc(scoreText(p.score))}, speech ${esc(p.speech_s)} s</p>` +
      `<table><tr><th>from</th><th>to</th><th>score</th></tr>${rows}</table>`;
  }).join("");
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>synthscan report: ${esc(file.name)}</title>` +
    `<style>body{font:1rem/1.5 sans-serif;max-width:50rem;margin:auto;padding:1rem}td,th{border:1px solid #888;padding:.2rem .5rem}table{border-collapse:collapse}</style></head><body>` +
    `<h1>synthscan report</h1><dl>` +
    `<dt>File</dt><dd>${esc(file.name)}</dd><dt>Size</dt><dd>${esc(file.size)} bytes</dd>` +
    `<dt>SHA-256</dt><dd>${esc(digest || "not computed (the page was not served over a secure context)")}</dd>` +
    `<dt>Analysed</dt><dd>${esc(analysedAt)}</dd>` +
    `<dt>Model</dt><dd>${esc(report.model.name)} ${esc(report.model.version)}, SHA-256 ${esc(report.model.sha256)}</dd>` +
    `<dt>Verdict</dt><dd>${esc(WORDS[report.verdict])} (score ${esc(scoreText(report.score))}, threshold ${esc(report.threshold)})</dd>` +
    `<dt>Audio</dt><dd>${esc(report.duration_s)} s, ${esc(report.speech_s)} s of speech, ${esc(report.sample_rate_hz)} Hz, ${esc(report.codec)}</dd></dl>` +
    parts + `<h2>Known limits</h2><p>${esc(LIMITS)}</p></body></html>`;
}

async function showResult(file, digest, report) {
  const card = el("article", { class: "card", "aria-label": `Result for ${file.name}` });
  const player = el("audio", { controls: "", preload: "metadata", src: URL.createObjectURL(file) });
  card.append(el("h3", {}, file.name));
  card.append(el("p", { class: `verdict ${report.verdict}` }, WORDS[report.verdict] || report.verdict));
  card.append(el("p", {}, `Score ${scoreText(report.score)} (flagged at ${report.threshold} or more). `,
    `${report.duration_s} s of audio, ${report.speech_s} s of speech found.`));
  if (report.verdict === "inconclusive") {
    card.append(el("p", {}, "Too little speech was found to judge: a longer stretch of one voice talking is needed."));
  }
  for (const w of report.warnings || []) card.append(el("p", {}, `Note: ${w}`));
  card.append(player);
  card.append(await waveform(file, report.duration_s, player));
  const parts = report.legs || report.channels;
  if (parts) {
    parts.forEach((p, i) => {
      const name = report.legs ? `Leg ${i}: ${p.source} \u2192 ${p.destination} (${p.codec})` : `Channel ${i}`;
      card.append(el("h4", {}, `${name}: ${WORDS[p.verdict] || p.verdict}, score ${scoreText(p.score)}`));
      card.append(timeline(p.segments, report.duration_s, report.threshold, `${name}: score over time`));
      card.append(segmentTable(p.segments, report.threshold, player));
    });
  } else {
    card.append(timeline(report.segments, report.duration_s, report.threshold, "Score over time"));
    card.append(segmentTable(report.segments, report.threshold, player));
  }
  const save = el("button", { type: "button", class: "save" }, "Save an evidence report");
  save.addEventListener("click", () => {
    const html = evidence(file, digest, report, new Date().toISOString());
    const link = el("a", { href: URL.createObjectURL(new Blob([html], { type: "text/html" })), download: `${file.name}.synthscan.html` });
    document.body.append(link);
    link.click();
    link.remove();
  });
  card.append(save);
  document.getElementById("results").prepend(card);
  const model = document.getElementById("model");
  model.textContent = `Model ${report.model.name} ${report.model.version} (SHA-256 ${report.model.sha256}). ${LIMITS}`;
}

function showError(file, message) {
  const card = el("article", { class: "card", "aria-label": `Error for ${file.name}` });
  card.append(el("h3", {}, file.name), el("p", { class: "error" }, message));
  document.getElementById("results").prepend(card);
}

async function analyse(files) {
  const status = document.getElementById("status");
  const token = document.getElementById("token").value.trim();
  let n = 0;
  for (const file of files) {
    n += 1;
    status.textContent = `Analysing ${file.name} (${n} of ${files.length})\u2026`;
    try {
      const body = await file.arrayBuffer();
      const digest = await sha256Hex(body);
      const headers = token ? { Authorization: `Bearer ${token}` } : {};
      const reply = await fetch(`/v1/analyze?name=${encodeURIComponent(file.name)}`, { method: "POST", body, headers });
      let json = null;
      try { json = await reply.json(); } catch (_) { json = null; }
      if (!reply.ok) {
        const detail = json && json.error ? ` (${json.error})` : "";
        showError(file, (STATUS_TEXT[reply.status] || `The server answered ${reply.status}.`) + detail);
      } else if (Array.isArray(json)) {
        for (const r of json) await showResult(file, digest, r);
      } else {
        await showResult(file, digest, json);
      }
    } catch (e) {
      showError(file, `The recording could not be sent to the server: ${e.message}`);
    }
  }
  status.textContent = `Done: ${files.length} recording${files.length === 1 ? "" : "s"} analysed.`;
}

document.addEventListener("DOMContentLoaded", () => {
  const drop = document.getElementById("drop");
  const input = document.getElementById("files");
  const open = () => input.click();
  drop.addEventListener("click", open);
  drop.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); open(); } });
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => { e.preventDefault(); drop.classList.remove("over"); analyse(Array.from(e.dataTransfer.files)); });
  input.addEventListener("change", () => { analyse(Array.from(input.files)); input.value = ""; });
});
