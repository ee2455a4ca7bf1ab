// The scan with its overlays: the tumour outline (a canvas, editable by doctors) and the heatmap.
// The mask is held at the scan's own resolution, so a corrected mask goes back pixel for pixel.
// A volume (DICOM series, NIfTI) is browsed slice by slice; the API serves the outline and heatmap of
// the analysed slice only, so they are shown on that slice and nowhere else.

const OUTLINE = [255, 214, 0];

export class ScanViewer {
  // zoomable: false (no zoom controls, the patient's): the wheel and a swipe move the page.
  constructor(root, { width, height, editable = false, zoomable = true, onEdit = () => {} }) {
    // Pixel counts help a doctor who edits the outline; a patient's screen reader says what it shows.
    this.plainWords = !editable;
    this.root = root;
    this.width = width;
    this.height = height;
    this.editable = editable;
    this.onEdit = onEdit;
    root.style.aspectRatio = `${width} / ${height}`;
    this.stage = root.querySelector(".stage");
    this.scanImage = root.querySelector("img.scan");
    this.heatmap = root.querySelector("img.heatmap");
    this.canvas = root.querySelector("canvas.outline");
    this.brushCursor = root.querySelector(".brush-cursor");
    this.live = root.querySelector(".outline-live");
    // null: a single image, whose overlays always apply; else the only slice they belong to.
    this.overlaySlice = null;
    this.slice = null;
    this.wanted = { outline: !this.canvas.hidden, heatmap: false };
    this.canvas.width = width;
    this.canvas.height = height;
    this.context = this.canvas.getContext("2d");
    this.mask = new Uint8Array(width * height);
    this.loaded = this.mask.slice();
    // Loads of the mask asked for, and the one whose mask is shown (loadMask).
    this.maskRequests = 0;
    this.maskLanded = 0;
    this.focusBack = false;
    this.pointerStroke = false;
    this.history = [];
    this.edited = false;
    this.tool = editable ? "brush" : "pan";
    this.brushRadius = Math.max(2, Math.round(Math.min(width, height) / 64));
    this.view = { scale: 1, x: 0, y: 0 };
    this.cursor = [width / 2, height / 2];
    this.keyStroke = null;
    if (editable) this.bindKeyboard();
    if (!zoomable) {
      root.classList.add("still");
      return;
    }
    this.bindPointer();
    root.addEventListener("wheel", (event) => {
      event.preventDefault();
      this.zoomBy(event.deltaY < 0 ? 1.25 : 0.8, event.clientX, event.clientY);
    }, { passive: false });
  }

  // The outline stays hidden, so it cannot be drawn on, until the newest load has landed: strokes drawn on
  // it meanwhile were wiped when the mask arrived, while the page said they would be sent. Of two loads
  // under way, only the newer one's mask is kept, whichever answers last.
  async loadMask(url) {
    const request = ++this.maskRequests;
    // Hiding the editor moves the keyboard's focus to the viewer; it comes back when the outline does.
    this.focusBack ||= document.activeElement === this.canvas;
    this.applyOverlays();
    const mask = new Uint8Array(this.width * this.height);  // none, if the load fails
    try {
      if (url) {
        const image = new Image();
        image.src = url;
        await image.decode();
        const scratch = document.createElement("canvas");
        scratch.width = this.width;
        scratch.height = this.height;
        const context = scratch.getContext("2d");
        context.drawImage(image, 0, 0, this.width, this.height);
        const pixels = context.getImageData(0, 0, this.width, this.height).data;
        for (let i = 0; i < mask.length; i++) mask[i] = pixels[i * 4] > 127 ? 1 : 0;
      }
    } finally {
      if (request === this.maskRequests) this.landMask(mask);
    }
  }

  landMask(mask) {
    this.mask.set(mask);
    this.history = [];
    // What was loaded: once undo has dropped its oldest steps (it keeps 30), an empty history no longer
    // means the outline is back as loaded, so undo compares with this.
    this.loaded = this.mask.slice();
    this.edited = false;
    this.draw();
    this.maskLanded = this.maskRequests;
    this.applyOverlays();
    if (this.focusBack && !this.canvas.hidden && document.activeElement === this.root) this.canvas.focus();
    this.focusBack = false;
  }

