// gantt_draw.js: the chart's own pixels (axis, and inside one thread's lane: state
// bar, CPU track, labelled spans, marks) and its legend, as plain functions, so
// gantt.js keeps the data and the frame and this file the drawing.

// The thread states, in the vocabulary of DESIGN.md; `help` is the legend's one line.
export const STATES = [
  { name: "running", label: "running", help: "on a CPU (with a GIL: holding it)" },
  { name: "gil", label: "waiting for GIL", help: "ready, waiting its turn for the GIL" },
  { name: "lock", label: "blocked on lock", help: "until a lock, event or queue lets go" },
  { name: "sleep", label: "sleeping", help: "in time.sleep" },
  { name: "io", label: "I/O", help: "waiting for a socket, pipe or file" },
  { name: "done", label: "done", help: "the thread has finished" },
];

// Legend entries beyond the states: what the bars and lines that are not states mean.
const MARKS = [
  { cls: "hold", label: "holds a lock", help: "bar under the lane; dashed: inferred" },
  { cls: "wait", label: "waits for a lock", help: "outlined: until another thread lets go" },
  { cls: "cpu", label: "CPU share", help: "thin track: its share of one core" },
];

export function el(tag, cls, parent) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (parent) parent.append(e);
  return e;
}

// The legend: one line per state and per mark, so the chart explains itself.
export function buildLegend(root) {
  const lg = el("div", "gantt-legend", root);
  const item = (swatch, label, help) => {
    const it = el("span", "gantt-legend-item", lg);
    it.title = help;
    el("span", `gantt-swatch ${swatch}`, it);
    el("b", "gantt-legend-label", it).textContent = label;
    el("span", "gantt-legend-help", it).textContent = help;
  };
  for (const s of STATES) item(`gantt-swatch-${s.name}`, s.label, s.help);
  for (const m of MARKS) item(`gantt-swatch-${m.cls}`, m.label, m.help);
  el("div", "gantt-hint", root).textContent =
    "zoom: wheel, pinch or + / − · pan: drag or ← / → · fit: 0 or double-click · hover a lock or its bar: its threads light up";
}

// The time axis and its grid: ~1 tick per 90 px, at 1/2/5 x 10^n ns.
export function drawAxis(ctx, C, t0, t1, pw, X, g, w, h, axisH) {
  const target = (t1 - t0) * 90 / pw, p = 10 ** Math.floor(Math.log10(target));
  const step = [1, 2, 5, 10].map((m) => m * p).find((s) => s >= target);
  const unitS = step >= 1e9, unit = unitS ? 1e9 : 1e6;
  const dec = Math.max(0, -Math.floor(Math.log10(step / unit) + 1e-9));
  ctx.font = `11px ${C.font}`; ctx.textBaseline = "middle"; ctx.textAlign = "center";
  for (let t = Math.ceil(t0 / step) * step; t <= t1; t += step) {
    const x = Math.round(X(t)) + 0.5;
    ctx.fillStyle = C.grid; ctx.fillRect(x - 0.5, axisH - 4, 1, h - axisH + 4);
    ctx.fillStyle = C.muted;
    const label = t === 0 ? "0" : `${(t / unit).toFixed(dec)} ${unitS ? "s" : "ms"}`;
    const half = ctx.measureText(label).width / 2; // keep edge labels inside the canvas
    ctx.fillText(label, Math.max(g + half, Math.min(x, w - half - 2)), axisH / 2 - 1);
  }
  ctx.textAlign = "left";
  ctx.fillStyle = C.grid; ctx.fillRect(0, axisH - 1, w, 1); ctx.fillRect(g - 1, axisH, 1, h - axisH);
}

// First index i with arr[i] > v (arr sorted ascending): the first span ending after v.
export function upperBound(arr, v) {
  let lo = 0, hi = arr.length;
  while (lo < hi) { const mid = (lo + hi) >> 1; if (arr[mid] <= v) lo = mid + 1; else hi = mid; }
  return lo;
}

// The longest prefix of text (with an ellipsis) that fits in width px, or "".
export function fitText(ctx, text, width) {
  if (ctx.measureText(text).width <= width) return text;
  let lo = 0, hi = text.length;
  while (lo < hi) { const m = (lo + hi + 1) >> 1; if (ctx.measureText(text.slice(0, m) + "…").width <= width) lo = m; else hi = m - 1; }
  return lo ? text.slice(0, lo) + "…" : "";
}

