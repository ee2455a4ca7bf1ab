// The doctor's case viewer: overlays, zoom and pan, outline correction, and the review.
import { api, showError } from "./api.js";
import { formatPercent } from "./numbers.js";
import { followScan, labelName, renderStatus } from "./scanpage.js";
import { formatTime } from "./time.js";
import { ScanViewer, SliceNavigator, escapeHtml } from "./viewer.js";

const initial = JSON.parse(document.getElementById("scan-data").textContent);
const mayReview = document.getElementById("page-script").dataset.mayReview === "1";
const form = document.getElementById("review-form");
const maskState = document.getElementById("mask-state");
const outlineBox = document.getElementById("show-outline");
const heatmapBox = document.getElementById("show-heatmap");
const opacity = document.getElementById("heatmap-opacity");

const viewer = new ScanViewer(document.getElementById("viewer"), {
  width: initial.width,
  height: initial.height,
  editable: mayReview,
  onEdit: () => {
    if (!maskState) return;
    maskState.textContent = viewer.edited ? `Outline corrected (${viewer.tumourPixels()} pixels); it is sent with your diagnosis.` : "Outline unchanged.";
    updateSubmitLabel();
  },
});

const sliceNav = document.getElementById("slice-nav");
const slices = sliceNav && new SliceNavigator(sliceNav, viewer, {
  count: initial.slice_count,
  imageUrl: initial.image_url,
  start: initial.result?.slice_index ?? Math.floor(initial.slice_count / 2),
});

function chooseTool(tool) {
  viewer.setTool(tool);
  viewer.placeCursor();
  for (const button of toolButtons) button.setAttribute("aria-pressed", String(button.dataset.tool === tool));
}
// Buttons only: the viewer itself carries data-tool too (its cursor follows the tool), and a div is no toggle.
const toolButtons = document.querySelectorAll("button[data-tool]");
chooseTool(mayReview ? "brush" : "pan");
for (const button of toolButtons) button.addEventListener("click", () => chooseTool(button.dataset.tool));
for (const button of document.querySelectorAll("[data-zoom]")) {
  button.addEventListener("click", () => {
    const how = button.dataset.zoom;
    if (how === "reset") viewer.resetView();
    else viewer.zoomBy(how === "in" ? 1.25 : 0.8);
  });
}
outlineBox.addEventListener("change", () => viewer.showOutline(outlineBox.checked));
heatmapBox.addEventListener("change", () => viewer.showHeatmap(heatmapBox.checked));
opacity.addEventListener("input", () => viewer.setHeatmapOpacity(opacity.value / 100));
viewer.setHeatmapOpacity(opacity.value / 100);
const brushSize = document.getElementById("brush-size");
brushSize?.addEventListener("input", () => viewer.setBrushRadius(Number(brushSize.value)));
brushSize && viewer.setBrushRadius(Number(brushSize.value));
document.getElementById("undo")?.addEventListener("click", () => viewer.undo());
const brightness = document.getElementById("scan-brightness");
const contrast = document.getElementById("scan-contrast");
const applyWindow = () => viewer.setImageWindow(brightness.value / 100, contrast.value / 100);
brightness.addEventListener("input", applyWindow);
contrast.addEventListener("input", applyWindow);
document.getElementById("window-reset").addEventListener("click", () => {
  brightness.value = contrast.value = 100;
  applyWindow();
});

let scan = initial;
let loadedMask = null;

function currentLabel() {
  return scan.reviewed_label || scan.result?.label || null;
}

function updateSubmitLabel() {
  if (!form) return;
  const chosen = form.elements.label.value;
  const changed = (chosen && chosen !== currentLabel()) || viewer.edited;
  document.getElementById("review-submit").textContent = changed ? "Save changed diagnosis" : "Confirm diagnosis";
  document.getElementById("notumor-note").hidden = chosen !== "notumor";
}
form?.addEventListener("change", updateSubmitLabel);
// The standing diagnosis is preselected; until the doctor picks one, the choice follows it, so a review
// another doctor saves meanwhile never leaves this page offering to undo it with a choice nobody made.
let labelChosen = false;
form?.addEventListener("change", (event) => { if (event.target.name === "label") labelChosen = true; });

