// The wyoming-indextts page: plain JavaScript, no build step.
// Every request uses a relative URL (Home Assistant's ingress serves the page under a prefix),
// and user text only ever reaches the page as textContent, never as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
const SAMPLE_TEXT = { zh: "你好，这是我的声音。", en: "Hello, this is my voice." };
const OPENAI_PCM_RATE = 24000;

function headers(extra = {}) {
  const token = $("token").value.trim();
  return token ? { ...extra, Authorization: `Bearer ${token}` } : extra;
}

async function call(path, options = {}) {
  const response = await fetch(path, { ...options, headers: headers(options.headers) });
  if (!response.ok) {
    let message = `${response.status} ${response.statusText}`;
    try {
      message = (await response.json()).error.message;
    } catch (_) { /* not JSON: keep the status line */ }
    throw new Error(message);
  }
  return response;
}

function say(id, text) {
  $(id).textContent = text;
}

function cell(row, text) {
  const td = document.createElement("td");
  td.textContent = text;
  row.appendChild(td);
  return td;
}

function button(label, onClick) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = label;
  b.addEventListener("click", onClick);
  return b;
}

async function loadStatus() {
  // Not `call`: an unhealthy server answers 503 with the same JSON, which is worth showing.
  const response = await fetch("health", { headers: headers() });
  const health = await response.json().catch(() => null);
  const list = $("status");
  list.replaceChildren();
  const add = (term, value) => {
    const dt = document.createElement("dt");
    dt.textContent = term;
    const dd = document.createElement("dd");
    dd.textContent = value;
    list.append(dt, dd);
  };
  if (!health || !health.engines) {
    add("Server", health && health.error ? health.error.message : `${response.status} ${response.statusText}`);
    return;
  }
  add("Server", health.status + (health.reason ? `: ${health.reason}` : ""));
  for (const [name, engine] of Object.entries(health.engines)) {
    add(`Engine ${name}`, `${engine.voices} voice(s), breaker ${engine.breaker}`);
  }
  const cache = health.cache;
  if (cache.enabled) {
    const rate = cache.hit_rate === null ? "no lookups yet" : `${(cache.hit_rate * 100).toFixed(0)} % hits`;
    add("Cache", `${(cache.memory_bytes / 1048576).toFixed(1)} MiB in memory, ${rate}`);
  } else {
    add("Cache", "off");
  }
  const listed = health.prerender;
  if (listed) {
    add("Pre-renders", listed.total === 0 ? "none listed" :
      `${listed.done} of ${listed.total} sentences done (${listed.cached} found cached, ${listed.rendered} rendered, ${listed.failed} failed)`);
  }
  const queue = health.render_queue;
  if (queue) {
    const next = queue.next[0];
    add("Render queue", queue.entries === 0 ? "empty: every sentence a fallback spoke is rendered" :
      `${queue.entries} sentence(s) waiting for their voice, most asked first` +
      (next ? ` (next: “${next.text}” in ${next.voice}, asked ${next.asked}×)` : "") +
      `; ${queue.rendered} rendered since start`);
  }
  for (const [voice, windows] of Object.entries((health.heard && health.heard.voices) || {})) {
    add(`Heard: ${voice}`, heardLine(voice, windows));
  }
}

// "last 24 h: 83 % of sentences in grandma's voice (last 7 d: 75 %)"
function heardLine(voice, windows) {
  const percent = (share) => (share && share.percent !== null ? `${share.percent.toFixed(0)} %` : "no sentences");
  return `last 24 h: ${percent(windows.last_24h)} of sentences in ${voice}'s voice (last 7 d: ${percent(windows.last_7d)})`;
}

// Who spoke the first sentence, from the response's headers (see http/speech.py).
function spokenBy(response) {
  const name = (header) => decodeURIComponent(response.headers.get(header) || "");
  const voice = name("X-Voice");
  const asked = name("X-Voice-Asked");
  if (response.headers.get("X-Voice-Route") !== "fallback") return `in ${voice}'s voice`;
  const queued = response.headers.get("X-Voice-Queued") === "1" ? `; the sentence is queued to render in ${asked}'s voice` : "";
  return `by the fallback voice ${voice}, not ${asked} (too slow to render live)${queued}`;
}

async function loadVoices() {
  const data = await (await call("v1/voices")).json();
  const body = $("voices");
  const select = $("speak-voice");
  const chosen = select.value;
  body.replaceChildren();
  select.replaceChildren();
  for (const voice of data.voices) {
    const row = document.createElement("tr");
    row.dataset.voice = voice.name;
    cell(row, voice.name + (voice.default ? " (default)" : ""));
    cell(row, voice.engine);
    cell(row, voice.languages.join(", "));
    cell(row, voice.description);
    const actions = cell(row, "");
    actions.appendChild(button("Play sample", () => playSample(voice)));
    if (voice.engine === "indextts" && !voice.default) {
      actions.appendChild(button("Delete", () => deleteVoice(voice.name)));
    }
    body.appendChild(row);
    const option = document.createElement("option");
    option.value = voice.name;
    option.textContent = voice.name;
    select.appendChild(option);
  }
  select.value = chosen || data.default;
  const listVoice = $("prerender-voice");
  const listChosen = listVoice.value;
  listVoice.replaceChildren(...Array.from(select.options, (option) => option.cloneNode(true)));
  listVoice.value = listChosen || data.default;
}

function showPrerender(data) {
  const list = $("prerender-list");
  list.replaceChildren();
  for (const [voice, texts] of Object.entries(data.lists)) {
    for (const text of texts) {
      const item = document.createElement("li");
      item.textContent = `${voice}: ${text} `;
      item.appendChild(button("Remove", () => editPrerender("v1/prerender/remove", voice, text)));
      list.appendChild(item);
    }
  }
  const progress = data.progress;
  say("prerender-status", progress.total === 0 ? "Nothing to render." :
    `${progress.done} of ${progress.total} sentences done, ${progress.failed} failed`);
  return progress.done < progress.total;
}

