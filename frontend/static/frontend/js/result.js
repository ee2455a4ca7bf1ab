// The patient's result page: live status, then the scan with outline and heatmap toggles and advice.
import { followScan, labelName, renderAdvice, renderStatus } from "./scanpage.js";
import { formatTime } from "./time.js";
import { ScanViewer, SliceNavigator, escapeHtml } from "./viewer.js";

const initial = JSON.parse(document.getElementById("scan-data").textContent);
const viewer = new ScanViewer(document.getElementById("viewer"), { width: initial.width, height: initial.height,
                                                                   zoomable: false });
const tools = document.getElementById("overlay-tools");
const outlineBox = document.getElementById("show-outline");
const heatmapBox = document.getElementById("show-heatmap");
outlineBox.addEventListener("change", () => viewer.showOutline(outlineBox.checked));
heatmapBox.addEventListener("change", () => viewer.showHeatmap(heatmapBox.checked));
viewer.setHeatmapOpacity(0.6);
const heatmapNote = document.getElementById("heatmap-note");
heatmapBox.addEventListener("change", () => { heatmapNote.hidden = !heatmapBox.checked; });
const outlineNote = document.getElementById("outline-note");
outlineBox.addEventListener("change", () => { outlineNote.hidden = !outlineBox.checked || !outlineNote.textContent; });
// A patient browses every slice of their own scan; the overlays come only with a result they may see.
const sliceNav = document.getElementById("slice-nav");
const slices = sliceNav && new SliceNavigator(sliceNav, viewer, {
  count: initial.slice_count,
  imageUrl: initial.image_url,
  start: initial.result?.slice_index ?? Math.floor(initial.slice_count / 2),
});

let shownMask = null;

async function showOverlays(scan) {
  const result = scan.result;
  const maskUrl = result?.mask_url || null;
  // The server offers no heatmap once a doctor has changed the software's reading (access.may_see_heatmap).
  const heatmapUrl = result?.heatmap_url || null;
  tools.hidden = !maskUrl && !heatmapUrl;
  outlineBox.parentElement.hidden = !maskUrl;
  heatmapBox.parentElement.hidden = !heatmapUrl;
  heatmapNote.hidden = !heatmapUrl || !heatmapBox.checked;
  outlineNote.textContent = maskUrl ? outlineWords(scan) : "";
  outlineNote.hidden = !maskUrl || !outlineBox.checked;
  slices?.setResult(result?.slice_index, [], [maskUrl && "outline", heatmapUrl && "heatmap"].filter(Boolean));
  if (heatmapUrl && viewer.heatmap.getAttribute("src") !== heatmapUrl) viewer.heatmap.src = heatmapUrl;
  viewer.showHeatmap(Boolean(heatmapUrl) && heatmapBox.checked);
  // A doctor's correction is served at the same URL: reload the mask whenever a review is saved (a second
  // correction leaves the review state and the label as they were, but not the review's time).
  const version = `${scan.review_state}|${scan.reviewed_at || ""}|${scan.label}`;
  const key = maskUrl ? `${maskUrl}|${version}` : null;
  if (maskUrl && key !== shownMask) {
    shownMask = key;
    await viewer.loadMask(`${maskUrl}?v=${encodeURIComponent(version)}`);
  }
  viewer.showOutline(Boolean(maskUrl) && outlineBox.checked);
}

// Who drew the yellow line: a patient should not take the software's outline for a doctor's.
function outlineWords(scan) {
  if (scan.review_state === "unreviewed") {
    return "The yellow line is where the software outlined what it found. It is not a measurement a doctor has checked yet.";
  }
  return scan.review_state === "corrected" ? "The yellow line is the outline as a doctor has checked or corrected it."
    : "The yellow line is the software's outline, which a doctor has reviewed.";
}

// A changed outline alone is "corrected" too; only a different label means the doctor disagreed.
function doctorChangedLabel(scan) {
  return scan.review_state !== "unreviewed" && Boolean(scan.result) && scan.result.label !== scan.label;
}

function reviewSentence(scan) {
  if (scan.review_state === "unreviewed") return "Preliminary result from the software; a doctor will review it.";
  return doctorChangedLabel(scan) ? "A doctor has reviewed your scan and changed the software's result to this one."
    : "A doctor has reviewed and confirmed this result.";
}

// What a screen reader hears when the state changes: one short sentence, not the page it changed.
function news(scan) {
  if (scan.status === "queued" || scan.status === "processing") return "We are analysing your scan.";
  if (scan.status === "failed") return "Your scan could not be analysed; the reason is shown below.";
  if (scan.label && scan.review_state !== "unreviewed") return "A doctor has reviewed your scan. Your result is ready.";
  if (scan.label) return "The software's preliminary reading is ready. A doctor will review it.";
  if (scan.awaiting_review && scan.unusual_image) return "Your image looks unusual for a brain MRI. A doctor will look at it first.";
  if (scan.awaiting_review) return "Your scan has been analysed. A doctor will review it before the result is shown.";
  return "";
}

function announce(scan) {
  const element = document.getElementById("result-news");
  const sentence = news(scan);
  // Rewriting the same words would make some screen readers say them again.
  if (element.textContent !== sentence) element.textContent = sentence;
}

function render(scan) {
  renderStatus(scan);
  announce(scan);
  document.getElementById("printed-review").textContent = scan.reviewed_at
    ? `reviewed by a doctor on ${formatTime(scan.reviewed_at)}` : "not yet reviewed by a doctor";
  // A patient may remove their upload only until a doctor has reviewed it (the server decides too).
  const removal = document.getElementById("remove-scan");
  if (removal) removal.hidden = scan.review_state !== "unreviewed";
  const section = document.getElementById("result");
  let html = "";
  if (scan.status === "queued" || scan.status === "processing") {
    html = `<div class="card"><p>We are analysing your scan. This page updates by itself; you can also leave and come back.</p>
      <progress aria-label="Analysis in progress"></progress></div>`;
  } else if (scan.status === "failed") {
    // The reason says what to do where there is something to do (upload later, another file); this
    // closing line holds for every reason, "upload again later" included.
    html = `<div class="notice error">${escapeHtml(scan.failure?.reason || "The scan could not be analysed.")} If this keeps happening, contact your hospital.</div>`;
  } else if (scan.label) {
    // An unreviewed reading is never a bare diagnosis in large type: the heading says whose reading it is.
    const qualifier = scan.preliminary ? `<span class="qualifier">The software's preliminary reading: </span>` : "";
    html = `<div class="card"><h2>${qualifier}<span id="result-label">${escapeHtml(labelName(scan.label))}</span></h2>
      <p>${reviewSentence(scan)}</p>
      <button type="button" class="secondary" id="print-result">Print this result</button></div>`;
  } else if (scan.awaiting_review && scan.unusual_image) {
    // The software reads any picture; one unlike the MRIs it learnt from is read by a doctor first.
    html = `<div class="card"><p>This image does not look like the brain MRIs the software was trained on, so a doctor
      will look at it before any result is shown here; this page updates by itself.</p>
      ${document.getElementById("remove-scan") ? "<p>If you uploaded the wrong file, you can remove it and upload "
        + "the MRI image or file the hospital gave you.</p>" : ""}</div>`;
  } else if (scan.awaiting_review) {
    html = `<div class="card"><p>Your scan has been analysed. A doctor will review it before the result is shown here; this page updates by itself.</p></div>`;
  }
  section.innerHTML = html + renderAdvice(scan.advice);
  document.getElementById("print-result")?.addEventListener("click", () => window.print());
  showOverlays(scan);
}

followScan(initial, render);
