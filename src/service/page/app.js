// The synthscan page: recordings go to POST /v1/analyze (and /v1/spectrogram for the picture)
// on the server that served the page, the microphone to /v1/stream; results are drawn from the
// JSON they return. Nothing is loaded from anywhere else, and no text from a file or a server
// is ever parsed as HTML.
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

const LIVE_WORDS = {
  synthetic: "Sounds machine-made so far",
  genuine: "Sounds like a real voice so far",
  inconclusive: "Listening: not enough speech yet",
};

const STATUS_TEXT = {
  400: "The server could not read the request.",
  401: "The server needs an access token: enter it under \u201cAccess token\u201d.",
  408: "The recording took too long to arrive.",
  413: "The recording is too large for this server.",
  422: "The file could not be analysed: it is not audio this server can read, or not a packet capture.",
  429: "Too many wrong tokens from this computer; wait a few seconds.",
  503: "The server is busy or shutting down; try again shortly.",
};

// What /healthz says of the model: its window and the speech a verdict needs, its thresholds.
let MODEL = { window_s: 1, min_speech_s: 1, threshold: null };
let figureCount = 0;

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

function token() {
  return document.getElementById("token").value.trim();
}

async function sha256Hex(buffer) {
  if (!window.crypto || !crypto.subtle) return null;
  const digest = await crypto.subtle.digest("SHA-256", buffer);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

// Why a channel, leg or file got no verdict, in the reader's words.
function whyInconclusive(part, duration) {
  if (part.score === null || part.score === undefined) {
    if (duration < MODEL.window_s) {
      return `The recording is ${duration.toFixed(1)} s long; the detector needs at least ${MODEL.window_s} s.`;
    }
    return `No ${MODEL.window_s}-second stretch held enough speech to score: as far as the detector can tell ` +
      "it is silence, music, tones or noise.";
  }
  return `Only ${part.speech_s} s of speech was found; a verdict needs at least ${MODEL.min_speech_s} s of one voice talking.`;
}

// A POST with upload progress (fetch has none), with the token when one is given; resolves to
// the XMLHttpRequest once answered.
function request(url, body, responseType, onUpload) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", url);
    if (token()) xhr.setRequestHeader("Authorization", `Bearer ${token()}`);
    xhr.responseType = responseType;
    xhr.upload.onprogress = (e) => { if (e.lengthComputable && onUpload) onUpload(e.loaded / e.total); };
    xhr.onload = () => resolve(xhr);
    xhr.onerror = () => reject(new Error("the server could not be reached"));
    xhr.send(body);
  });
}

// POST answering JSON: resolves to {status, json} (json null when the answer is not JSON).
async function post(url, body, onUpload) {
  const xhr = await request(url, body, "text", onUpload);
  let json = null;
  try { json = JSON.parse(xhr.responseText); } catch (_) { json = null; }
  return { status: xhr.status, json };
}

// POST answering binary data: resolves to {status, buffer}.
async function postBinary(url, body) {
  const xhr = await request(url, body, "arraybuffer");
  return { status: xhr.status, buffer: xhr.response };
}

// ---- the shared time axis ------------------------------------------------------------------

// One per result: the stretch of the recording on show, shared by every figure of the card.
class View {
  constructor(duration) {
    this.duration = Math.max(duration, 0.001);
    this.t0 = 0;
    this.t1 = this.duration;
    // the player that played last: zooming centres on its position
    this.active = null;
    this.watched = new Set();
    this.figures = [];
    this.label = el("output", { "aria-live": "polite" });
  }

  span() { return this.t1 - this.t0; }
  x(t) { return (t - this.t0) / this.span(); }
  at(fraction) { return this.t0 + fraction * this.span(); }

  set(t0, t1) {
    const span = Math.min(Math.max(t1 - t0, Math.min(0.25, this.duration)), this.duration);
    const start = Math.min(Math.max(t0, 0), this.duration - span);
    this.t0 = start;
    this.t1 = start + span;
    this.draw();
  }

  zoom(factor) {
    const playing = this.active ? this.active.currentTime : -1;
    const centre = playing > this.t0 && playing < this.t1 ? playing : (this.t0 + this.t1) / 2;
    const span = this.span() / factor;
    this.set(centre - span / 2, centre + span / 2);
  }

  pan(fraction) { this.set(this.t0 + fraction * this.span(), this.t1 + fraction * this.span()); }
  all() { this.set(0, this.duration); }

