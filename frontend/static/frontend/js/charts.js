// A small SVG line chart, drawn here rather than by a charting library: nothing may load from a CDN.
import { escapeHtml } from "./viewer.js";

// Colour-blind-safe (Okabe–Ito); the legend and the dashes, not colour alone, tell the lines apart.
const COLOURS = ["#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#000000"];
const DASHES = ["", "6 3", "2 3", "8 3 2 3", "4 4", "1 2", ""];

function niceMax(value) {
  if (value <= 0) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 2.5, 5, 10]) if (step * power >= value) return step * power;
  return 10 * power;
}

// series: [{name, points: [[x, y], ...]}]; x are round numbers. yMax fixes the scale (1 for accuracy).
export function lineChart(container, { series, xMax, yMax, yFormat = (v) => v.toFixed(2), title }) {
  // A narrow drawing scaled to the card: its labels stay readable on a phone.
  const width = 400;
  const height = 260;
  const pad = { left: 52, right: 12, top: 14, bottom: 40 };
  const plotted = series.filter((s) => s.points.length);
  if (!plotted.length) {
    container.innerHTML = `<p class="muted">No finished round yet.</p>`;
    return;
  }
  const top = yMax ?? niceMax(Math.max(...plotted.flatMap((s) => s.points.map((p) => p[1]))));
  const right = Math.max(xMax || 1, ...plotted.flatMap((s) => s.points.map((p) => p[0])));
  const x = (v) => pad.left + (right <= 1 ? 0.5 : (v - 1) / (right - 1)) * (width - pad.left - pad.right);
  const y = (v) => pad.top + (1 - v / top) * (height - pad.top - pad.bottom);
  const grid = [0, 0.25, 0.5, 0.75, 1].map((f) => {
    const value = top * f;
    return `<line x1="${pad.left}" x2="${width - pad.right}" y1="${y(value)}" y2="${y(value)}" stroke="#dde3e9"/>
      <text x="${pad.left - 6}" y="${y(value) + 5}" text-anchor="end">${escapeHtml(yFormat(value))}</text>`;
  }).join("");
  const ticks = Array.from({ length: right }, (_, i) => i + 1)
    .filter((r) => right <= 10 || r % Math.ceil(right / 10) === 0)
    .map((r) => `<text x="${x(r)}" y="${height - pad.bottom + 18}" text-anchor="middle">${r}</text>`).join("");
  const lines = plotted.map((s, i) => {
    const colour = COLOURS[i % COLOURS.length];
    const path = s.points.map((p, j) => `${j ? "L" : "M"}${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join(" ");
    const dots = s.points.map((p) => `<circle cx="${x(p[0])}" cy="${y(p[1])}" r="3" fill="${colour}">
      <title>${escapeHtml(s.name)}, round ${p[0]}: ${escapeHtml(yFormat(p[1]))}</title></circle>`).join("");
    return `<path d="${path}" fill="none" stroke="${colour}" stroke-width="2" stroke-dasharray="${DASHES[i % DASHES.length]}"/>${dots}`;
  }).join("");
  const legend = plotted.map((s, i) => `<li><i></i>${escapeHtml(s.name)}</li>`).join("");
  container.innerHTML = `
    <svg class="chart" viewBox="0 0 ${width} ${height}" role="img" aria-label="${escapeHtml(title)}">
      ${grid}${ticks}
      <text x="${(width + pad.left) / 2}" y="${height - 2}" text-anchor="middle">round</text>
      ${lines}
    </svg>
    <ul class="legend">${legend}</ul>`;
  // Colours through the style property: the Content-Security-Policy refuses style attributes in markup.
  container.querySelectorAll(".legend i").forEach((key, i) => { key.style.background = COLOURS[i % COLOURS.length]; });
}
