// The playground: speak text (streamed pcm, 16-bit or G.711, at any rate, played with Web Audio as it arrives, or
// a whole file for the other formats), preview the normalized text, clone a voice from a file or a microphone
// recording. Streamed pcm is drawn as a waveform as it arrives; with "Timed words" it comes as SSE with the
// request's word timings, and each word lights up while it is played.
// No dependencies. `window.playground` exposes counters (for the browser test and the curious).
"use strict";

const SAMPLE_RATE = 24000; // the model's; the audio context's rate (buffers at other rates are resampled)
const BASE = new URL("../", document.baseURI); // the API root: the page lives at <root>/playground/
const $ = (id) => document.getElementById(id);

// one request's counters, reset when the next one starts
const FRESH_STATS = {
  chunks: 0,
  bytesReceived: 0,
  samplesReceived: 0,
  samplesScheduled: 0,
  playedSeconds: 0,
  ttfaMs: null,
  rtf: null,
  audioSeconds: 0,
  sampleRate: null, // of the last response, from its X-Sample-Rate header
  encoding: null, // from X-Encoding
  peak: 0, // the largest decoded sample, |x| in [0, 1]
  waveformSamples: 0, // samples drawn on the waveform
  words: [], // the timed words: {word, start, end, litAt} (litAt: the playback time it lit up, null before)
};
const stats = (window.playground = {
  ...FRESH_STATS,
  requests: 0,
  state: "idle",
  lastError: null,
  voicesLoaded: false,
});

let audioCtx = null;
let current = null; // {abort: AbortController, sources: Set}
let recordedClip = null; // a WAV Blob from the microphone

class ApiError extends Error {
  constructor(message, status) {
    super(message);
    this.status = status;
  }
}

// -- helpers ---------------------------------------------------------------------------------------------

function setState(state) {
  stats.state = state;
  $("state").textContent = state;
}

function showError(message) {
  stats.lastError = message;
  const box = $("error");
  box.textContent = message;
  box.hidden = !message;
}

function headers(extra = {}) {
  const key = $("api-key").value.trim();
  return key ? { ...extra, Authorization: `Bearer ${key}` } : extra;
}

async function api(path, options = {}) {
  stats.requests += 1;
  const resp = await fetch(new URL(path, BASE), { ...options, headers: headers(options.headers) });
  if (!resp.ok) {
    let message = `${resp.status} ${resp.statusText}`;
    try {
      const body = await resp.json();
      if (body && body.error && body.error.message) message = body.error.message; // the API's own words
    } catch (_) {
      /* not JSON: keep the status line */
    }
    throw new ApiError(message, resp.status);
  }
  return resp;
}

function generation() {
  return {
    response_format: $("format").value,
    sample_rate: Number($("sample-rate").value),
    encoding: $("encoding").value,
    speed: Number($("speed").value),
    temperature: Number($("temperature").value),
    normalize_malaysian: $("normalize-malaysian").checked,
    stream: true,
  };
}

function resetStats() {
  Object.assign(stats, FRESH_STATS, { words: [] });
  waveform.reset();
  $("words").replaceChildren();
  $("words").hidden = true;
  $("ttfa").textContent = "–";
  $("rtf").textContent = "–";
  $("audio-seconds").textContent = "–";
  showError("");
  $("player").hidden = true;
  $("download").hidden = true;
}

function busy(on) {
  $("speak").disabled = on;
  $("clone").disabled = on;
  $("stop").disabled = !on;
}

// -- voices and normalization ----------------------------------------------------------------------------

async function loadVoices() {
  const select = $("voice");
  try {
    const { voices } = await (await api("v1/audio/voices")).json();
    const chosen = select.value;
    select.replaceChildren(
      ...voices.map((v) => {
        const option = document.createElement("option");
        option.value = v.id;
        option.textContent = v.alias_of ? `${v.name} (→ ${v.alias_of})` : v.name;
        return option;
      }),
    );
    if (chosen && voices.some((v) => v.id === chosen)) select.value = chosen;
    stats.voicesLoaded = true;
    showError("");
  } catch (err) {
    stats.voicesLoaded = false;
    showError(err.message);
  }
}

