// gantt.js: a small canvas Gantt chart of what each thread of a run did.
// Plain ES modules, no dependencies: the page imports this one as it is.
// Event format: [t_ns, lane, kind, data]; see docs/events.md and Gantt.addEvents.
//
//   gantt.js             data per lane, the view, the frame (this file)
//   gantt_draw.js        axis, legend, and inside a lane: state bar, CPU track, labelled spans, marks
//   gantt_primitives.js  locks, semaphores, events, queues, busy cores: data only
//   gantt_rows.js        their pixels: hold bars, waiting spans, rows under the lanes
//   gantt_input.js       wheel, pointer, touch, keys, tooltip, hover highlight

import { STATES, buildLegend, collectStates, drawAxis, drawBrackets, drawCpu, drawMarks, el, fitText } from "./gantt_draw.js";
import { GanttInput } from "./gantt_input.js";
import { Primitives } from "./gantt_primitives.js";
import { drawCores, drawHolds, drawRow, drawWaits, layout } from "./gantt_rows.js";

export { STATES };
const STATE_INDEX = new Map(STATES.map((s, i) => [s.name, i]));
const DONE = STATE_INDEX.get("done");

const AXIS_H = 22;          // px, time axis at the top
const MIN_RANGE = 1e3;      // ns: zooming below 1 µs only shows sampling noise
const CPU_WINDOW = 20e6;    // ns: the sampler's CPU-share window (its cpu_window_s)
// Lane -1 is the process as a whole: these kinds may come on it, and it never becomes a lane.
const PROCESS_KINDS = new Set(["cores", "P", "C", "F"]);
export class Gantt {
  constructor(container, options = {}) {
    this.el = container;
    this.opt = { legend: true, laneHeight: 32, gutter: 130, cores: null, ...options };
    this.axisH = AXIS_H;
    this._lanes = new Map();   // lane number -> lane record
    this._order = [];          // lane records sorted by lane number
    this._closed = 0;          // closed state spans, over all lanes
    this._maxT = 0;
    this._live = false;
    this._liveT = null;        // page's estimate of "now", if it gives one
    this._view = null;         // null: auto-fit to the run; [t0, t1] once the user zooms or pans
    this._raf = 0;
    this._drawn = false;
    this._acc = new Float64Array(STATES.length);
    this.prims = new Primitives();
    this._hl = null;           // Set of highlighted lane numbers, or null
    this._hlKey = null;        // the primitive whose lanes they are, if any
    this._hlHover = false;     // set by hovering (so leaving clears it), not by the page
    this._laneName = (n) => this._lanes.get(n)?.name ?? `thread ${n}`;
    this._build();
  }

  // ---------- public API ----------

  addEvents(batch) {
    for (const ev of batch) {
      if (!Array.isArray(ev)) continue;
      const [t, n, kind, data] = ev;
      if (typeof t !== "number" || !Number.isFinite(t) || !Number.isInteger(n)) continue;
      if (n < 0 && !PROCESS_KINDS.has(kind)) continue;
      if (t > this._maxT) this._maxT = t;
      switch (kind) {
        case "lane": {
          const L = this._lane(n);
          if (data && data.name != null) L.name = String(data.name);
          if (data && data.tid != null) L.tid = data.tid;
          if (L.startT == null) L.startT = t;
          L.label = null; // re-truncate the gutter text
          break;
        }
        case "S": {
          const s = STATE_INDEX.get(data);
          if (s === undefined) break;
          const L = this._lane(n);
          if (L.endT != null && t >= L.endT) break; // the OS thread outlives the Python one briefly
          this._close(L, t);
          L.cur = s; L.curT = Math.max(t, L.curT); // per-lane order is promised; clamp just in case
          break;
        }
        case "end": { const L = this._lane(n); this._close(L, t); L.endT = t; this.prims.endLane(L, t); break; }
        case "B": { const L = this._lane(n); L.open.push({ s: t, e: null, label: String(data), d: L.open.length }); break; }
        case "E": {
          const L = this._lane(n), lab = String(data);
          // Nesting should make it the innermost one; search down in case a worker mis-nests.
          let i = L.open.length - 1;
          while (i >= 0 && L.open[i].label !== lab) i--;
          if (i < 0) break;
          const [sp] = L.open.splice(i, 1);
          sp.e = Math.max(t, sp.s);
          L.brackets.push(sp);
          if (sp.d > L.maxDepth) L.maxDepth = sp.d;
          break;
        }
        case "M": { const L = this._lane(n); L.mt.push(t); L.mx.push(String(data)); break; }
        case "cpu": {
          // A window ends at t and lasts CPU_WINDOW at most: the sampler skips idle
          // windows, so the previous event is not always where this window began.
          const L = this._lane(n), prev = L.ct.length ? L.ct[L.ct.length - 1] : -Infinity;
          const win = Math.min(t - prev, CPU_WINDOW);
          if (win <= 0 || typeof data !== "number") break;
          L.cs.push(t - win); L.ct.push(t); L.cv.push(Math.min(1, Math.max(0, data / win)));
          break;
        }
        default: this._addPrimitive(t, n, kind, data); break; // out of the hot loop: state changes dominate
      }
    }
    if (this._hlKey != null) this._highlight(this._hlKey); // new waiters or owners join the highlight
    this._dirty();
  }