async function loadPrerender() {
  try {
    // Rendering goes on in the background: follow it while it lasts.
    while (showPrerender(await (await call("v1/prerender")).json())) {
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  } catch (error) {
    say("prerender-status", error.message);
  }
}

async function editPrerender(path, voice, text) {
  try {
    await call(path, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ voice, text }),
    });
    await loadPrerender();
  } catch (error) {
    say("prerender-status", error.message);
  }
}

async function playSample(voice) {
  const language = voice.languages.some((code) => code.startsWith("zh")) ? "zh" : "en";
  try {
    const response = await call("tts", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ text: SAMPLE_TEXT[language], voice: voice.name, format: "wav" }),
    });
    const player = $("player");
    player.src = URL.createObjectURL(await response.blob());
    await player.play().catch(() => {});
  } catch (error) {
    say("message", `Sample of ${voice.name}: ${error.message}`);
  }
}

async function deleteVoice(name) {
  if (!confirm(`Delete the voice ${name}?`)) return;
  try {
    await call(`v1/voices/${encodeURIComponent(name)}`, { method: "DELETE" });
    say("message", "");
    await loadVoices();
  } catch (error) {
    say("message", `Delete ${name}: ${error.message}`);
  }
}

// Raw 24 kHz PCM, played piece by piece as it arrives, then kept as a WAV for replay.
async function speak(event) {
  event.preventDefault();
  const text = $("speak-text").value;
  say("speak-status", "Speaking…");
  const context = new AudioContext({ sampleRate: OPENAI_PCM_RATE });
  let playAt = context.currentTime + 0.05;
  const pieces = [];
  let spare = new Uint8Array(0);
  let received = 0;
  try {
    const response = await call("v1/audio/speech", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ model: "indextts", input: text, voice: $("speak-voice").value, response_format: "pcm" }),
    });
    const who = spokenBy(response);
    const reader = response.body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      const bytes = new Uint8Array(spare.length + value.length);
      bytes.set(spare);
      bytes.set(value, spare.length);
      const whole = bytes.length - (bytes.length % 2);
      spare = bytes.slice(whole);
      if (!whole) continue;
      const samples = new Int16Array(bytes.buffer.slice(0, whole));
      pieces.push(samples);
      received += samples.length;
      const buffer = context.createBuffer(1, samples.length, OPENAI_PCM_RATE);
      buffer.getChannelData(0).set(Float32Array.from(samples, (s) => s / 32768));
      const source = context.createBufferSource();
      source.buffer = buffer;
      source.connect(context.destination);
      playAt = Math.max(playAt, context.currentTime);
      source.start(playAt);
      playAt += buffer.duration;
      say("speak-status", `Playing: ${(received / OPENAI_PCM_RATE).toFixed(2)} s received`);
    }
    $("player").src = URL.createObjectURL(wavBlob(pieces, OPENAI_PCM_RATE));
    say("speak-status", `Done: ${(received / OPENAI_PCM_RATE).toFixed(2)} s of audio, spoken ${who}`);
    loadStatus().catch(() => {});
  } catch (error) {
    say("speak-status", `Could not speak: ${error.message}`);
  }
}

function wavBlob(pieces, rate) {
  const count = pieces.reduce((n, p) => n + p.length, 0);
  const header = new DataView(new ArrayBuffer(44));
  const text = (offset, s) => [...s].forEach((c, i) => header.setUint8(offset + i, c.charCodeAt(0)));
  text(0, "RIFF");
  header.setUint32(4, 36 + count * 2, true);
  text(8, "WAVEfmt ");
  header.setUint32(16, 16, true);
  header.setUint16(20, 1, true);
  header.setUint16(22, 1, true);
  header.setUint32(24, rate, true);
  header.setUint32(28, rate * 2, true);
  header.setUint16(32, 2, true);
  header.setUint16(34, 16, true);
  text(36, "data");
  header.setUint32(40, count * 2, true);
  return new Blob([header, ...pieces], { type: "audio/wav" });
}

async function upload(event) {
  event.preventDefault();
  const form = new FormData(event.target);
  const name = form.get("name");
  say("upload-status", `Uploading ${name}…`);
  try {
    const job = await (await call("v1/voices", { method: "POST", body: form })).json();
    say("upload-status", `${name}: ${job.state} (${job.seconds} s of speech kept)`);
    for (;;) {
      await new Promise((resolve) => setTimeout(resolve, 500));
      const state = await (await call(`v1/voices/${encodeURIComponent(name)}/preparation`)).json();
      say("upload-status", `${name}: ${state.state}${state.message ? ` (${state.message})` : ""}`);
      if (state.state !== "preparing") break;
    }
    await loadVoices();
    await loadStatus();
  } catch (error) {
    say("upload-status", `Upload of ${name} failed: ${error.message}`);
  }
}

async function refresh() {
  try {
    await loadVoices();
    await loadStatus();
    loadPrerender();
    say("message", "");
  } catch (error) {
    say("message", error.message);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("token").value = localStorage.getItem("wyoming-indextts-token") || "";
  $("token").addEventListener("change", () => {
    localStorage.setItem("wyoming-indextts-token", $("token").value.trim());
    refresh();
  });
  $("speak-form").addEventListener("submit", speak);
  $("upload-form").addEventListener("submit", upload);
  $("prerender-form").addEventListener("submit", (event) => {
    event.preventDefault();
    editPrerender("v1/prerender", $("prerender-voice").value, $("prerender-text").value);
  });
  refresh();
});
