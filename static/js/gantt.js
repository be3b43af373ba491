// gantt.js: a small canvas Gantt chart of what each thread of a run did.
// Plain ES module, no dependencies: the page imports it as it is.
// Event format: [t_ns, lane, kind, data]; see Gantt.addEvents.

export const STATES = [
  { name: "running", label: "running", help: "on a CPU; on a GIL build, holding the GIL" },
  { name: "gil", label: "waiting for GIL", help: "runnable but waiting for the GIL" },
  { name: "lock", label: "blocked on lock", help: "blocked on a Lock, RLock, Condition, Semaphore, Event or Queue" },
  { name: "sleep", label: "sleeping", help: "in time.sleep" },
  { name: "io", label: "I/O", help: "blocked in I/O: socket, pipe, file, select/poll" },
  { name: "done", label: "done", help: "finished" },
];
const STATE_INDEX = new Map(STATES.map((s, i) => [s.name, i]));
const DONE = STATE_INDEX.get("done");

const AXIS_H = 22;          // px, time axis at the top
const MIN_RANGE = 1e3;      // ns: zooming below 1 µs only shows sampling noise
const TIP_PX = 4;           // px: how close the pointer must be to a mark
const CPU_WINDOW = 20e6;     // ns: the sampler's CPU-share window (its cpu_window_s)

const ms = (ns) => (ns / 1e6).toFixed(3);
// First index i with arr[i] > v (arr sorted ascending): the first span ending after v.
function upperBound(arr, v) {
  let lo = 0, hi = arr.length;
  while (lo < hi) { const mid = (lo + hi) >> 1; if (arr[mid] <= v) lo = mid + 1; else hi = mid; }
  return lo;
}

function el(tag, cls, parent) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (parent) parent.append(e);
  return e;
}

export class Gantt {
  constructor(container, options = {}) {
    this.el = container;
    this.opt = { legend: true, laneHeight: 32, gutter: 130, ...options };
    this._lanes = new Map();   // lane number -> lane record
    this._order = [];          // lane records sorted by lane number
    this._closed = 0;          // closed state spans, over all lanes
    this._maxT = 0;
    this._live = false;
    this._liveT = null;        // page's estimate of "now", if it gives one
    this._view = null;         // null: auto-fit to the run; [t0, t1] once the user zooms or pans
    this._raf = 0;
    this._drawn = false;
    this._hover = null;        // last pointer position, to refresh the tooltip as data arrives
    this._ptrs = new Map();    // active pointers (touch/mouse) for pan and pinch
    this._acc = new Float64Array(STATES.length);
    this._build();
  }

  // ---------- public API ----------