  // Locks, waits, counters, busy cores (docs/events.md); any other kind: ignored on purpose.
  _addPrimitive(t, n, kind, data) {
    const P = this.prims;
    switch (kind) {
      case "cores": P.addCores(t, data); break;
      case "P": P.define(data); break;
      case "C": P.counter(t, data); break;
      case "F": P.flag(t, data); break;
      case "W": P.wait(this._lane(n), t, data?.id); break;
      case "U": P.unwait(this._lane(n), t, data?.id); break;
      case "A": P.acquire(this._lane(n), t, data?.id, data?.inferred, data?.sampled); break;
      case "R": P.release(this._lane(n), t, data?.id); break;
      default: break;
    }
  }

  setLive(live) { this._live = !!live; this._dirty(); }
  setLiveTime(t) { if (Number.isFinite(t)) { this._liveT = t; if (this._live) this._dirty(); } }
  fit() { this._view = null; this._dirty(); }
  // Show [t0, t1] ns, exactly (no clamping): pages that line up several charts use it.
  setRange(t0, t1) { if (Number.isFinite(t0) && Number.isFinite(t1) && t1 > t0) { this._view = [t0, t1]; this._dirty(); } }
  lanes() { return this._order.map(({ lane, name, tid }) => ({ lane, name, tid })); }
  primitives() { return this.prims.rows.filter((p) => p.id != null).map(({ id, type, name }) => ({ id, type, name })); }

  // Highlight the lanes that waited for or held primitive `id` (null: none); the rest dim.
  highlightPrimitive(id) { this._hlHover = false; this._highlight(id ?? null); }
  // Highlight these lane numbers (null: none).
  highlightLanes(lanes) { this._hlHover = false; this._hlKey = null; this._setHighlight(Array.isArray(lanes) ? lanes : null); }

  destroy() {
    cancelAnimationFrame(this._raf);
    this._raf = -1; // never schedule again
    this._ro.disconnect();
    clearTimeout(this._settle);
    window.removeEventListener("scroll", this._onScroll, { capture: true });
    this.root.remove();
    for (const k of ["lanes", "spans", "drawn", "primitives", "counters", "holds", "waits", "cores"]) delete this.el.dataset[k];
  }

  // ---------- highlight ----------

  _highlight(key) { this._hlKey = key; this._setHighlight(key == null ? null : this.prims.touched(key)); }

  _setHighlight(lanes) {
    const v = lanes ? [...new Set(lanes.map(Number).filter(Number.isInteger))].sort((a, b) => a - b) : null;
    const str = v ? v.join(",") : null, cd = this.canvas.dataset;
    if (str === (cd.highlight ?? null) && this._hlDrawnKey === this._hlKey) return;
    this._hl = v ? new Set(v) : null;
    this._hlDrawnKey = this._hlKey;
    // Tests and the page read the highlight here at once, without waiting for a frame.
    if (str === null) delete cd.highlight; else cd.highlight = str;
    this._dirty();
  }

  // Called by the input as the pointer moves: a primitive under it (or null).
  // Leaving it restores what the page had highlighted (an annotation's lanes, say).
  _hoverPrim(key) {
    if (key != null) {
      if (!this._hlHover) this._hlSaved = { key: this._hlKey, lanes: this._hl && [...this._hl] };
      if (!this._hlHover || this._hlKey !== key) { this._highlight(key); this._hlHover = true; }
    } else if (this._hlHover) {
      const { key: k, lanes } = this._hlSaved;
      this._hlHover = false;
      if (k != null) this._highlight(k); else { this._hlKey = null; this._setHighlight(lanes); }
    }
  }

  // ---------- data ----------

