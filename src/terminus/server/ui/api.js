// HTTP helpers: the page talks only to the server's public APIs (OpenAI + /terminus/v1).
const KEY = "terminus.apiKey";

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export function authHeaders(extra = {}) {
  const key = localStorage.getItem(KEY);
  return key ? { ...extra, Authorization: `Bearer ${key}` } : extra;
}

export function setApiKey(key) {
  if (key) localStorage.setItem(KEY, key);
  else localStorage.removeItem(KEY);
}

async function check(response) {
  if (response.ok) return response;
  let message = `${response.status} ${response.statusText}`;
  try {
    const body = await response.json();
    const error = body && body.error;
    message = (error && (error.message || error)) || message;
  } catch (_) {
    /* not JSON: keep the status line */
  }
  if (response.status === 401) document.dispatchEvent(new CustomEvent("terminus:auth"));
  throw new ApiError(response.status, String(message));
}

export async function getJSON(path) {
  const response = await check(await fetch(path, { headers: authHeaders() }));
  return response.json();
}

export async function send(method, path, body, signal) {
  const init = { method, headers: authHeaders(), signal };
  if (body instanceof FormData) init.body = body;
  else if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  return check(await fetch(path, init));
}

export async function sendJSON(method, path, body, signal) {
  return (await send(method, path, body, signal)).json();
}

export async function getBlob(path) {
  return (await check(await fetch(path, { headers: authHeaders() }))).blob();
}

async function* lines(response) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let index;
    while ((index = buffer.indexOf("\n")) >= 0) {
      yield buffer.slice(0, index);
      buffer = buffer.slice(index + 1);
    }
  }
  if (buffer) yield buffer;
}

export async function* ndjson(response) {
  for await (const line of lines(response)) if (line.trim()) yield JSON.parse(line);
}

export async function* serverEvents(response) {
  for await (const line of lines(response)) {
    if (!line.startsWith("data:")) continue;
    const data = line.slice(5).trim();
    if (data === "[DONE]") return;
    yield JSON.parse(data);
  }
}

// A tiny DOM builder: text always goes in as text, never as HTML.
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (name === "class") node.className = value;
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function formatBytes(n) {
  if (n === null || n === undefined) return "";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let value = n;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit += 1;
  }
  return `${value.toFixed(value < 10 && unit ? 1 : 0)} ${units[unit]}`;
}

export function showError(target, error) {
  target.replaceChildren(el("div", { class: "error", role: "alert" }, error.message || String(error)));
}

export function progressBar(label) {
  const bar = el("progress", { max: "100", value: "0" });
  const text = el("span", { class: "progress-text" }, label || "");
  const root = el("div", { class: "progress" }, bar, text);
  return {
    root,
    update(completed, total, status) {
      if (total) {
        const pct = Math.min(100, Math.floor((100 * completed) / total));
        bar.value = pct;
        text.textContent = `${status || ""} ${pct} %`.trim();
        root.dataset.percent = String(pct);
      } else if (status) text.textContent = status;
    },
    done(message) {
      bar.value = 100;
      root.dataset.percent = "100";
      text.textContent = message || "100 %";
    },
  };
}

export async function modelsWith(...capabilities) {
  const catalog = await getJSON("/terminus/v1/catalog");
  return catalog.data.filter((m) => capabilities.includes(m.capability));
}

export function modelSelect(models, preferred) {
  const select = el("select", { "aria-label": "model" });
  for (const m of models) {
    const notes = [formatBytes(m.size), m.cached ? "" : "not cached", m.fits ? "" : "may not fit"]
      .filter(Boolean)
      .join(", ");
    select.append(el("option", { value: m.id }, `${m.id}${notes ? ` (${notes})` : ""}`));
  }
  if (preferred && models.some((m) => m.id === preferred)) select.value = preferred;
  return select;
}
