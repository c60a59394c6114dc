// Documents: RAG workspaces — upload files, ask with clickable citations, search.
import { el, getJSON, modelSelect, modelsWith, ndjson, progressBar, send, sendJSON, serverEvents, showError } from "./api.js";

export function documentsPage(root) {
  const workspaceSelect = el("select", { id: "rag-workspace", "aria-label": "workspace" });
  const newName = el("input", { id: "rag-new-name", placeholder: "new workspace name", pattern: "[A-Za-z0-9._-]+" });
  const fileInput = el("input", { id: "rag-files", type: "file", multiple: true, accept: ".txt,.md,.markdown,.html,.htm,.pdf" });
  const drop = el("div", { class: "dropzone", tabindex: "0" }, "Drop files here, or ", fileInput);
  const ingestStatus = el("div", { class: "status", id: "rag-ingest-status" });
  const docs = el("ul", { class: "documents", id: "rag-documents" });
  const question = el("input", { id: "rag-question", placeholder: "Ask your documents", "aria-label": "question" });
  const modelSlot = el("span", {}, "…");
  let chatSelect = null;
  const answer = el("div", { class: "answer", id: "rag-answer", "aria-live": "polite" });
  const sources = el("ol", { class: "sources", id: "rag-sources" });
  const passage = el("div", { class: "passage", id: "rag-passage", hidden: true });
  const searchResults = el("ol", { class: "sources", id: "rag-search-results" });

  const current = () => newName.value.trim() || workspaceSelect.value;

  root.replaceChildren(
    el("section", {},
      el("h2", {}, "Documents"),
      el("div", { class: "toolbar" }, el("label", {}, "Workspace ", workspaceSelect), newName),
      drop, ingestStatus, el("h3", {}, "In this workspace"), docs,
      el("h3", {}, "Ask"),
      el("form", { class: "row", onsubmit: (e) => { e.preventDefault(); ask(); } },
        question, el("label", {}, "Model ", modelSlot),
        el("button", { type: "submit", id: "rag-ask" }, "Ask"),
        el("button", { type: "button", id: "rag-search", onclick: () => search() }, "Search")),
      answer, sources, passage, searchResults),
  );

  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => { e.preventDefault(); drop.classList.remove("over"); ingest(e.dataTransfer.files); });
  fileInput.addEventListener("change", () => ingest(fileInput.files));
  workspaceSelect.addEventListener("change", () => { newName.value = ""; listDocuments(); });

  async function refreshWorkspaces(selected) {
    const rows = (await getJSON("/terminus/v1/rag/workspaces")).data;
    workspaceSelect.replaceChildren(...rows.map((w) => el("option", { value: w.name }, `${w.name} (${w.documents} docs)`)));
    if (selected) workspaceSelect.value = selected;
    if (!rows.length) newName.value = newName.value || "notes";
    listDocuments();
  }

  async function listDocuments() {
    const name = current();
    if (!name || !workspaceSelect.value) { docs.replaceChildren(el("li", { class: "muted" }, "No documents yet.")); return; }
    try {
      const rows = (await getJSON(`/terminus/v1/rag/workspaces/${encodeURIComponent(name)}/documents`)).data;
      docs.replaceChildren(...rows.map((d) => el("li", {}, `${d.name} · ${d.chunks} chunks · ${d.characters} characters`)));
    } catch (error) {
      docs.replaceChildren(el("li", { class: "muted" }, error.status === 404 ? "No documents yet." : error.message));
    }
  }

  async function ingest(files) {
    if (!files || !files.length) return;
    const name = current();
    const form = new FormData();
    for (const file of files) form.append("file", file, file.name);
    const bar = progressBar("uploading");
    ingestStatus.replaceChildren(bar.root);
    try {
      const response = await send("POST", `/terminus/v1/rag/workspaces/${encodeURIComponent(name)}/documents`, form);
      for await (const event of ndjson(response)) {
        if (event.status === "error") throw new Error(event.error);
        if (event.status === "success") {
          bar.done(event.documents.map((d) => `${d.source}: ${d.status}, ${d.chunks} chunks`).join("; "));
        } else bar.update(event.completed, event.total, event.status);
      }
      newName.value = "";
      await refreshWorkspaces(name);
    } catch (error) {
      showError(ingestStatus, error);
    }
  }

  function showPassage(source) {
    passage.hidden = false;
    passage.replaceChildren(el("h4", {}, `[${source.number}] ${source.label}`), el("blockquote", {}, source.text));
  }

  function renderAnswer(text, byNumber) {
    answer.replaceChildren();
    let last = 0;
    for (const match of text.matchAll(/\[(\d+)\]/g)) {
      answer.append(text.slice(last, match.index));
      const source = byNumber.get(Number(match[1]));
      answer.append(source
        ? el("button", { type: "button", class: "cite", "data-cite": match[1], onclick: () => showPassage(source) }, match[0])
        : match[0]);
      last = match.index + match[0].length;
    }
    answer.append(text.slice(last));
  }

  async function ask() {
    const text = question.value.trim();
    if (!text) return;
    answer.textContent = "…";
    sources.replaceChildren();
    passage.hidden = true;
    const byNumber = new Map();
    let content = "";
    try {
      const response = await send("POST", `/terminus/v1/rag/workspaces/${encodeURIComponent(current())}/ask`, {
        question: text, model: chatSelect ? chatSelect.value : null, stream: true, temperature: 0, max_tokens: 200,
      });
      for await (const event of serverEvents(response)) {
        if (event.type === "error") throw new Error(event.error);
        if (event.type === "sources") {
          for (const s of event.sources) byNumber.set(s.number, s);
          sources.replaceChildren(...event.sources.map((s) =>
            el("li", {}, el("button", { type: "button", class: "link", onclick: () => showPassage(s) }, s.label))));
        } else if (event.type === "content") {
          content += event.text;
          renderAnswer(content, byNumber);
        } else if (event.type === "done") {
          renderAnswer(content, byNumber);
          answer.dataset.cited = event.citations.join(",");
          if (!event.citations.length) answer.append(el("div", { class: "muted" }, "(the answer cites none of the sources)"));
        }
      }
    } catch (error) {
      showError(answer, error);
    }
  }

  async function search() {
    const text = question.value.trim();
    if (!text) return;
    try {
      const result = await sendJSON("POST", `/terminus/v1/rag/workspaces/${encodeURIComponent(current())}/search`, { query: text, top_k: 5 });
      searchResults.replaceChildren(...result.data.map((hit, i) => {
        const source = { number: i + 1, label: `${hit.source.split("/").pop()}#${hit.position.index}`, text: hit.text };
        return el("li", {}, el("button", { type: "button", class: "link", onclick: () => showPassage(source) },
          `${source.label} (score ${hit.score.toFixed(3)})`), el("div", { class: "muted" }, hit.text.slice(0, 160)));
      }));
    } catch (error) {
      showError(searchResults, error);
    }
  }

  modelsWith("chat").then((models) => {
    chatSelect = modelSelect(models, "qwen2.5-coder-0.5b-instruct");
    chatSelect.id = "rag-model";
    modelSlot.replaceWith(chatSelect);
  }).catch((error) => showError(modelSlot, error));
  refreshWorkspaces().catch((error) => showError(docs, error));
}