// The newest review this page has shown goes with the doctor's review: one a colleague saved that the
// page has not shown yet makes the server refuse it (409 review_conflict) rather than replace it unseen.
const newestReview = (s) => (s.reviews || []).at(-1) || null;
let newestReviewShown = newestReview(initial)?.id ?? "";
// The review whose outline this page loaded ("" for the software's): a correction is sent as based on it,
// and the server refuses it (409 outline_conflict) once a colleague's outline has replaced that one.
const standingOutline = (s) => (s.reviews || []).filter((r) => r.mask_changed).at(-1)?.id ?? "";
// null: an outline stands that this page cannot show (an imported case has no result to draw it from), so
// strokes drawn here would be drawn over nothing the doctor has seen.
const outlineOnScreen = (s) => (s.result?.mask_url || !standingOutline(s) ? standingOutline(s) : null);
let outlineBasis = outlineOnScreen(initial);
const OUTLINE_NOT_SHOWN = "This case's outline cannot be shown on this page, so it cannot be corrected here.";
const LOAD_THEIR_OUTLINE = '<p><button type="button" class="secondary" data-load-outline>Load their outline '
  + "(discards your strokes)</button></p>";
// While this doctor's review is on its way, the socket may bring it back before the save's answer does:
// only that answer tells the page which review is their own, so until it comes nothing is announced.
let saving = false;

// A colleague's review arriving while this doctor is deciding is said in words, not only listed.
function noteColleaguesReview(next) {
  const newest = newestReview(next);
  if (!form || saving || !newest || newest.id === newestReviewShown) return;
  newestReviewShown = newest.id;
  const message = document.getElementById("review-message");
  const notesTyped = Boolean(form.elements.notes.value.trim());
  const deciding = labelChosen || viewer.unsaved || notesTyped;
  // Notes are written against the diagnosis on screen: it stays selected rather than follow the
  // colleague's, so saving them cannot quietly confirm a diagnosis they were not written about.
  if (notesTyped && form.elements.label.value) labelChosen = true;
  // "Saved: …" of this doctor's own review, or an earlier later-review sentence, would go on reading as
  // the case's standing review.
  const standing = message.querySelector(".notice.ok, [data-later-review]");
  if (!deciding && !standing) return;  // nothing of this doctor's own is at stake
  const who = escapeHtml(newest.reviewer_name || "A colleague");
  const label = escapeHtml(labelName(newest.label));
  // Strokes under way were drawn over the outline theirs replaced: saving them would undo theirs unseen.
  const outlineReplaced = viewer.unsaved && newest.mask_changed;
  message.innerHTML = outlineReplaced
    ? `<p class="notice" role="status">${who} saved a review meanwhile: ${label}, with a corrected outline. Your `
      + "strokes are on the outline theirs replaced: load theirs, then correct it if you need to.</p>"
      + LOAD_THEIR_OUTLINE
    : deciding
    ? `<p class="notice" role="status">${who} saved a review meanwhile: ${label}. Read it under Reviews before you `
      + "save yours.</p>"
    : `<p class="notice" role="status" data-later-review>${who} saved a later review: ${label}. It is listed under `
      + "Reviews.</p>";
}

// The standing outline replaces this doctor's strokes, at their word.
document.getElementById("review-message")?.addEventListener("click", async (event) => {
  if (!event.target.closest("[data-load-outline]")) return;
  const message = document.getElementById("review-message");
  if (!scan.result?.mask_url) {
    message.innerHTML = `<p class="notice error" role="alert">${OUTLINE_NOT_SHOWN}</p>`;
    return;
  }
  viewer.edited = false;
  loadedMask = null;
  await render(scan);
  viewer.onEdit();
  message.innerHTML = '<p class="notice" role="status">Their outline is loaded; correct it if you need to.</p>';
  viewer.canvas.focus();
});

function renderResult() {
  const body = document.getElementById("ai-body");
  const result = scan.result;
  if (!result) {
    body.innerHTML = scan.status === "failed"
      ? `<p class="notice error">${escapeHtml(scan.failure?.reason || "The analysis failed.")}</p>`
      : `<p>The analysis has not finished yet; this page updates by itself.</p><progress aria-label="Analysis in progress"></progress>`;
    return;
  }
  const rows = Object.entries(result.probabilities)
    .sort((a, b) => b[1] - a[1])
    .map(([label, p]) => `<li><span>${escapeHtml(labelName(label))}</span><span class="bar"><span data-share="${p}"></span></span><span>${formatPercent(p)}</span></li>`)
    .join("");
  const area = result.tumour_area_mm2 != null ? `${result.tumour_area_mm2.toFixed(0)} mm²`
    : result.tumour_area_px != null ? `${Math.round(result.tumour_area_px)} pixels` : "none found";
  // The software names a class for any picture: say so when this one is unlike the MRIs it learnt from.
  const unusual = scan.unusual_image
    ? `<p class="notice warn" id="unusual-image">This image does not look like the brain MRIs the software learnt from,
        so its reading may mean nothing. The patient sees no result until a doctor has reviewed it.</p>` : "";
  body.innerHTML = `${unusual}
    <p><strong id="ai-label">${escapeHtml(labelName(result.label))}</strong>, confidence ${formatPercent(result.confidence)}</p>
    <ul class="probs" aria-label="Probability of each class">${rows}</ul>
    <p class="help">Tumour area: ${escapeHtml(area)}.
      Classifier ${escapeHtml(result.model_version?.version || "unknown")},
      segmenter ${escapeHtml(result.segmenter_version?.version || "unknown")}.</p>`;
  // Widths through the style property: the Content-Security-Policy refuses style attributes in markup.
  for (const bar of body.querySelectorAll("[data-share]")) bar.style.width = `${(bar.dataset.share * 100).toFixed(1)}%`;
}