  // The figures over the whole recording, as HTML for the evidence report; the view is put back.
  pictures() {
    const [t0, t1] = [this.t0, this.t1];
    this.all();
    const figures = this.figures.map((f) => ({ name: f.name, html: f.pictures().join("") }));
    this.set(t0, t1);
    return figures;
  }

  draw() {
    this.label.textContent = `Showing ${fmtTime(this.t0)} to ${fmtTime(this.t1)} of ${fmtTime(this.duration)}`;
    for (const f of this.figures) f.draw();
    this.playhead();
  }

  playhead() {
    for (const f of this.figures) {
      const t = f.player.currentTime;
      const inside = t >= this.t0 && t <= this.t1;
      f.head.hidden = !inside;
      if (inside) f.head.style.left = `${(this.x(t) * 100).toFixed(3)}%`;
    }
  }

  // Keeps the playing position on show.
  follow(player) {
    const t = player.currentTime;
    if (!player.paused && (t > this.t1 || t < this.t0)) this.set(t - 0.1 * this.span(), t + 0.9 * this.span());
    else this.playhead();
  }

  // Moves the playheads with a player (once per player).
  watch(player) {
    if (this.watched.has(player)) return;
    this.watched.add(player);
    const tick = () => { if (!player.paused) { this.follow(player); requestAnimationFrame(tick); } };
    player.addEventListener("play", () => { this.active = player; requestAnimationFrame(tick); });
    player.addEventListener("timeupdate", () => this.follow(player));
    player.addEventListener("seeked", () => { this.active = player; this.follow(player); });
  }

  toolbar() {
    const button = (text, action) => {
      const b = el("button", { type: "button" }, text);
      b.addEventListener("click", action);
      return b;
    };
    return el("div", { class: "toolbar", role: "toolbar", "aria-label": "Time axis" },
      button("Zoom in", () => this.zoom(2)), button("Zoom out", () => this.zoom(0.5)),
      button("Earlier", () => this.pan(-0.5)), button("Later", () => this.pan(0.5)),
      button("Whole recording", () => this.all()), this.label);
  }

  // A stack of panels on this time axis: a click plays from that point; with the keyboard,
  // + and - zoom, the arrows move, Home shows it all and Enter plays from the view's start.
  figure(name, panels, player) {
    figureCount += 1;
    const box = el("div", { class: "figure", tabindex: "0", role: "group",
      "aria-label": `${name}. Press plus or minus to zoom, the arrow keys to move, Home to see it all, Enter to play from the left edge.` });
    const head = el("div", { class: "playhead", "aria-hidden": "true" });
    for (const p of panels) box.append(p.node);
    box.append(head);
    box.addEventListener("click", (e) => {
      const r = box.getBoundingClientRect();
      seek(player, this.at((e.clientX - r.left) / r.width));
    });
    box.addEventListener("keydown", (e) => {
      const keys = { "+": () => this.zoom(2), "=": () => this.zoom(2), "-": () => this.zoom(0.5),
        ArrowLeft: () => this.pan(-0.25), ArrowRight: () => this.pan(0.25), Home: () => this.all(),
        Enter: () => seek(player, this.t0) };
      if (keys[e.key]) { e.preventDefault(); keys[e.key](); }
    });
    this.watch(player);
    this.figures.push({ head, name, player, draw: () => { for (const p of panels) p.draw(this); },
      pictures: () => panels.filter((p) => p.picture).map((p) => p.picture()) });
    return box;
  }
}

function seek(player, seconds) {
  player.currentTime = Math.max(0, seconds);
  player.play().catch(() => {});
}

function niceStep(span) {
  for (const s of [0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600]) {
    if (span / s <= 8) return s;
  }
  return 7200;
}

// The times of the view's ticks, a "nice" step apart.
function ticks(view) {
  const step = niceStep(view.span()), out = [];
  for (let t = Math.ceil(view.t0 / step) * step; t <= view.t1 + 1e-9; t += step) out.push(t);
  return out;
}

// Tick marks of the view.
function ruler() {
  const svg = svgEl("svg", { class: "ruler", viewBox: "0 0 1000 20", preserveAspectRatio: "none", "aria-hidden": "true" });
  return {
    node: svg,
    draw(view) {
      svg.replaceChildren(...ticks(view).map((t) => {
        const x = view.x(t) * 1000;
        return svgEl("line", { x1: x, y1: 14, x2: x, y2: 20, stroke: "#555", "vector-effect": "non-scaling-stroke" });
      }));
    },
  };
}

