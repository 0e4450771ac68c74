"""The built-in web page at ``/``: one self-contained HTML document, no external resources.

Kept as a Python string (not a package data file) so it ships in every wheel without packaging
configuration. Accessibility: every control has a label, the drop zone is a real button that
opens the file picker with Enter/Space, results are announced through an ``aria-live`` region,
and the timeline chart has a text title and a table alternative.
"""

from __future__ import annotations

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>voxguard: is this speech AI-generated?</title>
<style>
  body { font: 16px/1.5 system-ui, sans-serif; max-width: 52rem; margin: 2rem auto; padding: 0 1rem; color: #111; }
  #drop { display: block; width: 100%; padding: 2.5rem 1rem; border: 2px dashed #555; border-radius: .5rem;
          background: #f6f6f6; font-size: 1.1rem; cursor: pointer; }
  #drop.over, #drop:focus-visible { outline: 3px solid #0050b3; background: #e8f0fe; }
  .verdict { font-size: 1.6rem; font-weight: 700; }
  .FAKE { color: #a00000; } .REAL { color: #006100; } .UNCERTAIN { color: #7a5200; }
  button { font-size: 1rem; padding: .4rem .9rem; margin-right: .5rem; }
  button:focus-visible, input:focus-visible { outline: 3px solid #0050b3; }
  table { border-collapse: collapse; margin-top: .5rem; }
  td, th { padding: .15rem .6rem; border-bottom: 1px solid #ddd; }
  .sr-only { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); }
  #error { color: #a00000; font-weight: 600; }
</style>
</head>
<body>
<main>
<h1>voxguard</h1>
<p>Upload a recording to check whether the speech is real or AI-generated. The file is analysed
by this server only; nothing is sent elsewhere.</p>

<form id="form" onsubmit="return false">
  <p><label for="apikey">API key (only if the server requires one)</label><br>
     <input id="apikey" type="password" autocomplete="off" size="40"></p>
  <input id="file" type="file" accept="audio/*,video/*" class="sr-only" aria-describedby="drophelp">
  <button id="drop" type="button" aria-describedby="drophelp">Choose a recording, or drop it here</button>
  <p id="drophelp">Any common audio format (WAV, FLAC, MP3, M4A, OGG, WebM ...).
     Press Enter or Space to choose a file.</p>
  <p><input id="watermark" type="checkbox">
     <label for="watermark">Also look for the Perth watermark that Chatterbox TTS puts in its output
     (slower)</label></p>
  <p><input id="unseen" type="checkbox">
     <label for="unseen">Screening: use the lower threshold set on generators the model never saw
     (catches more new generators, flags more real speech)</label></p>
</form>

<div id="status" role="status" aria-live="polite"></div>
<p id="error" role="alert"></p>

<section id="result" hidden aria-labelledby="result-h">
  <h2 id="result-h">Result</h2>
  <p><span id="verdict" class="verdict"></span></p>
  <p>Probability that the speech is AI-generated: <strong id="prob"></strong>
     (threshold <span id="thr"></span> <span id="op"></span>, model <span id="model"></span>)</p>
  <p id="reason"></p>
  <p id="mark" hidden></p>
  <p id="wideband" hidden></p>
  <h3>Timeline</h3>
  <div id="chart"></div>
  <details><summary>Timeline as a table</summary>
    <table><thead><tr><th scope="col">From (s)</th><th scope="col">To (s)</th>
      <th scope="col">P(fake)</th><th scope="col">Speech</th></tr></thead><tbody id="rows"></tbody></table>
  </details>
  <h3>Was this right?</h3>
  <p id="fbq">Tell us what the recording really is; it helps improve the detector.</p>
  <div role="group" aria-labelledby="fbq">
    <button type="button" data-label="real">It is real speech</button>
    <button type="button" data-label="fake">It is AI-generated</button>
  </div>
  <p id="fbstatus" role="status" aria-live="polite"></p>
</section>
</main>
<script>
"use strict";
const SCAN_URL = "/v1/scan", SCANS_URL = "/v1/scans/";
const $ = (id) => document.getElementById(id);
let scanId = null;

function headers() {
  const key = $("apikey").value.trim();
  return key ? { "X-API-Key": key } : {};
}
function fmt(x, d) { return x === null || x === undefined ? "n/a" : Number(x).toFixed(d); }

function chart(timeline, threshold, duration) {
  const W = 640, H = 160, pad = 24, n = timeline.length;
  const total = duration || (n ? timeline[n - 1].end_s : 1) || 1;
  const sx = (t) => pad + (W - 2 * pad) * t / total, sy = (p) => H - pad - (H - 2 * pad) * p;
  let bars = "";
  for (const s of timeline) {
    if (s.probability === null) continue;
    const x = sx(s.start_s), w = Math.max(1, sx(s.end_s) - x), y = sy(s.probability);
    const fill = s.probability >= threshold ? "#a00000" : "#2e7d32";
    const h = (H - pad - y).toFixed(1), op = s.eligible ? 0.55 : 0.2;
    bars += `<rect x="${x.toFixed(1)}" y="${y.toFixed(1)}" width="${w.toFixed(1)}" height="${h}"` +
            ` fill="${fill}" fill-opacity="${op}"><title>${fmt(s.start_s, 1)}-${fmt(s.end_s, 1)} s: ` +
            `P(fake) ${fmt(s.probability, 2)}</title></rect>`;
  }
  // With a watermark check: the decoder's confidence per segment, a dotted purple line.
  const marks = timeline.filter((s) => s.watermark !== null && s.watermark !== undefined);
  const points = marks.map((s) => `${sx((s.start_s + s.end_s) / 2).toFixed(1)},${sy(s.watermark).toFixed(1)}`);
  const markLine = marks.length ? `<polyline id="markline" fill="none" stroke="#7b3fa0" stroke-dasharray="2 3"` +
      ` stroke-width="2" points="${points.join(" ")}"><title>Perth watermark confidence per segment</title>` +
      "</polyline>" : "";
  // With the wide-band companion: its own P(fake) per segment, a dashed teal line.
  const wide = timeline.filter((s) => s.wide_band !== null && s.wide_band !== undefined);
  const widePoints = wide.map((s) => `${sx((s.start_s + s.end_s) / 2).toFixed(1)},${sy(s.wide_band).toFixed(1)}`);
  const wideLine = wide.length ? `<polyline id="wideline" fill="none" stroke="#00838f" stroke-dasharray="6 3"` +
      ` stroke-width="2" points="${widePoints.join(" ")}"><title>wide-band companion's own P(fake) per segment` +
      "</title></polyline>" : "";
  const ty = sy(threshold).toFixed(1);
  const worst = timeline.reduce((a, s) => (s.probability ?? -1) > (a.probability ?? -1) ? s : a, {});
  const desc = n ? `Per-segment probability of AI-generated speech over ${fmt(total, 1)} seconds; highest ` +
      `${fmt(worst.probability, 2)} at ${fmt(worst.start_s, 1)} to ${fmt(worst.end_s, 1)} seconds.` : "No segments.";
  return `<svg role="img" aria-labelledby="ct cd" viewBox="0 0 ${W} ${H}" width="100%" style="max-width:${W}px">` +
    `<title id="ct">Timeline</title><desc id="cd">${desc}</desc>` +
    `<line x1="${pad}" y1="${H - pad}" x2="${W - pad}" y2="${H - pad}" stroke="#333"/>` + bars + markLine + wideLine +
    `<line x1="${pad}" y1="${ty}" x2="${W - pad}" y2="${ty}" stroke="#000" stroke-dasharray="4 3"/>` +
    `<text x="${pad}" y="14" font-size="12">P(fake) 1</text><text x="${W - pad}" y="${H - 6}" font-size="12"` +
    ` text-anchor="end">${fmt(total, 1)} s</text></svg>`;
}

function show(r) {
  scanId = r.id;
  $("verdict").textContent = r.verdict || "no verdict";
  $("verdict").className = "verdict " + (r.verdict || "");
  $("prob").textContent = r.probability === null ? "n/a" : (100 * r.probability).toFixed(1) + " %";
  $("thr").textContent = fmt(r.threshold, 2);
  $("op").textContent = r.operating_point === "eer" ? "" : `(${r.operating_point})`;
  $("model").textContent = r.model;
  $("reason").textContent = r.reason || "";
  const wm = r.watermark;
  $("mark").hidden = !wm;
  if (wm) $("mark").textContent = wm.detected
      ? `Perth watermark found (confidence ${fmt(wm.confidence, 2)}): ` +
        "the audio went through a Perth watermarker such as Chatterbox TTS."
      : `No Perth watermark claimed (confidence ${fmt(wm.confidence, 2)}${wm.note ? "; " + wm.note : ""}). ` +
        "Most generators do not mark their output, so this says nothing about whether the speech is real.";
  const wb = r.wide_band;
  $("wideband").hidden = !wb;
  if (wb) $("wideband").textContent = wb.used
      ? `The band above 8 kHz is there (${fmt(wb.top_band_db, 0)} dB): ${wb.model} scored it too, ` +
        "and the probabilities mix both models (its own, dashed in the chart and in brackets below)."
      : `Scored at 16 kHz only (${wb.note || "no wide-band content"}).`;
  $("chart").innerHTML = chart(r.timeline, r.threshold, r.duration_s);
  const rows = $("rows"); rows.textContent = "";
  for (const s of r.timeline) {
    const tr = rows.insertRow();
    const p = fmt(s.probability, 3) + (s.wide_band === null || s.wide_band === undefined ? "" :
        ` (wide-band ${fmt(s.wide_band, 3)})`);
    for (const v of [fmt(s.start_s, 1), fmt(s.end_s, 1), p, fmt(100 * s.speech_fraction, 0) + " %"])
      tr.insertCell().textContent = v;
  }
  $("fbstatus").textContent = "";
  $("result").hidden = false;
  $("status").textContent = `Done: ${r.verdict}, ${$("prob").textContent} probability of AI-generated speech.`;
}

async function scan(file) {
  $("error").textContent = ""; $("result").hidden = true;
  $("status").textContent = `Analysing ${file.name} ...`;
  const body = new FormData(); body.append("file", file, file.name);
  if ($("watermark").checked) body.append("watermark", "true");
  if ($("unseen").checked) body.append("operating_point", "unseen-eer");
  try {
    const resp = await fetch(SCAN_URL, { method: "POST", body, headers: headers() });
    const data = await resp.json();
    if (!resp.ok) throw new Error(data.message || resp.statusText);
    show(data);
  } catch (e) {
    $("status").textContent = "";
    $("error").textContent = "Could not analyse the file: " + e.message;
  }
}

async function feedback(label) {
  if (!scanId) return;
  const resp = await fetch(SCANS_URL + scanId + "/feedback", {
    method: "POST", headers: { "Content-Type": "application/json", ...headers() },
    body: JSON.stringify({ label, note: null }) });
  $("fbstatus").textContent = resp.ok ? "Thank you, your answer was saved." : "Sorry, the answer could not be saved.";
}

$("drop").addEventListener("click", () => $("file").click());
$("file").addEventListener("change", (e) => { if (e.target.files.length) scan(e.target.files[0]); });
const drop = $("drop");
drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => {
  e.preventDefault(); drop.classList.remove("over");
  if (e.dataTransfer.files.length) scan(e.dataTransfer.files[0]);
});
for (const b of document.querySelectorAll("button[data-label]"))
  b.addEventListener("click", () => feedback(b.dataset.label));
</script>
</body>
</html>
"""