function reviewItem(r) {
  const change = r.label_changed ? ` (was ${escapeHtml(labelName(r.previous_label))})` : " (confirmed)";
  const notes = r.notes ? `<br><span class="muted">${escapeHtml(r.notes)}</span>` : "";
  const who = r.reviewer_name ? ` by ${escapeHtml(r.reviewer_name)}` : " by a former member";
  return `<li>${escapeHtml(formatTime(r.at))}${who}: ${escapeHtml(labelName(r.label))}${change}`
    + `${r.mask_changed ? ", outline corrected" : ""}${notes}</li>`;
}

function renderReviews() {
  const reviews = scan.reviews || [];
  document.getElementById("reviews").innerHTML = reviews.length
    ? `<ul>${reviews.map(reviewItem).join("")}</ul>`
    : `<p class="muted">Not reviewed yet.</p>`;
}

async function render(next) {
  noteColleaguesReview(next);
  scan = next;
  renderStatus(scan);
  renderResult();
  renderReviews();
  const result = scan.result;
  if (result?.heatmap_url && !viewer.heatmap.getAttribute("src")) viewer.heatmap.src = result.heatmap_url;
  slices?.setResult(result?.slice_index, result?.per_slice || []);
  viewer.showHeatmap(Boolean(result?.heatmap_url) && heatmapBox.checked);
  // The form follows the scan before the outline reloads: a colleague's review announced above must not
  // sit beside a button still worded for the diagnosis it replaced while the mask is fetched.
  if (form) {
    const ready = scan.status === "done";
    document.getElementById("review-submit").disabled = !ready;
    if (!labelChosen && currentLabel()) {
      for (const radio of form.elements.label) radio.checked = radio.value === currentLabel();
    }
    updateSubmitLabel();
  }
  // Reload the outline when a review changed it, but never under a doctor's unsaved correction (nor one
  // being drawn).
  const key = result?.mask_url ? `${scan.review_state}|${(scan.reviews || []).length}` : null;
  if (key && key !== loadedMask && !viewer.unsaved) {
    loadedMask = key;
    const basis = standingOutline(scan);
    let loaded = true;
    try {
      await viewer.loadMask(`${result.mask_url}?v=${encodeURIComponent(key)}`);
    } catch (error) {
      // Not loaded (the connection, the server): the viewer shows no outline, so strokes would be drawn
      // over none the doctor has seen; they are refused until a later render loads it (it tries again).
      console.error(error);
      loaded = false;
    }
    // Of two reloads under way the viewer keeps the newer outline, whichever answers last: so its basis.
    if (loadedMask === key) {
      outlineBasis = loaded ? basis : null;
      if (!loaded) loadedMask = null;
    }
  } else if (!key && !viewer.unsaved) {
    outlineBasis = outlineOnScreen(scan);
  }
  viewer.showOutline(outlineBox.checked);
}

const following = followScan(initial, render);

// What this review did, in the words of the reviews list: the scan's review state says "changed" for
// every later review once any outline was corrected, even one that confirms the same diagnosis.
function savedWords(saved) {
  const review = (saved.reviews || []).at(-1);
  if (!review) return `Saved: ${labelName(saved.reviewed_label)}.`;
  const what = review.label_changed
    ? `${labelName(review.label)} (was ${labelName(review.previous_label)})`
    : `${labelName(review.label)} confirmed`;
  return `Saved: ${what}${review.mask_changed ? ", outline corrected" : ""}.`;
}

