// gantt_primitives.js: what the chart knows about the run's locks, semaphores,
// events and queues (event kinds P, W/U, A/R, C, F; see docs/events.md) and the
// process-wide busy-cores line (`cores` on lane -1). Data only: gantt_rows.js draws it.
//
// A hold (A..R) or a wait (W..U) is one object {s, e, id, lane, inf, d}, kept in two
// lists at once: its lane's (drawn in that lane) and its primitive's (the primitive's
// row, "held by whom at t" for tooltips, which lanes touched it for highlighting).

// Types a thread can hold: their holders get a strip under their lane.
export const HOLDABLE = new Set(["Lock", "RLock", "Semaphore", "BoundedSemaphore", "Condition"]);
const COUNTED = new Set(["Semaphore", "BoundedSemaphore", "Queue", "Barrier", "counter"]);
const CORES_MAX_WINDOW = 100e6; // ns: after a gap in the samples, assume no more than this
const CORES_MIN_WINDOW = 10e6;  // ns: the sampler's shortest window, for the first sample

// Spans sorted by start. `maxDur` bounds how far before t0 a closed span visible at t0
// can start, so a visit is a binary search plus the visible spans, even with 100k spans.
export class SpanList {
  constructor() { this.items = []; this.open = new Set(); this.maxDur = 0; }

  add(sp) {
    const a = this.items;
    let i = a.length;
    while (i > 0 && a[i - 1].s > sp.s) i--; // per-lane order is promised; across lanes it is nearly so
    if (i === a.length) a.push(sp); else a.splice(i, 0, sp);
    this.open.add(sp);
  }

  close(sp, t) {
    this.open.delete(sp);
    sp.e = Math.max(t, sp.s);
    if (sp.e - sp.s > this.maxDur) this.maxDur = sp.e - sp.s;
  }

  openWith(id) { for (const sp of this.open) if (sp.id === id) return sp; return null; }

  // fn(sp) for every span overlapping [t0, t1]; open spans (e === null) count as reaching t1.
  visit(t0, t1, fn) {
    const a = this.items, from = t0 - this.maxDur;
    let lo = 0, hi = a.length;
    while (lo < hi) { const m = (lo + hi) >> 1; if (a[m].s < from) lo = m + 1; else hi = m; }
    for (let i = lo; i < a.length && a[i].s <= t1; i++) { const sp = a[i]; if (sp.e === null || sp.e >= t0) fn(sp); }
    for (const sp of this.open) if (sp.s < from) fn(sp); // open for longer than any closed one
  }

  // Spans covering t (open ones reach `now`), innermost (latest start) last.
  at(t, now) {
    const out = [];
    this.visit(t, t, (sp) => { if (sp.s <= t && t <= (sp.e ?? now)) out.push(sp); });
    return out;
  }
}

export class Primitives {
  constructor() {
    this.byKey = new Map(); // primitive id, or "counter:<name>" for a counter without one
    this.rows = [];         // records in the order they appeared: one row each under the lanes
    this.holdable = false;  // some lane may hold something: lanes get a hold strip
    this.holds = 0;         // A events taken (for data-holds)
    this.waits = 0;         // W events taken
    this.cores = { s: [], t: [], v: [], max: 0 }; // busy-cores windows: start, end, value
  }

  // Gives a new lane record its hold and wait lists.
  newLane(L) { L.holds = new SpanList(); L.waits = new SpanList(); return L; }

  _rec(key, id, type, name) {
    let p = this.byKey.get(key);
    if (p) return p;
    p = {
      key, id, type, name, bound: null, parties: null, maxsize: null,
      lanes: new Set(), holds: new SpanList(), waits: new SpanList(),
      cT: [], cV: [], cMax: 0, // counter samples
      fT: [], fV: [],          // Event set (true) / clear (false)
    };
    this.byKey.set(key, p);
    this.rows.push(p);
    return p;
  }

  // A primitive named before its P event (not promised, but cheap to survive).
  _byId(id) { return this.byKey.get(id) || this._rec(id, id, "primitive", `#${id}`); }