  // Strokes not saved, or one still being drawn (a pointer held down, Space held): the outline on screen is
  // the doctor's, and a reload of the stored one would wipe it.
  get unsaved() { return this.edited || Boolean(this.keyStroke) || this.pointerStroke; }

  // A light fill inside, a solid line on the border: the outline reads on any grey level.
  draw() {
    const { width, height, mask } = this;
    const image = this.context.createImageData(width, height);
    const out = image.data;
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const i = y * width + x;
        if (!mask[i]) continue;
        const edge = x === 0 || y === 0 || x === width - 1 || y === height - 1
          || !mask[i - 1] || !mask[i + 1] || !mask[i - width] || !mask[i + width];
        out.set([...OUTLINE, edge ? 255 : 60], i * 4);
      }
    }
    this.context.putImageData(image, 0, 0);
    this.canvas.setAttribute("aria-label", this.describe());
  }

  // What the outline is, in words: the canvas's name for a screen reader, and what an edit announces.
  describe() {
    const pixels = this.tumourPixels();
    if (this.plainWords) return pixels ? "Outline of the area the result is about, drawn on the scan" : "No outline";
    return pixels ? `Outline covers ${pixels} pixel${pixels === 1 ? "" : "s"}` : "No outline";
  }

  announce() { if (this.live) this.live.textContent = this.describe(); }

  showOutline(on) { this.wanted.outline = on; this.applyOverlays(); }
  showHeatmap(on) { this.wanted.heatmap = on; this.applyOverlays(); }
  overlaysApply() { return this.overlaySlice === null || this.slice === this.overlaySlice; }

  applyOverlays() {
    const here = this.overlaysApply();
    const hiding = !(this.wanted.outline && here) || this.maskLanded !== this.maskRequests;
    // Focus on a canvas that disappears would fall to the page, where the viewer's keys do nothing: it moves
    // to the viewer itself (where a page made the viewer focusable; elsewhere focus() does nothing).
    if (hiding && document.activeElement === this.canvas) this.root.focus();
    this.canvas.hidden = hiding;
    if (this.heatmap) this.heatmap.hidden = !(this.wanted.heatmap && here);
    this.placeCursor();
  }

  // Shows slice `index` (its image at `url`); the overlays follow only onto the slice they belong to.
  setSlice(index, url, alt) {
    this.slice = index;
    if (url) this.scanImage.src = url;
    if (alt) this.scanImage.alt = alt;
    // A Space stroke cut short by a slice key has painted already: it counts as an edit, so the review
    // sends the mask and leaving the page warns.
    this.finishKeyStroke();
    this.applyOverlays();
  }

  setOverlaySlice(index) { this.overlaySlice = index; this.applyOverlays(); }
  setHeatmapOpacity(value) { if (this.heatmap) this.heatmap.style.opacity = String(value); }

  // Brightness and contrast of the scan only (1 is as stored): a faint lesion reads better with more
  // contrast, and the overlays keep their own colours. Every slice of a volume is shown the same way.
  setImageWindow(brightness, contrast) {
    this.scanImage.style.filter = brightness === 1 && contrast === 1 ? "" : `brightness(${brightness}) contrast(${contrast})`;
  }
  setTool(tool) { this.tool = tool; this.root.dataset.tool = tool; }
  setBrushRadius(radius) { this.brushRadius = radius; this.placeCursor(); }
  tumourPixels() { return this.mask.reduce((sum, value) => sum + value, 0); }

  zoomBy(factor, clientX, clientY) {
    const rect = this.root.getBoundingClientRect();
    const cx = (clientX ?? rect.left + rect.width / 2) - rect.left;
    const cy = (clientY ?? rect.top + rect.height / 2) - rect.top;
    const scale = Math.min(8, Math.max(1, this.view.scale * factor));
    const applied = scale / this.view.scale;
    // Keep the point under the cursor where it is.
    this.view.x = cx - (cx - this.view.x) * applied;
    this.view.y = cy - (cy - this.view.y) * applied;
    this.view.scale = scale;
    this.applyView();
  }

  panBy(dx, dy) {
    this.view.x += dx;
    this.view.y += dy;
    this.applyView();
  }

  resetView() {
    this.view = { scale: 1, x: 0, y: 0 };
    this.applyView();
  }

  applyView() {
    const rect = this.root.getBoundingClientRect();
    const { scale } = this.view;
    // Never pan the scan out of sight.
    this.view.x = Math.min(0, Math.max(rect.width * (1 - scale), this.view.x));
    this.view.y = Math.min(0, Math.max(rect.height * (1 - scale), this.view.y));
    this.stage.style.transform = `translate(${this.view.x}px, ${this.view.y}px) scale(${scale})`;
  }

  imagePoint(event) {
    const rect = this.canvas.getBoundingClientRect();
    return [(event.clientX - rect.left) / rect.width * this.width, (event.clientY - rect.top) / rect.height * this.height];
  }

  paint(x, y, value) {
    const r = this.brushRadius;
    for (let yy = Math.max(0, Math.floor(y - r)); yy <= Math.min(this.height - 1, Math.ceil(y + r)); yy++) {
      for (let xx = Math.max(0, Math.floor(x - r)); xx <= Math.min(this.width - 1, Math.ceil(x + r)); xx++) {
        if ((xx - x) ** 2 + (yy - y) ** 2 <= r * r) this.mask[yy * this.width + xx] = value;
      }
    }
  }

  // A fast drag moves the pointer many pixels between events: fill the gap so the stroke is unbroken.
  stroke(from, to, value) {
    const steps = Math.max(1, Math.ceil(Math.hypot(to[0] - from[0], to[1] - from[1]) / Math.max(1, this.brushRadius / 2)));
    for (let s = 1; s <= steps; s++) {
      this.paint(from[0] + (to[0] - from[0]) * s / steps, from[1] + (to[1] - from[1]) * s / steps, value);
    }
  }

  remember() {
    this.history.push(this.mask.slice());
    if (this.history.length > 30) this.history.shift();
  }

  undo() {
    const previous = this.history.pop();
    if (!previous) return;
    this.mask = previous;
    this.edited = this.mask.some((value, i) => value !== this.loaded[i]);
    this.draw();
    this.announce();
    this.onEdit();
  }

  // The keyboard brush: shown only while the editor has focus, sized and placed in scan pixels so it
  // zooms with the scan and marks exactly the disc that Space paints.
  placeCursor() {
    const element = this.brushCursor;
    if (!element) return;
    const shown = document.activeElement === this.canvas && !this.canvas.hidden;
    element.hidden = !shown;
    if (!shown) return;
    const [x, y] = this.cursor;
    const r = this.brushRadius;
    Object.assign(element.style, {
      left: `${(x - r) / this.width * 100}%`, top: `${(y - r) / this.height * 100}%`,
      width: `${2 * r / this.width * 100}%`, height: `${2 * r / this.height * 100}%`,
    });
    element.dataset.tool = this.tool;
  }

  finishKeyStroke() {
    if (!this.keyStroke) return;
    this.keyStroke = null;
    this.edited = true;
    this.announce();
    this.onEdit();
  }

  // Arrows move the brush (Shift: one pixel at a time), Space paints or erases under it; holding Space
  // while moving draws a stroke. Brush, eraser and undo keep the viewer's own shortcuts (B, E, Z).
  bindKeyboard() {
    const canvas = this.canvas;
    canvas.tabIndex = 0;
    canvas.setAttribute("role", "application");
    canvas.setAttribute("aria-roledescription", "outline editor");
    const moves = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };
    canvas.addEventListener("focus", () => this.placeCursor());
    canvas.addEventListener("blur", () => { this.finishKeyStroke(); this.placeCursor(); });
    canvas.addEventListener("keydown", (event) => {
      if (event.ctrlKey || event.metaKey || event.altKey) return;
      const move = moves[event.key];
      if (move) {
        // The page's own arrow keys (panning a zoomed scan) give way while the editor has focus.
        event.preventDefault();
        event.stopPropagation();
        const step = event.shiftKey ? 1 : Math.max(1, this.brushRadius);
        const from = this.cursor;
        this.cursor = [
          Math.min(this.width - 1, Math.max(0, from[0] + move[0] * step)),
          Math.min(this.height - 1, Math.max(0, from[1] + move[1] * step)),
        ];
        if (this.keyStroke) {
          this.stroke(from, this.cursor, this.keyStroke.value);
          this.draw();
        }
        this.placeCursor();
      } else if (event.key === " ") {
        event.preventDefault();
        event.stopPropagation();
        if (event.repeat || this.keyStroke) return;
        if (this.tool !== "brush" && this.tool !== "eraser") {
          if (this.live) this.live.textContent = "Choose the brush (B) or the eraser (E) to paint.";
          return;
        }
        this.remember();
        const value = this.tool === "brush" ? 1 : 0;
        this.paint(this.cursor[0], this.cursor[1], value);
        this.draw();
        this.keyStroke = { value };
      }
    });
    canvas.addEventListener("keyup", (event) => {
      if (event.key === " ") this.finishKeyStroke();
    });
  }

  bindPointer() {
    let drag = null;
    this.root.addEventListener("pointerdown", (event) => {
      if (event.button !== 0 && event.button !== 1) return;
      this.root.setPointerCapture(event.pointerId);
      const painting = this.editable && event.button === 0 && (this.tool === "brush" || this.tool === "eraser")
        && !this.canvas.hidden;
      if (painting) {
        this.remember();
        const point = this.imagePoint(event);
        this.cursor = point;
        const value = this.tool === "brush" ? 1 : 0;
        this.paint(point[0], point[1], value);
        this.draw();
        drag = { kind: "paint", last: point, value };
        this.pointerStroke = true;
      } else {
        drag = { kind: "pan", x: event.clientX, y: event.clientY };
      }
    });
    this.root.addEventListener("pointermove", (event) => {
      if (!drag) return;
      if (drag.kind === "paint") {
        const point = this.imagePoint(event);
        this.stroke(drag.last, point, drag.value);
        drag.last = point;
        this.cursor = point;
        this.draw();
        this.placeCursor();
      } else {
        this.panBy(event.clientX - drag.x, event.clientY - drag.y);
        drag.x = event.clientX;
        drag.y = event.clientY;
      }
    });
    const end = () => {
      this.pointerStroke = false;  // whatever ends: a second pointer's pan ends the stroke's drag too
      if (drag?.kind === "paint") {
        this.edited = true;
        this.announce();
        this.onEdit();
      }
      drag = null;
    };
    this.root.addEventListener("pointerup", end);
    this.root.addEventListener("pointercancel", end);
  }

  toPNG() {
    const scratch = document.createElement("canvas");
    scratch.width = this.width;
    scratch.height = this.height;
    const context = scratch.getContext("2d");
    const image = context.createImageData(this.width, this.height);
    for (let i = 0; i < this.mask.length; i++) {
      const v = this.mask[i] ? 255 : 0;
      image.data.set([v, v, v, 255], i * 4);
    }
    context.putImageData(image, 0, 0);
    return new Promise((resolve) => scratch.toBlob(resolve, "image/png"));
  }
}

