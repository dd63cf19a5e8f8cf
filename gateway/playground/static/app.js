// helixgate playground: the gateway's own API (/fhir/$convert, /fhir/$validate, /fhir/ConceptMap/$translate) behind
// a page. No framework, no network beyond this origin (the Content-Security-Policy allows nothing else).
"use strict";

const $ = (id) => document.getElementById(id);
const MAX_DIFF_LINES = 2000; // the line diff is quadratic: larger documents are compared by counts only
const OPEN_DEPTH = 4; // tree levels open at first; deeper ones open on demand (or when an issue points there)
let catalogue = { hub: "fhir", formats: [], conceptMaps: [], profiles: [] };
let fileBytes = null; // the chosen file's bytes, sent as they are (a GB 18030 document stays GB 18030)

// ---------------------------------------------------------------- the API
function credentialHeader() {
  const value = $("credential").value.trim();
  sessionStorage.setItem("helixgate-credential", value);
  if (!value) return {};
  if (value.includes(" ")) return { Authorization: value }; // "Bearer …" or "ApiKey …" as typed
  const jwt = /^[\w-]+\.[\w-]+\.[\w-]*$/.test(value);
  return { Authorization: (jwt ? "Bearer " : "ApiKey ") + value };
}

async function api(path, { method = "GET", body = null, type = "application/fhir+json" } = {}) {
  // FHIR JSON only: a streamable input (a VCF) then comes back as one Bundle, not as NDJSON lines
  const headers = { Accept: "application/fhir+json", ...credentialHeader() };
  if (body !== null) headers["Content-Type"] = type;
  const response = await fetch(path, { method, headers, body });
  const media = (response.headers.get("content-type") || "").split(";")[0];
  const text = await response.text();
  let json = null;
  if (media.includes("json") && !media.includes("ndjson")) {
    try { json = JSON.parse(text); } catch { json = null; }
  }
  return { status: response.status, headers: response.headers, media, text, json };
}

function say(text, error = false) {
  const status = $("status");
  status.textContent = text;
  status.className = error ? "error" : "";
}

function refusal(res) {
  if (res.status === 401) return "the gateway needs credentials: enter an API key or bearer token above";
  if (res.status === 403) return "these credentials do not grant this operation (see the issues)";
  return `the gateway answered ${res.status}`;
}

// ---------------------------------------------------------------- small DOM helpers
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c);
  return node;
}

function option(select, value, label) {
  select.append(el("option", { value, text: label }));
}

// ---------------------------------------------------------------- the JSON tree
// Each node carries data-path, the FHIRPath the validator uses (Bundle.entry[1].resource.status), so an issue's
// expression finds its element. References to resources of the same Bundle are links to them.
function renderTree(container, doc) {
  container.replaceChildren();
  const targets = new Map(); // reference text -> node id
  const entries = doc && doc.resourceType === "Bundle" && Array.isArray(doc.entry) ? doc.entry : [];
  entries.forEach((e, i) => {
    const r = e && e.resource;
    if (e && e.fullUrl) targets.set(e.fullUrl, `entry-${i}`);
    if (r && r.resourceType && r.id) {
      targets.set(`${r.resourceType}/${r.id}`, `entry-${i}`);
      if (e.fullUrl && e.fullUrl.endsWith(`/${r.resourceType}/${r.id}`)) targets.set(e.fullUrl, `entry-${i}`);
    }
  });
  const root = doc && doc.resourceType ? doc.resourceType : "$";
  container.append(node(root, doc, root, 0, targets));
}