// Tick labels, as HTML so the text is not stretched with the picture.
function rulerLabels() {
  const box = el("div", { class: "ruler-labels", "aria-hidden": "true" });
  box.style.position = "relative";
  box.style.height = "1.2rem";
  return {
    node: box,
    draw(view) {
      box.replaceChildren(...ticks(view).map((t) => {
        const label = el("span", {}, fmtTime(t));
        label.style.position = "absolute";
        label.style.fontSize = ".75rem";
        label.style.left = `${(view.x(t) * 100).toFixed(2)}%`;
        label.style.transform = t === 0 ? "none" : view.x(t) > 0.95 ? "translateX(-100%)" : "translateX(-50%)";
        return label;
      }));
    },
  };
}

function canvasSize(canvas) {
  const ratio = window.devicePixelRatio || 1;
  canvas.width = Math.max(1, Math.round(canvas.clientWidth * ratio));
  canvas.height = Math.max(1, Math.round(canvas.clientHeight * ratio));
  return [canvas.width, canvas.height];
}

// The waveform of one decoded channel: the sample range under each pixel column, from the
// samples when zoomed in and from peaks of 256-sample blocks when zoomed out.
function waveformPanel(samples, rate, name) {
  const canvas = el("canvas", { class: "waveform", role: "img", "aria-label": `${name}: waveform` });
  const block = 256, blocks = Math.ceil(samples.length / block);
  const lows = new Float32Array(blocks), highs = new Float32Array(blocks);
  for (let b = 0; b < blocks; b++) {
    let lo = 0, hi = 0;
    for (let i = b * block; i < Math.min((b + 1) * block, samples.length); i++) {
      lo = Math.min(lo, samples[i]);
      hi = Math.max(hi, samples[i]);
    }
    lows[b] = lo;
    highs[b] = hi;
  }
  return {
    node: canvas,
    draw(view) {
      const [w, h] = canvasSize(canvas);
      const ctx = canvas.getContext("2d");
      ctx.clearRect(0, 0, w, h);
      ctx.fillStyle = "#333";
      const perPixel = (view.span() * rate) / w;
      for (let x = 0; x < w; x++) {
        const a = Math.floor(view.at(x / w) * rate), b = Math.max(a + 1, Math.floor(view.at((x + 1) / w) * rate));
        if (a >= samples.length || b <= 0) continue;
        let lo = 0, hi = 0;
        if (perPixel > 2 * block) {
          for (let k = Math.floor(a / block); k < Math.min(Math.ceil(b / block), blocks); k++) {
            lo = Math.min(lo, lows[k]);
            hi = Math.max(hi, highs[k]);
          }
        } else {
          for (let i = Math.max(a, 0); i < Math.min(b, samples.length); i++) {
            lo = Math.min(lo, samples[i]);
            hi = Math.max(hi, samples[i]);
          }
        }
        const top = ((1 - Math.min(hi, 1)) / 2) * h, bottom = ((1 - Math.max(lo, -1)) / 2) * h;
        ctx.fillRect(x, top, 1, Math.max(bottom - top, 1));
      }
    },
    picture: () => `<img alt="waveform" src="${canvas.toDataURL("image/png")}">`,
  };
}

// Viridis, sampled: dark blue to yellow, readable without telling red from green.
const VIRIDIS = [[68, 1, 84], [72, 40, 120], [62, 74, 137], [49, 104, 142], [38, 130, 142],
  [31, 158, 137], [53, 183, 121], [109, 205, 89], [180, 222, 44], [253, 231, 37]];
const PALETTE = Array.from({ length: 256 }, (_, v) => {
  const f = (v / 255) * (VIRIDIS.length - 1), i = Math.min(Math.floor(f), VIRIDIS.length - 2), k = f - i;
  return VIRIDIS[i].map((c, j) => Math.round(c + k * (VIRIDIS[i + 1][j] - c)));
});

function khz(hz) {
  return hz >= 1000 ? `${(hz / 1000).toFixed(hz % 1000 === 0 ? 0 : 1)} kHz` : `${Math.round(hz)} Hz`;
}