async function previewNormalization() {
  try {
    const resp = await api("v1/audio/normalize", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ input: $("text").value, normalize_malaysian: $("normalize-malaysian").checked }),
    });
    const { normalized } = await resp.json();
    const box = $("normalized");
    box.textContent = normalized;
    box.hidden = false;
    showError("");
  } catch (err) {
    showError(err.message);
  }
}

// -- playback --------------------------------------------------------------------------------------------

async function context() {
  if (!audioCtx) audioCtx = new AudioContext({ sampleRate: SAMPLE_RATE });
  if (audioCtx.state === "suspended") await audioCtx.resume();
  return audioCtx;
}

function firstAudio(t0) {
  if (stats.ttfaMs !== null) return;
  stats.ttfaMs = performance.now() - t0;
  $("ttfa").textContent = `${Math.round(stats.ttfaMs)} ms`;
  setState("playing");
}

function finish(t0, audioSeconds) {
  stats.audioSeconds = audioSeconds;
  $("audio-seconds").textContent = `${audioSeconds.toFixed(2)} s`;
  if (audioSeconds > 0) {
    // generation time per second of audio: under 1 means faster than real time
    stats.rtf = (performance.now() - t0) / 1000 / audioSeconds;
    $("rtf").textContent = stats.rtf.toFixed(2);
  }
}

// G.711 bytes -> 16-bit values (ITU-T G.711 expansion, as in its reference g711.c)
function mulawToLinear(u) {
  u = ~u & 0xff;
  const t = (((u & 0x0f) << 3) + 0x84) << ((u & 0x70) >> 4);
  return u & 0x80 ? 0x84 - t : t - 0x84;
}

function alawToLinear(a) {
  a ^= 0x55;
  let t = (a & 0x0f) << 4;
  const segment = (a & 0x70) >> 4;
  if (segment === 0) t += 8;
  else if (segment === 1) t += 0x108;
  else t = (t + 0x108) << (segment - 1);
  return a & 0x80 ? t : -t;
}

const G711 = { mulaw: mulawToLinear, alaw: alawToLinear };

// -- the waveform of the audio received so far, the playhead, and the timed words ---------------------------

const waveform = {
  chunks: [], // Float32Arrays, in order
  rate: SAMPLE_RATE,
  reset() {
    this.chunks = [];
    $("waveform").hidden = true;
  },
  add(samples, rate) {
    this.rate = rate;
    this.chunks.push(samples);
    stats.waveformSamples += samples.length;
    $("waveform").hidden = false;
    this.draw(null);
  },
  // min and max per pixel column over everything received; `playhead` in seconds (null: none)
  draw(playhead) {
    const canvas = $("waveform");
    const g = canvas.getContext("2d");
    const { width, height } = canvas;
    g.clearRect(0, 0, width, height);
    const total = stats.waveformSamples;
    if (!total) return;
    const perColumn = Math.max(1, Math.ceil(total / width));
    const mid = height / 2;
    const scale = mid / Math.max(stats.peak, 0.01); // the loudest sample fills the height
    g.fillStyle = "#7d93c9";
    let column = 0;
    let lo = 0;
    let hi = 0;
    let n = 0;
    for (const chunk of this.chunks) {
      for (let i = 0; i < chunk.length; i++) {
        lo = Math.min(lo, chunk[i]);
        hi = Math.max(hi, chunk[i]);
        if (++n === perColumn) {
          g.fillRect(column++, mid - hi * scale, 1, Math.max(1, (hi - lo) * scale));
          lo = hi = n = 0;
        }
      }
    }
    const x = (seconds) => (seconds * this.rate) / perColumn;
    g.fillStyle = "#c5cde0";
    for (const w of stats.words) g.fillRect(Math.round(x(w.start)), 0, 1, height); // where each word starts
    if (playhead !== null) {
      g.fillStyle = "#2456d6";
      g.fillRect(Math.round(x(playhead)), 0, 2, height);
    }
  },
};

