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
  sample of the picture: `nvcSample()`), which `GET status` shows;
- for a free-viewpoint stream (`GET orbit` says `available`, see orbit_view.py), shows the
  View panel and lets a person orbit: dragging the picture turns the camera around the
  rig's centre (yaw, pitch), the wheel moves it closer or further, the panel's buttons
  (or keys 1-9, and 0 or R for the default camera) snap back to a rig camera. The camera
  goes to `POST camera`, one request at a time: while one is on its way, only the latest
  pose waits to follow it.
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
 #screen.orbit { cursor: grab; touch-action: none; }
 #screen.orbit.dragging { cursor: grabbing; }
 #view[hidden] { display: none; }
 #cameras { display: flex; flex-wrap: wrap; gap: 4px; margin: 6px 0 4px; }
 #cameras button { min-width: 0; padding: 2px 8px; font-size: 12px; font-weight: 500; }
 #cameras button[aria-pressed=true] { background: #2b4f7e; border-color: #3d6aa8; }
 #hint { color: #8a909c; font-size: 12px; margin: 4px 0 0; }
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
  <section id="view" hidden>
   <h2>View</h2>
   <dl>
    <dt>Camera</dt><dd id="camera">&ndash;</dd>
    <dt>Renders</dt><dd id="renders">&ndash;</dd>
   </dl>
   <div id="cameras"></div>
   <p id="hint">Drag to orbit, scroll to zoom; keys 1&ndash;9 pick a camera, 0 the
   default.</p>
  </section>
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

// ---- the orbit view of free-viewpoint streams (GET orbit, POST camera) ----
const screenBox = $("screen"), viewPanel = $("view"), cameraList = $("cameras");
const DEG_PER_PIXEL = 0.4, WHEEL_RATE = 0.0015;
let orbit = null, pose = null, chosen = null, drag = null, sending = false, pending = null;

function clamp(v, lo, hi) { return Math.min(hi, Math.max(lo, v)); }

function sendCamera(body) {
  chosen = body;
  showCamera();
  if (sending) { pending = body; return; }
  sending = true;
  fetch("camera", {method: "POST", headers: {"Content-Type": "application/json"},
                   body: JSON.stringify(body)})
    .catch(() => {})
    .finally(() => {
      sending = false;
      if (pending) { const next = pending; pending = null; sendCamera(next); }
    });
}

function showCamera() {
  if (!orbit) return;
  let text;
  if (chosen && chosen.camera !== undefined) {
    const name = orbit.cameras[chosen.camera].name;
    text = name + (chosen.camera === orbit.default ? " (default)" : "");
  } else if (chosen) {
    text = "orbit " + chosen.yaw.toFixed(0) + "\u00b0, " + chosen.pitch.toFixed(0) +
      "\u00b0, \u00d7" + chosen.distance.toFixed(2);
  }
  fill("camera", text);
  for (const b of cameraList.children) {
    b.setAttribute("aria-pressed", String(!!chosen && chosen.camera === Number(b.dataset.index)));
  }
}

function snap(index) {
  if (!orbit || index < 0 || index >= orbit.cameras.length) return;
  const c = orbit.cameras[index];
  pose = {yaw: c.yaw, pitch: clamp(c.pitch, -orbit.pitch_limit, orbit.pitch_limit),
          distance: clamp(c.distance, orbit.distance_range[0], orbit.distance_range[1])};
  sendCamera({camera: index});
}

function moveTo(yaw, pitch, distance) {
  if (!orbit || !pose) return;
  yaw = ((yaw + 180) % 360 + 360) % 360 - 180;
  pose = {yaw: yaw, pitch: clamp(pitch, -orbit.pitch_limit, orbit.pitch_limit),
          distance: clamp(distance, orbit.distance_range[0], orbit.distance_range[1])};
  sendCamera(pose);
}

function setUpOrbit(o) {
  orbit = o;
  cameraList.textContent = "";
  o.cameras.forEach((c, i) => {
    const b = document.createElement("button");
    b.type = "button";
    b.dataset.index = String(i);
    b.textContent = (i < 9 ? (i + 1) + " " : "") + c.name;
    b.title = i === o.default ? "the stream's own camera" : "rig camera " + c.name;
    b.addEventListener("click", () => snap(i));
    cameraList.appendChild(b);
  });
  const c = o.chosen || {camera: o.default};
  if (c.camera !== undefined) {
    const cam = o.cameras[c.camera];
    pose = {yaw: cam.yaw, pitch: cam.pitch, distance: cam.distance};
  } else {
    pose = {yaw: c.yaw, pitch: c.pitch, distance: c.distance};
  }
  chosen = c;
  viewPanel.hidden = false;
  screenBox.classList.add("orbit");
  showCamera();
}

async function pollOrbit() {
  if (fatal || !player || !player.stream) return;
  try {
    const response = await fetch("orbit", {cache: "no-store"});
    if (!response.ok) return;
    const o = await response.json();
    if (o.available && (!orbit || o.cameras.length !== orbit.cameras.length)) setUpOrbit(o);
    if (!o.available && orbit) {
      orbit = null;
      viewPanel.hidden = true;
      screenBox.classList.remove("orbit");
    }
    const st = o.stats || {};
    if (orbit) {
      fill("renders", st.renders + (st.render_ms_median === null ? "" :
        " (" + st.render_ms_median.toFixed(0) + " ms)"), st.render_errors > 0);
    }
  } catch (e) { /* the player has stopped: poll() says so */ }
}

screenBox.addEventListener("pointerdown", (e) => {
  if (!orbit || e.button !== 0) return;
  drag = {x: e.clientX, y: e.clientY, yaw: pose.yaw, pitch: pose.pitch};
  screenBox.setPointerCapture(e.pointerId);
  screenBox.classList.add("dragging");
  e.preventDefault();
});
screenBox.addEventListener("pointermove", (e) => {
  if (!drag) return;
  const dx = e.clientX - drag.x, dy = e.clientY - drag.y;
  moveTo(drag.yaw - dx * DEG_PER_PIXEL, drag.pitch + dy * DEG_PER_PIXEL, pose.distance);
});
function endDrag() { drag = null; screenBox.classList.remove("dragging"); }
screenBox.addEventListener("pointerup", endDrag);
screenBox.addEventListener("pointercancel", endDrag);
screenBox.addEventListener("wheel", (e) => {
  if (!orbit) return;
  e.preventDefault();
  moveTo(pose.yaw, pose.pitch, pose.distance * Math.exp(e.deltaY * WHEEL_RATE));
}, {passive: false});
document.addEventListener("keydown", (e) => {
  if (!orbit || e.ctrlKey || e.metaKey || e.altKey) return;
  if (e.key === "0" || e.key === "r" || e.key === "R") snap(orbit.default);
  else if (e.key >= "1" && e.key <= "9") snap(Number(e.key) - 1);
});

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
setInterval(pollOrbit, 1000);
poll();
</script>
</body></html>
"""