// The model's own filterbank frames (from /v1/spectrogram), lowest frequency at the bottom.
function spectrogramPanel(spec, channel, name) {
  const bins = spec.n_bins, columns = channel.columns;
  const bytes = Uint8Array.from(atob(channel.data), (c) => c.charCodeAt(0));
  const canvas = el("canvas", { class: "spectrogram", role: "img",
    "aria-label": `${name}: spectrogram of the ${spec.n_bins} ${spec.filterbank} filterbank bands the model sees, ${khz(spec.f_min_hz)} to ${khz(spec.f_max_hz)}` });
  const box = el("div", {});
  box.style.position = "relative";
  const top = el("span", { class: "label", "aria-hidden": "true" }, khz(spec.f_max_hz));
  top.style.top = "0";
  const bottom = el("span", { class: "label", "aria-hidden": "true" }, khz(spec.f_min_hz));
  bottom.style.bottom = "0";
  box.append(canvas, top, bottom);
  const strip = document.createElement("canvas");
  return {
    node: box,
    draw(view) {
      const [w, h] = canvasSize(canvas);
      strip.width = w;
      strip.height = bins;
      const sctx = strip.getContext("2d");
      const image = sctx.createImageData(w, bins);
      for (let x = 0; x < w; x++) {
        const c = Math.floor(view.at((x + 0.5) / w) / spec.seconds_per_column);
        if (c < 0 || c >= columns) continue;
        for (let b = 0; b < bins; b++) {
          const rgb = PALETTE[bytes[c * bins + b]];
          const at = ((bins - 1 - b) * w + x) * 4;
          image.data[at] = rgb[0];
          image.data[at + 1] = rgb[1];
          image.data[at + 2] = rgb[2];
          image.data[at + 3] = 255;
        }
      }
      sctx.putImageData(image, 0, 0);
      const ctx = canvas.getContext("2d");
      ctx.clearRect(0, 0, w, h);
      ctx.drawImage(strip, 0, 0, w, bins, 0, 0, w, h);
    },
    picture: () => `<img alt="spectrogram, ${khz(spec.f_min_hz)} (bottom) to ${khz(spec.f_max_hz)} (top)" src="${canvas.toDataURL("image/png")}">`,
  };
}

// The score along the recording: one bar per segment, its height the score; the threshold a
// dashed line. Segments over the threshold are also hatched, so colour is not the only cue.
function timelinePanel(segments, threshold, name) {
  const w = 1000, h = 56;
  const hatch = `hatch-${figureCount}`;
  const svg = svgEl("svg", { class: "timeline", viewBox: `0 0 ${w} ${h}`, preserveAspectRatio: "none",
    role: "img", "aria-label": `${name}: score over time, ${segments.length} segments, ` +
      `${segments.filter((s) => s.score >= threshold).length} at or over the threshold` });
  return {
    node: svg,
    draw(view) {
      svg.replaceChildren();
      const defs = svgEl("defs", {});
      const pattern = svgEl("pattern", { id: hatch, width: 6, height: 6, patternUnits: "userSpaceOnUse", patternTransform: "rotate(45)" });
      pattern.append(svgEl("rect", { width: 6, height: 6, fill: "#a4161a" }));
      pattern.append(svgEl("line", { x1: 0, y1: 0, x2: 0, y2: 6, stroke: "#fff", "stroke-width": 2 }));
      defs.append(pattern);
      svg.append(defs);
      for (const s of segments) {
        const x = view.x(s.start_s) * w, width = Math.max(((s.end_s - s.start_s) / view.span()) * w, 1);
        const height = s.score * (h - 4);
        const over = s.score >= threshold;
        svg.append(svgEl("rect", { class: over ? "segment over" : "segment", x, y: h - 2 - height, width, height,
          fill: over ? `url(#${hatch})` : "#1d5c9b" }));
      }
      const ty = h - 2 - threshold * (h - 4);
      svg.append(svgEl("line", { x1: 0, y1: ty, x2: w, y2: ty, stroke: "#1b1b1b", "stroke-dasharray": "6 4",
        "vector-effect": "non-scaling-stroke" }));
    },
    picture: () => new XMLSerializer().serializeToString(svg),
  };
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
  return el("div", { class: "table-box" }, table);
}

// Audio as the browser decodes it (for the waveform), or null for formats it cannot decode
// (G.711 or ADPCM WAV, captures).
async function decode(blob) {
  try {
    const context = new AudioContext();
    const audio = await context.decodeAudioData(await blob.arrayBuffer());
    context.close();
    return audio;
  } catch (_) {
    return null;
  }
}

// One channel of a recording, or one leg of a capture, as the server decodes it (POST
// /v1/audio: a 16-bit WAV), or null when it cannot.
async function serverAudio(body, query) {
  const reply = await postBinary(`/v1/audio?${query}`, body);
  if (reply.status !== 200) return null;
  const blob = new Blob([reply.buffer], { type: "audio/wav" });
  const audio = await decode(blob);
  return audio ? { blob, audio } : null;
}