// `words` so far (a long reply's segments arrive one by one): the ones already shown keep when they lit up
function showWords(words) {
  const known = stats.words || [];
  stats.words = words.map((w, i) => ({ ...w, litAt: i < known.length ? known[i].litAt : null }));
  const box = $("words");
  box.replaceChildren(
    ...stats.words.flatMap((w, i) => {
      const span = document.createElement("span");
      span.textContent = w.word;
      span.dataset.index = String(i);
      return [span, document.createTextNode(" ")];
    }),
  );
  box.hidden = false;
}

// light the words up to playback time `t` (seconds from the start of the audio)
function lightWords(t) {
  const spans = $("words").children;
  stats.words.forEach((w, i) => {
    const on = t >= w.start;
    if (on && w.litAt === null) w.litAt = t;
    spans[i].classList.toggle("spoken", t >= w.end);
    spans[i].classList.toggle("current", on && t < w.end);
  });
}

// mono 16-bit or G.711 pcm at `rate`, scheduled back to back as it arrives; `clock()` is the playback time
function pcmPlayer(ctx, rate, job) {
  let next = 0;
  let startAt = null;
  const ended = [];
  const clock = () => (startAt === null ? 0 : ctx.currentTime - startAt);
  const ticker = setInterval(() => {
    if (startAt === null) return;
    lightWords(clock());
    waveform.draw(clock());
  }, 40);
  return {
    push(pcm) {
      stats.chunks += 1;
      stats.samplesReceived += pcm.length;
      const buffer = ctx.createBuffer(1, pcm.length, rate);
      const channel = buffer.getChannelData(0);
      for (let i = 0; i < pcm.length; i++) {
        channel[i] = pcm[i] / 32768;
        stats.peak = Math.max(stats.peak, Math.abs(channel[i]));
      }
      waveform.add(channel, rate);
      const source = ctx.createBufferSource();
      source.buffer = buffer;
      source.connect(ctx.destination);
      const at = Math.max(next, ctx.currentTime + 0.05);
      if (startAt === null) startAt = at;
      source.start(at);
      next = at + buffer.duration;
      stats.samplesScheduled += pcm.length;
      job.sources.add(source);
      ended.push(
        new Promise((resolve) => {
          source.onended = () => {
            stats.playedSeconds += buffer.duration;
            job.sources.delete(source);
            resolve();
          };
        }),
      );
    },
    async done() {
      await Promise.all(ended);
      lightWords(clock());
      waveform.draw(clock());
    },
    close() {
      clearInterval(ticker);
    },
  };
}

function pcmDecoder(encoding) {
  const expand = G711[encoding];
  const width = expand ? 1 : 2;
  let carry = null; // an odd byte left from the previous piece
  return (value) => {
    let bytes = value;
    if (carry) {
      bytes = new Uint8Array(carry.length + value.length);
      bytes.set(carry);
      bytes.set(value, carry.length);
      carry = null;
    }
    const even = bytes.length - (bytes.length % width);
    if (even < bytes.length) carry = bytes.slice(even);
    if (!even) return null;
    return expand ? Int16Array.from(bytes.subarray(0, even), expand) : new Int16Array(bytes.slice(0, even).buffer);
  };
}

// mono pcm (16-bit little-endian, or one G.711 byte a sample) at the response's rate, scheduled back to back as
// it arrives
async function playPcmStream(resp, t0, job) {
  const ctx = await context();
  const rate = Number(resp.headers.get("X-Sample-Rate")) || SAMPLE_RATE;
  const encoding = resp.headers.get("X-Encoding") || "s16le";
  stats.sampleRate = rate;
  stats.encoding = encoding;
  const decode = pcmDecoder(encoding);
  const player = pcmPlayer(ctx, rate, job);
  try {
    const reader = resp.body.getReader();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      stats.bytesReceived += value.length;
      const pcm = decode(value);
      if (!pcm) continue;
      firstAudio(t0);
      player.push(pcm);
    }
    finish(t0, stats.samplesReceived / rate);
    await player.done();
  } finally {
    player.close();
  }
}

