// The explorer page: the view lives in the URL; one render request in flight at most, and a dragged slider
// only ever asks for its latest value (coalescing), so the server never queues stale renders.
"use strict";
const $ = (id) => document.getElementById(id);
const PER_PAGE = 12;
const DEFAULT = { seed: 0, psi: 1, noise: "const", mix: null, styles: [], edits: {}, b: null, t: 0, page: 0, photo: null };
let info = null;
let state = null;
const hook = { renders: 0, busy: false, lastQuery: "", error: "", timings: [], photo: null, photoError: "" };
window.explorer = hook;

function readUrl() {
  const q = new URLSearchParams(location.search);
  const num = (k, d) => (q.has(k) && q.get(k) !== "" ? Number(q.get(k)) : d);
  const s = { ...DEFAULT, edits: {} };
  s.seed = num("seed", 0); s.psi = num("psi", 1); s.noise = q.get("noise") || "const";
  s.mix = num("mix", null); s.styles = (q.get("styles") || "").split(",").filter(Boolean);
  s.b = num("b", null); s.t = num("t", 0); s.page = num("page", Math.floor(s.seed / PER_PAGE));
  s.photo = q.get("photo") || null;
  for (const [k, v] of q) if (k.startsWith("e.")) s.edits[k.slice(2)] = Number(v);
  return s;
}

function apiQuery(s) {        // the view's parameters, as the server takes them
  const q = new URLSearchParams({ seed: s.seed });
  if (s.photo) q.set("photo", s.photo);
  if (s.psi !== 1) q.set("psi", s.psi);
  if (s.noise !== "const") q.set("noise", s.noise);
  if (s.mix !== null) { q.set("mix", s.mix); if (s.styles.length) q.set("styles", s.styles.join(",")); }
  for (const [k, v] of Object.entries(s.edits)) if (v) q.set("e." + k, v);
  if (s.b !== null) { q.set("b", s.b); q.set("t", s.t); }
  return q.toString();
}

function writeUrl() {
  const q = new URLSearchParams(apiQuery(state));
  q.set("page", state.page);
  history.replaceState(null, "", "?" + q.toString());
}

function showError(msg) {
  hook.error = msg || "";
  $("error").hidden = !msg;
  $("error").textContent = msg || "";
}

// ---------------------------------------------------------------------------------------------- rendering
let inFlight = false;
let wanted = null;            // the latest query asked for while a request was in flight
let shownUrl = null;
let notice = "";              // shown with the next image instead of clearing the error line

async function render() {
  const query = apiQuery(state);
  writeUrl();
  $("download").href = "/api/render.png?" + query + "&download=1";
  if (inFlight) { wanted = query; return; }
  inFlight = true; hook.busy = true;
  let next = query;
  while (next !== null) {
    wanted = null;
    const t0 = performance.now();
    try {
      const r = await fetch("/api/render.png?" + next);
      if (r.status === 404 && state.photo) {             // the server no longer holds the photo: back to seeds
        notice = (await r.json()).error;
        leavePhoto(); writeUrl(); next = apiQuery(state); continue;
      }
      if (!r.ok) throw new Error((await r.json()).error || r.statusText);
      const blob = await r.blob();
      const url = URL.createObjectURL(blob);
      await new Promise((ok) => { $("face").onload = ok; $("face").onerror = ok; $("face").src = url; });
      if (shownUrl) URL.revokeObjectURL(shownUrl);
      shownUrl = url;
      const total = performance.now() - t0;
      const ms = r.headers.get("X-Render-Ms");
      hook.timings.push({ render: Number(ms), total });
      $("timing").textContent = `render ${ms} ms (${r.headers.get("X-Cache")}), round trip ${total.toFixed(0)} ms`;
      hook.renders += 1; hook.lastQuery = next;
      showError(notice); notice = "";                    // a photo the server forgot is said once
    } catch (e) {
      showError(String(e.message || e));
    }
    next = wanted !== null && wanted !== next ? wanted : null;
  }
  inFlight = false; hook.busy = false;
  updateCommand();
}

