// Chat: streamed answers over /v1/chat/completions, conversations kept by the server.
// With tool servers picked (those the server was started with, `serve --mcp`), a turn goes
// through /v1/responses instead: the server runs the agent loop and streams each tool call.
import { el, getJSON, modelSelect, modelsWith, send, sendJSON, serverEvents, showError } from "./api.js";
import { renderMarkdown, splitThinking } from "./markdown.js";

const newId = () => `c${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;

export function chatPage(root) {
  let conversation = { id: newId(), title: "", messages: [], system: "", settings: {} };
  let controller = null;

  const list = el("ul", { class: "conversations", "aria-label": "conversations" });
  const messages = el("div", { class: "messages", "aria-live": "polite" });
  const input = el("textarea", {
    id: "chat-input",
    rows: "3",
    placeholder: "Message (Enter to send, Shift+Enter for a new line)",
    "aria-label": "message",
  });
  const sendButton = el("button", { id: "chat-send", type: "submit" }, "Send");
  const stopButton = el("button", { id: "chat-stop", type: "button", disabled: true }, "Stop");
  const status = el("div", { class: "status", id: "chat-status" });
  const system = el("textarea", { id: "chat-system", rows: "2", placeholder: "System prompt" });
  const temperature = el("input", { id: "chat-temperature", type: "number", min: "0", max: "2", step: "0.1", value: "0.7" });
  const maxTokens = el("input", { id: "chat-max-tokens", type: "number", min: "1", step: "1", value: "512" });
  const topP = el("input", { id: "chat-top-p", type: "number", min: "0", max: "1", step: "0.05", value: "0.95" });
  const modelSlot = el("span", { class: "model-slot" }, "loading models…");
  const toolsBox = el("fieldset", { class: "chat-tools", id: "chat-tools", hidden: true }, el("legend", {}, "Tools"));
  const constrained = el("input", { id: "chat-tools-constrained", type: "checkbox", checked: true });
  let select = null;
  const seeing = new Set();  // models that read images ("vision" in their capabilities)
  let attached = [];  // data URLs of the images going with the next message
  const picker = el("input", { id: "chat-image", type: "file", accept: "image/*", multiple: true, hidden: true });
  const attachButton = el("button", { id: "chat-attach", type: "button", title: "Attach an image" }, "Attach image");
  const tray = el("div", { class: "attachments", id: "chat-attachments" });
  attachButton.addEventListener("click", () => picker.click());
  picker.addEventListener("change", async () => {
    for (const file of picker.files) attached.push(await dataUrl(file));
    picker.value = "";
    showTray();
  });

  const form = el(
    "form",
    { class: "composer", onsubmit: (e) => { e.preventDefault(); submit(); } },
    input,
    el("div", { class: "buttons" }, attachButton, picker, sendButton, stopButton),
  );
  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      submit();
    }
  });
  stopButton.addEventListener("click", () => controller && controller.abort());

  const settings = el(
    "details",
    { class: "settings" },
    el("summary", {}, "System prompt and sampling"),
    el("label", {}, "System prompt", system),
    el("div", { class: "row" },
      el("label", {}, "Temperature", temperature),
      el("label", {}, "Max tokens", maxTokens),
      el("label", {}, "Top p", topP)),
  );
  const newButton = el("button", { type: "button", id: "chat-new", onclick: () => open(null) }, "New chat");
  root.replaceChildren(
    el("div", { class: "chat" },
      el("aside", { class: "sidebar" }, newButton, list),
      el("section", { class: "chat-main" },
        el("div", { class: "toolbar" }, el("label", {}, "Model ", modelSlot), settings, toolsBox),
        messages, status, tray, form)),
  );

  function bubble(role, text, thinking, images) {
    const body = el("div", { class: "body" });
    const node = el("div", { class: `message ${role}`, "data-role": role }, el("div", { class: "role" }, role), body);
    fill(node, text, thinking);
    if (images && images.length) {
      node.insertBefore(el("div", { class: "attachments" }, ...images.map((src) => el("img", { src, alt: "attached image" }))), body);
    }
    messages.append(node);
    return node;
  }

  // One tool call: what was called (always shown) and its result or error (unfolded).
  function toolCall(call) {
    const status = call.status || "in_progress";
    const result = call.error ? `Error: ${call.error.content ?? JSON.stringify(call.error)}` : call.output ?? "…";
    return el("details", { class: `tool-call ${status}`, "data-status": status, open: true },
      el("summary", {}, `${call.server_label ? call.server_label + " · " : ""}${call.name}(${call.arguments || ""})`),
      el("pre", { class: "tool-result" }, result));
  }

  function showTray() {
    tray.replaceChildren(...attached.map((src, i) =>
      el("span", { class: "attachment" },
        el("img", { src, alt: `image ${i + 1}` }),
        el("button", { type: "button", class: "icon", title: "Remove", "aria-label": `Remove image ${i + 1}`,
          onclick: () => { attached.splice(i, 1); showTray(); } }, "×"))));
  }

  function canSee() {
    const ok = Boolean(select) && seeing.has(select.value);
    attachButton.disabled = !ok;
    attachButton.title = ok ? "Attach an image" : "This model cannot read images";
  }

  function fill(node, text, extraThinking, calls = []) {
    const body = node.querySelector(".body");
    const { thinking, answer } = splitThinking(text);
    const thought = [extraThinking, thinking].filter(Boolean).join("\n");
    body.replaceChildren();
    if (thought) {
      const details = el("details", { class: "thinking" }, el("summary", {}, "Thinking"));
      details.append(el("div", {}, thought));
      body.append(details);
    }
    if (calls.length) body.append(el("div", { class: "tool-calls" }, ...calls.map(toolCall)));
    const content = el("div", { class: "content" });
    content.innerHTML = node.dataset.role === "user" ? "" : renderMarkdown(answer);
    if (node.dataset.role === "user") content.textContent = answer;
    body.append(content);
  }

  function redraw() {
    messages.replaceChildren();
    for (const m of conversation.messages) {
      if (m.role === "tool") fill(bubble("tool", ""), "", "", [JSON.parse(m.content)]);
      else bubble(m.role, m.content, "", m.images);
    }
    system.value = conversation.system || "";
    messages.scrollTop = messages.scrollHeight;
  }

  async function refreshList() {
    try {
      const rows = (await getJSON("/terminus/v1/conversations")).data;
      list.replaceChildren(
        ...rows.map((r) =>
          el("li", {},
            el("button", {
              type: "button",
              class: r.id === conversation.id ? "current" : "",
              onclick: () => open(r.id),
            }, r.title || "(untitled)"),
            el("button", { type: "button", class: "icon", title: "Delete", "aria-label": `Delete ${r.title}`,
              onclick: async () => { await send("DELETE", `/terminus/v1/conversations/${r.id}`); if (r.id === conversation.id) open(null); else refreshList(); } }, "×"),
          )),
      );
    } catch (error) {
      showError(list, error);
    }
  }

  async function open(id) {
    if (controller) controller.abort();
    conversation = id
      ? await getJSON(`/terminus/v1/conversations/${id}`)
      : { id: newId(), title: "", messages: [], system: system.value, settings: {} };
    if (select && conversation.model) select.value = conversation.model;
    redraw();
    refreshList();
    input.focus();
  }

  async function save() {
    conversation.system = system.value;
    conversation.model = select ? select.value : null;
    conversation.settings = { temperature: Number(temperature.value), max_tokens: Number(maxTokens.value), top_p: Number(topP.value) };
    await sendJSON("PUT", `/terminus/v1/conversations/${conversation.id}`, conversation);
    refreshList();
  }

  async function submit() {
    const text = input.value.trim();
    if (!text || controller || !select) return;
    input.value = "";
    if (!conversation.title) conversation.title = text.slice(0, 60);
    const images = attached;
    attached = [];
    showTray();
    conversation.messages.push(images.length ? { role: "user", content: text, images } : { role: "user", content: text });
    bubble("user", text, "", images);
    const node = bubble("assistant", "");
    node.classList.add("streaming");
    const wire = [];
    if (system.value.trim()) wire.push({ role: "system", content: system.value.trim() });
    wire.push(...conversation.messages.filter((m) => m.role !== "tool").map(onTheWire));  // tool turns are shown, not resent
    const servers = [...toolsBox.querySelectorAll("input[name=tool-server]:checked")].map((i) => i.value);
    const calls = [];
    controller = new AbortController();
    sendButton.disabled = true;
    stopButton.disabled = false;
    status.textContent = "…";
    performance.mark("terminus:send");
    let content = "";
    let thinking = "";
    let finish = null;
    let usage = null;
    const started = performance.now();
    let first = null;
    let pending = false;
    const paint = () => {
      pending = false;
      fill(node, content, thinking, calls);
      messages.scrollTop = messages.scrollHeight;
    };
    try {
      if (servers.length) {
        ({ usage, finish } = await agentTurn(wire, servers, calls, (delta) => {
          content += delta;
          if (first === null) first = performance.now();
          if (!pending) { pending = true; requestAnimationFrame(paint); }
        }, () => { if (!pending) { pending = true; requestAnimationFrame(paint); } }));
      } else {
      const response = await send("POST", "/v1/chat/completions", {
        model: select.value,
        messages: wire,
        stream: true,
        stream_options: { include_usage: true },
        temperature: Number(temperature.value),
        top_p: Number(topP.value),
        max_tokens: Number(maxTokens.value),
      }, controller.signal);
      for await (const chunk of serverEvents(response)) {
        if (chunk.error) throw new Error(chunk.error.message || "stream error");
        if (chunk.usage) usage = chunk.usage;
        for (const choice of chunk.choices || []) {
          const delta = choice.delta || {};
          if (delta.content) content += delta.content;
          if (delta.reasoning_content) thinking += delta.reasoning_content;
          for (const call of delta.tool_calls || []) {
            content += `\n\n\`tool call: ${call.function?.name || ""} ${call.function?.arguments || ""}\``;
          }
          if (choice.finish_reason) finish = choice.finish_reason;
        }
        if (first === null && (content || thinking)) {
          first = performance.now();
          requestAnimationFrame(() => performance.mark("terminus:first-token"));  // painted
        }
        if (!pending) {
          pending = true;
          requestAnimationFrame(paint);
        }
      }
      }
      paint();
      const seconds = (performance.now() - started) / 1000;
      const rate = usage && first ? usage.completion_tokens / ((performance.now() - first) / 1000) : null;
      status.textContent = [
        finish ? `finished: ${finish}` : "",
        usage ? `${usage.completion_tokens} tokens` : "",
        rate ? `${rate.toFixed(1)} tok/s` : "",
        `${seconds.toFixed(1)} s`,
      ].filter(Boolean).join(" · ");
    } catch (error) {
      paint();
      if (error.name === "AbortError") {
        status.textContent = "stopped";
        node.dataset.stopped = "true";
      } else {
        node.append(el("div", { class: "error", role: "alert" }, error.message));
        status.textContent = "";
      }
    } finally {
      node.classList.remove("streaming");
      controller = null;
      sendButton.disabled = false;
      stopButton.disabled = true;
    }
    for (const call of calls) conversation.messages.push({ role: "tool", content: JSON.stringify(call) });
    if (content) conversation.messages.push({ role: "assistant", content });
    await save().catch((error) => { status.textContent = `not saved: ${error.message}`; });
  }

  // A turn through /v1/responses with the picked servers' tools, run by the server's agent loop.
  async function agentTurn(wire, servers, calls, onText, onCall) {
    const instructions = wire.filter((m) => m.role === "system").map((m) => m.content).join("\n");
    const response = await send("POST", "/v1/responses", {
      model: select.value,
      input: wire.filter((m) => m.role !== "system").map((m) => ({ type: "message", role: m.role, content: m.content })),
      instructions: instructions || undefined,
      tools: servers.map((label) => ({ type: "mcp", server_label: label, require_approval: "never" })),
      tool_choice: constrained.checked ? "required" : "auto",
      stream: true,
      store: false,
      temperature: Number(temperature.value),
      top_p: Number(topP.value),
      max_output_tokens: Number(maxTokens.value),
    }, controller.signal);
    const byId = new Map();
    let usage = null;
    let finish = null;
    for await (const event of serverEvents(response)) {
      const item = event.item;
      if (event.type === "response.output_text.delta") onText(event.delta);
      else if (item && item.type === "mcp_call" && event.type.startsWith("response.output_item.")) {
        if (!byId.has(item.id)) { byId.set(item.id, calls.length); calls.push(item); }
        calls[byId.get(item.id)] = { ...item, arguments: item.arguments || calls[byId.get(item.id)].arguments };
        onCall();
      } else if (event.type === "response.mcp_call_arguments.done" && byId.has(event.item_id)) {
        calls[byId.get(event.item_id)].arguments = event.arguments;
        onCall();
      } else if (event.type === "error") throw new Error(event.message || "stream error");
      else if (["response.completed", "response.incomplete", "response.failed"].includes(event.type)) {
        const r = event.response;
        if (r.error) throw new Error(r.error.message);
        if (r.usage) usage = { completion_tokens: r.usage.output_tokens };
        finish = r.incomplete_details ? r.incomplete_details.reason : r.status;
      }
    }
    return { usage, finish };
  }

  getJSON("/terminus/v1/agent/tools").then(({ data }) => {
    for (const server of data) {
      const box = el("input", { type: "checkbox", name: "tool-server", value: server.label, id: `chat-tool-${server.label}` });
      const names = server.tools.map((t) => t.name).join(", ");
      toolsBox.append(el("label", { title: server.error || names }, box,
        ` ${server.label} (${server.error ? "unavailable" : `${server.tools.length} tools`})`));
    }
    if (data.length) {
      toolsBox.append(el("label", { title: "Every step is a JSON-constrained call; small models need it" },
        constrained, " constrained calls"));
      toolsBox.hidden = false;
    }
  }).catch(() => { /* a server without the tools route: chat without tools */ });

  modelsWith("chat").then((models) => {
    select = modelSelect(models.filter((m) => !m.user_added || m.capability === "chat"), "smollm2-135m-instruct");
    select.id = "chat-model";
    for (const m of models) if ((m.capabilities || []).includes("vision")) seeing.add(m.id);
    select.addEventListener("change", canSee);
    modelSlot.replaceWith(select);
    canSee();
  }).catch((error) => showError(modelSlot, error));
  canSee();
  refreshList();
  input.focus();
}

// A stored message as OpenAI sends it: images become image_url parts before the text.
function onTheWire(m) {
  if (!m.images || !m.images.length) return { role: m.role, content: m.content };
  return {
    role: m.role,
    content: [...m.images.map((url) => ({ type: "image_url", image_url: { url } })), { type: "text", text: m.content }],
  };
}

function dataUrl(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(file);
  });
}