form?.addEventListener("submit", async (event) => {
  event.preventDefault();
  const message = document.getElementById("review-message");
  const label = form.elements.label.value;
  if (!label) {
    message.innerHTML = `<p class="notice error">Choose a diagnosis first.</p>`;
    return;
  }
  if (viewer.edited && outlineBasis === null) {
    message.innerHTML = `<p class="notice error" role="alert">${OUTLINE_NOT_SHOWN} Undo your strokes to save the `
      + "diagnosis.</p>";
    return;
  }
  const body = new FormData();
  body.append("label", label);
  body.append("notes", form.elements.notes.value);
  body.append("last_review_seen", newestReviewShown);
  if (viewer.edited) {
    body.append("mask", await viewer.toPNG(), "mask.png");
    body.append("outline_based_on", outlineBasis);
  }
  const button = document.getElementById("review-submit");
  // Disabled while saving, the button drops the focus: it is given back.
  const fromButton = document.activeElement === button;
  button.disabled = true;
  saving = true;
  try {
    const saved = await api(`${scan.url}review/`, { method: "POST", form: body });
    saving = false;
    newestReviewShown = newestReview(saved)?.id ?? "";
    message.innerHTML = `<p class="notice ok">${escapeHtml(savedWords(saved))}</p>`;
    // The correction is saved: the outline on screen is now the stored one.
    viewer.edited = false;
    viewer.onEdit();
    labelChosen = false;
    form.elements.notes.value = "";
    await render(saved);
  } catch (error) {
    // A review the page listed while this one was on its way is not taken as seen: a later save names the
    // older one, is refused if that is stale, and the refusal shows the newer review.
    saving = false;
    // The colleague's review is fetched first, so the doctor reads it; saving again then sends theirs as seen.
    if (error.code === "review_conflict" || error.code === "outline_conflict") await following.refresh();
    message.innerHTML = `<p class="notice error" role="alert"></p>`;
    showError(message.firstElementChild, error);
    // Whichever refusal came first, strokes on an outline a colleague has replaced can only be saved over theirs.
    if (viewer.edited && outlineBasis !== standingOutline(scan)) message.insertAdjacentHTML("beforeend", LOAD_THEIR_OUTLINE);
  } finally {
    button.disabled = scan.status !== "done";
    if (fromButton && document.activeElement === document.body) (button.disabled ? message : button).focus();
  }
});

// An outline correction or notes not yet saved would be lost silently by leaving: the browser asks first.
window.addEventListener("beforeunload", (event) => {
  if (document.getElementById("scan-gone")) return;  // removed meanwhile: nothing left to save
  if (viewer.unsaved || form?.elements.notes.value.trim()) {
    event.preventDefault();
    event.returnValue = "";
  }
});

// Single keys act only where they are meant (WCAG 2.1.4): on the scan, its slices and its tools; the
// diagnosis keys also on the diagnosis choices. A stray key elsewhere, or in a text field, changes nothing.
const viewerArea = document.getElementById("viewer-area");
const diagnosisChoices = document.getElementById("diagnosis-choices");
// A click on the scan gives it focus, so the shortcuts work after a click as after Tab.
viewer.root.tabIndex = -1;

function viewerActions() {
  const actions = {
    o: () => { outlineBox.checked = !outlineBox.checked; viewer.showOutline(outlineBox.checked); },
    h: () => { heatmapBox.checked = !heatmapBox.checked; viewer.showHeatmap(heatmapBox.checked); },
    "+": () => viewer.zoomBy(1.25), "=": () => viewer.zoomBy(1.25), "-": () => viewer.zoomBy(0.8),
    f: () => viewer.resetView(),
    m: () => chooseTool("pan"),
    arrowleft: () => viewer.panBy(40, 0), arrowright: () => viewer.panBy(-40, 0),
    arrowup: () => viewer.panBy(0, 40), arrowdown: () => viewer.panBy(0, -40),
  };
  if (!mayReview) return actions;
  return Object.assign(actions, {
    b: () => chooseTool("brush"),
    e: () => chooseTool("eraser"),
    z: () => viewer.undo(),
    "[": () => { brushSize.value = Math.max(1, Number(brushSize.value) - 1); viewer.setBrushRadius(Number(brushSize.value)); },
    "]": () => { brushSize.value = Math.min(30, Number(brushSize.value) + 1); viewer.setBrushRadius(Number(brushSize.value)); },
  }, diagnosisActions());
}

function diagnosisActions() {
  const actions = {};
  if (!form) return actions;
  [...form.elements.label].forEach((radio, i) => { actions[String(i + 1)] = () => { radio.checked = true; labelChosen = true; updateSubmitLabel(); }; });
  return actions;
}

function shortcutFor(key, target) {
  if (viewerArea.contains(target)) return viewerActions()[key];
  if (diagnosisChoices?.contains(target)) return diagnosisActions()[key];
  return undefined;
}

document.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && (event.ctrlKey || event.metaKey) && form) {
    event.preventDefault();
    form.requestSubmit();
    return;
  }
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  if (event.target.closest("textarea, select, input[type=text], input[type=email], input[type=search]")) return;
  const key = event.key.toLowerCase();
  const action = shortcutFor(key, event.target);
  // Arrow keys keep their usual meaning (scrolling, sliders) unless the scan is zoomed.
  if (!action || (key.startsWith("arrow") && (viewer.view.scale === 1 || event.target.closest("input")))) return;
  event.preventDefault();
  action();
});