// the same pcm as server-sent events (`speech.audio.delta`), with the words (`speech.audio.timestamps`)
async function playPcmEvents(resp, t0, job, rate, encoding) {
  const ctx = await context();
  stats.sampleRate = rate;
  stats.encoding = encoding;
  const decode = pcmDecoder(encoding);
  const player = pcmPlayer(ctx, rate, job);
  const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  const words = []; // every segment's, in order: one speech.audio.timestamps event per segment
  const handle = (event) => {
    if (event.type === "speech.audio.delta") {
      const bytes = Uint8Array.from(atob(event.audio), (c) => c.charCodeAt(0));
      stats.bytesReceived += bytes.length;
      const pcm = decode(bytes);
      if (!pcm) return;
      firstAudio(t0);
      player.push(pcm);
    } else if (event.type === "speech.audio.timestamps") {
      words.push(...event.words);
      showWords(words);
    } else if (event.type === "error") {
      throw new ApiError(event.error.message, 500);
    }
  };
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      text += value;
      let end;
      while ((end = text.indexOf("\n\n")) >= 0) {
        const block = text.slice(0, end);
        text = text.slice(end + 2);
        for (const line of block.split("\n")) if (line.startsWith("data: ")) handle(JSON.parse(line.slice(6)));
      }
    }
    finish(t0, stats.samplesReceived / rate);
    await player.done();
  } finally {
    player.close();
  }
}

// any other format: receive it all, then play it with the <audio> element
async function playFile(resp, t0, format) {
  const reader = resp.body.getReader();
  const parts = [];
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    firstAudio(t0);
    stats.chunks += 1;
    stats.bytesReceived += value.length;
    parts.push(value);
  }
  const blob = new Blob(parts, { type: resp.headers.get("content-type") || `audio/${format}` });
  const url = URL.createObjectURL(blob);
  const player = $("player");
  player.src = url;
  player.hidden = false;
  const link = $("download");
  link.href = url;
  link.download = `speech.${format}`;
  link.hidden = false;
  await new Promise((resolve) => player.addEventListener("loadedmetadata", resolve, { once: true }));
  finish(t0, Number.isFinite(player.duration) ? player.duration : 0);
  const played = new Promise((resolve) => player.addEventListener("ended", resolve, { once: true }));
  await player.play();
  await played;
  stats.playedSeconds += player.duration;
}

async function run(request, events = false) {
  stop();
  resetStats();
  busy(true);
  setState("waiting");
  const job = { abort: new AbortController(), sources: new Set() };
  current = job;
  const t0 = performance.now();
  try {
    const format = $("format").value;
    if (format === "pcm") await context(); // inside the click: browsers only start audio on a gesture
    const resp = await request(job.abort.signal);
    const { sample_rate: rate, encoding } = generation();
    if (format === "pcm" && events) await playPcmEvents(resp, t0, job, rate, encoding);
    else if (format === "pcm") await playPcmStream(resp, t0, job);
    else await playFile(resp, t0, format);
    if (current === job) setState("done");
  } catch (err) {
    if (err.name === "AbortError") setState("stopped");
    else {
      setState("error");
      showError(err.message);
    }
  } finally {
    if (current === job) {
      current = null;
      busy(false);
    }
  }
}

function stop() {
  if (!current) return;
  current.abort.abort();
  for (const source of current.sources) source.stop();
  $("player").pause();
  current = null;
  busy(false);
  setState("stopped");
}

