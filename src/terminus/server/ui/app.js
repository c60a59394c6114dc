// The shell: a tab per capability, hash routing (#chat, #models …), the API key prompt.
import { el, getJSON, setApiKey } from "./api.js";
import { chatPage } from "./chat.js";
import { documentsPage } from "./documents.js";
import { evalsPage } from "./evals.js";
import { mediaPage } from "./media.js";
import { modelsPage } from "./models.js";
import { peersPage } from "./peers.js";

const PAGES = {
  chat: ["Chat", chatPage],
  models: ["Models", modelsPage],
  documents: ["Documents", documentsPage],
  media: ["Speech & vision", mediaPage],
  eval: ["Evaluation", evalsPage],
  peers: ["Peers", peersPage],
};

const main = document.getElementById("main");
const nav = document.getElementById("nav");

function route() {
  const name = location.hash.slice(1) || "chat";
  const [, render] = PAGES[name] || PAGES.chat;
  for (const link of nav.querySelectorAll("a")) {
    if (link.dataset.page === name) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  const page = el("div", { class: "page", "data-page": name });
  main.replaceChildren(page);
  render(page);
}

nav.replaceChildren(...Object.entries(PAGES).map(([name, [label]]) =>
  el("a", { href: `#${name}`, "data-page": name }, label)));
window.addEventListener("hashchange", route);

document.addEventListener("terminus:auth", () => {
  const dialog = document.getElementById("auth");
  if (!dialog.open) dialog.showModal();
});
document.getElementById("auth-form").addEventListener("submit", () => {
  setApiKey(document.getElementById("auth-key").value.trim());
  route();
});

getJSON("/health").then(() => {
  document.getElementById("version").textContent = document.body.dataset.version || "";
}).catch(() => {
  document.getElementById("version").textContent = "server unreachable";
});
route();
document.body.dataset.ready = "true";
