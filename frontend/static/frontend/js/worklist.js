// The doctors' worklist: scans awaiting review first, then reviewed ones; filtered by the API, paged
// with its limit and offset ("Show more"), kept current by the hospital's worklist websocket.
import { api, showError } from "./api.js";
import { describeState, live } from "./live.js";
import { formatPercent } from "./numbers.js";
import { formatTime } from "./time.js";
import { escapeHtml } from "./viewer.js";

const script = document.getElementById("page-script");
const labelNames = JSON.parse(document.getElementById("label-names").textContent);
const patientNames = {};
const filters = document.getElementById("filters");
const failure = document.getElementById("worklist-error");
const PAGE = Number(script.dataset.pageSize) || 50;
// The most rows the API gives in one answer (neurofed/pagination.py): a reload of more asks in turns.
const PAGE_MAX = Number(script.dataset.pageMax) || PAGE;
// The most names the server gives in one request (frontend/views/scans.py, WORKLIST_NAMES_MAX).
const NAMES_MAX = Number(script.dataset.namesMax) || PAGE;

const STATUS = { queued: "Queued", processing: "Analysing", done: "Analysed", failed: "Failed" };
const REVIEW = { confirmed: "Confirmed", corrected: "Changed" };

// What each list has loaded so far; a live reload fetches as many rows again, so the list does not shrink.
const lists = {
  pending: { reviewState: "unreviewed", reviewed: false, scans: [], count: 0 },
  reviewed: { reviewState: "reviewed", reviewed: true, scans: [], count: 0 },
};

// One page of a list. A record number identifies a patient, so it is posted in the body to the search
// address, never put in a URL that logs and the browser's history keep; the other filters stay in the query.
function fetchPage(list, limit, offset) {
  const params = new URLSearchParams({ review_state: list.reviewState, limit: String(limit), offset: String(offset) });
  let recordNumber = "";
  for (const [name, value] of new FormData(filters)) {
    if (!value.trim()) continue;
    if (name === "mrn") recordNumber = value.trim();
    else params.set(name, value.trim());
  }
  if (recordNumber) return api(`${script.dataset.search}?${params}`, { method: "POST", json: { mrn: recordNumber }, reads: true });
  return api(`${script.dataset.api}?${params}`);
}

// The first `wanted` rows of a list, in as many answers as the API's ceiling takes.
async function fetchRows(list, wanted) {
  const first = await fetchPage(list, Math.min(wanted, PAGE_MAX), 0);
  const results = [...first.results];
  const seen = new Set(results.map((scan) => scan.id));
  // Rows asked for so far, duplicates included: the next answer starts after them, so an answer made only
  // of rows seen before cannot have the same request asked again.
  let offset = first.results.length;
  while (offset < Math.min(wanted, first.count)) {
    const next = await fetchPage(list, Math.min(wanted - offset, PAGE_MAX), offset);
    if (!next.results.length) break;
    offset += next.results.length;
    // A scan that moved down meanwhile (a newer upload pushed it) is not listed twice.
    results.push(...next.results.filter((scan) => !seen.has(scan.id)));
    next.results.forEach((scan) => seen.add(scan.id));
  }
  return { results, count: first.count };
}

function table(name) {
  const list = lists[name];
  if (!list.scans.length) {
    const searched = new FormData(filters).get("mrn")?.trim();
    return `<p class="muted">${searched ? "No scans here for this record number." : "Nothing here."}</p>`;
  }
  const rows = list.scans.map((scan) => {
    // The software's confidence is in its own class: beside a doctor's different reading it names that class.
    // An unusual image's reading may mean nothing (the software names a class for any picture): until a
    // doctor has read it, its row shows no class or confidence to sort by, only the badge.
    const unread = scan.unusual_image && scan.review_state === "unreviewed";
    const ai = unread ? null : scan.result;
    const percent = ai ? formatPercent(ai.confidence, 0) : "";
    const confidence = ai && ai.label !== scan.label ? `${labelNames[ai.label] || ai.label} ${percent}` : percent;
    const status = list.reviewed ? REVIEW[scan.review_state] : STATUS[scan.status];
    const state = list.reviewed ? scan.review_state : scan.status;
    const patient = patientNames[scan.patient] || "Patient";
    const uploaded = escapeHtml(formatTime(scan.created_at));
    // A patient with several scans, or two patients of one name, would give a screen reader's list of links
    // the same name twice: the link names the upload time too.
    return `<tr>
      <td data-label="Patient"><a href="${script.dataset.page}${scan.id}/"
        aria-label="${escapeHtml(patient)}, scan uploaded ${uploaded}">${escapeHtml(patient)}</a></td>
      <td data-label="Uploaded">${uploaded}</td>
      <td data-label="Status"><span class="badge ${escapeHtml(state)}">${escapeHtml(status)}</span>${scan.unusual_image
        ? ` <span class="badge unusual" title="Unlike the brain MRIs the software learnt from">Unusual image</span>` : ""}${scan.identity_differs
        ? ` <span class="badge identity" title="The file names another patient ID or birth date than this record">Check patient</span>` : ""}</td>
      <td data-label="Class">${unread ? "" : escapeHtml(labelNames[scan.label] || "")}</td>
      <td data-label="AI confidence">${escapeHtml(confidence)}</td>
    </tr>`;
  }).join("");
  const headings = ["Patient", "Uploaded", "Status", "Class", "AI confidence"]
    .map((heading) => `<th scope="col">${heading}</th>`);
  const left = list.count - list.scans.length;
  const more = left > 0
    ? `<div class="actions">
        <button type="button" class="secondary" data-more="${name}">Show ${Math.min(left, PAGE)} more</button>
        <span class="muted">${list.scans.length} of ${list.count} shown</span></div>`
    : "";
  return `<table class="stack"><thead><tr>${headings.join("")}</tr></thead><tbody>${rows}</tbody></table>${more}`;
}

