// The facesteer editor page: every rule lives in the server; this file only sends what the user did and shows
// what comes back.
"use strict";

const state = { session: null, sliders: [], chain: Promise.resolve() };
const $ = (id) => document.getElementById(id);

async function call(path, options = {}) {
  const response = await fetch(path, options);
  const body = await response.json().catch(() => ({ detail: `HTTP ${response.status}` }));
  if (!response.ok) throw Object.assign(new Error(body.detail || `HTTP ${response.status}`), { status: response.status });
  return body;
}

function post(path, payload) {
  return call(path, { method: "POST", headers: { "Content-Type": "application/json" },
                      body: payload === undefined ? undefined : JSON.stringify(payload) });
}

function showError(error) {
  $("error").textContent = error ? String(error.message || error) : "";
  $("error").hidden = !error;
}

function show(view) {
  state.session = view.session;
  $("face").src = "data:image/png;base64," + view.image;
  $("face").dataset.version = String(view.version);
  $("download").href = `/api/sessions/${view.session}/image.png?v=${view.version}-${Date.now()}`;
  $("undo").disabled = !view.can_undo;
  for (const slider of state.sliders) {
    const value = view.sliders[slider.name] ?? 0;
    $(`slider-${slider.name}`).value = value;
    $(`value-${slider.name}`).textContent = Number(value).toFixed(1);
  }
  for (const box of document.querySelectorAll("#conditions input")) {
    box.checked = view.conditions.includes(box.value);
  }
  const origin = view.origin;
  $("origin").textContent = origin.kind === "random" ? `random face, seed ${origin.seed}`
    : `your photo, inverted (${origin.method}) in ${origin.seconds} s`;
  showError(null);
}

// Actions run one after another, in the order the user made them (none is dropped while another is running).
// A session the server no longer knows (expired, or evicted) is replaced by a new one, and the page says so.
function act(work) {
  state.chain = state.chain.then(async () => {
    document.body.classList.add("busy");
    try { show(await work()); } catch (error) {
      if (error.status === 404 && state.session) {
        try {
          show(await post("/api/sessions", {}));
          showError("Your session had expired, so a new one started with a new face: please make that change again.");
        } catch (again) { showError(again); }
      } else {
        showError(error);
      }
    } finally {
      document.body.classList.remove("busy");
    }
  });
  return state.chain;
}

function buildControls(info) {
  $("generator").textContent = `${info.generator} (${info.resolution} px)`;
  state.sliders = info.sliders;
  for (const slider of info.sliders) {
    const row = document.createElement("div");
    row.className = "slider";
    const label = document.createElement("label");
    const input = document.createElement("input");
    const output = document.createElement("output");
    label.htmlFor = input.id = `slider-${slider.name}`;
    label.textContent = slider.name;
    Object.assign(input, { type: "range", min: slider.min, max: slider.max, step: "0.1", value: "0" });
    output.id = `value-${slider.name}`;
    output.textContent = "0.0";
    row.append(label, input, output);
    input.dataset.name = slider.name;
    input.addEventListener("input", () => { $(`value-${slider.name}`).textContent = Number(input.value).toFixed(1); });
    input.addEventListener("change", () => act(() => post(`/api/sessions/${state.session}/slider`,
                                                          { name: slider.name, value: Number(input.value) })));
    $(slider.kind === "direction" ? "found" : "sliders").appendChild(row);
    if (slider.kind === "direction") $("found-section").hidden = false;
  }
  for (const name of info.conditions) {
    const label = document.createElement("label");
    const box = document.createElement("input");
    box.type = "checkbox";
    box.value = name;
    box.id = `condition-${name}`;
    box.addEventListener("change", () => act(() => post(`/api/sessions/${state.session}/condition`,
                                                        { name, on: box.checked })));
    label.append(box, " " + name);
    $("conditions").appendChild(label);
  }
}

async function upload(file) {
  $("busy").hidden = false;
  $("progress").removeAttribute("value");
  const poll = setInterval(async () => {
    try {
      const progress = await call(`/api/sessions/${state.session}/progress`);
      if (progress.running) {
        $("progress").max = progress.total;
        $("progress").value = progress.done;
        $("busy-text").textContent = `Inverting… step ${progress.done} of ${progress.total}`;
      }
    } catch (error) { /* the upload's own answer reports errors */ }
  }, 150);
  try {
    await act(() => call(`/api/sessions/${state.session}/upload`,
                         { method: "POST", headers: { "Content-Type": "application/octet-stream" }, body: file }));
  } finally {
    clearInterval(poll);
    $("busy").hidden = true;
    $("busy-text").textContent = "Inverting…";
  }
}

async function start() {
  try {
    buildControls(await call("/api/info"));
  } catch (error) { showError(error); return; }
  $("random").addEventListener("click", () => act(() => post(`/api/sessions/${state.session}/random`, {})));
  $("undo").addEventListener("click", () => act(() => post(`/api/sessions/${state.session}/undo`)));
  $("reset").addEventListener("click", () => act(() => post(`/api/sessions/${state.session}/reset`)));
  $("upload").addEventListener("change", (event) => {
    const file = event.target.files[0];
    event.target.value = "";
    if (file) upload(file);
  });
  const seed = new URLSearchParams(location.search).get("seed");
  await act(() => post("/api/sessions", seed === null ? {} : { seed: Number(seed) }));
  document.body.dataset.ready = "true";
}

start();