async function updateCommand() {
  try {
    const r = await fetch("/api/command?" + apiQuery(state));
    const c = await r.json();
    if (!r.ok) throw new Error(c.error);
    $("command").textContent = c.command;
    $("command-note").textContent = (c.exact ? "Pixel-identical image: " : "Closest command: ") + c.output +
      (c.note ? " (" + c.note + ")" : "");
  } catch (e) { showError(String(e.message || e)); }
}

// ---------------------------------------------------------------------------------------------- the grid
function drawGrid() {
  const first = state.page * PER_PAGE;
  $("range").textContent = `${first}-${first + PER_PAGE - 1}`;
  const grid = $("grid");
  grid.textContent = "";
  for (let seed = first; seed < first + PER_PAGE; seed++) {
    const fig = document.createElement("figure");
    fig.dataset.seed = seed;
    const img = document.createElement("img");
    const q = new URLSearchParams({ seed });
    if (state.psi !== 1) q.set("psi", state.psi);
    if (state.noise === "none") q.set("noise", "none");
    img.src = "/api/render.png?" + q.toString();
    img.alt = "seed " + seed;
    const cap = document.createElement("figcaption");
    cap.textContent = seed;
    fig.append(img, cap);
    fig.addEventListener("click", () => pick(seed));
    grid.append(fig);
  }
  markGrid();
}

function markGrid() {
  for (const fig of $("grid").children) {
    const s = Number(fig.dataset.seed);
    fig.className = s === state.seed ? "seed" : s === state.mix ? "mix" : s === state.b ? "b" : "";
  }
}

function pick(seed) {
  const what = document.querySelector("input[name=pick]:checked").value;
  if (what === "seed") { state.seed = seed; state.photo = null; }
  else if (what === "mix") { state.mix = seed; if (!state.styles.length) state.styles = [Object.keys(info.groups)[0]]; }
  else state.b = seed;
  syncControls(); markGrid(); render();
}

// ---------------------------------------------------------------------------------------------- controls
function syncControls() {
  $("seed").value = state.seed;
  $("psi").value = state.psi; $("psi-v").value = Number(state.psi).toFixed(2);
  $("noise").value = state.noise;
  $("mix").value = state.mix ?? "";
  for (const box of document.querySelectorAll("#groups input")) box.checked = state.styles.includes(box.value);
  for (const slider of document.querySelectorAll("#edits input")) {
    slider.value = state.edits[slider.dataset.name] || 0;
    slider.nextElementSibling.value = Number(slider.value).toFixed(1);
  }
  $("b").value = state.b ?? "";
  $("t").value = state.t; $("t-v").value = state.t;
  $("psi").disabled = state.photo !== null;           // a projected latent is not truncated (as run_generator.py)
  $("photo-actions").hidden = state.photo === null;
  if (state.photo) {
    $("photo-npz").href = "/api/photo/projected_w.npz?photo=" + state.photo;
    $("photo-tuned").href = "/api/photo/tuned.keras?photo=" + state.photo;
    $("photo-tuned").hidden = !(hook.photo && hook.photo.token === state.photo && hook.photo.tune_steps > 0);
  }
}

function seedValue(text) { return text === "" ? null : Math.max(0, Math.min(info.limits.seed_max, Math.floor(Number(text)))); }

