// gantt_input.js: everything the chart does with a pointer, a wheel, fingers and
// keys: zoom, pan, pinch, the tooltip (what is under the pointer, and where the
// box goes) and the hover highlight of a primitive's lanes. gantt.js owns the data
// and the view; this file only asks it for a new view or a highlight.

import { STATES, upperBound } from "./gantt_draw.js";
import { describeHold, describeWait, hitRows } from "./gantt_rows.js";

const TIP_PX = 4;   // px: how close the pointer must be to a mark
const DRAG_PX = 3;  // px of slack, so a plain click doesn't count as a pan (and stop the live auto-fit)
const ms = (ns) => (ns / 1e6).toFixed(3);

export class GanttInput {
  constructor(g) {
    this.g = g;
    this.hover = null;       // last pointer position, to refresh the tooltip as data arrives
    this.ptrs = new Map();   // active pointers (touch/mouse) for pan and pinch
    this.drag = null;
    this.pinch = null;
    const c = g.canvas;
    c.addEventListener("wheel", (e) => this.onWheel(e), { passive: false });
    c.addEventListener("pointerdown", (e) => this.onDown(e));
    c.addEventListener("pointermove", (e) => this.onMove(e));
    for (const t of ["pointerup", "pointercancel"]) c.addEventListener(t, (e) => this.onUp(e));
    c.addEventListener("pointerleave", (e) => {
      if (e.pointerType === "touch") return; // a finger lifts after a tap: keep what the tap showed
      this.hover = null; g.tip.hidden = true; g._hoverPrim(null);
    });
    c.addEventListener("dblclick", () => g.fit());
    c.addEventListener("keydown", (e) => this.onKey(e));
  }

  // ---------- zoom and pan ----------

  zoomAt(x, f) {
    const g = this.g, [a, b] = g._range(), pw = g._plotW(), px = Math.min(Math.max(x - g.opt.gutter, 0), pw);
    const t = a + (px / pw) * (b - a);
    g._setView(t - (t - a) * f, t + (b - t) * f);
  }

  pan(dx, from = this.g._range()) {
    const [a, b] = from, dt = (dx / this.g._plotW()) * (b - a);
    this.g._setView(a - dt, b - dt);
  }

  onWheel(e) {
    if (e.offsetX < this.g.opt.gutter) return; // over the names: let the page scroll
    e.preventDefault();
    const unit = e.deltaMode === 1 ? 16 : e.deltaMode === 2 ? 400 : 1;
    const dx = e.deltaX * unit, dy = e.deltaY * unit;
    if (e.shiftKey || Math.abs(dx) > Math.abs(dy)) this.pan(-(dx || dy));
    else this.zoomAt(e.offsetX, Math.exp(dy * 0.0015));
  }

  onDown(e) {
    if (e.button !== 0) return; // left button, pen or finger only
    try { this.g.canvas.setPointerCapture(e.pointerId); } catch { /* pointer already gone */ }
    this.ptrs.set(e.pointerId, e.offsetX);
    this.gesture(e.offsetY);
    this.g.tip.hidden = true;
  }

  // (Re)start the gesture from the pointers now down, so adding or lifting a finger doesn't jump.
  gesture(y) {
    const xs = [...this.ptrs.values()], view = this.g._range();
    this.drag = xs.length === 1 ? { x: xs[0], y, view } : null;
    this.pinch = xs.length >= 2 ? { d: Math.abs(xs[0] - xs[1]) || 1, mid: (xs[0] + xs[1]) / 2, view } : null;
  }

  onMove(e) {
    if (!this.ptrs.has(e.pointerId)) { this.hover = { x: e.offsetX, y: e.offsetY }; this.refresh(); return; }
    this.ptrs.set(e.pointerId, e.offsetX);
    const d = this.drag, g = this.g;
    if (d && (d.moved ||= Math.abs(e.offsetX - d.x) > DRAG_PX)) this.pan(e.offsetX - d.x, d.view);
    else if (this.pinch) {
      const [x0, x1] = [...this.ptrs.values()], p = this.pinch;
      const [a, b] = p.view, pw = g._plotW(), gut = g.opt.gutter;
      const f = p.d / (Math.abs(x0 - x1) || 1);     // fingers apart -> zoom in
      const t = a + ((p.mid - gut) / pw) * (b - a);  // time under the original midpoint...
      const r = (b - a) * f, mid = (x0 + x1) / 2;    // ...stays under the new midpoint
      const t0 = t - ((mid - gut) / pw) * r;
      g._setView(t0, t0 + r);
    }
  }

  onUp(e) {
    const d = this.drag;
    this.ptrs.delete(e.pointerId);
    this.gesture();
    // A tap (no drag) with a finger or pen is a touch screen's hover: show what is there.
    if (d && !d.moved && e.type === "pointerup" && e.pointerType !== "mouse") {
      this.hover = { x: e.offsetX, y: e.offsetY }; this.refresh();
    }
  }

  onKey(e) {
    const g = this.g, mid = g.opt.gutter + g._plotW() / 2; // zoom about the middle of the plot
    const step = g._plotW() * (e.shiftKey ? 0.6 : 0.2);
    const act = {
      "+": () => this.zoomAt(mid, 1 / 1.5), "=": () => this.zoomAt(mid, 1 / 1.5),
      "-": () => this.zoomAt(mid, 1.5), "_": () => this.zoomAt(mid, 1.5),
      ArrowLeft: () => this.pan(step), ArrowRight: () => this.pan(-step),
      "0": () => g.fit(), Home: () => g.fit(),
      Escape: () => { g.highlightLanes(null); this.g.tip.hidden = true; },
    }[e.key];
    if (act && !e.ctrlKey && !e.metaKey && !e.altKey) { e.preventDefault(); act(); }
  }