function node(key, value, path, depth, targets) {
  if (value !== null && typeof value === "object") {
    const isArray = Array.isArray(value);
    const details = el("details", { "data-path": path });
    if (depth < OPEN_DEPTH) details.open = true;
    const label = isArray ? `[${value.length}]` : value.resourceType ? `${value.resourceType}${value.id ? "/" + value.id : ""}` : "";
    details.append(el("summary", {}, el("span", { class: "key", text: key }), el("span", { class: "meta", text: ` ${label}` })));
    const m = /^Bundle\.entry\[(\d+)\]$/.exec(path);
    if (m) details.id = `entry-${m[1]}`;
    const list = el("div", { class: "children" });
    if (isArray) value.forEach((v, i) => list.append(node(`${i}`, v, `${path}[${i}]`, depth + 1, targets)));
    else for (const [k, v] of Object.entries(value)) list.append(node(k, v, `${path}.${k}`, depth + 1, targets));
    details.append(list);
    return details;
  }
  const leaf = el("div", { class: "leaf", "data-path": path, tabindex: "-1" });
  leaf.append(el("span", { class: "key", text: key }), document.createTextNode(": "));
  const text = typeof value === "string" ? JSON.stringify(value) : String(value);
  const target = typeof value === "string" && targets.get(value);
  if (target) {
    leaf.append(el("a", { href: `#${target}`, class: "ref", text, onclick: (ev) => { ev.preventDefault(); reveal(document.getElementById(target)); } }));
  } else {
    leaf.append(el("span", { class: `val ${typeof value}`, text }));
  }
  return leaf;
}

function reveal(target) {
  if (!target) return;
  for (let p = target; p; p = p.parentElement) if (p.tagName === "DETAILS") p.open = true;
  document.querySelectorAll(".hit").forEach((n) => n.classList.remove("hit"));
  target.classList.add("hit");
  const focusable = target.tagName === "DETAILS" ? target.querySelector("summary") : target;
  focusable.focus({ preventScroll: true });
  target.scrollIntoView({ block: "center" });
}

// The node an expression names, or its nearest existing ancestor (a missing element's parent).
function findPath(container, expression) {
  let path = expression.replace(/\.ofType\([^)]*\)/g, "").replace(/\.where\([^)]*\)/g, "").trim();
  while (path) {
    const hit = [...container.querySelectorAll("[data-path]")].find((n) => n.dataset.path === path);
    if (hit) return hit;
    const cut = Math.max(path.lastIndexOf("."), path.lastIndexOf("["));
    if (cut <= 0) break;
    path = path.slice(0, cut);
  }
  return null;
}

// ---------------------------------------------------------------- the source and where a report item points
function renderSource(text) {
  const list = $("source-lines");
  list.replaceChildren(...text.split(/\r\n|\r|\n/).map((line, i) => el("li", { id: `src-${i + 1}`, tabindex: "-1", text: line || " " })));
}

// Source expressions name a line (VCF "line 12"), an HL7 v2 field (OBX[3]-14, PID-3), a data element (WS 445) or an
// XPath (CDA). The line holding it is marked; an XPath is found by its last element name.
function sourceLine(expression) {
  const lines = [...$("source-lines").children];
  let m = /\bline (\d+)/.exec(expression);
  if (m) return lines[Number(m[1]) - 1] || null;
  m = /^([A-Z][A-Z0-9]{2})(?:\[(\d+)\])?(?:-\d+)?/.exec(expression);
  if (m) {
    const found = lines.filter((li) => li.textContent.startsWith(m[1] + "|") || li.textContent.startsWith(m[1] + "^"));
    return found[(Number(m[2] || 1)) - 1] || found[0] || null;
  }
  const steps = expression.split("/").filter(Boolean);
  if (steps.length > 1) {
    const last = steps.reverse().map((s) => /^(?:[\w-]+:)?([\w-]+)(?:\[(\d+)\])?/.exec(s)).find((s) => s && s[1] !== "text");
    if (last) {
      const found = lines.filter((li) => new RegExp(`<(?:[\\w-]+:)?${last[1]}[\\s>/]`).test(li.textContent));
      return found[(Number(last[2] || 1)) - 1] || found[0] || null;
    }
  }
  return lines.find((li) => expression.length > 2 && li.textContent.includes(expression)) || null;
}

