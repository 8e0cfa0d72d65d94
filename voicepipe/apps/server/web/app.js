// voicepipe's browser page: POST /v1/chat/stream, read its Server-Sent Events, show each text
// chunk as it is released and play its audio through Web Audio, chunks scheduled back to back
// behind a small jitter buffer. window.voicepipe exposes counters (the browser test reads them).
"use strict";

const JITTER_SECONDS = 0.12; // audio held before playback starts, and again after an underrun
const LEAD_SECONDS = 0.02; // a chunk scheduled closer to "now" than this would click

const $ = (id) => document.getElementById(id);
const stats = {
  turns: 0, textChunks: 0, audioChunks: 0, scheduled: 0, audioSeconds: 0,
  underruns: 0, ttfaMs: null, serverTtfaMs: null, done: false, errors: [], text: "",
};
window.voicepipe = stats;

const history = [];
let audio = null; // AudioContext, created on the first click (browsers require a gesture)
let player = null;
let controller = null;

/** Plays PCM chunks gap-free: waits for JITTER_SECONDS of audio, then schedules back to back. */
class Player {
  constructor(ctx, onFirstSound) {
    this.ctx = ctx;
    this.onFirstSound = onFirstSound;
    this.pending = [];
    this.pendingSeconds = 0;
    this.nextTime = 0;
    this.buffering = true;
    this.sources = new Set();
  }

  push(buffer, onStart) {
    this.pending.push([buffer, onStart]);
    this.pendingSeconds += buffer.duration;
    if (!this.buffering || this.pendingSeconds >= JITTER_SECONDS) this.flush();
  }

  flush() {
    const now = this.ctx.currentTime;
    if (this.nextTime < now + LEAD_SECONDS) {
      if (!this.buffering && this.nextTime > 0) {
        // Ran dry: hold back again until the jitter buffer refills.
        stats.underruns += 1;
        $("underruns").textContent = stats.underruns;
        this.buffering = true;
        if (this.pendingSeconds < JITTER_SECONDS) return;
      }
      this.nextTime = now + LEAD_SECONDS;
    }
    this.buffering = false;
    for (const [buffer, onStart] of this.pending) {
      const source = this.ctx.createBufferSource();
      source.buffer = buffer;
      source.connect(this.ctx.destination);
      source.onended = () => this.sources.delete(source);
      source.start(this.nextTime);
      this.sources.add(source);
      const delayMs = Math.max(0, (this.nextTime - this.ctx.currentTime) * 1000);
      if (this.onFirstSound) this.onFirstSound(delayMs);
      this.onFirstSound = null;
      setTimeout(onStart, delayMs);
      this.nextTime += buffer.duration;
      stats.scheduled += 1;
    }
    this.pending = [];
    this.pendingSeconds = 0;
  }

  stop() {
    for (const source of this.sources) source.stop();
    this.sources.clear();
    this.pending = [];
    this.pendingSeconds = 0;
  }
}

function pcmToBuffer(ctx, base64, sampleRate) {
  const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
  const view = new DataView(bytes.buffer);
  const n = bytes.length >> 1;
  const buffer = ctx.createBuffer(1, Math.max(1, n), sampleRate);
  const out = buffer.getChannelData(0);
  for (let i = 0; i < n; i++) out[i] = view.getInt16(2 * i, true) / 32768;
  return buffer;
}

/** Yields {event, data} from a fetch Response carrying Server-Sent Events. */
async function* readEvents(response) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value.replace(/\r\n?/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let event = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (data.length) yield { event, data: JSON.parse(data.join("\n")) };
    }
  }
}

function addTurn(role, text) {
  const div = document.createElement("div");
  div.className = `turn ${role}`;
  if (text) div.textContent = text;
  $("conversation").append(div);
  div.scrollIntoView({ block: "end" });
  return div;
}

function headers() {
  const h = { "content-type": "application/json" };
  const key = $("key").value || sessionStorage.getItem("voicepipe-key");
  if (key) {
    h.authorization = `Bearer ${key}`;
    sessionStorage.setItem("voicepipe-key", key);  // gone when the tab closes
  }
  return h;
}

function fill(select, items, label) {
  select.replaceChildren(...items.map((item) => {
    const option = new Option(label(item), item.id ?? item, false, Boolean(item.default));
    return option;
  }));
}

async function loadOptions() {
  const health = await (await fetch("healthz")).json();
  $("key-row").hidden = !health.auth;
  $("talk").hidden = !(health.stt && navigator.mediaDevices && window.MediaRecorder);
  const response = await fetch("v1/voices", { headers: headers() });
  if (!response.ok) {
    $("status").textContent = health.auth ? "enter the API key under Options" : "cannot list voices";
    return;
  }
  const info = await response.json();
  fill($("voice"), info.voices, (v) => `${v.id} (${v.sample_rate} Hz)`);
  fill($("llm"), info.llms, (l) => l.id);
  fill($("chunking"), info.chunkings, (c) => c);
}

