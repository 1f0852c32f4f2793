// condgan's page: the controls are built from GET /api/models (a dropdown per class field, an upload per
// image field), Generate posts to /api/generate (format json: every image and the grid) and shows the grid;
// Interpolate (a model whose tools include it) posts to /api/interpolate and shows the seed-to-seed strip the
// same way. A click on one of its images saves that image, Download ZIP asks the server for a zip of them. The
// page generates once on open, and keeps this tab's last results in a strip (page memory only). A model that
// makes no images gets similar.js's Compare and Search tabs instead. Text from the server (model and class
// names, errors) only ever goes through textContent / option text, never markup.
"use strict";

const $ = (id) => document.getElementById(id);
let models = [];
let limits = {max_count: 256, max_upload_bytes: 4194304};
let uploads = {};  // image field name -> data: URL of the chosen file
let autoRun = true;  // generate once on open (for a model that needs an upload: once one is chosen)
let shown = null;  // the result on show: {route, model, body, stem, gridUrl, answer, info, rows}
let earlier = [];  // earlier results of this tab, newest first
const HISTORY = 12;
let savedUrl = null;  // the object URL of the last image saved alone

function el(tag, attrs = {}, text) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

function setStatus(text, isError = false) {
  const status = $("status");
  status.textContent = text;
  status.classList.toggle("error", isError);
}

function current() {
  return models.find((m) => m.name === $("model").value);
}

async function loadModels() {
  setStatus("loading models…");
  try {
    const response = await fetch("/api/models");
    const data = await response.json();
    models = data.models;
    limits = data.limits;
  } catch (err) {
    setStatus(`could not list the models: ${err.message}`, true);
    return;
  }
  $("count").max = String(limits.max_count);
  $("steps").max = String(limits.max_steps);
  $("model").replaceChildren(...models.map((m) => el("option", {value: m.name}, m.name)));
  const wanted = new URLSearchParams(location.search).get("model");
  if (wanted && models.some((m) => m.name === wanted)) $("model").value = wanted;
  showFields();
  setStatus("");
  maybeAutoRun();
}

function maybeAutoRun() {
  const m = current();
  if (!autoRun || !m || !m.tools.includes("generate") || m.fields.some((f) => f.kind === "image" && !uploads[f.name])) return;
  autoRun = false;
  generate();
}

function showFields() {
  const m = current();
  const box = $("fields");
  box.replaceChildren();
  uploads = {};
  if (!m) return;
  const makes = m.tools.includes("generate"), size = m.output || m.input;
  const colour = size.channels === 1 ? "grey" : "colour";
  $("model-info").textContent = makes ? `${m.title}: makes ${size.width}×${size.height} ${colour} images`
    : `${m.title}: reads ${size.width}×${size.height} ${colour} images (uploads are resized)`;
  $("make").hidden = !makes;
  $("interpolation").hidden = !m.tools.includes("interpolate");
  $("output").hidden = !makes || !shown;
  $("history").hidden = !makes || !earlier.length;
  if (makes) hideSimilar(); else showSimilar(m);
  for (const f of m.fields) {
    const id = `field-${f.name}`;
    box.append(el("label", {for: id}, f.name));
    if (f.kind === "class") {
      const select = el("select", {id, name: f.name});
      f.class_names.forEach((name, i) => select.append(el("option", {value: String(i)}, name)));
      if (f.multiple) select.append(el("option", {value: "all"}, `every class (one ${f.columns ? "column" : "row"} each)`));
      box.append(select);
    } else if (f.kind === "image") {
      const input = el("input", {id, name: f.name, type: "file", accept: "image/*"});
      const preview = el("img", {class: "preview", alt: `the chosen ${f.name}`});
      preview.hidden = true;
      input.addEventListener("change", () => readUpload(f, input, preview));
      box.append(input, preview);
    }
    if (f.hint) box.append(el("p", {class: "hint"}, f.hint));
  }
}

function readImageFile(input, preview, done) {
  // Read the chosen file as a data: URL (within the server's upload limit), show it, then hand it to done.
  preview.hidden = true;
  const file = input.files[0];
  if (!file) return;
  if (file.size > limits.max_upload_bytes) {
    setStatus(`${file.name} is larger than the upload limit (${limits.max_upload_bytes} bytes)`, true);
    input.value = "";
    return;
  }
  const reader = new FileReader();
  reader.onload = () => {
    preview.src = reader.result;
    preview.hidden = false;
    setStatus("");
    done(reader.result);
  };
  reader.onerror = () => setStatus(`could not read ${file.name}`, true);
  reader.readAsDataURL(file);
}