function showSource(li) {
  document.querySelectorAll("#source-lines .hit").forEach((n) => n.classList.remove("hit"));
  li.classList.add("hit");
  li.focus({ preventScroll: true });
  li.scrollIntoView({ block: "center" });
}

// ---------------------------------------------------------------- issues
function renderIssues(list, outcome, treeContainer, withSource) {
  list.replaceChildren();
  const issues = (outcome && outcome.issue) || [];
  for (const issue of issues) {
    const text = (issue.details && issue.details.text) || issue.diagnostics || "";
    const code = issue.details && issue.details.coding && issue.details.coding[0] && issue.details.coding[0].code;
    const li = el("li", { class: `issue ${issue.severity}` }, el("span", { class: "severity", text: issue.severity }), " ", el("span", { text }));
    if (code) li.append(" ", el("code", { class: "code", text: code }));
    const expressions = [...(issue.expression || []), ...(issue.location || [])];
    const from = /\(from ([^)]+)\)/.exec(text);
    if (from) expressions.push(from[1]);
    const seen = new Set();
    for (const expression of expressions) {
      if (seen.has(expression)) continue;
      seen.add(expression);
      const inOutput = treeContainer && /^[A-Z][A-Za-z]+(\.|\[|$)/.test(expression) && findPath(treeContainer, expression);
      if (inOutput) {
        li.append(" ", el("button", { type: "button", class: "link", text: `show ${expression}`, onclick: () => reveal(findPath(treeContainer, expression)) }));
      } else if (withSource) {
        const line = sourceLine(expression);
        if (line) {
          line.classList.add("reported");
          li.append(" ", el("button", { type: "button", class: "link", text: `show ${expression} in the source`, onclick: () => showSource(line) }));
        } else {
          li.append(" ", el("code", { text: expression }));
        }
      } else {
        li.append(" ", el("code", { text: expression }));
      }
    }
    list.append(li);
  }
  return issues;
}

function countText(issues) {
  const by = (s) => issues.filter((i) => i.severity === s).length;
  return `(${by("fatal") + by("error")} errors, ${by("warning")} warnings, ${by("information")} information)`;
}

// ---------------------------------------------------------------- convert
function formatOf(name) { return catalogue.formats.find((f) => f.name === name); }

function conversionParameters(source, target) {
  const params = [];
  const text = $("input").value;
  if (fileBytes) {
    let binary = "";
    for (let i = 0; i < fileBytes.length; i += 0x8000) binary += String.fromCharCode(...fileBytes.subarray(i, i + 0x8000));
    params.push({ name: "input", valueBase64Binary: btoa(binary) });
  } else {
    params.push({ name: "input", valueString: text });
  }
  if (source) params.push({ name: "source", valueCode: source });
  params.push({ name: "target", valueCode: target });
  params.push({ name: "allowInvalid", valueBoolean: $("allow-invalid").checked });
  for (const input of $("options").querySelectorAll("[data-option]")) {
    const v = input.type === "checkbox" ? (input.checked ? "true" : "") : input.value.trim();
    if (v) params.push({ name: input.dataset.option, valueString: v });
  }
  return { resourceType: "Parameters", parameter: params };
}

function parametersPart(doc, name) {
  return doc && doc.resourceType === "Parameters" ? (doc.parameter || []).find((p) => p.name === name) : null;
}