async function ask(text) {
  audio ??= new AudioContext();
  await audio.resume();
  player?.stop();
  const clicked = performance.now();
  stats.turns += 1;
  stats.ttfaMs = null;
  stats.done = false;
  $("ttfa").textContent = "…";
  $("server-ttfa").textContent = "…";
  history.push({ role: "user", content: text });
  addTurn("user", text);
  const turn = addTurn("assistant", "");
  const spans = new Map();
  player = new Player(audio, (delayMs) => {
    stats.ttfaMs = performance.now() - clicked + delayMs;
    $("ttfa").textContent = `${stats.ttfaMs.toFixed(0)} ms`;
  });
  controller = new AbortController();
  $("send").disabled = true;
  $("stop").disabled = false;
  $("status").textContent = "thinking…";
  let answer = "";
  try {
    const body = { messages: history, tts: $("voice").value || undefined,
      llm: $("llm").value || undefined, chunking: $("chunking").value || undefined };
    const response = await fetch("v1/chat/stream", {
      method: "POST", headers: headers(), body: JSON.stringify(body), signal: controller.signal,
    });
    if (!response.ok) {
      const detail = await response.json().catch(() => ({}));
      throw new Error(detail.error?.message ?? `HTTP ${response.status}`);
    }
    for await (const { event, data } of readEvents(response)) {
      if (event === "text") {
        const span = document.createElement("span");
        span.textContent = (spans.size ? " " : "") + data.text;
        spans.set(data.index, span);
        turn.append(span);
        answer += span.textContent;
        stats.textChunks += 1;
        stats.text = answer;
        $("status").textContent = "speaking…";
      } else if (event === "audio") {
        const buffer = pcmToBuffer(audio, data.data, data.sample_rate);
        stats.audioChunks += 1;
        stats.audioSeconds += buffer.duration;
        $("chunks").textContent = stats.audioChunks;
        player.push(buffer, () => spans.get(data.index)?.classList.add("spoken"));
      } else if (event === "error") {
        stats.errors.push(data);
        addTurn("error", `${data.stage} failed: ${data.message || data.type}`);
      } else if (event === "metrics") {
        stats.serverTtfaMs = data.server_ttfa_ms;
        if (data.server_ttfa_ms != null) {
          $("server-ttfa").textContent = `${data.server_ttfa_ms.toFixed(0)} ms`;
        }
      } else if (event === "done") {
        player.flush();
        stats.done = true;
      }
    }
    $("status").textContent = "";
  } catch (error) {
    player.stop();
    if (error.name !== "AbortError") {
      stats.errors.push({ message: String(error.message ?? error) });
      addTurn("error", String(error.message ?? error));
    }
    $("status").textContent = error.name === "AbortError" ? "stopped" : "";
  } finally {
    if (answer) history.push({ role: "assistant", content: answer });
    $("send").disabled = false;
    $("stop").disabled = true;
    controller = null;
  }
}

$("ask").addEventListener("submit", (event) => {
  event.preventDefault();
  const text = $("message").value.trim();
  if (!text) return;
  $("message").value = "";
  ask(text);
});
$("stop").addEventListener("click", () => {
  controller?.abort();
  player?.stop();
});
$("key").addEventListener("change", loadOptions);

// Hold to talk: record while the button is held (MediaRecorder), then the server transcribes
// the recording (/v1/audio/transcriptions) and the text is asked like a typed message.
// Talking over an answer stops it first.
let recorder = null;

async function startTalking(event) {
  event.preventDefault();
  if (recorder) return;
  controller?.abort();
  player?.stop();
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ audio: true });
  } catch (error) {
    $("status").textContent = `no microphone: ${error.message}`;
    stats.errors.push(String(error));
    return;
  }
  const pieces = [];
  recorder = new MediaRecorder(stream);
  recorder.ondataavailable = (e) => { if (e.data.size) pieces.push(e.data); };
  recorder.onstop = () => {
    stream.getTracks().forEach((track) => track.stop());
    const type = recorder.mimeType || "audio/webm";
    recorder = null;
    transcribeAndAsk(new Blob(pieces, { type })).catch((error) => {
      $("status").textContent = String(error);
      stats.errors.push(String(error));
    });
  };
  recorder.start();
  $("talk").classList.add("live");
  $("status").textContent = "listening… (release to send)";
}

function stopTalking() {
  $("talk").classList.remove("live");
  if (recorder && recorder.state === "recording") recorder.stop();
}

async function transcribeAndAsk(recording) {
  $("status").textContent = "transcribing…";
  const form = new FormData();
  form.append("file", recording, "speech.webm");
  form.append("model", "whisper-1");
  const h = headers();
  delete h["content-type"]; // the browser sets multipart's boundary itself
  const response = await fetch("v1/audio/transcriptions", { method: "POST", headers: h, body: form });
  const body = await response.json();
  if (!response.ok) throw new Error(body.error?.message ?? `HTTP ${response.status}`);
  stats.heard = body.text.trim();
  if (!stats.heard) {
    $("status").textContent = "heard nothing";
    return;
  }
  ask(stats.heard);
}

$("talk").addEventListener("pointerdown", startTalking);
$("talk").addEventListener("pointerup", stopTalking);
$("talk").addEventListener("pointerleave", stopTalking);
loadOptions().catch((error) => { $("status").textContent = String(error); });
