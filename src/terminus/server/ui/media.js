// Speech and vision: transcribe, speak, OCR, translate, generate images.
import { el, modelSelect, modelsWith, send, sendJSON, showError } from "./api.js";

function card(title, ...children) {
  return el("section", { class: "card" }, el("h3", {}, title), ...children);
}

async function picker(capability, id) {
  const models = await modelsWith(capability);
  const select = modelSelect(models);
  select.id = id;
  return select;
}

const clock = (s) => `${Math.floor(s / 60)}:${(s % 60).toFixed(1).padStart(4, "0")}`;

function transcribeCard() {
  const file = el("input", { id: "stt-file", type: "file", accept: "audio/*,video/*" });
  const out = el("div", { class: "output", id: "stt-output", "aria-live": "polite" });
  const slot = el("span", {}, "…");
  const record = el("button", { type: "button", id: "stt-record" }, "Record");
  let recorder = null;
  let select = null;

  async function transcribe(blob, name) {
    out.textContent = "transcribing…";
    const form = new FormData();
    form.append("file", blob, name);
    form.append("model", select.value);
    form.append("response_format", "verbose_json");
    form.append("timestamp_granularities[]", "segment");
    try {
      const result = await (await send("POST", "/v1/audio/transcriptions", form)).json();
      out.replaceChildren(
        el("p", { class: "transcript" }, result.text),
        el("ol", { class: "segments" }, ...(result.segments || []).map((s) =>
          el("li", {}, el("span", { class: "muted" }, `${clock(s.start)}–${clock(s.end)} `), s.text))),
      );
    } catch (error) {
      showError(out, error);
    }
  }

  file.addEventListener("change", () => file.files[0] && transcribe(file.files[0], file.files[0].name));
  record.addEventListener("click", async () => {
    if (recorder) { recorder.stop(); return; }
    try {
      const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
      const parts = [];
      recorder = new MediaRecorder(stream);
      recorder.ondataavailable = (e) => parts.push(e.data);
      recorder.onstop = () => {
        stream.getTracks().forEach((t) => t.stop());
        recorder = null;
        record.textContent = "Record";
        transcribe(new Blob(parts, { type: parts[0]?.type || "audio/webm" }), "recording.webm");
      };
      recorder.start();
      record.textContent = "Stop recording";
    } catch (error) {
      showError(out, error);
    }
  });
  picker("stt", "stt-model").then((s) => { select = s; slot.replaceWith(s); }).catch((e) => showError(slot, e));
  return card("Speech to text", el("div", { class: "row" }, el("label", {}, "Model ", slot), file, record), out);
}

function speakCard() {
  const text = el("textarea", { id: "tts-text", rows: "2" }, "Hello from Terminus. This runs on your machine.");
  const out = el("div", { class: "output", id: "tts-output" });
  const slot = el("span", {}, "…");
  let select = null;
  const go = async () => {
    out.textContent = "speaking…";
    try {
      const response = await send("POST", "/v1/audio/speech", { model: select.value, input: text.value, response_format: "wav" });
      const url = URL.createObjectURL(await response.blob());
      out.replaceChildren(el("audio", { controls: true, src: url }), el("a", { href: url, download: "speech.wav" }, "Download WAV"));
    } catch (error) {
      showError(out, error);
    }
  };
  picker("tts", "tts-model").then((s) => { select = s; slot.replaceWith(s); }).catch((e) => showError(slot, e));
  return card("Text to speech", text, el("div", { class: "row" }, el("label", {}, "Voice ", slot),
    el("button", { type: "button", id: "tts-go", onclick: go }, "Speak")), out);
}

function ocrCard() {
  const file = el("input", { id: "ocr-file", type: "file", accept: "image/*" });
  const out = el("div", { class: "output", id: "ocr-output" });
  file.addEventListener("change", async () => {
    const image = file.files[0];
    if (!image) return;
    out.textContent = "reading…";
    const form = new FormData();
    form.append("file", image, image.name);
    try {
      const result = await (await send("POST", "/terminus/v1/ocr", form)).json();
      out.replaceChildren(el("img", { src: URL.createObjectURL(image), alt: "the image read", class: "thumb" }),
        el("pre", { class: "ocr-text" }, result.text || "(no text found)"));
    } catch (error) {
      showError(out, error);
    }
  });
  return card("Read text in an image (OCR)", el("div", { class: "row drop" }, file), out);
}

function translateCard() {
  const text = el("textarea", { id: "translate-text", rows: "2" }, "Good morning, how are you?");
  const target = el("input", { id: "translate-target", value: "fr", size: "4", "aria-label": "target language" });
  const out = el("div", { class: "output", id: "translate-output" });
  const go = async () => {
    out.textContent = "translating…";
    try {
      const result = await sendJSON("POST", "/terminus/v1/translate", { text: text.value, target: target.value });
      out.replaceChildren(el("p", {}, result.text), el("div", { class: "muted" }, `${result.source} → ${result.target} · ${result.model}`));
    } catch (error) {
      showError(out, error);
    }
  };
  return card("Translate", text, el("div", { class: "row" }, el("label", {}, "To ", target),
    el("button", { type: "button", id: "translate-go", onclick: go }, "Translate")), out);
}

function imageCard() {
  const prompt = el("input", { id: "image-prompt", value: "a lighthouse at dusk, oil painting", "aria-label": "image prompt" });
  const out = el("div", { class: "output", id: "image-output" });
  const slot = el("span", {}, "…");
  let select = null;
  const go = async () => {
    out.textContent = "painting… (a few seconds to minutes on a CPU)";
    try {
      const result = await sendJSON("POST", "/v1/images/generations", { model: select.value, prompt: prompt.value, response_format: "b64_json" });
      out.replaceChildren(...result.data.map((d) => el("img", { src: `data:image/png;base64,${d.b64_json}`, alt: prompt.value, class: "generated" })));
    } catch (error) {
      showError(out, error);
    }
  };
  picker("image", "image-model").then((s) => {
    select = s;
    slot.replaceWith(s.options.length ? s : el("span", { class: "muted" }, "no image model yet: see terminus image-models"));
  }).catch((e) => showError(slot, e));
  return card("Generate an image", el("div", { class: "row" }, prompt, el("label", {}, "Model ", slot),
    el("button", { type: "button", id: "image-go", onclick: go }, "Generate")), out);
}

export function mediaPage(root) {
  root.replaceChildren(el("h2", {}, "Speech and vision"),
    el("div", { class: "cards" }, transcribeCard(), speakCard(), ocrCard(), translateCard(), imageCard()));
}