async function convert() {
  const source = $("source").value;
  let target = $("target").value;
  if (target === catalogue.hub && $("view").value === "xml" && formatOf("fhir-xml")) target = "fhir-xml";
  if (!fileBytes && !$("input").value.trim()) { say("paste a message or choose a file first", true); $("input").focus(); return; }
  say("converting…");
  $("convert-results").hidden = false;
  $("diff-section").hidden = true;
  renderSource(fileBytes ? decode(fileBytes) : $("input").value);
  const started = performance.now();
  const res = await api("/fhir/$convert", { method: "POST", body: JSON.stringify(conversionParameters(source, target)) });
  const ms = Math.round(performance.now() - started);
  const output = $("output");
  output.replaceChildren();
  let outcome = null;
  let fhir = null;
  if (res.status === 200 && res.json && res.json.resourceType === "Parameters") {
    const out = parametersPart(res.json, "output");
    outcome = (parametersPart(res.json, "outcome") || {}).resource;
    if (out && out.resource) { fhir = out.resource; renderTree(output, fhir); $("output-kind").textContent = `(FHIR JSON, ${target})`; }
    else if (out) {
      const xml = out.valueString.startsWith("<?xml") || out.valueString.startsWith("<");
      output.append(el("pre", { class: "text", text: xml ? indentXml(out.valueString) : out.valueString }));
      $("output-kind").textContent = `(${target})`;
    }
  } else if (res.status === 200 && res.media.includes("ndjson")) {
    const docs = res.text.split("\n").filter(Boolean).map((l) => JSON.parse(l));
    fhir = { resourceType: "Bundle", type: "collection", entry: docs.map((d) => ({ resource: d })) };
    renderTree(output, fhir);
    $("output-kind").textContent = `(NDJSON: ${docs.length} documents, ${res.headers.get("x-batch") || ""})`;
  } else {
    outcome = res.json && res.json.resourceType === "OperationOutcome" ? res.json : null;
    output.append(el("p", { class: "refused", text: `no output: ${refusal(res)}` }));
    $("output-kind").textContent = "";
  }
  const issues = renderIssues($("issues"), outcome, output, true);
  $("issue-count").textContent = countText(issues);
  const detected = res.headers.get("x-source-format") || source;
  say(res.status === 200 ? `converted ${detected || ""} → ${target} in ${ms} ms` : `refused: ${refusal(res)}`, res.status !== 200);
  if (res.status === 200 && fhir && target === catalogue.hub && detected && detected !== catalogue.hub && (formatOf(detected) || {}).writes) {
    await reverse(fhir, detected);
  }
}

async function reverse(fhir, format) {
  const params = { resourceType: "Parameters", parameter: [
    { name: "input", resource: fhir }, { name: "source", valueCode: catalogue.hub }, { name: "target", valueCode: format },
    { name: "allowInvalid", valueBoolean: true }] };
  const res = await api("/fhir/$convert", { method: "POST", body: JSON.stringify(params) });
  const out = res.status === 200 ? parametersPart(res.json, "output") : null;
  $("diff-section").hidden = false;
  if (!out) { $("diff-summary").textContent = `the FHIR output could not be converted back to ${format}: ${refusal(res)}`; $("diff").tBodies[0].replaceChildren(); return; }
  const back = out.valueString !== undefined ? out.valueString : JSON.stringify(out.resource, null, 2);
  const original = fileBytes ? decode(fileBytes) : $("input").value;
  renderDiff(original, back, format);
}

// A line diff (longest common subsequence), unchanged lines side by side, removed and added lines marked.
function renderDiff(a, b, format) {
  const left = a.split(/\r\n|\r|\n/), right = b.split(/\r\n|\r|\n/);
  const body = $("diff").tBodies[0];
  body.replaceChildren();
  if (left.length > MAX_DIFF_LINES || right.length > MAX_DIFF_LINES) {
    $("diff-summary").textContent = `converted back to ${format}: ${left.length} lines before, ${right.length} after (too long to compare line by line here)`;
    return;
  }
  const n = left.length, m = right.length, w = m + 1;
  const table = new Uint32Array((n + 1) * (m + 1));
  for (let i = n - 1; i >= 0; i--) for (let j = m - 1; j >= 0; j--) {
    table[i * w + j] = left[i] === right[j] ? table[(i + 1) * w + j + 1] + 1 : Math.max(table[(i + 1) * w + j], table[i * w + j + 1]);
  }
  let i = 0, j = 0, same = 0, removed = 0, added = 0;
  const row = (l, r, kind) => body.append(el("tr", { class: kind }, el("td", { text: l }), el("td", { text: r })));
  while (i < n || j < m) {
    if (i < n && j < m && left[i] === right[j]) { row(left[i], right[j], "same"); i++; j++; same++; }
    else if (j < m && (i >= n || table[i * w + j + 1] >= table[(i + 1) * w + j])) { row("", right[j], "added"); j++; added++; }
    else { row(left[i], "", "removed"); i++; removed++; }
  }
  $("diff-summary").textContent = `converted back to ${format}: ${same} lines the same, ${removed} only in the original, ${added} only in the result`;
}

