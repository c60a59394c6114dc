// Evaluation: runs, a report with accuracy, 95 % intervals and the chart; live progress.
import { el, getBlob, getJSON, modelSelect, modelsWith, progressBar, sendJSON, showError } from "./api.js";

const pct = (x) => (x === null || x === undefined ? "—" : `${(100 * x).toFixed(1)}`);

export function evalsPage(root) {
  const runs = el("tbody");
  const report = el("div", { id: "eval-report" });
  const ladders = el("tbody");
  const ladderView = el("div", { id: "eval-ladder" });
  let timer = null;
  const modelSlot = el("span", {}, "…");
  let select = null;
  const benchmarks = el("input", { id: "eval-benchmarks", value: "medqa", "aria-label": "benchmarks" });
  const limit = el("input", { id: "eval-limit", type: "number", min: "1", value: "20", size: "5", "aria-label": "items per benchmark" });
  const jobStatus = el("div", { class: "status", id: "eval-job" });
  const startForm = el("form", { class: "row", onsubmit: (e) => { e.preventDefault(); start(); } },
    el("label", {}, "Model ", modelSlot), el("label", {}, "Benchmarks ", benchmarks),
    el("label", {}, "Items each ", limit), el("button", { type: "submit", id: "eval-start" }, "Start run"));
  root.replaceChildren(el("section", {},
    el("h2", {}, "Evaluation"),
    startForm, jobStatus,
    el("p", { class: "muted" }, "Runs started here or with terminus eval run appear below; progress updates live."),
    el("table", { class: "grid", id: "eval-runs" },
      el("thead", {}, el("tr", {}, ...["Run", "Mode", "Benchmarks", "Items", "Mean accuracy %"].map((h) => el("th", {}, h)))),
      runs),
    report,
    el("h3", {}, "Ladders"),
    el("p", { class: "muted" }, "Grids of models × quantizations written by terminus eval ladder."),
    el("table", { class: "grid", id: "eval-ladders" },
      el("thead", {}, el("tr", {}, ...["Ladder", "Models", "Benchmarks", "Items each"].map((h) => el("th", {}, h)))),
      ladders),
    ladderView));

  async function showLadder(name) {
    try {
      const view = await getJSON(`/terminus/v1/eval/ladders/${encodeURIComponent(name)}`);
      const parts = [el("h3", {}, name), el("p", { class: "muted" }, view.settings)];
      for (const section of view.sections) {
        if (section.rows.length < 2) continue;
        const [head, ...body] = section.rows;
        parts.push(el("h4", {}, section.title), el("table", { class: "grid", id: section.id },
          el("thead", {}, el("tr", {}, ...head.map((h) => el("th", {}, h)))),
          el("tbody", {}, ...body.map((row) => el("tr", {}, ...row.map((c) => el("td", {}, c)))))));
        if (section.id === "ladder-table" && view.has_size_plot) {
          const img = el("img", { id: "ladder-size", alt: `average accuracy against model size, ${name}`, class: "chart" });
          getBlob(`/terminus/v1/eval/ladders/${encodeURIComponent(name)}/size.png`)
            .then((blob) => { img.src = URL.createObjectURL(blob); })
            .catch((error) => img.replaceWith(el("div", { class: "muted" }, error.message)));
          parts.push(img);
        }
      }
      ladderView.replaceChildren(...parts);
    } catch (error) {
      showError(ladderView, error);
    }
  }

  async function refreshLadders() {
    try {
      const rows = (await getJSON("/terminus/v1/eval/ladders")).data;
      ladders.replaceChildren(...(rows.length ? rows.map((r) =>
        el("tr", {},
          el("td", {}, el("button", { type: "button", class: "link", "data-ladder": r.name, onclick: () => showLadder(r.name) }, r.name)),
          el("td", {}, r.models.join(", ")), el("td", {}, r.benchmarks.join(", ")), el("td", {}, String(r.limit ?? "all"))))
        : [el("tr", {}, el("td", { colspan: "4", class: "muted" }, "No ladders yet: terminus eval ladder -m smollm2 -m qwen --limit 20"))]));
    } catch (error) {
      showError(ladderView, error);
    }
  }

  async function show(name, other) {
    try {
      const summary = await getJSON(`/terminus/v1/eval/runs/${encodeURIComponent(name)}`);
      const rows = Object.entries(summary.benchmarks).map(([bench, b]) =>
        el("tr", {}, el("td", {}, bench), el("td", {}, pct(b.accuracy)),
          el("td", {}, `${pct(b.ci95[0])}–${pct(b.ci95[1])}`), el("td", {}, `${b.n}/${b.planned}`), el("td", {}, b.unparsed)));
      const img = el("img", { id: "eval-chart", alt: `accuracy chart of ${name}`, class: "chart" });
      const query = other ? `?with=${encodeURIComponent(other)}` : "";
      getBlob(`/terminus/v1/eval/runs/${encodeURIComponent(name)}/chart.png${query}`)
        .then((blob) => { img.src = URL.createObjectURL(blob); })
        .catch((error) => img.replaceWith(el("div", { class: "muted" }, error.message)));
      report.replaceChildren(
        el("h3", {}, summary.label),
        el("p", { class: "muted" }, `mode ${summary.mode} · seed ${summary.seed} · limit ${summary.limit ?? "all"} · prompts ${summary.prompt_version}`),
        el("table", { class: "grid" },
          el("thead", {}, el("tr", {}, ...["Benchmark", "Accuracy %", "95 % CI", "n", "Unparsed"].map((h) => el("th", {}, h)))),
          el("tbody", {}, ...rows)),
        summary.mean_accuracy !== null ? el("p", {}, `Unweighted mean: ${pct(summary.mean_accuracy)} %`) : null,
        img);
    } catch (error) {
      showError(report, error);
    }
  }

  async function refresh() {
    if (!root.isConnected) { clearInterval(timer); return; }
    try {
      const rows = (await getJSON("/terminus/v1/eval/runs")).data;
      runs.replaceChildren(...(rows.length ? rows.map((r) =>
        el("tr", {},
          el("td", {}, el("button", { type: "button", class: "link", "data-run": r.name, onclick: () => show(r.name) }, r.label)),
          el("td", {}, r.mode), el("td", {}, r.benchmarks.join(", ")),
          el("td", {}, el("progress", { max: String(r.items_planned || 1), value: String(r.items_done) }), ` ${r.items_done}/${r.items_planned}`),
          el("td", {}, pct(r.mean_accuracy))))
        : [el("tr", {}, el("td", { colspan: "5", class: "muted" }, "No runs yet: terminus eval run -m smollm2 --limit 20"))]));
    } catch (error) {
      showError(report, error);
    }
  }
  async function start() {
    const bar = progressBar("starting");
    jobStatus.replaceChildren(bar.root);
    try {
      let job = await sendJSON("POST", "/terminus/v1/eval/runs", {
        model: select.value,
        benchmarks: benchmarks.value.split(/[\s,]+/).filter(Boolean),
        limit: Number(limit.value) || null,
      });
      while (job.status === "starting" || job.status === "running") {
        bar.update(job.items_done, job.items_planned, job.status);
        await new Promise((resolve) => setTimeout(resolve, 1000));
        job = await getJSON(`/terminus/v1/eval/jobs/${job.id}`);
      }
      if (job.status === "failed") throw new Error(job.error);
      bar.done(`finished: ${job.items_done} items`);
      await refresh();
      show(job.run);
    } catch (error) {
      showError(jobStatus, error);
    }
  }

  modelsWith("chat", "completion").then((models) => {
    select = modelSelect(models, "smollm2-135m-instruct");
    select.id = "eval-model";
    modelSlot.replaceWith(select);
  }).catch((error) => showError(modelSlot, error));
  refresh();
  refreshLadders();
  timer = setInterval(refresh, 3000);
}
