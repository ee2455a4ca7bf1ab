// The doctors' worklist: scans awaiting review first, then reviewed ones; filtered by the API, kept
// current by the hospital's worklist websocket.
import { api } from "./api.js";
import { describeState, live } from "./live.js";
import { escapeHtml } from "./viewer.js";

const script = document.getElementById("page-script");
const labelNames = JSON.parse(document.getElementById("label-names").textContent);
const patientNames = JSON.parse(document.getElementById("patient-names").textContent);
const filters = document.getElementById("filters");
const failure = document.getElementById("worklist-error");

const STATUS = { queued: "Queued", processing: "Analysing", done: "Analysed", failed: "Failed" };
const REVIEW = { confirmed: "Confirmed", corrected: "Changed" };

function query(reviewState) {
  const params = new URLSearchParams({ review_state: reviewState, limit: "100" });
  for (const [name, value] of new FormData(filters)) if (value) params.set(name, value);
  return `${script.dataset.api}?${params}`;
}

function table(scans, reviewed) {
  if (!scans.length) return `<p class="muted">Nothing here.</p>`;
  const rows = scans.map((scan) => {
    const confidence = scan.result ? `${(scan.result.confidence * 100).toFixed(0)}%` : "";
    const status = reviewed ? REVIEW[scan.review_state] : STATUS[scan.status];
    const state = reviewed ? scan.review_state : scan.status;
    const patient = patientNames[scan.patient] || "Patient";
    return `<tr>
      <td data-label="Patient"><a href="${script.dataset.page}${scan.id}/">${escapeHtml(patient)}</a></td>
      <td data-label="Uploaded">${escapeHtml(new Date(scan.created_at).toLocaleString())}</td>
      <td data-label="Status"><span class="badge ${escapeHtml(state)}">${escapeHtml(status)}</span></td>
      <td data-label="Class">${escapeHtml(labelNames[scan.label] || "")}</td>
      <td data-label="Confidence">${confidence}</td>
    </tr>`;
  }).join("");
  const headings = ["Patient", "Uploaded", "Status", "Class", "AI confidence"].map((name) => `<th scope="col">${name}</th>`);
  return `<table class="stack"><thead><tr>${headings.join("")}</tr></thead><tbody>${rows}</tbody></table>`;
}

// A patient who first uploads after the page was opened is not among the names it came with: ask the
// patients API (an audited read) once for each such record.
async function learnNames(scans) {
  const unknown = [...new Set(scans.map((scan) => scan.patient).filter((id) => id && !(id in patientNames)))];
  await Promise.all(unknown.map(async (id) => {
    try {
      patientNames[id] = (await api(`${script.dataset.patientsApi}${id}/`)).full_name;
    } catch {
      patientNames[id] = "Patient";
    }
  }));
}

let loading = null;
async function load() {
  try {
    const [pending, confirmed, corrected] = await Promise.all(
      ["unreviewed", "confirmed", "corrected"].map((state) => api(query(state))),
    );
    const reviewed = [...confirmed.results, ...corrected.results].sort((a, b) => b.created_at.localeCompare(a.created_at));
    await learnNames([...pending.results, ...reviewed]);
    document.getElementById("pending").innerHTML = table(pending.results, false);
    document.getElementById("pending-count").textContent = `(${pending.count})`;
    document.getElementById("reviewed").innerHTML = table(reviewed, true);
    failure.hidden = true;
  } catch (error) {
    failure.textContent = error.message;
    failure.hidden = false;
  }
}

// Many events can arrive at once (a batch of uploads): reload at most once per half second.
function reloadSoon() {
  if (loading) return;
  loading = setTimeout(() => { loading = null; load(); }, 500);
}

filters.addEventListener("change", load);
filters.addEventListener("submit", (event) => { event.preventDefault(); load(); });
live(script.dataset.ws, {
  onMessage: reloadSoon,
  onState: (state) => { describeState(document.getElementById("live-state"))(state); if (state === "live") reloadSoon(); },
});
load();