function build() {
  $("network").textContent = `${info.network} (${info.network_id}, ${info.resolution}x${info.resolution})`;
  for (const g of Object.keys(info.groups)) {
    const label = document.createElement("label");
    const box = document.createElement("input");
    box.type = "checkbox"; box.value = g; box.id = "style-" + g;
    box.addEventListener("change", () => {
      state.styles = Object.keys(info.groups).filter((n) => $("style-" + n).checked);
      render();
    });
    label.append(box, ` ${g} (layers ${info.groups[g].join(",")})`);
    $("groups").append(label);
  }
  for (const d of info.directions) {
    const label = document.createElement("label");
    const slider = document.createElement("input");
    slider.type = "range"; slider.min = -5; slider.max = 5; slider.step = 0.1; slider.dataset.name = d.name;
    slider.id = "edit-" + d.name.replace(":", "-");
    const out = document.createElement("output");
    slider.addEventListener("input", () => {
      state.edits[d.name] = Number(slider.value);
      out.value = Number(slider.value).toFixed(1);
      render();
    });
    label.append(`${d.name}${d.source === "computed" ? " (SeFa)" : ""} `, slider, out);
    $("edits").append(label);
  }
  if (!info.directions.length) $("edits").append("no directions for this network");
  $("seed").addEventListener("change", () => { state.seed = seedValue($("seed").value) ?? 0; state.page = Math.floor(state.seed / PER_PAGE); drawGrid(); render(); });
  $("psi").addEventListener("input", () => { state.psi = Number($("psi").value); $("psi-v").value = state.psi.toFixed(2); render(); });
  $("psi").addEventListener("change", drawGrid);
  $("noise").addEventListener("change", () => { state.noise = $("noise").value; drawGrid(); render(); });
  $("mix").addEventListener("change", () => { state.mix = seedValue($("mix").value); markGrid(); render(); });
  $("b").addEventListener("change", () => { state.b = seedValue($("b").value); markGrid(); render(); });
  $("t").addEventListener("input", () => { state.t = Number($("t").value); $("t-v").value = state.t; render(); });
  $("prev").addEventListener("click", () => { if (state.page > 0) { state.page -= 1; drawGrid(); writeUrl(); } });
  $("next").addEventListener("click", () => { state.page += 1; drawGrid(); writeUrl(); });
  $("reset").addEventListener("click", () => { state = { ...DEFAULT, edits: {}, seed: state.seed, page: state.page }; syncControls(); drawGrid(); render(); });
  buildPhotoPanel();
}

// ---------------------------------------------------------------------------------------------- your photo
// Upload -> the server aligns the face (or answers 4xx with why not) -> progress streamed as server-sent
// events, with the reconstruction's image every few steps (the projection, then the network tuned to the
// photo) -> the view switches to the photo's latent, drawn by its tuned network.
let events = null;

function photoStatus(text, error) {
  $("photo-status").textContent = text;
  $("photo-status").style.color = error ? "#a00" : "";
  hook.photoError = error ? text : "";
}

function leavePhoto() {
  state.photo = null; syncControls(); markGrid();
}

function buildPhotoPanel() {
  const p = info.photos;
  if (!p || !p.available) {
    $("drop").textContent = "Photo uploads are not available: " + ((p && p.why_not) || "this server has none");
    $("photo-steps").disabled = true; $("photo-tune").disabled = true;
    return;
  }
  const [lo, hi, def] = p.steps;
  for (const n of [lo, 100, def, hi].filter((v, i, a) => v >= lo && v <= hi && a.indexOf(v) === i).sort((a, b) => a - b)) {
    const o = document.createElement("option"); o.value = n; o.textContent = n; o.selected = n === def;
    $("photo-steps").append(o);
  }
  const [tlo, thi, tdef] = p.tune_steps;
  for (const n of [tlo, 100, tdef, 400].filter((v, i, a) => v >= tlo && v <= thi && a.indexOf(v) === i).sort((a, b) => a - b)) {
    const o = document.createElement("option"); o.value = n; o.textContent = n === 0 ? "0 (off)" : n; o.selected = n === tdef;
    $("photo-tune").append(o);
  }
  $("photo-framing").textContent = "aligned to " + p.framing;
  $("photo-file").addEventListener("change", () => {
    const file = $("photo-file").files[0];
    $("photo-file").value = "";                       // the same file chosen again is a new upload
    if (file) sendPhoto(file);
  });
  const drop = $("drop");
  document.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  document.addEventListener("dragleave", () => drop.classList.remove("over"));
  document.addEventListener("drop", (e) => {
    e.preventDefault(); drop.classList.remove("over");
    if (e.dataTransfer && e.dataTransfer.files.length) sendPhoto(e.dataTransfer.files[0]);
  });
  $("photo-leave").addEventListener("click", () => { leavePhoto(); render(); });
  if (state.photo) follow(state.photo, false);        // a reloaded page: the server may still hold the photo
}