// A self-contained report to keep with the recording.
function evidence(file, digest, report, analysedAt, figures) {
  const esc = (t) => String(t).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
  const parts = (report.legs || report.channels || [report]).map((p, i) => {
    const rows = (p.segments || []).map((s) =>
      `<tr><td>${esc(fmtTime(s.start_s))}</td><td>${esc(fmtTime(s.end_s))}</td><td>${esc(s.score.toFixed(3))}</td></tr>`).join("");
    const name = report.legs ? `leg ${i} (${esc(p.source)} \u2192 ${esc(p.destination)})` : report.channels ? `channel ${i}` : "recording";
    const why = p.verdict === "inconclusive" ? `<p>${esc(whyInconclusive(p, report.duration_s))}</p>` : "";
    const figure = figures[i] ? `<figure>${figures[i].html}<figcaption>${esc(figures[i].name)}, ` +
      `0:00.0 to ${esc(fmtTime(report.duration_s))}; the dashed line is the threshold, hatched bars are over it.</figcaption></figure>` : "";
    return `<h2>${name}: ${esc(WORDS[p.verdict])}</h2><p>score ${esc(scoreText(p.score))}, speech ${esc(p.speech_s)} s</p>${why}${figure}` +
      `<table><tr><th>from</th><th>to</th><th>score</th></tr>${rows}</table>`;
  }).join("");
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>synthscan report: ${esc(file.name)}</title>` +
    `<style>body{font:1rem/1.5 sans-serif;max-width:50rem;margin:auto;padding:1rem}td,th{border:1px solid #888;padding:.2rem .5rem}table{border-collapse:collapse}` +
    `figure{margin:1rem 0}figure img,figure svg{display:block;width:100%}figure img{height:auto}figure svg{height:3.5rem;border:1px solid #888}</style></head><body>` +
    `<h1>synthscan report</h1><dl>` +
    `<dt>File</dt><dd>${esc(file.name)}</dd><dt>Size</dt><dd>${esc(file.size)} bytes</dd>` +
    `<dt>SHA-256</dt><dd>${esc(digest || "not computed (the page was not served over a secure context)")}</dd>` +
    `<dt>Analysed</dt><dd>${esc(analysedAt)}</dd>` +
    `<dt>Model</dt><dd>${esc(report.model.name)} ${esc(report.model.version)}, SHA-256 ${esc(report.model.sha256)}</dd>` +
    `<dt>Verdict</dt><dd>${esc(WORDS[report.verdict])} (score ${esc(scoreText(report.score))}, threshold ${esc(report.threshold)})</dd>` +
    `<dt>Audio</dt><dd>${esc(report.duration_s)} s, ${esc(report.speech_s)} s of speech, ${esc(report.sample_rate_hz)} Hz, ${esc(report.codec)}</dd></dl>` +
    parts + `<h2>Known limits</h2><p>${esc(LIMITS)}</p></body></html>`;
}

// One result card. `body` is the file's bytes (for the audio and spectrograms the browser asks
// the server for), `call` the index of this call when the file is a packet capture.
async function showResult(file, body, digest, report, spec, call) {
  const card = el("article", { class: "card", "aria-label": `Result for ${file.name}` });
  card.append(el("h3", {}, report.call_id ? `${file.name}, call ${report.call_id}` : file.name));
  card.append(el("p", { class: `verdict ${report.verdict}` }, WORDS[report.verdict] || report.verdict));
  card.append(el("p", {}, `Score ${scoreText(report.score)} (flagged at ${report.threshold} or more). `,
    `${report.duration_s} s of audio, ${report.speech_s} s of speech found.`));
  if (report.verdict === "inconclusive") card.append(el("p", { class: "why" }, whyInconclusive(report, report.duration_s)));
  for (const w of report.warnings || []) card.append(el("p", {}, `Note: ${w}`));

  // What to play and draw: the file itself when the browser decodes it; else each channel or
  // leg as the server decodes it.
  const view = new View(report.duration_s);
  const parts = report.legs || report.channels || [report];
  const own = report.legs ? null : await decode(file);
  let shared = null;
  if (own) {
    shared = el("audio", { controls: "", preload: "metadata", src: URL.createObjectURL(file) });
    card.append(shared);
  } else if (!report.legs) {
    card.append(el("p", { class: "help" }, "This browser cannot decode this recording's format itself; it plays and draws each channel as the server decodes it."));
  }
  card.append(view.toolbar());
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i];
    const name = report.legs ? `Leg ${i}: ${p.source} \u2192 ${p.destination} (${p.codec})`
      : report.channels ? `Channel ${i}` : "Recording";
    if (report.legs || report.channels) {
      card.append(el("h4", {}, `${name}: ${WORDS[p.verdict] || p.verdict}, score ${scoreText(p.score)}`));
      if (p.verdict === "inconclusive") card.append(el("p", { class: "why" }, whyInconclusive(p, report.duration_s)));
    }
    let player = shared, samples = own && i < own.numberOfChannels ? own.getChannelData(i) : null, rate = own ? own.sampleRate : 0;
    if (!own) {
      const decoded = await serverAudio(body, report.legs ? `call=${call}&leg=${i}` : `channel=${i}`);
      player = el("audio", { controls: "", preload: "metadata", "aria-label": `Play ${name}` });
      if (decoded) {
        player.src = URL.createObjectURL(decoded.blob);
        samples = decoded.audio.getChannelData(0);
        rate = decoded.audio.sampleRate;
        card.append(player);
      } else {
        card.append(el("p", { class: "help" }, `${name} holds no audio this server decodes; its scores still hold.`));
      }
    }
    let partSpec = spec;
    if (report.legs && samples) {
      const reply = await post(`/v1/spectrogram?call=${call}&leg=${i}&columns=${columnsFor(report.duration_s)}`, body);
      partSpec = reply.status === 200 ? reply.json : null;
    }
    const channel = partSpec ? partSpec.channels[report.legs ? 0 : i] : null;
    const panels = [rulerLabels(), ruler()];
    if (samples) panels.push(waveformPanel(samples, rate, name));
    if (channel) panels.push(spectrogramPanel(partSpec, channel, name));
    panels.push(timelinePanel(p.segments, report.threshold, name));
    card.append(view.figure(`${name}: waveform, spectrogram and score on one time axis`, panels, player || el("audio")));
    card.append(segmentTable(p.segments, report.threshold, player || el("audio")));
  }
  const save = el("button", { type: "button", class: "save" }, "Save an evidence report");
  save.addEventListener("click", () => {
    const html = evidence(file, digest, report, new Date().toISOString(), view.pictures());
    const link = el("a", { href: URL.createObjectURL(new Blob([html], { type: "text/html" })), download: `${file.name}.synthscan.html` });
    document.body.append(link);
    link.click();
    link.remove();
  });
  card.append(save);
  document.getElementById("results").prepend(card);
  view.draw();
  window.addEventListener("resize", () => view.draw());
  showModel(report.model);
}