function speak() {
  const timed = $("timed-words").checked && $("format").value === "pcm";
  const extra = timed ? { stream_format: "sse", timestamps: "word" } : {};
  return run(
    (signal) =>
      api("v1/audio/speech", {
        method: "POST",
        signal,
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ input: $("text").value, voice: $("voice").value, ...generation(), ...extra }),
      }),
    timed,
  );
}

function cloneVoice() {
  const file = $("ref-file").files[0];
  const clip = file || recordedClip;
  if (!clip) {
    showError("choose a reference clip or record one");
    return Promise.resolve();
  }
  return run((signal) => {
    const form = new FormData();
    form.append("reference_audio", clip, file ? file.name : "recording.wav");
    form.append("reference_text", $("ref-text").value);
    form.append("generate_text", $("text").value);
    for (const [k, v] of Object.entries(generation())) form.append(k, String(v));
    return api("v1/audio/vc", { method: "POST", signal, body: form });
  });
}

// -- microphone --------------------------------------------------------------------------------------------

function wavBlob(samples, rate) {
  const view = new DataView(new ArrayBuffer(44 + samples.length * 2));
  const text = (offset, s) => [...s].forEach((c, i) => view.setUint8(offset + i, c.charCodeAt(0)));
  text(0, "RIFF");
  view.setUint32(4, 36 + samples.length * 2, true);
  text(8, "WAVEfmt ");
  view.setUint32(16, 16, true);
  view.setUint16(20, 1, true); // PCM
  view.setUint16(22, 1, true); // mono
  view.setUint32(24, rate, true);
  view.setUint32(28, rate * 2, true);
  view.setUint16(32, 2, true);
  view.setUint16(34, 16, true);
  text(36, "data");
  view.setUint32(40, samples.length * 2, true);
  samples.forEach((x, i) => view.setInt16(44 + i * 2, Math.max(-1, Math.min(1, x)) * 32767, true));
  return new Blob([view], { type: "audio/wav" });
}

let recorder = null;

async function toggleRecording() {
  const button = $("record");
  if (recorder) {
    recorder.stop();
    return;
  }
  try {
    const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    const chunks = [];
    recorder = new MediaRecorder(stream);
    recorder.ondataavailable = (e) => chunks.push(e.data);
    recorder.onstop = async () => {
      stream.getTracks().forEach((t) => t.stop());
      recorder = null;
      button.textContent = "Record from microphone";
      // MediaRecorder gives WebM/Ogg Opus; the API reads WAV, so decode and re-encode here
      const decoder = new AudioContext();
      const audio = await decoder.decodeAudioData(await new Blob(chunks).arrayBuffer());
      await decoder.close();
      recordedClip = wavBlob(audio.getChannelData(0), audio.sampleRate);
      $("ref-file").value = "";
      $("record-state").textContent = `recorded ${audio.duration.toFixed(1)} s`;
    };
    recorder.start();
    button.textContent = "Stop recording";
    $("record-state").textContent = "recording…";
    setTimeout(() => recorder && recorder.stop(), 25000); // the API takes up to 30 s
  } catch (err) {
    recorder = null;
    showError(`microphone: ${err.message}`);
  }
}

// -- wiring ------------------------------------------------------------------------------------------------

for (const id of ["speed", "temperature"]) {
  const show = () => ($(`${id}-value`).textContent = Number($(id).value).toFixed(2));
  $(id).addEventListener("input", show);
  show();
}
const savedKey = sessionStorage.getItem("tts-api-key");
if (savedKey) $("api-key").value = savedKey;
$("api-key").addEventListener("change", () => {
  sessionStorage.setItem("tts-api-key", $("api-key").value.trim());
  loadVoices();
});
$("preview").addEventListener("click", previewNormalization);
$("speak").addEventListener("click", speak);
$("stop").addEventListener("click", stop);
$("clone").addEventListener("click", cloneVoice);
$("record").addEventListener("click", toggleRecording);
$("ref-file").addEventListener("change", () => {
  recordedClip = null;
  $("record-state").textContent = "";
});
loadVoices();