  addEvents(batch) {
    for (const ev of batch) {
      if (!Array.isArray(ev)) continue;
      const [t, n, kind, data] = ev;
      if (typeof t !== "number" || !Number.isFinite(t) || !Number.isInteger(n)) continue;
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
        case "end": { const L = this._lane(n); this._close(L, t); L.endT = t; break; }
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
        default: break; // future kinds: ignored on purpose
      }
    }
    this._dirty();
  }

  setLive(live) { this._live = !!live; this._dirty(); }
  setLiveTime(t) { if (Number.isFinite(t)) { this._liveT = t; if (this._live) this._dirty(); } }
  fit() { this._view = null; this._dirty(); }
  // Show [t0, t1] ns, exactly (no clamping): pages that line up several charts use it.
  setRange(t0, t1) { if (Number.isFinite(t0) && Number.isFinite(t1) && t1 > t0) { this._view = [t0, t1]; this._dirty(); } }
  lanes() { return this._order.map(({ lane, name, tid }) => ({ lane, name, tid })); }

  destroy() {
    cancelAnimationFrame(this._raf);
    this._raf = -1; // never schedule again
    this._ro.disconnect();
    clearTimeout(this._settle);
    window.removeEventListener("scroll", this._onScroll, { capture: true });
    this.root.remove();
    for (const k of ["lanes", "spans", "drawn"]) delete this.el.dataset[k];
  }

  // ---------- data ----------

  _lane(n) {
    let L = this._lanes.get(n);
    if (L) return L;
    L = {
      lane: n, name: `thread ${n}`, tid: null, label: null,
      ss: [], se: [], st: [],            // closed state spans: start, end, state index
      cur: -1, curT: 0,                  // the open state span (to "now")
      startT: null, endT: null,          // lifetime as the worker recorded it
      open: [], brackets: [], maxDepth: 0, // B/E spans: open stack and closed ones
      mt: [], mx: [],                    // marks: time, text
      cs: [], ct: [], cv: [],            // cpu windows: start, end, share 0..1
    };
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

  _setView(t0, t1) {
    let r = Math.max(MIN_RANGE, t1 - t0);
    r = Math.min(r, Math.max(this._now(), 1e9) * 20); // zooming out past the run is pointless
    if (t0 < -r * 0.05) t0 = -r * 0.05;               // a little slack before 0, no more
    this._view = [t0, t0 + r];
    this._dirty();
  }

  _zoomAt(x, f) {
    const [a, b] = this._range(), px = Math.min(Math.max(x - this.opt.gutter, 0), this._plotW());
    const t = a + (px / this._plotW()) * (b - a);
    this._setView(t - (t - a) * f, t + (b - t) * f);
  }

  _pan(dx, from = this._range()) {
    const [a, b] = from, dt = (dx / this._plotW()) * (b - a);
    this._setView(a - dt, b - dt);
  }

  // ---------- DOM and input ----------

  _build() {
    const root = this.root = el("div", "gantt", this.el);
    if (this.opt.legend) {
      const lg = el("div", "gantt-legend", root);
      for (const s of STATES) {
        const item = el("span", "gantt-legend-item", lg);
        item.title = s.help;
        el("span", `gantt-swatch gantt-swatch-${s.name}`, item).style.background = `var(--state-${s.name})`;
        item.append(s.label);
      }
      el("span", "gantt-hint", lg).textContent = "wheel: zoom · drag: pan · double-click: fit";
    }
    const plot = this.plot = el("div", "gantt-plot", root);
    const c = this.canvas = el("canvas", "gantt-canvas", plot);
    c.tabIndex = 0;
    c.setAttribute("role", "img");
    c.setAttribute("aria-label", "Gantt chart: 0 threads");
    this.ctx = c.getContext("2d");
    const fit = this.fitBtn = el("button", "gantt-fit", plot);
    fit.type = "button"; fit.textContent = "Fit"; fit.title = "Show the whole run (double-click the chart)";
    fit.addEventListener("click", () => this.fit());
    this.tip = el("div", "gantt-tip", plot);
    this.tip.hidden = true;
    this.tip.setAttribute("role", "tooltip");

    c.addEventListener("wheel", (e) => this._onWheel(e), { passive: false });
    c.addEventListener("pointerdown", (e) => this._onDown(e));
    c.addEventListener("pointermove", (e) => this._onMove(e));
    for (const t of ["pointerup", "pointercancel"]) c.addEventListener(t, (e) => this._onUp(e));
    c.addEventListener("pointerleave", () => { this._hover = null; this.tip.hidden = true; });
    c.addEventListener("dblclick", () => this.fit());
    c.addEventListener("keydown", (e) => this._onKey(e));
    this._ro = new ResizeObserver(() => this._dirty());
    this._ro.observe(plot);
    // Any scroll (page or a scrolling parent) may bring undrawn lanes into view.
    this._onScroll = () => { if (this._band) this._dirty(); };
    window.addEventListener("scroll", this._onScroll, { capture: true, passive: true });
    this._w = plot.clientWidth;
    this._dirty();
  }

  _onWheel(e) {
    if (e.offsetX < this.opt.gutter) return; // over the names: let the page scroll
    e.preventDefault();
    const unit = e.deltaMode === 1 ? 16 : e.deltaMode === 2 ? 400 : 1;
    const dx = e.deltaX * unit, dy = e.deltaY * unit;
    if (e.shiftKey || Math.abs(dx) > Math.abs(dy)) this._pan(-(dx || dy));
    else this._zoomAt(e.offsetX, Math.exp(dy * 0.0015));
  }

  _onDown(e) {
    if (e.button !== 0) return; // left button, pen or finger only
    try { this.canvas.setPointerCapture(e.pointerId); } catch { /* pointer already gone */ }
    this._ptrs.set(e.pointerId, e.offsetX);
    this._gesture();
    this.tip.hidden = true;
  }

  // (Re)start the gesture from the pointers now down, so adding or lifting a finger doesn't jump.
  _gesture() {
    const xs = [...this._ptrs.values()], view = this._range();
    this._drag = xs.length === 1 ? { x: xs[0], view } : null;
    this._pinch = xs.length >= 2 ? { d: Math.abs(xs[0] - xs[1]) || 1, mid: (xs[0] + xs[1]) / 2, view } : null;
  }

  _onMove(e) {
    if (!this._ptrs.has(e.pointerId)) { this._hover = { x: e.offsetX, y: e.offsetY }; this._showTip(); return; }
    this._ptrs.set(e.pointerId, e.offsetX);
    const d = this._drag;
    // A few pixels of slack, so a plain click doesn't count as a pan (and stop the live auto-fit).
    if (d && (d.moved ||= Math.abs(e.offsetX - d.x) > 3)) this._pan(e.offsetX - d.x, d.view);
    else if (this._pinch) {
      const [x0, x1] = [...this._ptrs.values()], p = this._pinch;
      const [a, b] = p.view, pw = this._plotW(), g = this.opt.gutter;
      const f = p.d / (Math.abs(x0 - x1) || 1);  // fingers apart -> zoom in
      const t = a + ((p.mid - g) / pw) * (b - a); // time under the original midpoint...
      const r = (b - a) * f, mid = (x0 + x1) / 2; // ...stays under the new midpoint
      const t0 = t - ((mid - g) / pw) * r;
      this._setView(t0, t0 + r);
    }
  }

  _onUp(e) { this._ptrs.delete(e.pointerId); this._gesture(); }

  _onKey(e) {
    const w = this.opt.gutter * 2 + this._plotW(); // zoom about the middle of the plot
    const act = {
      "+": () => this._zoomAt(w / 2, 1 / 1.5), "=": () => this._zoomAt(w / 2, 1 / 1.5),
      "-": () => this._zoomAt(w / 2, 1.5), "_": () => this._zoomAt(w / 2, 1.5),
      ArrowLeft: () => this._pan(this._plotW() * 0.2), ArrowRight: () => this._pan(-this._plotW() * 0.2),
      "0": () => this.fit(), Home: () => this.fit(),
    }[e.key];
    if (act) { e.preventDefault(); act(); }
  }

  // ---------- hit testing and tooltip ----------

  _hit(x, y) {
    const LH = this.opt.laneHeight, li = Math.floor((y - AXIS_H) / LH), L = this._order[li];
    if (!L || y < AXIS_H || x < this.opt.gutter) return null;
    const [a, b] = this._range(), k = this._plotW() / (b - a), g = this.opt.gutter;
    const t = a + (x - g) / k, ly = y - AXIS_H - li * LH, now = this._now();
    // Marks first: they are small and would otherwise be impossible to point at.
    let best = -1;
    for (let j = upperBound(L.mt, t - TIP_PX / k - 1); j < L.mt.length && L.mt[j] <= t + TIP_PX / k; j++) {
      if (best < 0 || Math.abs(L.mt[j] - t) < Math.abs(L.mt[best] - t)) best = j;
    }
    if (best >= 0) return { L, title: "mark", text: L.mx[best], s: L.mt[best], e: L.mt[best] };
    if (ly < 10) { // bracket row: the innermost labelled span around t
      let hit = null;
      for (const sp of [...L.brackets, ...L.open]) {
        if (sp.s <= t && t <= (sp.e ?? now) && (!hit || sp.d >= hit.d)) hit = sp;
      }
      if (hit) return { L, title: hit.label, s: hit.s, e: hit.e ?? now, open: hit.e == null && this._live };
    }
    if (ly > this.opt.laneHeight - 8 && L.ct.length) { // cpu track
      const i = upperBound(L.ct, t - 1);
      if (i < L.ct.length && L.cs[i] <= t) return { L, title: `CPU ${(L.cv[i] * 100).toFixed(0)}%`, s: L.cs[i], e: L.ct[i] };
    }
    const i = upperBound(L.se, t);
    if (i < L.se.length && L.ss[i] <= t) {
      // Spans of one state back to back read as one: extend the hit over them.
      let lo = i, hi = i;
      while (lo > 0 && i - lo < 1e4 && L.st[lo - 1] === L.st[i] && L.se[lo - 1] === L.ss[lo]) lo--;
      while (hi < L.ss.length - 1 && hi - i < 1e4 && L.st[hi + 1] === L.st[i] && L.ss[hi + 1] === L.se[hi]) hi++;
      return { L, title: STATES[L.st[i]].label, s: L.ss[lo], e: L.se[hi] };
    }
    if (L.cur >= 0 && t >= L.curT && t <= now) return { L, title: STATES[L.cur].label, s: L.curT, e: now, open: this._live };
    if (L.endT != null && t > L.endT) return { L, title: "done", s: L.endT, e: null };
    return null;
  }

  _showTip() {
    const h = this._hover && this._hit(this._hover.x, this._hover.y);
    const tip = this.tip;
    if (!h || this._ptrs.size) { tip.hidden = true; return; }
    const line = (cls, text) => { const d = el("div", cls); d.textContent = text; return d; };
    const when = h.e == null ? `since ${ms(h.s)} ms`
      : h.e === h.s ? `at ${ms(h.s)} ms`
        : `${ms(h.s)} – ${ms(h.e)} ms (${ms(h.e - h.s)} ms${h.open ? ", still open" : ""})`;
    tip.replaceChildren(line("gantt-tip-lane", h.L.name + (h.L.tid != null ? ` (tid ${h.L.tid})` : "")),
      line("gantt-tip-what", h.title), ...(h.text != null ? [line("gantt-tip-text", h.text)] : []), line("gantt-tip-time", when));
    tip.hidden = false;
    const { x, y } = this._hover, tw = tip.offsetWidth, th = tip.offsetHeight;
    tip.style.left = `${Math.max(0, Math.min(x + 12, this._w - tw - 2))}px`;
    tip.style.top = `${y + 16 + th > this._h ? Math.max(0, y - th - 8) : y + 16}px`;
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
      font: cs.fontFamily || "sans-serif",
    };
  }

  _draw() {
    if (this._raf === -1) return;
    this._raf = 0;
    const started = performance.now();
    const LH = this.opt.laneHeight, g = this.opt.gutter, lanes = this._order;
    const barH = LH - 19; // 13 px at the default 32 px lane; presenter mode's taller lanes get thicker bars
    const w = this.plot.clientWidth, h = AXIS_H + lanes.length * LH, dpr = window.devicePixelRatio || 1;
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
    const iA = Math.max(0, Math.floor((y0 - AXIS_H) / LH)), iB = Math.min(lanes.length, Math.ceil((y1 - AXIS_H) / LH));
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.save();
    ctx.beginPath(); ctx.rect(0, y0, w, y1 - y0); ctx.clip();
    ctx.clearRect(0, y0, w, y1 - y0);

    // Lane backgrounds and names.
    for (let i = iA; i < iB; i++) {
      const L = lanes[i], y = AXIS_H + i * LH;
      if (i % 2) { ctx.fillStyle = C.stripe; ctx.fillRect(0, y, w, LH); }
      ctx.fillStyle = C.fg; ctx.font = `12px ${C.font}`; ctx.textBaseline = "middle";
      if (!L.label) L.label = this._fitText(ctx, L.name, g - 12);
      ctx.fillText(L.label, 6, y + 15);
      if (L.tid != null) { ctx.fillStyle = C.muted; ctx.font = `10px ${C.font}`; ctx.fillText(`tid ${L.tid}`, 6, y + 27); }
    }

    // Axis and grid: ~1 tick per 90 px, at 1/2/5 x 10^n ns.
    const target = (t1 - t0) * 90 / pw, p = 10 ** Math.floor(Math.log10(target));
    const step = [1, 2, 5, 10].map((m) => m * p).find((s) => s >= target);
    const unitS = step >= 1e9, unit = unitS ? 1e9 : 1e6;
    const dec = Math.max(0, -Math.floor(Math.log10(step / unit) + 1e-9));
    ctx.font = `11px ${C.font}`; ctx.textBaseline = "middle"; ctx.textAlign = "center";
    for (let t = Math.ceil(t0 / step) * step; t <= t1; t += step) {
      const x = Math.round(X(t)) + 0.5;
      ctx.fillStyle = C.grid; ctx.fillRect(x - 0.5, AXIS_H - 4, 1, h - AXIS_H + 4);
      ctx.fillStyle = C.muted;
      const label = t === 0 ? "0" : `${(t / unit).toFixed(dec)} ${unitS ? "s" : "ms"}`;
      const half = ctx.measureText(label).width / 2; // keep edge labels inside the canvas
      ctx.fillText(label, Math.max(g + half, Math.min(x, w - half - 2)), AXIS_H / 2 - 1);
    }
    ctx.textAlign = "left";
    ctx.fillStyle = C.grid; ctx.fillRect(0, AXIS_H - 1, w, 1); ctx.fillRect(g - 1, AXIS_H, 1, h - AXIS_H);

    // Lanes: clip to the plot so partial spans don't spill into the name gutter.
    ctx.save();
    ctx.beginPath(); ctx.rect(g, AXIS_H, pw, h - AXIS_H); ctx.clip();
    // State bars first, collected per colour and filled with one path each: switching
    // fillStyle per rectangle costs more than the rectangles themselves.
    const batch = STATES.map(() => []);
    for (let i = iA; i < iB; i++) this._drawStates(batch, lanes[i], AXIS_H + i * LH, t0, t1, X, g, g + pw, now);
    let rects = 0;
    batch.forEach((b, s) => {
      if (!b.length) return;
      ctx.beginPath();
      for (let j = 0; j < b.length; j += 3) ctx.rect(b[j], b[j + 1] + 11, b[j + 2], barH);
      ctx.fillStyle = C.states[s]; ctx.fill();
      rects += b.length / 3;
    });
    for (let i = iA; i < iB; i++) {
      const L = lanes[i], y = AXIS_H + i * LH;
      if (L.startT != null && !L.ss.length && L.cur < 0) {
        // No OS states for this lane (no /proc here): draw the lifetime the worker recorded.
        const a = Math.max(g, X(L.startT)), b = Math.min(g + pw, X(L.endT ?? now));
        if (b > a) { ctx.fillStyle = C.alive; ctx.fillRect(a, y + 11 + (barH - 7) / 2, Math.max(1, b - a), 7); rects++; }
      }
      this._drawCpu(ctx, L, y + LH - 7, 5, t0, t1, X);
      this._drawBrackets(ctx, L, y, X, now, t1);
      ctx.fillStyle = C.mark;
      let last = -1;
      for (let j = Math.max(0, upperBound(L.mt, t0 - 1)); j < L.mt.length && L.mt[j] <= t1; j++) {
        const x = Math.round(X(L.mt[j]));
        if (x === last) continue; // one triangle per pixel is enough
        last = x;
        ctx.beginPath(); ctx.moveTo(x - 3.5, y + 9); ctx.lineTo(x + 3.5, y + 9); ctx.lineTo(x, y + 14); ctx.fill();
      }
      if (L.endT != null && L.endT <= t1) { // faint "done" rest of the lane, and an end tick
        const x = Math.max(g, X(L.endT));
        ctx.fillStyle = C.states[DONE]; ctx.fillRect(x, y + 11 + Math.floor(barH / 2), g + pw - x, 1);
        ctx.fillRect(Math.round(X(L.endT)) - 1, y + 11, 2, barH);
      }
    }
    if (this._live && now >= t0 && now <= t1) {
      ctx.fillStyle = C.now; ctx.fillRect(Math.round(X(now)), AXIS_H, 1, h - AXIS_H);
    }
    ctx.restore();
    ctx.restore();

    const spans = this._closed + lanes.reduce((n, L) => n + (L.cur >= 0 ? 1 : 0), 0);
    const ds = this.el.dataset;
    ds.lanes = String(lanes.length);
    ds.spans = String(spans);
    if (rects > 0 && !this._drawn) { this._drawn = true; ds.drawn = "1"; }
    c.setAttribute("aria-label", `Gantt chart: ${lanes.length} thread${lanes.length === 1 ? "" : "s"}`);
    this.fitBtn.disabled = !this._view;
    if (this._hover) this._showTip();
    this.lastDrawMs = performance.now() - started;
    this.el.dispatchEvent(new CustomEvent("gantt:drawn", { bubbles: true, detail: { lanes: lanes.length, spans, ms: this.lastDrawMs } }));
  }

  // Collects the state bar of one lane as [x, y, width] triples in batch[state].
  // Spans under a pixel are summed per pixel column and the column gets its dominant
  // state, so 100k spans cost about one rectangle per pixel, not one per span.
  _drawStates(batch, L, y, t0, t1, X, xmin, xmax, now) {
    const acc = this._acc;
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

  _drawCpu(ctx, L, y, ch, t0, t1, X) {
    if (!L.ct.length) return;
    ctx.fillStyle = this._c.cpu;
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
  _drawBrackets(ctx, L, y, X, now, t1) {
    if (!L.brackets.length && !L.open.length) return;
    const C = this._c, t0 = this._range()[0], all = L.open.length ? [...L.brackets, ...L.open] : L.brackets;
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
        const tx = Math.max(x0, this.opt.gutter) + 3, room = x1 - tx - 3;
        if (room > 14) {
          const text = this._fitText(ctx, sp.label, room);
          const tw = ctx.measureText(text).width;
          ctx.fillStyle = C.bg; ctx.fillRect(tx - 1, y, tw + 2, 7.5); // children's labels cover their parents'
          ctx.fillStyle = C.fg; ctx.fillText(text, tx, y + 7);
        }
      }
    }
  }

  _fitText(ctx, text, width) {
    if (ctx.measureText(text).width <= width) return text;
    let lo = 0, hi = text.length;
    while (lo < hi) { const m = (lo + hi + 1) >> 1; if (ctx.measureText(text.slice(0, m) + "…").width <= width) lo = m; else hi = m - 1; }
    return lo ? text.slice(0, lo) + "…" : "";
  }
}