// Spectrogram columns for a recording: its frames at full resolution up to the server's limit.
function columnsFor(duration) {
  return Math.min(16384, Math.max(2000, Math.ceil(duration / 0.01)));
}

function showModel(model) {
  document.getElementById("model").textContent =
    `Model ${model.name} ${model.version} (SHA-256 ${model.sha256}). ${LIMITS}`;
}

function showError(name, message) {
  const card = el("article", { class: "card", "aria-label": `Error for ${name}` });
  card.append(el("h3", {}, name), el("p", { class: "error" }, message));
  document.getElementById("results").prepend(card);
}

function refusal(reply) {
  const detail = reply.json && reply.json.error ? ` (${reply.json.error})` : "";
  return (STATUS_TEXT[reply.status] || `The server answered ${reply.status}.`) + detail;
}

async function analyse(files) {
  const status = document.getElementById("status");
  const progress = document.getElementById("progress");
  progress.hidden = false;
  let n = 0;
  for (const file of files) {
    n += 1;
    const of = `(${n} of ${files.length})`;
    status.textContent = `Sending ${file.name} ${of}\u2026`;
    progress.value = 0;
    try {
      const body = await file.arrayBuffer();
      const digest = await sha256Hex(body);
      const name = encodeURIComponent(file.name);
      const reply = await post(`/v1/analyze?name=${name}`, body, (f) => {
        progress.value = f;
        if (f >= 1) {
          progress.removeAttribute("value");
          status.textContent = `Analysing ${file.name} ${of}\u2026`;
        }
      });
      if (reply.status !== 200 || reply.json === null) {
        showError(file.name, refusal(reply));
        continue;
      }
      status.textContent = `Drawing ${file.name} ${of}\u2026`;
      if (Array.isArray(reply.json)) {
        // a packet capture: a card per call, each leg drawn from the server's decoding
        for (let c = reply.json.length - 1; c >= 0; c--) await showResult(file, body, digest, reply.json[c], null, c);
        continue;
      }
      const spec = await post(`/v1/spectrogram?columns=${columnsFor(reply.json.duration_s)}&name=${name}`, body);
      await showResult(file, body, digest, reply.json, spec.status === 200 ? spec.json : null, 0);
    } catch (e) {
      showError(file.name, `The recording could not be sent to the server: ${e.message}.`);
    }
  }
  progress.hidden = true;
  status.textContent = `Done: ${files.length} recording${files.length === 1 ? "" : "s"} analysed.`;
}

