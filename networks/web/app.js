// The page: faces for seeds seed .. seed+count-1 at truncation psi, drawn by the exported generator in
// onnxruntime-web (WebAssembly, one thread). Everything is in the files beside this one; nothing is fetched.
(function () {
  "use strict";
  const info = window.STYLEGAN2_INFO;
  const state = window.stylegan2 = { ready: false, busy: false, error: "", draws: 0, seeds: [], psi: null, ms: 0 };
  const $ = (id) => document.getElementById(id);

  function bytes(base64) {
    const text = atob(base64);
    const out = new Uint8Array(text.length);
    for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i);
    return out;
  }

  function status(text, error) {
    $("status").textContent = text;
    $("status").className = error ? "error" : "";
  }

  function readControls() {
    const seed = Number($("seed").value);
    const count = Number($("count").value);
    if (!Number.isInteger(seed) || seed < 0 || seed > 4294967295) throw new Error("the seed is a whole number from 0 to 4294967295");
    if (!Number.isInteger(count) || count < 1 || count > 16) throw new Error("faces: 1 to 16");
    const psi = Number($("psi").value);
    const cls = info.c_dim ? Number($("class").value) : null;
    return { seed, count, psi, cls };
  }

  async function main() {
    ort.env.wasm.numThreads = 1;                     // a page from disk cannot share memory between threads
    ort.env.wasm.wasmBinary = bytes(window.ORT_WASM);
    ort.env.wasm.wasmPaths = { mjs: URL.createObjectURL(new Blob([window.ORT_GLUE], { type: "text/javascript" })) };
    const session = await ort.InferenceSession.create(bytes(window.STYLEGAN2_ONNX), { executionProviders: ["wasm"] });
    const res = info.resolution, ch = info.channels;
    $("about").textContent = `${res}x${res} network${info.network ? " " + info.network : ""}, ` +
      `computed here by onnxruntime-web ${info.onnxruntime_web} (WebAssembly)`;
    if (info.c_dim) {
      for (let k = 0; k < info.c_dim; k++) $("class").add(new Option(String(k), String(k)));
      $("class-box").hidden = false;
    }
    let pending = false;

    async function draw() {
      if (state.busy) { pending = true; return; }
      let v;
      try { v = readControls(); } catch (e) { status(e.message, true); return; }
      state.busy = true;
      $("psi-value").textContent = v.psi.toFixed(2);
      const t0 = performance.now();
      try {
        const z = new Float32Array(v.count * info.z_dim);
        for (let i = 0; i < v.count; i++) z.set(window.seedToZ(v.seed + i, info.z_dim), i * info.z_dim);
        const feeds = {
          z: new ort.Tensor("float32", z, [v.count, info.z_dim]),
          psi: new ort.Tensor("float32", new Float32Array([v.psi]), []),
        };
        if (info.c_dim) {
          const c = new Float32Array(v.count * info.c_dim);
          for (let i = 0; i < v.count; i++) c[i * info.c_dim + v.cls] = 1;
          feeds.c = new ort.Tensor("float32", c, [v.count, info.c_dim]);
        }
        const images = (await session.run(feeds)).images.data;     // uint8 [N, R, R, C]
        const faces = $("faces");
        while (faces.children.length > v.count) faces.lastChild.remove();
        for (let i = 0; i < v.count; i++) {
          let canvas = faces.children[i];
          if (!canvas) { canvas = document.createElement("canvas"); faces.appendChild(canvas); }
          canvas.width = canvas.height = res;
          canvas.title = `seed ${v.seed + i}`;
          const rgba = new ImageData(res, res);
          for (let p = 0; p < res * res; p++) {
            const src = (i * res * res + p) * ch;
            rgba.data[4 * p] = images[src];
            rgba.data[4 * p + 1] = images[src + (ch > 1 ? 1 : 0)];
            rgba.data[4 * p + 2] = images[src + (ch > 1 ? 2 : 0)];
            rgba.data[4 * p + 3] = 255;
          }
          canvas.getContext("2d").putImageData(rgba, 0, 0);
        }
        state.ms = performance.now() - t0;
        state.seeds = Array.from({ length: v.count }, (_, i) => v.seed + i);
        state.psi = v.psi;
        state.draws += 1;
        status(`seeds ${v.seed}-${v.seed + v.count - 1}, psi ${v.psi.toFixed(2)}: ${Math.round(state.ms)} ms`);
      } catch (e) {
        state.error = String(e && e.message || e);
        status(state.error, true);
      } finally {
        state.busy = false;
        if (pending) { pending = false; draw(); }
      }
    }

    for (const id of ["seed", "count", "psi", "class"]) $(id).addEventListener("input", draw);
    state.ready = true;
    await draw();
  }

  main().catch((e) => {
    state.error = String(e && e.message || e);
    status(`the network could not start: ${state.error}`, true);
  });
})();