function readUpload(field, input, preview) {
  delete uploads[field.name];
  readImageFile(input, preview, (url) => { uploads[field.name] = url; maybeAutoRun(); });
}

function requestBody(m, route = "generate") {
  const body = route === "interpolate"
    ? {model: m.name, seed_a: Number($("seed").value), seed_b: Number($("seed-b").value), steps: Number($("steps").value)}
    : {model: m.name, n: Number($("count").value), seed: Number($("seed").value)};
  for (const f of m.fields) {
    if (f.kind === "class") {
      const value = $(`field-${f.name}`).value;
      body[f.name] = value === "all" ? f.class_names.map((_, i) => i) : Number(value);
    } else if (f.kind === "image") {
      if (!uploads[f.name]) throw new Error(`choose an image file for ${f.name}`);
      body[f.name] = uploads[f.name];
    }
  }
  return body;
}

function rowNames(m, body) {
  const parts = [];
  for (const f of m.fields.filter((field) => field.kind === "class" && field.multiple)) {
    const ids = Array.isArray(body[f.name]) ? body[f.name] : [body[f.name]];
    const axis = f.columns ? "columns" : "rows";
    parts.push(`${ids.length > 1 ? axis : f.name}: ${ids.map((i) => f.class_names[i]).join(", ")}`);
  }
  return parts.join(" · ");
}

function pngBlob(base64) {
  const text = atob(base64);
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  return new Blob([bytes], {type: "image/png"});
}

function generate(event) {
  if (event) event.preventDefault();
  const m = current();
  if (m && m.tools.includes("generate")) produce(m, "generate");
}

async function produce(m, route) {
  // Generate or Interpolate: post the controls' request (format json), show and remember the answer.
  let body;
  try {
    body = requestBody(m, route);
  } catch (err) {
    setStatus(err.message, true);
    return;
  }
  setBusy(true);
  setStatus(route === "interpolate" ? "interpolating…" : "generating…");
  const started = performance.now();
  try {
    const response = await post({...body, format: "json"}, `/api/${route}`);
    if (!response) return;
    const answer = await response.json();
    const strip = route === "interpolate";
    const result = {route, model: m.name, body, answer, gridUrl: URL.createObjectURL(pngBlob(answer.grid)),
                    stem: strip ? `${m.name}-seed${body.seed_a}-to-${body.seed_b}` : `${m.name}-seed${body.seed}`,
                    info: strip ? `${answer.images.length} image(s), seed ${body.seed_a} → ${body.seed_b} in ${body.steps} steps`
                      : `${answer.images.length} image(s), seed ${body.seed}`,
                    rows: rowNames(m, body)};
    remember(result);
    show(result);
    setStatus(`done in ${Math.round(performance.now() - started)} ms`);
  } catch (err) {
    setStatus(`the server did not answer: ${err.message}`, true);
  } finally {
    setBusy(false);
  }
}

function setBusy(busy) {
  for (const id of ["generate", "interpolate", "compare", "search"]) $(id).disabled = busy;
}

async function post(body, route = "/api/generate") {
  // The answer, or null after showing the server's error.
  const response = await fetch(route, {
    method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body),
  });
  if (response.ok) return response;
  let message = response.statusText;
  try { message = (await response.json()).error; } catch (err) { /* not JSON: keep the status text */ }
  setStatus(`error ${response.status}: ${message}`, true);
  return null;
}

function show(result) {
  shown = result;
  const img = $("result");
  img.onload = () => {  // small images drawn larger, whole pixels (CSS keeps them sharp)
    const room = Math.min(760, $("output").clientWidth || 720);
    img.style.width = `${img.naturalWidth * Math.max(1, Math.floor(room / img.naturalWidth))}px`;
  };
  img.src = result.gridUrl;
  $("download").href = result.gridUrl;
  $("download").download = `${result.stem}.png`;
  $("download-zip").download = `${result.stem}.zip`;
  $("download-one").hidden = true;
  $("result-info").textContent = result.info;
  $("rows").textContent = result.rows;
  $("output").hidden = false;
  for (const button of $("history-strip").children) button.classList.toggle("active", button.result === result);
}

