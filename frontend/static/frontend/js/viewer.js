// The scan with its overlays: the tumour outline (a canvas, editable by doctors) and the heatmap.
// The mask is held at the scan's own resolution, so a corrected mask goes back pixel for pixel.

const OUTLINE = [255, 214, 0];

export class ScanViewer {
  constructor(root, { width, height, editable = false, onEdit = () => {} }) {
    this.root = root;
    this.width = width;
    this.height = height;
    this.editable = editable;
    this.onEdit = onEdit;
    root.style.aspectRatio = `${width} / ${height}`;
    this.stage = root.querySelector(".stage");
    this.heatmap = root.querySelector("img.heatmap");
    this.canvas = root.querySelector("canvas.outline");
    this.canvas.width = width;
    this.canvas.height = height;
    this.context = this.canvas.getContext("2d");
    this.mask = new Uint8Array(width * height);
    this.history = [];
    this.edited = false;
    this.tool = editable ? "brush" : "pan";
    this.brushRadius = Math.max(2, Math.round(Math.min(width, height) / 64));
    this.view = { scale: 1, x: 0, y: 0 };
    this.bindPointer();
    root.addEventListener("wheel", (event) => {
      event.preventDefault();
      this.zoomBy(event.deltaY < 0 ? 1.25 : 0.8, event.clientX, event.clientY);
    }, { passive: false });
  }

  async loadMask(url) {
    this.mask.fill(0);
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
      for (let i = 0; i < this.mask.length; i++) this.mask[i] = pixels[i * 4] > 127 ? 1 : 0;
    }
    this.history = [];
    this.edited = false;
    this.draw();
  }

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
  }

  showOutline(on) { this.canvas.hidden = !on; }
  showHeatmap(on) { if (this.heatmap) this.heatmap.hidden = !on; }
  setHeatmapOpacity(value) { if (this.heatmap) this.heatmap.style.opacity = String(value); }
  setTool(tool) { this.tool = tool; this.root.dataset.tool = tool; }
  setBrushRadius(radius) { this.brushRadius = radius; }
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

  undo() {
    const previous = this.history.pop();
    if (!previous) return;
    this.mask = previous;
    this.edited = this.history.length > 0;
    this.draw();
    this.onEdit();
  }

  bindPointer() {
    let drag = null;
    this.root.addEventListener("pointerdown", (event) => {
      if (event.button !== 0 && event.button !== 1) return;
      this.root.setPointerCapture(event.pointerId);
      const painting = this.editable && event.button === 0 && (this.tool === "brush" || this.tool === "eraser")
        && !this.canvas.hidden;
      if (painting) {
        this.history.push(this.mask.slice());
        if (this.history.length > 30) this.history.shift();
        const point = this.imagePoint(event);
        const value = this.tool === "brush" ? 1 : 0;
        this.paint(point[0], point[1], value);
        this.draw();
        drag = { kind: "paint", last: point, value };
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
        this.draw();
      } else {
        this.panBy(event.clientX - drag.x, event.clientY - drag.y);
        drag.x = event.clientX;
        drag.y = event.clientY;
      }
    });
    const end = () => {
      if (drag?.kind === "paint") {
        this.edited = true;
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

export function escapeHtml(text) {
  return String(text ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}
