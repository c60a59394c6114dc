// Peers: this node's identity and the peers it knows.
import { el, getJSON, showError } from "./api.js";

export function peersPage(root) {
  const body = el("div", { id: "peers" }, "…");
  root.replaceChildren(el("section", {}, el("h2", {}, "Peers"), body));
  getJSON("/terminus/v1/node").then((node) => {
    if (!node.available) {
      body.replaceChildren(el("p", {}, "Peer-to-peer is not installed here: ", el("code", {}, node.hint || "pip install 'terminus-sdk[p2p]'")));
      return;
    }
    const peers = node.peers.map((p) => el("tr", {},
      el("td", {}, p.name || "—"), el("td", {}, el("code", {}, p.node_id.slice(0, 16) + "…")),
      el("td", {}, (p.addresses || []).join(", ")),
      el("td", {}, p.last_seen ? new Date(p.last_seen * 1000).toLocaleString() : "never")));
    body.replaceChildren(
      el("p", {}, "This node: ", el("code", { id: "node-id" }, node.node_id)),
      el("p", { class: "muted" }, "Give this key to a provider for its allow-list (terminus provide --allow KEY)."),
      el("p", {}, `Inference runs through: ${node.transport}`),
      el("table", { class: "grid" },
        el("thead", {}, el("tr", {}, ...["Name", "Node", "Addresses", "Last seen"].map((h) => el("th", {}, h)))),
        el("tbody", {}, ...(peers.length ? peers : [el("tr", {}, el("td", { colspan: "4", class: "muted" }, "No known peers: terminus peers add terminus:node/…"))]))));
  }).catch((error) => showError(body, error));
}