  _lane(n) {
    let L = this._lanes.get(n);
    if (L) return L;
    L = this.prims.newLane({
      lane: n, name: `thread ${n}`, tid: null, label: null,
      ss: [], se: [], st: [],            // closed state spans: start, end, state index
      cur: -1, curT: 0,                  // the open state span (to "now")
      startT: null, endT: null,          // lifetime as the worker recorded it
      open: [], brackets: [], maxDepth: 0, // B/E spans: open stack and closed ones
      mt: [], mx: [],                    // marks: time, text
      cs: [], ct: [], cv: [],            // cpu windows: start, end, share 0..1
    });
    this._lanes.set(n, L);
    // New lanes are rare, so a sorted insert is cheaper than sorting per frame.
    let i = this._order.length;
    while (i > 0 && this._order[i - 1].lane > n) i--;
    this._order.splice(i, 0, L);
    return L;
  }

  _close(L, t) {
    if (L.cur < 0) return;
    L.ss.push(L.curT); L.se.push(Math.max(t, L.curT)); L.st.push(L.cur);
    L.cur = -1; this._closed++;
  }

  // "now": open spans reach it. After the run, open spans close at the last event.
  _now() { return this._live ? Math.max(this._liveT ?? 0, this._maxT) : this._maxT; }
  // Auto view: the whole run; while live, 2% headroom so the "now" line and open spans show.
  _range() { return this._view || [0, Math.max(this._now() * (this._live ? 1.02 : 1), 1e6)]; }
  _plotW() { return Math.max(1, this._w - this.opt.gutter - 8); }
  _layout() { return layout(AXIS_H, this._order.length, this.opt.laneHeight, this.prims); }

  _setView(t0, t1) {
    let r = Math.max(MIN_RANGE, t1 - t0);
    r = Math.min(r, Math.max(this._now(), 1e9) * 20); // zooming out past the run is pointless
    if (t0 < -r * 0.05) t0 = -r * 0.05;               // a little slack before 0, no more
    this._view = [t0, t0 + r];
    this._dirty();
  }

  // ---------- DOM ----------

  _build() {
    const root = this.root = el("div", "gantt", this.el);
    if (this.opt.legend) buildLegend(root);
    const plot = this.plot = el("div", "gantt-plot", root);
    const c = this.canvas = el("canvas", "gantt-canvas", plot);
    c.tabIndex = 0;
    c.setAttribute("role", "img");
    c.setAttribute("aria-label", "Gantt chart: 0 threads");
    this.ctx = c.getContext("2d");
    const fit = this.fitBtn = el("button", "gantt-fit", plot);
    fit.type = "button"; fit.textContent = "Fit"; fit.title = "Show the whole run (0, or double-click the chart)";
    fit.addEventListener("click", () => this.fit());
    this.tip = el("div", "gantt-tip", plot);
    this.tip.hidden = true;
    this.tip.setAttribute("role", "tooltip");
    this.input = new GanttInput(this);
    this._ro = new ResizeObserver(() => this._dirty());
    this._ro.observe(plot);
    // Any scroll (page or a scrolling parent) may bring undrawn lanes into view.
    this._onScroll = () => { if (this._band) this._dirty(); };
    window.addEventListener("scroll", this._onScroll, { capture: true, passive: true });
    this._w = plot.clientWidth;
    this._dirty();
  }

  // ---------- drawing ----------

  _dirty() { if (!this._raf) this._raf = requestAnimationFrame(() => this._draw()); }

  _colors() {
    // One source of truth: the CSS variables in gantt.css (the page may restyle them).
    const cs = getComputedStyle(this.root), v = (n, d) => cs.getPropertyValue(n).trim() || d;
    this._c = {
      states: STATES.map((s) => v(`--state-${s.name}`, "#999")),
      fg: v("--gantt-fg", "#222"), muted: v("--gantt-muted", "#777"), grid: v("--gantt-grid", "#e4e4e4"),
      stripe: v("--gantt-stripe", "#f6f6f6"), bracket: v("--gantt-bracket", "#444"), mark: v("--gantt-mark", "#111"),
      cpu: v("--gantt-cpu", "#556"), now: v("--gantt-now", "#c00"), bg: v("--gantt-bg", "#fff"),
      alive: v("--gantt-alive", "#7f9bb8"),
      hold: v("--gantt-hold", "#0072B2"), holdText: v("--gantt-hold-text", "#fff"), wait: v("--gantt-wait", "#000"),
      waitRow: v("--gantt-wait-row", "#CC79A7"), counter: v("--gantt-counter", "#0072B2"), cores: v("--gantt-cores", "#009E73"),
      font: cs.fontFamily || "sans-serif",
    };
  }