function remember(result) {
  earlier.unshift(result);
  for (const old of earlier.splice(HISTORY)) URL.revokeObjectURL(old.gridUrl);
  const buttons = earlier.map((past) => {
    const seeds = past.route === "interpolate" ? `${past.body.seed_a}→${past.body.seed_b}` : String(past.body.seed);
    const button = el("button", {type: "button", title: `${past.model}: ${past.rows || past.info}`});
    button.result = past;
    button.append(el("img", {src: past.gridUrl, alt: `${past.model}, seed ${seeds}`}), el("span", {}, `${past.model} · ${seeds}`));
    button.addEventListener("click", () => restore(past));
    return button;
  });
  $("history-strip").replaceChildren(...buttons);
  $("history").hidden = false;
}

function restore(result) {
  // The settings of an earlier result back in the controls (its uploads too), and its images on show.
  autoRun = false;
  $("model").value = result.model;
  showFields();
  const m = current();
  for (const f of m.fields) {
    const value = result.body[f.name];
    if (f.kind === "class") {
      $(`field-${f.name}`).value = Array.isArray(value) ? (value.length > 1 ? "all" : String(value[0])) : String(value);
    } else if (f.kind === "image") {
      uploads[f.name] = value;
      const preview = $(`field-${f.name}`).nextElementSibling;
      preview.src = value;
      preview.hidden = false;
    }
  }
  if (result.route === "interpolate") {
    $("seed").value = String(result.body.seed_a);
    $("seed-b").value = String(result.body.seed_b);
    $("steps").value = String(result.body.steps);
  } else {
    $("count").value = String(result.body.n);
    $("seed").value = String(result.body.seed);
  }
  show(result);
  setStatus(`restored: ${result.info}`);
}

function saveOne(event) {
  // The image under the click, alone: the grid is columns × rows of cells with 2 px of padding.
  if (!shown) return;
  const {answer} = shown, img = $("result");
  const x = event.offsetX * img.naturalWidth / img.clientWidth, y = event.offsetY * img.naturalHeight / img.clientHeight;
  const columns = answer.columns ? answer.columns.length : 1, rows = answer.rows ? answer.rows.length : 1;
  const across = answer.strip ? answer.steps : columns > 1 ? columns : rows > 1 ? answer.n : Math.ceil(Math.sqrt(answer.n));
  const col = Math.floor((x - 1) / (answer.width + 2)), row = Math.floor((y - 1) / (answer.height + 2));
  if (col < 0 || col >= across || row < 0) return;
  let index = row * across + col;  // the grid's order; with columns, rows are (row value, draw)
  if (columns > 1) index = (Math.floor(row / answer.n) * columns + col) * answer.n + (row % answer.n);
  const image = answer.images[index];
  if (!image) return;
  if (savedUrl) URL.revokeObjectURL(savedUrl);
  savedUrl = URL.createObjectURL(pngBlob(image.png));
  const link = $("download-one");
  link.href = savedUrl;
  link.download = `${shown.stem}-${String(index).padStart(3, "0")}.png`;
  const t = image.t === undefined ? null : `t = ${image.t.toFixed(2)}`;
  const about = [image.label, image.column, t].filter(Boolean).join(", ");
  link.textContent = `Save image ${index + 1}` + (about ? ` (${about})` : "");
  link.hidden = false;
  link.click();
}

async function downloadZip(event) {
  event.preventDefault();
  if (!shown) return;
  setStatus("making the zip…");
  try {
    const response = await post({...shown.body, format: "zip"}, `/api/${shown.route}`);
    if (!response) return;
    const url = URL.createObjectURL(await response.blob());
    const link = el("a", {href: url, download: $("download-zip").download});
    link.click();
    setTimeout(() => URL.revokeObjectURL(url), 60000);
    setStatus(`saved ${$("download-zip").download}`);
  } catch (err) {
    setStatus(`the server did not answer: ${err.message}`, true);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("model").addEventListener("change", () => { autoRun = false; showFields(); });
  $("result").addEventListener("click", saveOne);
  $("download-zip").addEventListener("click", downloadZip);
  $("controls").addEventListener("submit", generate);
  $("interpolate").addEventListener("click", () => { const m = current(); if (m) produce(m, "interpolate"); });
  $("random-seed").addEventListener("click", () => { $("seed").value = String(Math.floor(Math.random() * 2 ** 32)); });
  loadModels();
});