// Moving between the slices of a volume: a slider, Page Up / Page Down, "slice k of n", the slices where
// the software found a tumour (staff only: the API sends them to staff), and the way back to the analysed
// slice. Without a result the navigator starts on the middle slice, as the image API does, so the
// starting slice never tells a patient where the software looked.
export class SliceNavigator {
  constructor(root, viewer, { count, imageUrl, start }) {
    this.root = root;
    this.viewer = viewer;
    this.count = count;
    this.imageUrl = imageUrl;
    this.input = root.querySelector("input[type=range]");
    this.label = root.querySelector(".slice-label");
    this.note = root.querySelector(".slice-note");
    this.findings = root.querySelector(".slice-findings");
    this.marks = root.querySelector("datalist");
    this.back = root.querySelector("button.analysed-slice");
    this.analysed = null;
    this.found = new Set();
    this.index = start;
    viewer.setSlice(start);
    this.input.addEventListener("input", () => this.go(Number(this.input.value) - 1));
    this.back.addEventListener("click", () => this.go(this.analysed));
    this.findings.addEventListener("click", (event) => {
      const button = event.target.closest("button[data-slice]");
      if (button) this.go(Number(button.dataset.slice));
    });
    document.addEventListener("keydown", (event) => {
      if (event.key !== "PageUp" && event.key !== "PageDown") return;
      if (event.target.closest("textarea, select, input[type=text], input[type=email], input[type=tel]")) return;
      event.preventDefault();
      this.go(this.index + (event.key === "PageDown" ? 1 : -1));
    });
    this.render();
  }