  _draw() {
    if (this._raf === -1) return;
    this._raf = 0;
    const started = performance.now();
    const lay = this._lay = this._layout(), LH = lay.LH, RH = lay.rowH, g = this.opt.gutter, lanes = this._order;
    const barH = LH - 19; // 13 px at the default 32 px lane; presenter mode's taller lanes get thicker bars
    const w = this.plot.clientWidth, h = lay.h, dpr = window.devicePixelRatio || 1;
    if (!w) return; // hidden: the ResizeObserver will call us back when shown
    const c = this.canvas, ctx = this.ctx;
    if (c.width !== Math.round(w * dpr) || c.height !== Math.round(h * dpr) || !this._c) {
      c.width = Math.round(w * dpr); c.height = Math.round(h * dpr);
      c.style.width = `${w}px`; c.style.height = `${h}px`;
      this._colors();
    }
    this._w = w; this._h = h;
    const C = this._c, [t0, t1] = this._range(), pw = this._plotW(), k = pw / (t1 - t0), now = this._now();
    const X = (t) => g + (t - t0) * k;

    // Raster cost grows with the canvas area, and a 100-lane canvas is mostly off screen:
    // while things change, draw only a band around the viewport; the rest once it is idle.
    let y0 = 0, y1 = h;
    if (!this._full) {
      const top = c.getBoundingClientRect().top, m = 64;
      y0 = Math.min(h, Math.max(0, Math.floor(-top - m)));
      y1 = Math.max(y0, Math.min(h, Math.ceil(innerHeight - top + m)));
    }
    this._full = false;
    this._band = y0 > 0 || y1 < h;
    clearTimeout(this._settle);
    if (this._band) this._settle = setTimeout(() => { this._full = true; this._dirty(); }, 250);
    const iA = Math.max(0, Math.floor((y0 - AXIS_H) / RH)), iB = Math.min(lanes.length, Math.ceil((y1 - AXIS_H) / RH));
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.save();
    ctx.beginPath(); ctx.rect(0, y0, w, y1 - y0); ctx.clip();
    ctx.clearRect(0, y0, w, y1 - y0);

    // Lane backgrounds and names.
    for (let i = iA; i < iB; i++) {
      const L = lanes[i], y = AXIS_H + i * RH;
      if (i % 2) { ctx.fillStyle = C.stripe; ctx.fillRect(0, y, w, RH); }
      ctx.fillStyle = C.fg; ctx.font = `12px ${C.font}`; ctx.textBaseline = "middle";
      if (!L.label) L.label = fitText(ctx, L.name, g - 12);
      ctx.fillText(L.label, 6, y + 15);
      if (L.tid != null) { ctx.fillStyle = C.muted; ctx.font = `10px ${C.font}`; ctx.fillText(`tid ${L.tid}`, 6, y + 27); }
    }

    drawAxis(ctx, C, t0, t1, pw, X, g, w, h, AXIS_H);

    // Lanes: clip to the plot so partial spans don't spill into the name gutter.
    ctx.save();
    ctx.beginPath(); ctx.rect(g, AXIS_H, pw, lay.lanesEnd - AXIS_H); ctx.clip();
    // State bars first, collected per colour and filled with one path each: switching
    // fillStyle per rectangle costs more than the rectangles themselves.
    const batch = STATES.map(() => []);
    for (let i = iA; i < iB; i++) collectStates(this._acc, batch, lanes[i], AXIS_H + i * RH, t0, t1, X, g, g + pw, now);
    let rects = 0;
    batch.forEach((b, s) => {
      if (!b.length) return;
      ctx.beginPath();
      for (let j = 0; j < b.length; j += 3) ctx.rect(b[j], b[j + 1] + 11, b[j + 2], barH);
      ctx.fillStyle = C.states[s]; ctx.fill();
      rects += b.length / 3;
    });
    for (let i = iA; i < iB; i++) {
      const L = lanes[i], y = AXIS_H + i * RH;
      if (L.startT != null && !L.ss.length && L.cur < 0) {
        // No OS states for this lane (no /proc here): draw the lifetime the worker recorded.
        const a = Math.max(g, X(L.startT)), b = Math.min(g + pw, X(L.endT ?? now));
        if (b > a) { ctx.fillStyle = C.alive; ctx.fillRect(a, y + 11 + (barH - 7) / 2, Math.max(1, b - a), 7); rects++; }
      }
      drawWaits(ctx, C, this.prims, L, y + 11, barH, X, t0, t1, now, g, g + pw);
      drawHolds(ctx, C, this.prims, L, y, lay, X, t0, t1, now, g, g + pw);
      drawCpu(ctx, C.cpu, L, y + LH - 7, 5, t0, t1, X);
      drawBrackets(ctx, C, L, y, X, t0, t1, now, g);
      drawMarks(ctx, C.mark, L, y, X, t0, t1);
      if (L.endT != null && L.endT <= t1) { // faint "done" rest of the lane, and an end tick
        const x = Math.max(g, X(L.endT));
        ctx.fillStyle = C.states[DONE]; ctx.fillRect(x, y + 11 + Math.floor(barH / 2), g + pw - x, 1);
        ctx.fillRect(Math.round(X(L.endT)) - 1, y + 11, 2, barH);
      }
    }
    ctx.restore();

    // Under the lanes: busy cores, then one row per primitive.
    const inBand = (r) => r.y < y1 && r.y + r.h > y0;
    if (lay.cores && inBand(lay.cores)) drawCores(ctx, C, this.prims, lay.cores, X, t0, t1, now, g, g + pw, this.opt.cores);
    for (const r of lay.rows) if (inBand(r)) drawRow(ctx, C, r, X, t0, t1, now, g, g + pw, this._laneName);
    if (this._live && now >= t0 && now <= t1) {
      ctx.fillStyle = C.now; ctx.fillRect(Math.round(X(now)), AXIS_H, 1, h - AXIS_H);
    }
    this._drawHighlight(ctx, C, lay, iA, iB, w);
    ctx.restore();
    const spans = this._publish(lay, rects);
    this.lastDrawMs = performance.now() - started;
    this.el.dispatchEvent(new CustomEvent("gantt:drawn", { bubbles: true, detail: { lanes: lanes.length, spans, ms: this.lastDrawMs } }));
  }