// Collects the state bar of one lane as [x, y, width] triples in batch[state].
// Spans under a pixel are summed per pixel column and the column gets its dominant
// state, so 100k spans cost about one rectangle per pixel, not one per span.
export function collectStates(acc, batch, L, y, t0, t1, X, xmin, xmax, now) {
  let runS = -1, runA = 0, runB = 0, col = -1;
  const put = (a, b, s) => { // merge touching rectangles of one colour
    if (s === runS && a <= runB) { runB = b; return; }
    if (runS >= 0) batch[runS].push(runA, y, runB - runA);
    runS = s; runA = a; runB = b;
  };
  const flush = () => {
    if (col < 0) return;
    let best = -1, bv = 0;
    for (let s = 0; s < acc.length; s++) if (acc[s] > bv) { bv = acc[s]; best = s; }
    if (best >= 0) put(col, col + 1, best);
    acc.fill(0); col = -1;
  };
  const add = (s0, s1, s) => {
    const x0 = Math.max(xmin, X(s0)), x1 = Math.min(xmax, X(s1));
    if (x1 <= x0) return;
    const c0 = Math.floor(x0), c1 = Math.floor(x1);
    if (c0 !== col) { flush(); col = c0; }
    if (c1 === c0) { acc[s] += x1 - x0; return; }
    acc[s] += c0 + 1 - x0; flush();       // the partial first column
    if (c1 > c0 + 1) put(c0 + 1, c1, s);  // whole columns
    col = c1; acc[s] += x1 - c1;          // the partial last column
  };
  for (let i = upperBound(L.se, t0); i < L.ss.length && L.ss[i] < t1; i++) add(L.ss[i], L.se[i], L.st[i]);
  if (L.cur >= 0 && now > L.curT) add(L.curT, now, L.cur);
  flush(); put(0, 0, -2); // -2: forces out the last run
}

// The OS on-CPU share under a lane: one bar per sampler window, the busiest per pixel.
export function drawCpu(ctx, color, L, y, ch, t0, t1, X) {
  if (!L.ct.length) return;
  ctx.fillStyle = color;
  let col = -1, best = 0;
  const bar = (a, b, v) => { if (v > 0) ctx.fillRect(a, y + ch * (1 - v), b - a, ch * v); };
  for (let i = upperBound(L.ct, t0); i < L.ct.length && L.cs[i] < t1; i++) {
    const x0 = X(L.cs[i]), x1 = X(L.ct[i]), v = L.cv[i];
    if (x1 - x0 >= 1) { if (col >= 0) bar(col, col + 1, best); col = -1; bar(x0, x1, v); continue; }
    const c = Math.floor(x0); // several windows in one pixel: show the busiest
    if (c !== col) { if (col >= 0) bar(col, col + 1, best); col = c; best = 0; }
    best = Math.max(best, v);
  }
  if (col >= 0) bar(col, col + 1, best);
}

// Labelled spans (B/E): a thin bracket above the state bar, parents before children.
export function drawBrackets(ctx, C, L, y, X, t0, t1, now, gutter) {
  if (!L.brackets.length && !L.open.length) return;
  const all = L.open.length ? [...L.brackets, ...L.open] : L.brackets;
  const depth = Math.max(L.maxDepth, L.open.length - 1);
  ctx.font = `9px ${C.font}`; ctx.textBaseline = "alphabetic";
  for (let d = 0; d <= depth; d++) {
    for (const sp of all) {
      const e = sp.e ?? now;
      if (sp.d !== d || e < t0 || sp.s > t1) continue;
      const x0 = Math.round(X(sp.s)), x1 = Math.max(x0 + 1, Math.round(X(e)));
      ctx.fillStyle = C.bracket;
      ctx.globalAlpha = Math.max(0.45, 0.9 - d * 0.2);
      ctx.fillRect(x0, y + 8, x1 - x0, 2);
      ctx.fillRect(x0, y + 3, 1, 7);
      if (sp.e != null) ctx.fillRect(x1 - 1, y + 3, 1, 7);
      ctx.globalAlpha = 1;
      const tx = Math.max(x0, gutter) + 3, room = x1 - tx - 3;
      if (room > 14) {
        const text = fitText(ctx, sp.label, room);
        const tw = ctx.measureText(text).width;
        ctx.fillStyle = C.bg; ctx.fillRect(tx - 1, y, tw + 2, 7.5); // children's labels cover their parents'
        ctx.fillStyle = C.fg; ctx.fillText(text, tx, y + 7);
      }
    }
  }
}

// Marks (M): a small triangle above the state bar, one per pixel column.
export function drawMarks(ctx, color, L, y, X, t0, t1) {
  ctx.fillStyle = color;
  let last = -1;
  for (let j = Math.max(0, upperBound(L.mt, t0 - 1)); j < L.mt.length && L.mt[j] <= t1; j++) {
    const x = Math.round(X(L.mt[j]));
    if (x === last) continue; // one triangle per pixel is enough
    last = x;
    ctx.beginPath(); ctx.moveTo(x - 3.5, y + 9); ctx.lineTo(x + 3.5, y + 9); ctx.lineTo(x, y + 14); ctx.fill();
  }
}
