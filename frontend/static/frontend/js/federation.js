// The admin's federation dashboard: each unfinished run's progress bar and status follow the run live,
// through the same run socket as the run page (which filters what an admin may read).
import { live } from "./live.js";
import { escapeHtml } from "./viewer.js";

const statuses = JSON.parse(document.getElementById("run-statuses").textContent);
const STATUS = statuses.words;
const FINISHED = new Set(statuses.finished);
// A page of runs opens at most this many sockets; older unfinished runs update on reload.
const MAX_LIVE = 10;

function follow(row) {
  const bar = row.querySelector("progress");
  const text = row.querySelector("[data-progress-text]");
  const badge = row.querySelector("[data-status]");
  const finishedRounds = new Set();
  let socket = null;

  function show(status) {
    bar.value = finishedRounds.size;
    bar.textContent = `${Math.round((100 * finishedRounds.size) / bar.max)}%`;
    text.textContent = `${finishedRounds.size} of ${bar.max} round${Number(bar.max) === 1 ? "" : "s"}`;
    if (status) {
      badge.className = `badge ${escapeHtml(status)}`;
      badge.textContent = STATUS[status] || status;
      if (FINISHED.has(status)) socket?.close();
    }
  }

  socket = live(row.dataset.ws, {
    onMessage(event) {
      if (event.kind === "snapshot") {
        finishedRounds.clear();
        for (const r of event.run.rounds) if (r.finished_at) finishedRounds.add(r.number);
        show(event.run.status);
        return;
      }
      if (event.kind === "round") finishedRounds.add(event.round);
      show(event.status);
    },
  });
}

[...document.querySelectorAll("tr[data-ws]")].slice(0, MAX_LIVE).forEach(follow);