  go(index) {
    const next = Math.min(this.count - 1, Math.max(0, index));
    if (next === this.index) return;
    this.index = next;
    this.viewer.setSlice(next, `${this.imageUrl}?slice=${next}`, `The MRI scan, slice ${next + 1} of ${this.count}`);
    this.render();
  }

  // analysed: the slice the result belongs to (null while the member may not see a result);
  // perSlice: the software's reading of every slice, for staff; overlays: those this member is offered.
  setResult(analysed, perSlice = [], overlays = ["outline", "heatmap"]) {
    this.analysed = analysed ?? null;
    this.overlays = overlays;
    this.found = new Set(perSlice.filter((entry) => entry.label !== "notumor").map((entry) => entry.slice));
    this.viewer.setOverlaySlice(this.analysed);
    this.marks.innerHTML = [...this.found].map((i) => `<option value="${i + 1}"></option>`).join("");
    this.findings.hidden = this.found.size === 0;
    this.findings.innerHTML = this.found.size ? `The software found a tumour on ${runs([...this.found].sort((a, b) => a - b))
      .map(([a, b]) => `<button type="button" class="link" data-slice="${a}">${a === b ? `slice ${a + 1}` : `slices ${a + 1}–${b + 1}`}</button>`)
      .join(", ")}.` : "";
    this.render();
  }

