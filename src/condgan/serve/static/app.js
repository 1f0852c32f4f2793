// condgan's page: the controls are built from GET /api/models (a dropdown per class field, an upload per
// image field), Generate posts to /api/generate and shows the PNG grid. Text from the server (model and
// class names, errors) only ever goes through textContent / option text, never parsed as markup.
"use strict";

const $ = (id) => document.getElementById(id);
let models = [];
let limits = {max_count: 256, max_upload_bytes: 4194304};
let uploads = {};  // image field name -> data: URL of the chosen file
let resultUrl = null;

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
  $("model").replaceChildren(...models.map((m) => el("option", {value: m.name}, m.name)));
  const wanted = new URLSearchParams(location.search).get("model");
  if (wanted && models.some((m) => m.name === wanted)) $("model").value = wanted;
  showFields();
  setStatus("");
}

function showFields() {
  const m = current();
  const box = $("fields");
  box.replaceChildren();
  uploads = {};
  if (!m) return;
  const colour = m.output.channels === 1 ? "grey" : "colour";
  $("model-info").textContent = `${m.title}: makes ${m.output.width}×${m.output.height} ${colour} images`;
  for (const f of m.fields) {
    const id = `field-${f.name}`;
    box.append(el("label", {for: id}, f.name));
    if (f.kind === "class") {
      const select = el("select", {id, name: f.name});
      f.class_names.forEach((name, i) => select.append(el("option", {value: String(i)}, name)));
      if (f.multiple) select.append(el("option", {value: "all"}, "every class (one row each)"));
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

function readUpload(field, input, preview) {
  delete uploads[field.name];
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
    uploads[field.name] = reader.result;
    preview.src = reader.result;
    preview.hidden = false;
    setStatus("");
  };
  reader.onerror = () => setStatus(`could not read ${file.name}`, true);
  reader.readAsDataURL(file);
}

function requestBody(m) {
  const body = {model: m.name, n: Number($("count").value), seed: Number($("seed").value), format: "png"};
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
  const f = m.fields.find((field) => field.kind === "class" && field.multiple);
  if (!f) return "";
  const ids = Array.isArray(body[f.name]) ? body[f.name] : [body[f.name]];
  return `${ids.length > 1 ? "rows" : f.name}: ${ids.map((i) => f.class_names[i]).join(", ")}`;
}

async function generate(event) {
  event.preventDefault();
  const m = current();
  if (!m) return;
  let body;
  try {
    body = requestBody(m);
  } catch (err) {
    setStatus(err.message, true);
    return;
  }
  $("generate").disabled = true;
  setStatus("generating…");
  const started = performance.now();
  try {
    const response = await fetch("/api/generate", {
      method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body),
    });
    if (!response.ok) {
      let message = response.statusText;
      try { message = (await response.json()).error; } catch (err) { /* not JSON: keep the status text */ }
      setStatus(`error ${response.status}: ${message}`, true);
      return;
    }
    const blob = await response.blob();
    if (resultUrl) URL.revokeObjectURL(resultUrl);
    resultUrl = URL.createObjectURL(blob);
    const count = response.headers.get("X-Condgan-Count");
    const img = $("result");
    img.onload = () => {  // small images drawn larger, whole pixels (CSS keeps them sharp)
      const room = Math.min(760, $("output").clientWidth || 720);
      img.style.width = `${img.naturalWidth * Math.max(1, Math.floor(room / img.naturalWidth))}px`;
    };
    img.src = resultUrl;
    $("download").href = resultUrl;
    $("download").download = `${m.name}-seed${body.seed}.png`;
    $("result-info").textContent = `${count} image(s), seed ${body.seed}`;
    $("rows").textContent = rowNames(m, body);
    $("output").hidden = false;
    setStatus(`done in ${Math.round(performance.now() - started)} ms`);
  } catch (err) {
    setStatus(`the server did not answer: ${err.message}`, true);
  } finally {
    $("generate").disabled = false;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("model").addEventListener("change", showFields);
  $("controls").addEventListener("submit", generate);
  $("random-seed").addEventListener("click", () => { $("seed").value = String(Math.floor(Math.random() * 2 ** 32)); });
  loadModels();
});
