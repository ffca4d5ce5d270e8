"""The `--view` page: the picture, what the stream is, how playback goes, play/pause.

One self-contained HTML document (no external resources). Its script:

- makes a receive-only WebRTC offer to `POST offer` and plays the answer's video track;
- polls `GET stats` twice a second (the player's state and numbers, see view.py) and fills
  the panel: codec and model, picture size and rate, bitrate, decode fps, latency, frames
  shown / late / dropped and units lost;
- shows one state at a time in the badge and over the picture: connecting, waiting for
  the stream, playing, paused, ended, or an error (the player stopped, the connection
  failed, the offer was refused), in words;
- posts its playback state to `POST status` (current time, frames decoded, a 32x18 luma
  sample of the picture: `nvcSample()`), which `GET status` shows.
"""

from __future__ import annotations

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>nvc view</title>
<style>
 :root { color-scheme: dark; }
 * { box-sizing: border-box; }
 body { margin: 0; background: #14161a; color: #e4e6eb;
        font: 14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; }
 header { display: flex; align-items: center; gap: 12px; padding: 10px 16px;
          background: #1c1f25; border-bottom: 1px solid #2a2e36; }
 header h1 { font-size: 16px; margin: 0; font-weight: 600; letter-spacing: .02em; }
 #badge { padding: 2px 10px; border-radius: 999px; font-size: 12px; font-weight: 600;
          background: #3a3f4a; color: #e4e6eb; }
 #badge[data-state=playing] { background: #1f6f43; }
 #badge[data-state=paused] { background: #6b5b1f; }
 #badge[data-state=ended] { background: #3a3f4a; }
 #badge[data-state=error] { background: #8a2630; }
 #badge[data-state=connecting], #badge[data-state=waiting] { background: #2b4f7e; }
 #message { color: #a9afbb; font-size: 13px; flex: 1; white-space: nowrap;
            overflow: hidden; text-overflow: ellipsis; }
 button { font: inherit; font-weight: 600; padding: 6px 16px; border-radius: 6px;
          border: 1px solid #4a5160; background: #2a2f38; color: #e4e6eb; cursor: pointer;
          min-width: 92px; }
 button:hover:not(:disabled) { background: #343a45; }
 button:disabled { opacity: .45; cursor: default; }
 main { display: flex; gap: 16px; padding: 16px; align-items: flex-start; flex-wrap: wrap; }
 #screen { position: relative; flex: 1 1 560px; max-width: 960px; aspect-ratio: 16 / 9;
           background: #000; border-radius: 6px; overflow: hidden; }
 video { width: 100%; height: 100%; object-fit: contain; display: block; }
 #overlay { position: absolute; inset: 0; display: flex; align-items: center;
            justify-content: center; text-align: center; padding: 24px;
            background: rgba(10, 11, 14, .72); font-size: 16px; }
 #overlay[hidden] { display: none; }
 #overlay.error { color: #ff9aa4; }
 aside { flex: 0 0 270px; background: #1c1f25; border: 1px solid #2a2e36;
         border-radius: 6px; padding: 6px 14px 10px; }
 aside h2 { font-size: 11px; text-transform: uppercase; letter-spacing: .08em;
            color: #8a909c; margin: 10px 0 4px; }
 dl { display: grid; grid-template-columns: auto 1fr; gap: 3px 12px; margin: 0; }
 dt { color: #a9afbb; }
 dd { margin: 0; text-align: right; font-variant-numeric: tabular-nums; font-weight: 500;
      overflow-wrap: anywhere; }
 dd.bad { color: #ffb347; }
</style></head>
<body>
<header>
 <h1>nvc</h1>
 <span id="badge" data-state="connecting">Connecting</span>
 <span id="message">Connecting to the player&hellip;</span>
 <button id="playpause" type="button" disabled>Pause</button>
</header>
<main>
 <div id="screen">
  <video id="video" autoplay muted playsinline></video>
  <div id="overlay">Connecting to the player&hellip;</div>
 </div>
 <aside>
  <h2>Stream</h2>
  <dl>
   <dt>Codec</dt><dd id="codec">&ndash;</dd>
   <dt>Model</dt><dd id="model">&ndash;</dd>
   <dt>Picture</dt><dd id="picture">&ndash;</dd>
   <dt>Source</dt><dd id="source">&ndash;</dd>
  </dl>
  <h2>Playback</h2>
  <dl>
   <dt>Bitrate</dt><dd id="bitrate">&ndash;</dd>
   <dt>Decode</dt><dd id="decode">&ndash;</dd>
   <dt>Latency</dt><dd id="latency">&ndash;</dd>
   <dt>Shown</dt><dd id="shown">&ndash;</dd>
   <dt>Late</dt><dd id="late">&ndash;</dd>
   <dt>Dropped</dt><dd id="dropped">&ndash;</dd>
   <dt>Lost</dt><dd id="lost">&ndash;</dd>
  </dl>
 </aside>
</main>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
const video = $("video"), badge = $("badge"), message = $("message");
const overlay = $("overlay"), button = $("playpause");
const canvas = document.createElement("canvas");
canvas.width = 32; canvas.height = 18;
const LABELS = {connecting: "Connecting", waiting: "Waiting", playing: "Playing",
                paused: "Paused", ended: "Ended", error: "Error"};
let pc = null, player = null, fatal = null, userPaused = false, misses = 0;

function setState(state, text) {
  badge.dataset.state = state;
  badge.textContent = LABELS[state];
  message.textContent = text;
  overlay.hidden = state === "playing" || state === "paused";
  overlay.className = state === "error" ? "error" : "";
  overlay.textContent = text;
  button.disabled = state !== "playing" && state !== "paused";
  button.textContent = userPaused ? "Play" : "Pause";
}

function fail(text) {
  if (fatal) return;
  fatal = text;
  if (pc) pc.close();
  render();
}

function num(value, digits) {
  return value === null || value === undefined ? null : value.toFixed(digits);
}

function fill(id, text, bad) {
  const el = $(id);
  el.textContent = text === null || text === undefined ? "\\u2013" : text;
  el.classList.toggle("bad", !!bad);
}

function rate(kbps) {
  if (kbps === null || kbps === undefined) return null;
  return kbps >= 1000 ? (kbps / 1000).toFixed(2) + " Mbit/s" : kbps.toFixed(0) + " kbit/s";
}

function showStats(s) {
  const st = s.stream || {};
  fill("codec", st.codec);
  fill("model", st.model);
  fill("picture", st.width ? st.width + "\\u00d7" + st.height + " at " + st.fps + " fps" : null);
  fill("source", s.live === null || s.live === undefined ? null : (s.live ? "live" : "file"));
  const p = s.stats || {};
  fill("bitrate", rate(p.bitrate_kbps));
  const fps = num(p.decode_fps, 0);
  fill("decode", fps === null ? null : fps + " fps");
  const med = num(p.latency_ms_median, 0), p95 = num(p.latency_ms_p95, 0);
  fill("latency", med === null ? null : med + " ms (p95 " + p95 + ")");
  fill("shown", p.frames_presented);
  fill("late", p.frames_late, p.frames_late > 0);
  fill("dropped", p.frames_dropped, p.frames_dropped > 0);
  fill("lost", p.units_lost, p.units_lost > 0);
}

function render() {
  if (fatal) return setState("error", fatal);
  const s = player || {state: "connecting"};
  if (s.state === "ended") return setState("ended", "The stream ended: " + s.message);
  if (s.state === "connecting") return setState("connecting", "Connecting to the stream\\u2026");
  if (s.state === "waiting") return setState("waiting", "Waiting for the stream to start\\u2026");
  if (video.readyState < 2 || !video.videoWidth) {
    return setState("waiting", "Starting the picture\\u2026");
  }
  if (userPaused) return setState("paused", "Paused: the stream goes on without you");
  setState("playing", "Playing " + (s.live ? "a live stream" : "a file"));
}

async function poll() {
  if (fatal) return;
  try {
    const response = await fetch("stats", {cache: "no-store"});
    if (!response.ok) throw new Error("HTTP " + response.status);
    player = await response.json();
    misses = 0;
    showStats(player);
  } catch (e) {
    misses += 1;
    if (misses >= 2) {
      const ended = player && player.state === "ended" ? " (" + player.message + ")" : "";
      fail("The player has stopped" + ended + ": nothing more will arrive");
    }
  }
  render();
}

async function connect() {
  pc = new RTCPeerConnection({iceServers: []});
  pc.addTransceiver("video", {direction: "recvonly"});
  pc.ontrack = (e) => {
    video.srcObject = e.streams[0] || new MediaStream([e.track]);
    video.play().catch(() => {});
  };
  pc.onconnectionstatechange = () => {
    if (pc.connectionState === "failed") fail("The connection to the player failed");
  };
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((done) => {
    if (pc.iceGatheringState === "complete") return done();
    pc.addEventListener("icegatheringstatechange", () => {
      if (pc.iceGatheringState === "complete") done();
    });
    setTimeout(done, 3000);
  });
  const response = await fetch("offer", {
    method: "POST",
    headers: {"Content-Type": "application/json"},
    body: JSON.stringify({type: "offer", sdp: pc.localDescription.sdp}),
  });
  if (!response.ok) {
    let why = "HTTP " + response.status;
    try { why = (await response.json()).error || why; } catch (e) { /* not JSON */ }
    throw new Error(why);
  }
  await pc.setRemoteDescription(await response.json());
}

function nvcSample() {
  if (video.readyState < 2 || !video.videoWidth) return null;
  const ctx = canvas.getContext("2d", {willReadFrequently: true});
  ctx.drawImage(video, 0, 0, canvas.width, canvas.height);
  const px = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
  const luma = [];
  for (let i = 0; i < px.length; i += 4) {
    luma.push(Math.round(0.2126 * px[i] + 0.7152 * px[i + 1] + 0.0722 * px[i + 2]));
  }
  return luma;
}

async function report() {
  if (fatal) return;
  const quality = video.getVideoPlaybackQuality ? video.getVideoPlaybackQuality() : null;
  const luma = nvcSample();
  let sample = null;
  if (luma) {
    const mean = luma.reduce((a, b) => a + b, 0) / luma.length;
    const vary = luma.reduce((a, b) => a + (b - mean) * (b - mean), 0) / luma.length;
    sample = {mean: mean, std: Math.sqrt(vary)};
  }
  const status = {
    state: badge.dataset.state,
    currentTime: video.currentTime,
    paused: video.paused,
    width: video.videoWidth,
    height: video.videoHeight,
    framesDecoded: quality ? quality.totalVideoFrames : null,
    connection: pc ? pc.connectionState : "new",
    sample: sample,
  };
  try {
    await fetch("status", {method: "POST", headers: {"Content-Type": "application/json"},
                           body: JSON.stringify(status)});
  } catch (e) { /* the player has stopped: poll() says so */ }
}

button.addEventListener("click", () => {
  userPaused = !userPaused;
  if (userPaused) video.pause(); else video.play().catch(() => {});
  render();
});
video.addEventListener("playing", render);
connect().catch((e) => fail("The player refused this page: " + e.message));
setInterval(poll, 500);
setInterval(report, 500);
poll();
</script>
</body></html>
"""
