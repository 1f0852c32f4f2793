// condgan's page for a model that makes no images but compares them (a similarity model): a Compare tab (two
// uploads -> POST /api/compare: the similarity and the model's verdict) and a Search tab (an upload and one of the
// folders the server was started with -> POST /api/search: the nearest images, each fetched by the ids the
// server answered with, never by a path). app.js calls showSimilar / hideSimilar when the model changes and
// lends its helpers ($, el, setStatus, setBusy, post, current, limits). Text from the server only as text.
"use strict";

const picked = {};  // upload input id -> data: URL of the chosen file
let tab = "compare";

function showSimilar(m) {
  $("similar").hidden = false;
  for (const id of ["upload-a", "upload-b", "upload-query"]) {
    delete picked[id];
    $(id).value = "";
    $(id).nextElementSibling.hidden = true;
  }
  $("folder").replaceChildren(...m.folders.map((f) => el("option", {value: String(f.id)}, `${f.name} (${f.images} images)`)));
  $("search-off").hidden = m.folders.length > 0;
  $("search-on").hidden = m.folders.length === 0;
  $("k").max = String(limits.max_count);
  for (const id of ["verdict", "matches"]) delete $(id).dataset.filled;  // another model's answers are not this one's
  selectTab(tab);
}

function hideSimilar() {
  for (const id of ["similar", "verdict", "matches"]) $(id).hidden = true;
}

function selectTab(name) {
  tab = name;
  for (const other of ["compare", "search"]) {
    $(`tab-${other}`).setAttribute("aria-selected", String(other === name));
    $(`${other}-panel`).hidden = other !== name;
  }
  $("verdict").hidden = name !== "compare" || !$("verdict").dataset.filled;
  $("matches").hidden = name !== "search" || !$("matches").dataset.filled;
}

function pickImage(input) {
  // The preview sits right after its input; the read itself is app.js's readImageFile.
  delete picked[input.id];
  readImageFile(input, input.nextElementSibling, (url) => { picked[input.id] = url; });
}

async function ask(route, body, what) {
  // POST one similarity request; its JSON answer, or null after the page has said what went wrong.
  setBusy(true);
  setStatus(`${what}…`);
  const started = performance.now();
  try {
    const response = await post(body, route);
    if (!response) return null;
    const answer = await response.json();
    setStatus(`done in ${Math.round(performance.now() - started)} ms`);
    return answer;
  } catch (err) {
    setStatus(`the server did not answer: ${err.message}`, true);
    return null;
  } finally {
    setBusy(false);
  }
}

async function compareImages() {
  const m = current();
  if (!picked["upload-a"] || !picked["upload-b"]) {
    setStatus("choose two images to compare (A and B)", true);
    return;
  }
  const answer = await ask("/api/compare", {model: m.name, a: picked["upload-a"], b: picked["upload-b"]}, "comparing");
  if (!answer) return;
  $("verdict-a").src = picked["upload-a"];
  $("verdict-b").src = picked["upload-b"];
  const text = $("verdict-text");
  text.textContent = answer.same ? "the same, to this model" : "different, to this model";
  text.className = answer.same ? "same" : "different";
  $("verdict-info").textContent = `similarity ${answer.similarity.toFixed(4)}; the model calls two images the same ` +
    `from ${answer.threshold.toFixed(4)} up (the threshold it learned): ${answer.verdict}`;
  $("verdict").dataset.filled = "1";
  $("verdict").hidden = false;
}

async function searchFolder() {
  const m = current();
  if (!picked["upload-query"]) {
    setStatus("choose a query image to search with", true);
    return;
  }
  const body = {model: m.name, query: picked["upload-query"], folder: Number($("folder").value), k: Number($("k").value)};
  const answer = await ask("/api/search", body, "searching");
  if (!answer) return;
  $("matches-title").textContent = `The ${answer.results.length} nearest in ${answer.folder.name}`;
  $("matches-list").replaceChildren(...answer.results.map((r) => {
    const file = r.name.split("/").pop().replace(/\.[^.]*$/, "");
    const link = el("a", {href: r.url, download: `${answer.folder.name}-${file}.png`, title: `save ${r.name}`});
    link.append(el("img", {src: r.url, alt: r.name}));
    const figure = el("figure", {class: "match"});
    figure.append(link, el("figcaption", {}, `${r.rank}. ${r.name} · ${r.score.toFixed(4)}`));
    return figure;
  }));
  $("matches").dataset.filled = "1";
  $("matches").hidden = false;
}

document.addEventListener("DOMContentLoaded", () => {
  for (const id of ["upload-a", "upload-b", "upload-query"]) $(id).addEventListener("change", () => pickImage($(id)));
  $("tab-compare").addEventListener("click", () => selectTab("compare"));
  $("tab-search").addEventListener("click", () => selectTab("search"));
  $("compare").addEventListener("click", compareImages);
  $("search").addEventListener("click", searchFolder);
});
