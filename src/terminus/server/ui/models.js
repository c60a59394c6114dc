// Models: the catalog, pull with live progress, verify, delete; what is loaded now.
import { el, formatBytes, getJSON, ndjson, progressBar, send, sendJSON, showError } from "./api.js";

export function modelsPage(root) {
  const table = el("tbody");
  const loaded = el("tbody");
  const message = el("div", { class: "status", id: "models-status" });
  const filter = el("input", { type: "search", placeholder: "Filter models", "aria-label": "filter models" });
  filter.addEventListener("input", () => render());
  let catalog = null;

  const byName = el("input", { id: "pull-name", placeholder: "hf://OWNER/REPO:Q4_K_M or qwen3:1.7b", "aria-label": "model to pull", size: "34" });
  const byNameStatus = el("div", { class: "status", id: "pull-name-status" });
  const pullByName = async () => {
    const name = byName.value.trim();
    if (!name) return;
    const bar = progressBar("starting");
    byNameStatus.replaceChildren(bar.root);
    try {
      const response = await send("POST", "/terminus/v1/pull", { model: name });
      for await (const event of ndjson(response)) {
        if (event.status === "error") throw new Error(event.error);
        if (event.status === "success") bar.done(`100 % · ${event.model} verified`);
        else bar.update(event.completed, event.total, event.status);
      }
      await refresh();
    } catch (error) {
      showError(byNameStatus, error);
    }
  };
  root.replaceChildren(
    el("section", {},
      el("h2", {}, "Models"),
      el("form", { class: "toolbar", onsubmit: (e) => { e.preventDefault(); pullByName(); } },
        byName, el("button", { type: "submit", id: "pull-name-go" }, "Pull")),
      byNameStatus,
      el("div", { class: "toolbar" }, filter, el("button", { type: "button", onclick: () => refresh() }, "Refresh")),
      message,
      el("table", { class: "grid", id: "models-table" },
        el("thead", {}, el("tr", {}, ...["Model", "Capability", "Size", "Cached", "Fits", ""].map((h) => el("th", {}, h)))),
        table),
      el("h3", {}, "Loaded now"),
      el("table", { class: "grid", id: "loaded-table" },
        el("thead", {}, el("tr", {}, ...["Model", "Engine", "Memory", "Context", "Slots", "Busy", "Unloads when idle"].map((h) => el("th", {}, h)))),
        loaded)),
  );

  async function pull(model, cell) {
    const bar = progressBar("starting");
    cell.replaceChildren(bar.root);
    try {
      const response = await send("POST", `/terminus/v1/models/${encodeURIComponent(model.id)}/pull`);
      for await (const event of ndjson(response)) {
        if (event.status === "error") throw new Error(event.error);
        if (event.status === "success") bar.done("100 % · verified");
        else bar.update(event.completed, event.total, event.status);
      }
      // keep the finished bar in view: update this row in place instead of redrawing
      catalog = await getJSON("/terminus/v1/catalog");
      const fresh = catalog.data.find((m) => m.id === model.id) || model;
      const row = cell.closest("tr");
      row.querySelector("td.cached").textContent = fresh.cached ? "yes" : "no";
      cell.append(...actionButtons(fresh));
      message.textContent = `${model.id} is in the cache (sha256 verified)`;
    } catch (error) {
      showError(cell, error);
    }
  }

  async function verify(model) {
    message.textContent = `verifying ${model.id}…`;
    try {
      const result = await sendJSON("POST", `/terminus/v1/models/${encodeURIComponent(model.id)}/verify`);
      message.textContent = result.ok
        ? `${model.id}: every file matches its sha256`
        : `${model.id}: ${result.files.filter((f) => !f.ok).map((f) => `${f.name} ${f.detail}`).join("; ") || "not cached"}`;
      await refresh();
    } catch (error) {
      showError(message, error);
    }
  }

  async function remove(model) {
    if (!window.confirm(`Delete ${model.id} from the cache?`)) return;
    try {
      const result = await sendJSON("DELETE", `/terminus/v1/models/${encodeURIComponent(model.id)}`);
      message.textContent = `${model.id} deleted (${formatBytes(result.freed_bytes)} freed)`;
      await refresh();
    } catch (error) {
      showError(message, error);
    }
  }

  function idleText(m) {
    if (m.expires_in_s !== undefined && m.expires_in_s !== null) return `in ${Math.max(0, Math.round(m.expires_in_s))} s`;
    if (m.keep_alive_s === null || m.keep_alive_s === undefined || m.keep_alive_s === Infinity) return "never";
    return `after ${Math.round(m.keep_alive_s)} s idle`;
  }

  async function lifecycle(m, action) {
    message.textContent = `${action === "load" ? "loading" : "unloading"} ${m.id}…`;
    try {
      await sendJSON("POST", `/terminus/v1/models/${encodeURIComponent(m.id)}/${action}`);
      message.textContent = `${m.id} ${action === "load" ? "loaded" : "unloaded"}`;
      await refresh();
    } catch (error) {
      showError(message, error);
    }
  }

  function actionButtons(m) {
    const servable = ["chat", "completion", "embed"].includes(m.capability);
    return [
      servable && !m.loaded ? el("button", { type: "button", "data-load": m.id, onclick: () => lifecycle(m, "load") }, "Load") : null,
      servable && m.loaded ? el("button", { type: "button", "data-unload": m.id, onclick: () => lifecycle(m, "unload") }, "Unload") : null,
      el("button", { type: "button", onclick: () => verify(m) }, "Verify"),
      el("button", { type: "button", class: "danger", onclick: () => remove(m) }, "Delete"),
    ].filter(Boolean);
  }

  function render() {
    if (!catalog) return;
    const words = filter.value.toLowerCase().split(/\s+/).filter(Boolean);
    const rows = catalog.data.filter((m) =>
      words.every((w) => [m.id, m.capability, ...m.aliases].join(" ").toLowerCase().includes(w)));
    table.replaceChildren(
      ...rows.map((m) => {
        const actions = el("td", { class: "actions" });
        if (!m.cached) actions.append(el("button", { type: "button", "data-pull": m.id, onclick: () => pull(m, actions) }, "Pull"));
        else actions.append(...actionButtons(m));
        return el("tr", { "data-model": m.id },
          el("td", {}, el("strong", {}, m.id), m.aliases.length ? el("div", { class: "muted" }, m.aliases.join(", ")) : null),
          el("td", {}, m.capability),
          el("td", {}, m.size ? formatBytes(m.size) : "—"),
          el("td", { class: "cached" }, m.cached ? "yes" : m.partial_bytes ? `partial (${formatBytes(m.partial_bytes)})` : "no"),
          el("td", {}, m.fits ? "yes" : "may not fit"),
          actions);
      }),
    );
    loaded.replaceChildren(
      ...(catalog.loaded.length
        ? catalog.loaded.map((m) => el("tr", {},
            el("td", {}, m.id), el("td", {}, m.engine), el("td", {}, formatBytes(m.memory_bytes)),
            el("td", {}, m.context_length ?? "—"), el("td", {}, m.parallel ?? "—"), el("td", {}, m.active_requests),
            el("td", {}, idleText(m))))
        : [el("tr", {}, el("td", { colspan: "7", class: "muted" }, "No model is loaded; one loads on first use."))]),
    );
  }

  async function refresh() {
    try {
      catalog = await getJSON("/terminus/v1/catalog");
      render();
    } catch (error) {
      showError(message, error);
    }
  }
  refresh();
}