function render() {
  for (const name of Object.keys(lists)) {
    document.getElementById(name).innerHTML = table(name);
    document.getElementById(`${name}-count`).textContent = `(${lists[name].count})`;
  }
}

// Names are encrypted at rest: ask for those of the rows on screen only, in one audited read per batch.
async function learnNames(scans) {
  const unknown = [...new Set(scans.map((scan) => scan.patient).filter((id) => id && !(id in patientNames)))];
  for (let start = 0; start < unknown.length; start += NAMES_MAX) {
    const batch = unknown.slice(start, start + NAMES_MAX);
    const params = new URLSearchParams(batch.map((id) => ["patient", id]));
    try {
      Object.assign(patientNames, (await api(`${script.dataset.names}?${params}`)).names);
    } catch {
      // The rows still show, as "Patient", and the next reload asks again.
      continue;
    }
    for (const id of batch) if (!(id in patientNames)) patientNames[id] = "Patient";
  }
}

// One change to the lists at a time: a reload waits for a "Show more" under way and then asks for its
// rows too, and a "Show more" waits for a reload under way and goes on from the reloaded rows. Side by
// side, the later answer undid the other: rows a doctor asked for vanished when a live event's reload
// came back, or were dropped as belonging to a list since reloaded.
let queue = Promise.resolve();
const inTurn = (work) => (queue = queue.then(work, work));
// A filter change makes a reload or a "Show more" still waiting its turn moot: the lists they would load
// or extend are gone, and the change's own reload follows.
let filterChanges = 0;

function load({ reset = false } = {}) {
  if (reset) filterChanges++;
  const askedUnder = filterChanges;
  return inTurn(() => (askedUnder === filterChanges ? reload(reset) : undefined));
}

async function reload(reset) {
  try {
    const answers = await Promise.all(Object.values(lists).map((list) =>
      fetchRows(list, reset ? PAGE : Math.max(PAGE, list.scans.length))));
    await learnNames(answers.flatMap((answer) => answer.results));
    Object.values(lists).forEach((list, index) => {
      list.scans = answers[index].results;
      list.count = answers[index].count;
    });
    render();
    failure.hidden = true;
  } catch (error) {
    showError(failure, error);
    failure.hidden = false;
  }
}

async function showMore(name, button, askedUnder) {
  if (askedUnder !== filterChanges) {
    button.disabled = false;  // gone with the list it extended, unless the filter's reload failed
    return;
  }
  const list = lists[name];
  try {
    const answer = await fetchPage(list, PAGE, list.scans.length);
    await learnNames(answer.results);
    const before = list.scans.length;
    const shown = new Set(list.scans.map((scan) => scan.id));
    // A scan that moved down since the last page (a newer upload pushed it) is not listed twice.
    list.scans.push(...answer.results.filter((scan) => !shown.has(scan.id)));
    list.count = answer.count;
    render();
    // The button is gone after the render: keyboard users go on from the first new row.
    document.querySelectorAll(`#${name} tbody a`)[before]?.focus();
    failure.hidden = true;
  } catch (error) {
    showError(failure, error);
    failure.hidden = false;
    button.disabled = false;
  }
}

// Many events can arrive at once (a batch of uploads): reload at most once per half second.
let pendingReload = null;
function reloadSoon() {
  if (pendingReload) return;
  pendingReload = setTimeout(() => { pendingReload = null; load(); }, 500);
}

for (const name of Object.keys(lists)) {
  document.getElementById(name).addEventListener("click", (event) => {
    const button = event.target.closest("button[data-more]");
    if (!button) return;
    button.disabled = true;
    const askedUnder = filterChanges;
    inTurn(() => showMore(button.dataset.more, button, askedUnder));
  });
}
// A choice in a list reloads at once; the record number waits for Find (or Enter): its own "change" event
// fires with that submit too, and would search, and audit the look-up, twice.
filters.addEventListener("change", (event) => { if (event.target.name !== "mrn") load({ reset: true }); });
filters.addEventListener("submit", (event) => { event.preventDefault(); load({ reset: true }); });
document.getElementById("filter-find").disabled = false;
live(script.dataset.ws, {
  onMessage: reloadSoon,
  onState: (state) => { describeState(document.getElementById("live-state"))(state); if (state === "live") reloadSoon(); },
});
load();