// ---- live: the microphone to /v1/stream --------------------------------------------------

const live = { socket: null, context: null, media: null, points: [], summary: null };

// The live score over the time listened: the smoothed score as a line, the threshold dashed,
// and the stretches with an alert raised hatched behind it (so colour is not the only cue).
function liveChart() {
  const w = 1000, h = 80, box = document.getElementById("live-chart");
  const end = Math.max(30, ...live.points.map((p) => p.t));
  const x = (t) => (t / end) * w, y = (score) => h - 2 - score * (h - 4);
  const svg = svgEl("svg", { viewBox: `0 0 ${w} ${h}`, preserveAspectRatio: "none", role: "img",
    "aria-label": "Live score over the time listened; hatched where an alert was raised" });
  const defs = svgEl("defs", {});
  const pattern = svgEl("pattern", { id: "live-hatch", width: 6, height: 6, patternUnits: "userSpaceOnUse", patternTransform: "rotate(45)" });
  pattern.append(svgEl("rect", { width: 6, height: 6, fill: "#f3d6d7" }));
  pattern.append(svgEl("line", { x1: 0, y1: 0, x2: 0, y2: 6, stroke: "#a4161a", "stroke-width": 1.5 }));
  defs.append(pattern);
  svg.append(defs);
  let since = null;
  live.points.forEach((p, i) => {
    if (p.alert && since === null) since = p.t;
    const last = i === live.points.length - 1;
    if (since !== null && (!p.alert || last)) {
      svg.append(svgEl("rect", { class: "alert-span", x: x(since), y: 0, width: Math.max(x(p.t) - x(since), 2), height: h, fill: "url(#live-hatch)" }));
      since = null;
    }
  });
  if (MODEL.threshold !== null) {
    svg.append(svgEl("line", { x1: 0, y1: y(MODEL.threshold), x2: w, y2: y(MODEL.threshold), stroke: "#1b1b1b", "stroke-dasharray": "6 4", "vector-effect": "non-scaling-stroke" }));
  }
  const line = live.points.filter((p) => p.score !== null).map((p) => `${x(p.t)},${y(p.score)}`).join(" ");
  svg.append(svgEl("polyline", { points: line, fill: "none", stroke: "#1d5c9b", "stroke-width": 2, "vector-effect": "non-scaling-stroke" }));
  const legend = el("p", { class: "help" }, `0 to ${fmtTime(end)}; score 0 at the bottom, 1 at the top; ` +
    "the dashed line is the threshold, hatched stretches had an alert raised.");
  box.replaceChildren(svg, legend);
}

function onLiveEvent(e) {
  const verdict = document.getElementById("live-verdict");
  const figures = document.getElementById("live-figures");
  if (e.event === "update") {
    live.points.push({ t: e.time_s, score: e.score, alert: e.alert });
    verdict.className = `verdict ${e.alert ? "synthetic" : e.verdict}`;
    verdict.textContent = e.alert ? "Alert: the voice sounds machine-made" : LIVE_WORDS[e.verdict];
    figures.textContent = `Live score ${scoreText(e.score)} (the last few seconds), whole call so far ` +
      `${scoreText(e.call_score)}${MODEL.threshold !== null ? `, flagged at ${MODEL.threshold} or more` : ""}; ` +
      `${e.speech_s.toFixed(1)} s of speech heard in ${fmtTime(e.time_s)}.`;
    liveChart();
  } else if (e.event === "alert") {
    const text = e.state === "raised"
      ? `${fmtTime(e.time_s)}: alert raised, the voice sounds machine-made (score ${e.score.toFixed(3)})`
      : `${fmtTime(e.time_s)}: alert cleared (score ${e.score.toFixed(3)})`;
    document.getElementById("live-alerts").append(el("li", {}, text));
  } else if (e.event === "summary") {
    live.summary = e;
    verdict.className = `verdict ${e.verdict}`;
    verdict.textContent = `${WORDS[e.verdict]} (the whole time listened)`;
    figures.textContent = `Score ${scoreText(e.score)} (flagged at ${e.threshold} or more). ` +
      `${e.duration_s} s listened, ${e.speech_s} s of speech heard; ${e.alerts} alert${e.alerts === 1 ? "" : "s"}.` +
      (e.verdict === "inconclusive" ? ` ${whyInconclusive(e, e.duration_s)}` : "");
  } else if (e.event === "error") {
    document.getElementById("live-alerts").append(el("li", {}, `The server: ${e.error}`));
  }
}