  // ---------- hit testing and tooltip ----------

  // What is under (x, y): { head, title, text?, s, e, open?, prim? } or null.
  hit(x, y) {
    const g = this.g, lay = g._layout(), gut = g.opt.gutter, LH = lay.LH;
    if (y < g.axisH) return null;
    const [a, b] = g._range(), k = g._plotW() / (b - a), now = g._now();
    const t = x < gut ? now : a + (x - gut) / k; // a row's name: say how it stands now
    if (y >= lay.lanesEnd) return hitRows(lay, g.prims, y, t, now, g._laneName, g.opt.cores);
    const li = Math.floor((y - g.axisH) / lay.rowH), L = g._order[li];
    if (!L || x < gut) return null;
    const ly = y - g.axisH - li * lay.rowH, head = L.name + (L.tid != null ? ` (tid ${L.tid})` : "");
    const withHead = (h) => h && { head, ...h };
    if (ly >= LH - 1) { // the hold strip: the innermost hold at t
      const hs = L.holds.at(t, now);
      return hs.length ? withHead(describeHold(g.prims, hs[hs.length - 1], now, g._laneName)) : null;
    }
    // Marks first: they are small and would otherwise be impossible to point at.
    let best = -1;
    for (let j = upperBound(L.mt, t - TIP_PX / k - 1); j < L.mt.length && L.mt[j] <= t + TIP_PX / k; j++) {
      if (best < 0 || Math.abs(L.mt[j] - t) < Math.abs(L.mt[best] - t)) best = j;
    }
    if (best >= 0) return { head, title: "mark", text: L.mx[best], s: L.mt[best], e: L.mt[best] };
    if (ly < 10) { // bracket row: the innermost labelled span around t
      let hit = null;
      for (const sp of [...L.brackets, ...L.open]) {
        if (sp.s <= t && t <= (sp.e ?? now) && (!hit || sp.d >= hit.d)) hit = sp;
      }
      if (hit) return { head, title: hit.label, s: hit.s, e: hit.e ?? now, open: hit.e == null && g._live };
    }
    if (ly > LH - 8 && L.ct.length) { // cpu track
      const i = upperBound(L.ct, t - 1);
      if (i < L.ct.length && L.cs[i] <= t) return { head, title: `CPU ${(L.cv[i] * 100).toFixed(0)}%`, s: L.cs[i], e: L.ct[i] };
    }
    const ws = L.waits.at(t, now); // a waiting span says what it waits for before it says "blocked"
    if (ws.length) return withHead(describeWait(g.prims, ws[ws.length - 1], t, now, g._laneName));
    const i = upperBound(L.se, t);
    if (i < L.se.length && L.ss[i] <= t) {
      // Spans of one state back to back read as one: extend the hit over them.
      let lo = i, hi = i;
      while (lo > 0 && i - lo < 1e4 && L.st[lo - 1] === L.st[i] && L.se[lo - 1] === L.ss[lo]) lo--;
      while (hi < L.ss.length - 1 && hi - i < 1e4 && L.st[hi + 1] === L.st[i] && L.ss[hi + 1] === L.se[hi]) hi++;
      return { head, title: STATES[L.st[i]].label, s: L.ss[lo], e: L.se[hi] };
    }
    if (L.cur >= 0 && t >= L.curT && t <= now) return { head, title: STATES[L.cur].label, s: L.curT, e: now, open: g._live };
    if (L.endT != null && t > L.endT) return { head, title: "done", s: L.endT, e: null };
    return null;
  }

  // Re-reads what is under the pointer (it moved, or data arrived): tooltip and highlight.
  refresh() {
    const g = this.g, tip = g.tip, h = this.hover && this.hit(this.hover.x, this.hover.y);
    g._hoverPrim(h && h.prim != null && !this.ptrs.size ? h.prim : null);
    if (!h || this.ptrs.size) { tip.hidden = true; return; }
    const line = (cls, text) => { const d = document.createElement("div"); d.className = cls; d.textContent = text; return d; };
    const when = h.e == null ? `since ${ms(h.s)} ms`
      : h.e === h.s ? `at ${ms(h.s)} ms`
        : `${ms(h.s)} – ${ms(h.e)} ms (${ms(h.e - h.s)} ms${h.open && g._live ? ", still open" : ""})`;
    tip.replaceChildren(line("gantt-tip-lane", h.head), line("gantt-tip-what", h.title),
      ...(h.text != null ? [line("gantt-tip-text", h.text)] : []), ...(h.note ? [line("gantt-tip-note", h.note)] : []),
      line("gantt-tip-time", when));
    tip.hidden = false;
    // Beside the pointer, flipped left or up where it would leave the chart.
    const { x, y } = this.hover, tw = tip.offsetWidth, th = tip.offsetHeight;
    tip.style.left = `${Math.max(0, Math.min(x + 12, g._w - tw - 2))}px`;
    tip.style.top = `${y + 16 + th > g._h ? Math.max(0, y - th - 8) : y + 16}px`;
  }
}