// One element a line, indented by depth: for reading only (what was converted is the text the API returned).
function indentXml(text) {
  if (text.length > 5_000_000 || /\n\s*</.test(text.slice(0, 2000))) return text; // already laid out, or huge
  let depth = 0;
  return text.replace(/>\s*</g, ">\n<").split("\n").map((line) => {
    if (/^<\//.test(line)) depth = Math.max(0, depth - 1);
    const out = "  ".repeat(depth) + line;
    if (/^<[^!?/][^>]*[^/]>$/.test(line) && !/<\/[^>]+>$/.test(line.slice(1))) depth++;
    return out;
  }).join("\n");
}

function decode(bytes) {
  try { return new TextDecoder("utf-8", { fatal: true }).decode(bytes); }
  catch { return new TextDecoder("gb18030").decode(bytes); }
}

function showOptions() {
  const box = $("options");
  box.replaceChildren();
  const names = new Set([$("source").value, $("target").value]);
  for (const f of catalogue.formats.filter((f) => names.has(f.name))) {
    for (const o of f.options) {
      const id = `opt-${f.name}-${o.name}`;
      if (o.flag) {
        box.append(el("label", { class: "check", title: o.help }, el("input", { id, type: "checkbox", "data-option": o.name }), ` ${o.name}`));
      } else if (o.choices.length) {
        const select = el("select", { id, "data-option": o.name, title: o.help });
        option(select, "", "(default)");
        o.choices.forEach((c) => option(select, c, c));
        box.append(el("label", { for: id, text: o.name }), select);
      } else {
        box.append(el("label", { for: id, text: o.name }), el("input", { id, "data-option": o.name, title: o.help, size: "16" }));
      }
    }
  }
}

// ---------------------------------------------------------------- validate and translate
async function validate() {
  const text = $("resource").value.trim();
  if (!text) { say("paste a FHIR resource first", true); $("resource").focus(); return; }
  const profile = $("profile").value.trim();
  const xml = text.startsWith("<");
  say("validating…");
  const res = await api(`/fhir/$validate${profile ? `?profile=${encodeURIComponent(profile)}` : ""}`,
    { method: "POST", body: text, type: xml ? "application/fhir+xml" : "application/fhir+json" });
  $("validate-results").hidden = false;
  const tree = $("validate-tree");
  tree.replaceChildren();
  if (!xml) { try { renderTree(tree, JSON.parse(text)); } catch { tree.append(el("p", { text: "(not JSON)" })); } }
  const outcome = res.json && res.json.resourceType === "OperationOutcome" ? res.json : null;
  const issues = renderIssues($("validate-issues"), outcome, tree, false);
  $("validate-count").textContent = countText(issues);
  const errors = issues.filter((i) => i.severity === "error" || i.severity === "fatal").length;
  say(res.status === 200 || res.status === 422 ? (errors ? `${errors} error(s)` : "valid") : `refused: ${refusal(res)}`, res.status >= 400 && res.status !== 422);
}

async function translate() {
  const map = catalogue.conceptMaps.find((m) => m.id === $("conceptmap").value);
  const code = $("code").value.trim();
  if (!map || !code) { say("choose a ConceptMap and enter a code", true); return; }
  const q = new URLSearchParams({ url: map.url, code, system: ($("reverse").checked ? map.target : map.source) || "" });
  if ($("reverse").checked) q.set("reverse", "true");
  say("translating…");
  const res = await api(`/fhir/ConceptMap/$translate?${q}`);
  $("translate-results").hidden = false;
  const body = $("matches").tBodies[0];
  body.replaceChildren();
  if (!res.json || res.json.resourceType !== "Parameters") {
    $("translate-message").textContent = `refused: ${refusal(res)}`;
    say(`refused: ${refusal(res)}`, true);
    return;
  }
  const part = (p, name) => (p.part || []).find((x) => x.name === name);
  const result = parametersPart(res.json, "result");
  const message = parametersPart(res.json, "message");
  for (const match of res.json.parameter.filter((p) => p.name === "match")) {
    const concept = (part(match, "concept") || {}).valueCoding || {};
    body.append(el("tr", {}, el("td", { text: (part(match, "equivalence") || {}).valueCode || "" }),
      el("td", { text: concept.system || "" }), el("td", { text: concept.code || "" }), el("td", { text: concept.display || "" })));
  }
  $("translate-message").textContent = (message && message.valueString) || (result && result.valueBoolean ? "translated" : "no translation");
  say(result && result.valueBoolean ? "translated" : "no translation");
}

function fillCodes() {
  const map = catalogue.conceptMaps.find((m) => m.id === $("conceptmap").value);
  $("codes").replaceChildren(...((map && map.codes) || []).map((c) => el("option", { value: c })));
}

// ---------------------------------------------------------------- wiring
function selectTab(name) {
  for (const t of ["convert", "validate", "translate"]) {
    $(t).hidden = t !== name;
    $(`tab-${t}`).setAttribute("aria-selected", String(t === name));
  }
}

async function start() {
  $("credential").value = sessionStorage.getItem("helixgate-credential") || "";
  for (const t of ["convert", "validate", "translate"]) $(`tab-${t}`).addEventListener("click", () => selectTab(t));
  $("run-convert").addEventListener("click", () => convert().catch((e) => say(`failed: ${e.message}`, true)));
  $("run-validate").addEventListener("click", () => validate().catch((e) => say(`failed: ${e.message}`, true)));
  $("run-translate").addEventListener("click", () => translate().catch((e) => say(`failed: ${e.message}`, true)));
  $("input").addEventListener("input", () => { fileBytes = null; });
  $("input").addEventListener("keydown", (ev) => { if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) $("run-convert").click(); });
  $("resource").addEventListener("keydown", (ev) => { if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) $("run-validate").click(); });
  $("file").addEventListener("change", async () => {
    const file = $("file").files[0];
    if (!file) return;
    fileBytes = new Uint8Array(await file.arrayBuffer());
    $("input").value = decode(fileBytes);
    say(`${file.name}: ${fileBytes.length} bytes`);
  });
  $("source").addEventListener("change", showOptions);
  $("target").addEventListener("change", showOptions);
  $("conceptmap").addEventListener("change", fillCodes);
  const res = await api("/playground/catalogue.json");
  if (!res.json) { say("the gateway's catalogue could not be read", true); return; }
  catalogue = res.json;
  for (const f of catalogue.formats) {
    if (f.reads && f.name !== catalogue.hub) option($("source"), f.name, `${f.name} — ${f.title}`);
    if (f.writes) option($("target"), f.name, f.name === catalogue.hub ? `${f.name} — FHIR R4` : `${f.name} — ${f.title}`);
  }
  option($("source"), catalogue.hub, `${catalogue.hub} — FHIR R4 (JSON or XML)`);
  $("target").value = catalogue.hub;
  for (const p of catalogue.profiles) $("profiles").append(el("option", { value: p.url, label: `${p.type}: ${p.title}` }));
  for (const m of catalogue.conceptMaps) option($("conceptmap"), m.id, m.title);
  fillCodes();
  showOptions();
  document.body.dataset.ready = "true";
}

document.addEventListener("DOMContentLoaded", () => start().catch((e) => say(`failed to start: ${e.message}`, true)));
