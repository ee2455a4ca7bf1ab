// A federated run, live: status, a progress bar over the rounds, loss and accuracy per node and round.
import { lineChart } from "./charts.js";
import { describeState, live } from "./live.js";
import { escapeHtml } from "./viewer.js";

const script = document.getElementById("page-script");
const run = JSON.parse(document.getElementById("run-data").textContent);
// Nodes and dropouts name a hospital by its slug; the page names it as people do.
const hospitalNames = JSON.parse(document.getElementById("hospital-names").textContent);
const hospitalName = (slug) => hospitalNames[slug] || slug;
const FINISHED = new Set(["completed", "failed", "stopped"]);
const STATUS = { pending: "Waiting", submitted: "Submitted", running: "Running", completed: "Completed", failed: "Failed", stopped: "Stopped" };

// Rounds arrive from the API as {number, ...} and from live events as {round, ...}; keep one shape.
const rounds = new Map(run.rounds.map((r) => [r.number, r]));

function upsertRound(payload) {
  const number = payload.number ?? payload.round;
  rounds.set(number, { ...(rounds.get(number) || {}), ...payload, number, finished: payload.finished_at !== null });
}
for (const r of run.rounds) rounds.get(r.number).finished = Boolean(r.finished_at);

function seriesOf(key, globalKey) {
  const byNode = new Map();
  const global = [];
  for (const r of [...rounds.values()].filter((r) => r.finished).sort((a, b) => a.number - b.number)) {
    for (const node of r.nodes || []) {
      if (node[key] == null) continue;
      if (!byNode.has(node.hospital)) byNode.set(node.hospital, []);
      byNode.get(node.hospital).push([r.number, node[key]]);
    }
    if (r[globalKey] != null) global.push([r.number, r[globalKey]]);
  }
  return [...[...byNode].map(([slug, points]) => ({ name: hospitalName(slug), points })), { name: "global model", points: global }];
}

// A hospital admin's view names only their own hospital's node; the others come as a count, and their
// dropouts without a name (federation/access.py).
const plural = (n) => `${n} other hospital${n === 1 ? "" : "s"}`;
const dropoutName = (d) => (d.other_hospital ? "another hospital" : hospitalName(d.hospital));

function hospitalsOf(r) {
  const names = (r.nodes || []).map((n) => hospitalName(n.hospital));
  if (r.other_hospitals) names.push(plural(r.other_hospitals));
  return names.join(", ");
}

const headings = (names) => names.map((name) => `<th scope="col">${name}</th>`).join("");

function render() {
  const done = [...rounds.values()].filter((r) => r.finished).length;
  const status = document.getElementById("run-status");
  status.innerHTML = `<span class="badge ${escapeHtml(run.status)}">${escapeHtml(STATUS[run.status] || run.status)}</span>`;
  const bar = document.getElementById("run-progress");
  bar.value = done;
  bar.textContent = `${done} of ${run.num_rounds}`;
  const current = [...rounds.values()].find((r) => !r.finished);
  document.getElementById("run-progress-text").textContent =
    `${done} of ${run.num_rounds} round${run.num_rounds === 1 ? "" : "s"} finished${current && run.status === "running" ? `; round ${current.number} in progress` : ""}.`;
  const failure = document.getElementById("run-failure");
  failure.hidden = !run.failure_reason;
  failure.textContent = run.failure_reason || "";
  // A node that will refuse every round of this model (too few cases by its own minimum) declines before
  // round 1: no round row names it, so the run says it here.
  const declined = (run.dropouts || []).filter((d) => d.phase === "join");
  const declinedLine = document.getElementById("run-declined");
  declinedLine.hidden = !declined.length;
  declinedLine.textContent = declined.length
    ? `Did not join: ${declined.map((d) => (d.reason ? `${dropoutName(d)} (${d.reason})` : dropoutName(d))).join("; ")}.`
    : "";
  lineChart(document.getElementById("loss-chart"), {
    series: seriesOf("eval_loss", "global_loss"), xMax: run.num_rounds, title: "Loss per round, per hospital and for the global model",
  });
  lineChart(document.getElementById("accuracy-chart"), {
    series: seriesOf("eval_accuracy", "global_accuracy"), xMax: run.num_rounds, yMax: 1,
    yFormat: (v) => `${Math.round(v * 100)}%`, title: "Accuracy per round, per hospital and for the global model",
  });
  // A round the run ended in the middle of has no figures to wait for, and no count of who dropped out:
  // "…" and "none" would say it is still going and every hospital answered.
  const ended = FINISHED.has(run.status);
  const pending = (r) => (r.finished ? "—" : ended ? "did not finish" : "…");
  const dropped = (r) => (r.dropouts || []).map(dropoutName).join(", ") || (r.finished ? "none" : ended ? "not recorded" : "…");
  const rows = [...rounds.values()].sort((a, b) => a.number - b.number).map((r) => `<tr>
      <td data-label="Round">${r.number}</td>
      <td data-label="Global accuracy">${r.global_accuracy != null ? `${(r.global_accuracy * 100).toFixed(1)}%` : pending(r)}</td>
      <td data-label="Global loss">${r.global_loss != null ? r.global_loss.toFixed(3) : pending(r)}</td>
      <td data-label="Hospitals">${escapeHtml(hospitalsOf(r))}</td>
      <td data-label="Dropped out">${escapeHtml(dropped(r))}</td>
      <td data-label="Duration">${r.duration_s != null ? `${r.duration_s.toFixed(1)} s` : pending(r)}</td></tr>`).join("");
  document.getElementById("rounds-table").innerHTML = rows
    ? `<table class="stack"><thead><tr>${headings(["Round", "Global accuracy", "Global loss", "Hospitals", "Dropped out", "Duration"])}</tr></thead>
      <tbody>${rows}</tbody></table>`
    : `<p class="muted">No round has started yet.</p>`;
}

function onEvent(event) {
  if (event.kind === "snapshot") {
    Object.assign(run, event.run);
    rounds.clear();
    for (const r of event.run.rounds) upsertRound(r);
  } else if (event.kind === "round_started") {
    if (!rounds.has(event.round)) rounds.set(event.round, { number: event.round, finished: false, nodes: [] });
  } else if (event.kind === "round") {
    upsertRound({ ...event, finished_at: "" });
  } else if (event.kind === "dropout") {
    run.dropouts = [...(run.dropouts || []), event];
  }
  // "status" and "finished" events (and most others) carry the run's status; a failure its reason.
  if (event.status) run.status = event.status;
  if (event.reason) run.failure_reason = event.reason;
  render();
}

live(script.dataset.ws, { onMessage: onEvent, onState: describeState(document.getElementById("live-state")) });
render();