async function sendPhoto(file) {
  if (events) { events.close(); events = null; }
  $("photo-images").hidden = true;
  $("photo-progress").hidden = true;
  const mib = (file.size / 1048576).toFixed(1);
  photoStatus(`uploading ${file.name} (${mib} MiB) and finding the face ...`, false);
  hook.photo = { state: "uploading" };
  let r, body;
  try {
    r = await fetch("/api/photo?steps=" + $("photo-steps").value + "&tune_steps=" + $("photo-tune").value,
                    { method: "POST", body: file, headers: { "Content-Type": file.type || "application/octet-stream" } });
    body = await r.json();
  } catch (e) {
    photoStatus("the upload failed: " + (e.message || e), true); hook.photo = { state: "failed" }; return;
  }
  if (!r.ok) {
    photoStatus(`${file.name}: ${body.error || r.statusText}`, true); hook.photo = { state: "refused", status: r.status };
    return;
  }
  follow(body.photo, true);
}

function follow(token, fresh) {
  let lastFrame = -1;
  $("photo-aligned").src = "/api/photo/aligned.png?photo=" + token;
  $("photo-images").hidden = false;
  $("photo-progress").hidden = false;
  if (events) events.close();                         // only the newest upload is followed
  const es = new EventSource("/api/photo/events?photo=" + token);
  events = es;
  es.onmessage = (ev) => {
    if (events !== es) { es.close(); return; }
    const s = JSON.parse(ev.data);
    hook.photo = { ...s, token };
    $("photo-progress").max = s.steps + s.tune_steps; $("photo-progress").value = s.step;
    if (s.frame_step > lastFrame) {                    // 0: the encoder's guess, before the first step
      lastFrame = s.frame_step;
      $("photo-frame").src = `/api/photo/frame.png?photo=${token}&v=${s.frame_step}`;
    }
    const face = `the largest of ${s.faces} face(s), ${s.eye_distance} px between the eyes`;
    if (s.state === "queued") photoStatus(`aligned ${face}; waiting for the projector ...`, false);
    else if (s.state === "projecting") {
      const speed = s.ms_per_step ? `, ${s.ms_per_step} ms/step` : "";
      const dist = s.distance === null ? "" : `, distance ${s.distance.toFixed(4)}`;
      photoStatus(`projecting: step ${s.step} of ${s.steps}${speed}${dist}`, false);
    } else if (s.state === "tuning") {
      const speed = s.ms_per_step ? `, ${s.ms_per_step} ms/step` : "";
      photoStatus(`tuning the network to the photo: step ${s.step - s.steps} of ${s.tune_steps}${speed}`, false);
    } else if (s.state === "failed") {
      es.close(); events = null; photoStatus(s.error, true);
    } else if (s.state === "done") {
      es.close(); events = null;
      const fidelity = s.psnr.tuned !== undefined ? `PSNR ${s.psnr.w} dB projected, ${s.psnr.tuned} dB tuned`
                                                   : `PSNR ${s.psnr.w} dB`;
      photoStatus(`projected in ${s.steps} steps` + (s.tune_steps ? ` and tuned in ${s.tune_steps}` : "") +
                  ` (${fidelity}): the sliders now edit this face`, false);
      if (fresh || !state.photo) { state.photo = token; state.b = null; state.mix = null; state.styles = []; }
      syncControls(); markGrid(); render();
    }
  };
  es.onerror = () => {
    if (events === es && es.readyState === EventSource.CLOSED) {
      photoStatus("the server does not hold this photo (any more) or cannot be reached: upload it again", true);
      events = null;
    }
  };
}

async function main() {
  try {
    info = await (await fetch("/api/info")).json();
  } catch (e) { showError("cannot reach the server: " + e); return; }
  $("t").max = info.limits.frames;
  state = readUrl();
  build(); syncControls(); drawGrid(); render();
}
main();