function stopCapture() {
  if (live.media) for (const t of live.media.getTracks()) t.stop();
  if (live.context) live.context.close().catch(() => {});
  live.media = null;
  live.context = null;
}

async function startListening() {
  const button = document.getElementById("listen");
  const verdict = document.getElementById("live-verdict");
  document.getElementById("live").hidden = false;
  document.getElementById("live-alerts").replaceChildren();
  document.getElementById("live-figures").textContent = "";
  live.points = [];
  live.summary = null;
  liveChart();
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    verdict.className = "error";
    verdict.textContent = "This browser gives pages the microphone only over https or on this computer (127.0.0.1).";
    return;
  }
  try {
    live.media = await navigator.mediaDevices.getUserMedia({ audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: false } });
  } catch (e) {
    verdict.className = "error";
    verdict.textContent = `The microphone is not available: ${e.message || e.name}.`;
    return;
  }
  live.context = new AudioContext();
  await live.context.audioWorklet.addModule("/tap.js");
  const url = new URL("/v1/stream", location.href);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  url.search = new URLSearchParams({ encoding: "s16le", rate: String(live.context.sampleRate), channels: "1",
    ...(token() ? { token: token() } : {}) }).toString();
  const socket = new WebSocket(url);
  live.socket = socket;
  socket.addEventListener("message", (m) => {
    try { onLiveEvent(JSON.parse(m.data)); } catch (_) { /* not an event */ }
  });
  socket.addEventListener("close", (e) => {
    stopCapture();
    live.socket = null;
    button.textContent = "Start listening";
    if (e.code !== 1000 && !live.summary) {
      verdict.className = "error";
      verdict.textContent = e.code === 1006
        ? "The server refused the stream or could not be reached (is the token right? is it busy or draining?)."
        : `The server ended the stream: ${e.reason || `code ${e.code}`}.`;
    }
  });
  await new Promise((resolve) => {
    socket.addEventListener("open", resolve, { once: true });
    socket.addEventListener("close", resolve, { once: true });
  });
  if (socket.readyState !== WebSocket.OPEN) return;
  const source = live.context.createMediaStreamSource(live.media);
  const tap = new AudioWorkletNode(live.context, "synthscan-tap");
  // the tap must be pulled by the graph to run; a silent gain keeps it out of the speakers
  const mute = live.context.createGain();
  mute.gain.value = 0;
  source.connect(tap).connect(mute).connect(live.context.destination);
  tap.port.onmessage = (m) => {
    if (socket.readyState !== WebSocket.OPEN) return;
    const samples = m.data, pcm = new DataView(new ArrayBuffer(samples.length * 2));
    for (let i = 0; i < samples.length; i++) pcm.setInt16(2 * i, Math.max(-32768, Math.min(32767, Math.round(samples[i] * 32768))), true);
    socket.send(pcm.buffer);
  };
  verdict.className = "verdict inconclusive";
  verdict.textContent = LIVE_WORDS.inconclusive;
  button.textContent = "Stop listening";
}

// Stop: the server answers with the summary, then closes the socket.
function stopListening() {
  stopCapture();
  if (live.socket && live.socket.readyState === WebSocket.OPEN) live.socket.send(JSON.stringify({ event: "stop" }));
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
  document.getElementById("listen").addEventListener("click", () => {
    if (live.socket) stopListening();
    else startListening();
  });
  fetch("/healthz").then((r) => r.json()).then((h) => {
    MODEL = { ...MODEL, ...h.model };
    showModel(h.model);
    if (h.status === "draining") {
      document.getElementById("status").textContent = "This server is shutting down: it takes no new recordings.";
    }
  }).catch(() => {
    document.getElementById("status").textContent = "The server does not answer; reload the page when it is running.";
  });
});