  define(d) {
    if (!d || d.id == null) return;
    const p = this._rec(d.id, d.id, String(d.type ?? "primitive"), String(d.name ?? `#${d.id}`));
    if (d.type != null) p.type = String(d.type);
    if (d.name != null) p.name = String(d.name);
    for (const k of ["bound", "parties", "maxsize"]) if (Number.isFinite(d[k])) p[k] = d[k];
    if (HOLDABLE.has(p.type)) this.holdable = true;
  }

  counter(t, d) {
    if (!d || typeof d.value !== "number" || !Number.isFinite(d.value)) return;
    const p = d.id != null ? this._byId(d.id) : this._rec(`counter:${d.name}`, null, "counter", String(d.name ?? "counter"));
    if (p.type === "primitive") p.type = "counter";
    const n = p.cT.length;
    if (n && t < p.cT[n - 1]) t = p.cT[n - 1]; // samples come from several threads: keep the line monotonic
    p.cT.push(t); p.cV.push(d.value);
    if (d.value > p.cMax) p.cMax = d.value;
  }

  flag(t, d) {
    if (!d || d.id == null) return;
    const p = this._byId(d.id), n = p.fT.length;
    p.fT.push(n && t < p.fT[n - 1] ? p.fT[n - 1] : t); p.fV.push(!!d.set);
  }

  addCores(t, v) {
    if (typeof v !== "number" || !Number.isFinite(v)) return;
    const c = this.cores, n = c.t.length, prev = n ? c.t[n - 1] : null;
    if (prev !== null && t <= prev) return; // one window per instant, in order
    c.s.push(prev === null || t - prev > CORES_MAX_WINDOW ? Math.max(0, t - CORES_MIN_WINDOW) : prev);
    c.t.push(t); c.v.push(Math.max(0, v));
    if (v > c.max) c.max = v;
  }

  // inferred: named from frame references at a deadlock; sampled: a plain Lock's holder read from outside.
  acquire(L, t, id, inferred, sampled) {
    if (id == null || L.holds.openWith(id)) return; // a second A for a held id: re-entry, one bar
    const p = this._byId(id);
    const sp = { s: t, e: null, id, lane: L.lane, inf: !!inferred, smp: !!sampled, d: L.holds.open.size };
    L.holds.add(sp); p.holds.add(sp); p.lanes.add(L.lane);
    this.holdable = true; this.holds++;
  }

  release(L, t, id) {
    const sp = L.holds.openWith(id);
    if (!sp) return;
    L.holds.close(sp, t); this._byId(id).holds.close(sp, t);
  }

  wait(L, t, id) {
    if (id == null || L.waits.openWith(id)) return;
    const p = this._byId(id), sp = { s: t, e: null, id, lane: L.lane, inf: false, d: 0 };
    L.waits.add(sp); p.waits.add(sp); p.lanes.add(L.lane);
    this.waits++;
  }

  unwait(L, t, id) {
    const sp = L.waits.openWith(id);
    if (!sp) return;
    L.waits.close(sp, t); this._byId(id).waits.close(sp, t);
  }

  // A thread that ended waits for nothing more. Its holds stay open: a Lock whose
  // owner exits stays locked, and the chart should show that, not hide it.
  endLane(L, t) { for (const sp of [...L.waits.open]) this.unwait(L, t, sp.id); }

  // Holds of primitive `key` covering t: who owns it then.
  ownersAt(key, t, now) { const p = this.byKey.get(key); return p ? p.holds.at(t, now) : []; }

  // Lanes that waited for or held it: what hovering it highlights.
  touched(key) { const p = this.byKey.get(key); return p ? [...p.lanes].sort((a, b) => a - b) : []; }

  // How a row draws a primitive.
  static kind(p) {
    if (p.fT.length || p.type === "Event") return "event";
    if (p.cT.length || COUNTED.has(p.type)) return "counter";
    return "owner";
  }

  // The counter's reference line: a semaphore's bound, a queue's maxsize, a barrier's parties.
  static limit(p) {
    if (p.bound != null) return { v: p.bound, label: `bound ${p.bound}` };
    if (p.maxsize) return { v: p.maxsize, label: `maxsize ${p.maxsize}` };
    if (p.parties != null) return { v: p.parties, label: `${p.parties} parties` };
    return null;
  }
}
