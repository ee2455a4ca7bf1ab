// What the patient's result page and the doctor's case page share: the scan's data, kept fresh.
import { api, showError } from "./api.js";
import { describeState, live } from "./live.js";
import { escapeHtml } from "./viewer.js";

export const labelNames = JSON.parse(document.getElementById("label-names").textContent);
export const labelName = (label) => labelNames[label] || label;

const STATUS_WORDS = {
  queued: "Waiting to be analysed",
  processing: "Being analysed",
  done: "Analysed",
  failed: "Could not be analysed",
};

export function statusText(scan) {
  if (scan.status === "done" && scan.review_state !== "unreviewed") return "Reviewed by a doctor";
  if (scan.status === "done" && scan.awaiting_review) return "Analysed; waiting for a doctor";
  return STATUS_WORDS[scan.status] || scan.status;
}

export function renderStatus(scan) {
  const element = document.getElementById("status");
  const state = scan.review_state !== "unreviewed" ? scan.review_state : scan.status;
  const html = `<span class="badge ${escapeHtml(state)}">${escapeHtml(statusText(scan))}</span>`;
  // The case page's status is a live region: rewriting the same words would have them read out again.
  if (element.innerHTML !== html) element.innerHTML = html;
}

// Follows the scan's websocket; every event (and every reconnect) refetches the scan from the API,
// which decides what this member may see. The socket itself carries only states.
export function followScan(initial, onChange) {
  let scan = initial;
  const wsPath = document.getElementById("page-script").dataset.ws;
  // Events in quick succession overlap their refreshes: an answer to an earlier one that lands after a
  // later one's is older news (a scan "being analysed" after it was shown analysed), and is dropped.
  let asked = 0;
  let shown = 0;
  const refresh = async () => {
    const mine = ++asked;
    try {
      const next = await api(scan.url);
      if (mine < shown) return;
      shown = mine;
      scan = next;
      document.getElementById("signed-out")?.remove();  // signed in again meanwhile, in another tab
      onChange(scan);
    } catch (error) {
      if (error.status === 404) showGone();
      else if (error.signedOut) showSignedOut(error);
      else console.error(error);
    }
  };
  live(wsPath, {
    onMessage: (event) => {
      // A later review can leave the state as it was (changed, then changed again by a colleague) and
      // still change the diagnosis: every review is news.
      if (event.event === "scan.reviewed" || event.status !== scan.status || event.review_state !== scan.review_state) refresh();
    },
    onState: (state, code) => {
      describeState(document.getElementById("live-state"))(state);
      if (state === "live") refresh();
      // The server closes the socket of a scan removed meanwhile (or no longer this member's) with 4404 or
      // 4403: that is the answer, with no need to ask the API for a page it would refuse. 4401 is a
      // sign-in that ended: the API's answer to a refresh says so, with a link to sign in again.
      if (state === "closed" && code === 4401) refresh();
      else if (state === "closed" && code) showGone();
    },
  });
  onChange(scan);
  return { refresh, current: () => scan };
}

// The sign-in ended while the page was open (signed out in another tab, left idle): the socket may still
// bring news, but the page can no longer fetch it, so it must stop promising that it updates by itself.
function showSignedOut(error) {
  let notice = document.getElementById("signed-out");
  if (!notice) {
    notice = document.createElement("p");
    notice.id = "signed-out";
    notice.className = "notice warn";
    notice.setAttribute("role", "alert");
    document.querySelector(".viewer-layout")?.before(notice);
  }
  showError(notice, error);  // "Your sign-in has ended. Sign in again to see the latest." and the link
  document.getElementById("live-state").textContent = "Live updates off";
}

// The scan was removed (or the member lost access) while the page was open: say so, in place of a result.
function showGone() {
  const status = document.getElementById("status");
  status.innerHTML = '<span class="badge failed">No longer available</span>';
  const viewerLayout = document.querySelector(".viewer-layout");
  if (viewerLayout && !document.getElementById("scan-gone")) {
    viewerLayout.insertAdjacentHTML("beforebegin", '<p class="notice warn" id="scan-gone" role="alert">'
      + "This scan has been removed, or you can no longer see it.</p>");
    viewerLayout.hidden = true;
  }
  const removal = document.getElementById("remove-scan");
  if (removal) removal.hidden = true;
  // The live region would still speak of a reading that is gone; the alert above says what happened.
  const news = document.getElementById("result-news");
  if (news) news.textContent = "";
}

// A source opens on its own site, in a new tab so the result stays open; only web addresses are linked.
function source(s) {
  if (!/^https:\/\//.test(s.url || "")) return `<li>${escapeHtml(s.title)}</li>`;
  return `<li><a href="${escapeHtml(s.url)}" rel="external noopener noreferrer" target="_blank">${escapeHtml(s.title)}`
    + `<span class="visually-hidden"> (opens another site in a new tab)</span></a></li>`;
}

// On paper a fold cannot be opened nor a link followed: the sources are listed with their addresses.
function printedSource(s) {
  return `<li>${escapeHtml(s.title)}${s.url ? `: ${escapeHtml(s.url)}` : ""}</li>`;
}

export function renderAdvice(advice) {
  if (!advice) return "";
  const list = (items) => `<ul>${items.map((item) => `<li>${escapeHtml(item)}</li>`).join("")}</ul>`;
  return `
    <section class="card" aria-labelledby="advice-title">
      <h2 id="advice-title">${escapeHtml(advice.title)}</h2>
      ${advice.preliminary ? `<p class="notice warn">${escapeHtml(advice.preliminary_notice)}</p>` : ""}
      <p>${escapeHtml(advice.meaning)}</p>
      <h3>What happens next</h3>${list(advice.next_steps)}
      <h3>Get help at once if you have</h3>${list(advice.emergency_symptoms)}
      <p><strong>${escapeHtml(advice.emergency_action)}</strong></p>
      <p class="disclaimer">${escapeHtml(advice.reminder)}</p>
      <details><summary>Sources</summary><ul>${advice.sources.map(source).join("")}</ul></details>
      <div class="print-only"><h3>Sources</h3><ul>${advice.sources.map(printedSource).join("")}</ul></div>
    </section>`;
}