  // Everything not highlighted fades; highlighted lanes get a bar at their left edge.
  _drawHighlight(ctx, C, lay, iA, iB, w) {
    if (!this._hl) return;
    const fade = (y, hh) => { ctx.globalAlpha = 0.65; ctx.fillStyle = C.bg; ctx.fillRect(0, y, w, hh); ctx.globalAlpha = 1; };
    for (let i = iA; i < iB; i++) {
      const y = AXIS_H + i * lay.rowH;
      if (this._hl.has(this._order[i].lane)) { ctx.fillStyle = C.hold; ctx.fillRect(0, y, 3, lay.rowH); } else fade(y, lay.rowH);
    }
    if (this._hlKey == null) return;
    for (const r of lay.rows) {
      if (r.p.key !== this._hlKey) fade(r.y, r.h);
      else { ctx.fillStyle = C.hold; ctx.fillRect(0, r.y, 3, r.h); }
    }
  }

  // The chart's state for tests and the page: data-* on the host and the canvas.
  _publish(lay, rects) {
    const lanes = this._order, P = this.prims, c = this.canvas;
    const spans = this._closed + lanes.reduce((n, L) => n + (L.cur >= 0 ? 1 : 0), 0);
    const ds = this.el.dataset;
    ds.lanes = String(lanes.length);
    ds.spans = String(spans);
    ds.primitives = String(P.rows.filter((p) => p.id != null).length);
    ds.counters = String(P.rows.filter((p) => p.cT.length).length); // rows drawing a count over time
    ds.holds = String(P.holds);
    ds.waits = String(P.waits);
    if (lay.cores) ds.cores = String(P.cores.t.length); else delete ds.cores;
    if (rects > 0 && !this._drawn) { this._drawn = true; ds.drawn = "1"; }
    // Where the rows under the lanes are (CSS px from the canvas top): what a test hovers.
    const rows = [...(lay.cores ? [{ id: "cores", name: "busy cores", type: "cores", top: lay.cores.y, height: lay.cores.h }] : []),
      ...lay.rows.map((r) => ({ id: r.p.id ?? r.p.key, name: r.p.name, type: r.p.type, top: r.y, height: r.h }))];
    if (c.dataset.laneHeight !== String(lay.rowH)) c.dataset.laneHeight = String(lay.rowH);
    const json = JSON.stringify(rows);
    if (c.dataset.rows !== json) c.dataset.rows = json;
    const np = P.rows.length, what = `${lanes.length} thread${lanes.length === 1 ? "" : "s"}`;
    c.setAttribute("aria-label", `Gantt chart: ${what}${np ? `, ${np} synchronisation row${np === 1 ? "" : "s"}` : ""}`);
    this.fitBtn.disabled = !this._view;
    if (this.input.hover) this.input.refresh();
    return spans;
  }
}