  render() {
    const k = this.index;
    const words = [`Slice ${k + 1} of ${this.count}`];
    if (k === this.analysed) words.push("analysed slice");
    if (this.found.has(k)) words.push("tumour found by the software");
    this.input.value = String(k + 1);
    this.input.setAttribute("aria-valuetext", words.join(", "));
    this.label.textContent = words.join(" · ");
    this.back.hidden = this.analysed === null || k === this.analysed;
    const overlays = this.overlays ?? [];
    const shown = overlays.length > 1 ? "The outline and heatmap belong" : `The ${overlays[0]} belongs`;
    if (this.analysed === null || !overlays.length) {
      this.note.textContent = "";
    } else if (k === this.analysed) {
      this.note.textContent = this.viewer.editable
        ? `${shown} to this slice; outline corrections apply to this slice only.`
        : `${shown} to this slice.`;
    } else {
      this.note.textContent = `${shown} to the analysed slice (slice ${this.analysed + 1}) `
        + `and ${overlays.length > 1 ? "are" : "is"} not shown here${this.viewer.editable ? "; go back to it to correct the outline" : ""}.`;
    }
  }
}

// [0, 1, 2, 5] -> [[0, 2], [5, 5]]
function runs(sorted) {
  const out = [];
  for (const i of sorted) {
    const last = out[out.length - 1];
    if (last && i === last[1] + 1) last[1] = i;
    else out.push([i, i]);
  }
  return out;
}

export function escapeHtml(text) {
  return String(text ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}
