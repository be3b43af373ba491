// gantt_rows.js: drawing and describing what gantt_primitives.js knows.
// In a lane: hold bars (a strip under the lane) and waiting spans (an outline on
// the state bar). Under the lanes: a "busy cores" row, then one row per primitive
// (who holds a lock, a semaphore's or queue's count against its bound, an Event's
// set/clear moments). The words are for someone who has never heard of a futex.

import { Primitives } from "./gantt_primitives.js";
import { fitText, upperBound } from "./gantt_draw.js";

const CORES_H = 44; // px: the busy-cores row
const ROW_H = 30;   // px: one primitive's row
const GAP = 6;      // px: between the lanes and the rows below them

const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;

// Where everything sits, top to bottom; gantt.js draws by it and gantt_input.js hit-tests by it.
export function layout(axisH, nLanes, LH, prims) {
  const strip = prims.holdable ? Math.max(10, Math.round(LH * 0.375)) : 0;
  const rowH = LH + strip;
  let y = axisH + nLanes * rowH;
  const lanesEnd = y;
  let cores = null;
  if (prims.cores.t.length) { cores = { y: y + GAP, h: CORES_H }; y = cores.y + CORES_H; }
  const rows = [];
  if (prims.rows.length) {
    y += GAP;
    for (const p of prims.rows) { rows.push({ p, y, h: ROW_H }); y += ROW_H; }
  }
  return { LH, strip, rowH, lanesEnd, cores, rows, h: y + (cores || rows.length ? 2 : 0) };
}

// A bar from a to b px; an inferred one (a Lock's owner guessed from the threads' frames) is dashed.
function bar(ctx, color, a, b, y, h, inferred) {
  const w = Math.max(1, b - a);
  if (!inferred) { ctx.fillStyle = color; ctx.fillRect(a, y, w, h); return; }
  ctx.globalAlpha = 0.3; ctx.fillStyle = color; ctx.fillRect(a, y, w, h); ctx.globalAlpha = 1;
  ctx.strokeStyle = color; ctx.lineWidth = 1; ctx.setLineDash([3, 2]);
  ctx.strokeRect(a + 0.5, y + 0.5, Math.max(0, w - 1), h - 1);
  ctx.setLineDash([]);
}

function label(ctx, text, a, b, y, color, xmin) {
  const tx = Math.max(a, xmin) + 3, room = b - tx - 3;
  if (room < 16) return;
  const s = fitText(ctx, text, room);
  if (s) { ctx.fillStyle = color; ctx.fillText(s, tx, y); }
}

// The lane's holds: bars in the strip under it, nested ones inset. Returns how many were drawn.
export function drawHolds(ctx, C, prims, L, y, lay, X, t0, t1, now, xmin, xmax) {
  if (!lay.strip || !L.holds.items.length) return 0;
  const top = y + lay.LH, H = lay.strip - 2;
  let n = 0, lastCol = -1;
  ctx.font = `9px ${C.font}`; ctx.textBaseline = "middle";
  L.holds.visit(t0, t1, (sp) => {
    const a = Math.max(xmin, X(sp.s)), b = Math.min(xmax, X(sp.e ?? now));
    if (b < a) return;
    if (b - a < 1 && Math.floor(a) === lastCol) return; // many tiny holds: one per pixel column
    lastCol = Math.floor(a);
    const inset = Math.min(sp.d * 2, H - 4);
    bar(ctx, C.hold, a, b, top + inset, H - inset, sp.inf);
    const p = prims.byKey.get(sp.id);
    if (p) label(ctx, p.name, a, b, top + inset + (H - inset) / 2 + 0.5, sp.inf ? C.fg : C.holdText, xmin);
    n++;
  });
  return n;
}

// The lane's waits: an outline around that stretch of the state bar, named when wide enough.
export function drawWaits(ctx, C, prims, L, barTop, barH, X, t0, t1, now, xmin, xmax) {
  if (!L.waits.items.length) return 0;
  let n = 0;
  ctx.font = `9px ${C.font}`; ctx.textBaseline = "middle";
  ctx.strokeStyle = C.wait; ctx.lineWidth = 2;
  L.waits.visit(t0, t1, (sp) => {
    const a = Math.max(xmin, X(sp.s)), b = Math.min(xmax, X(sp.e ?? now));
    if (b < a) return;
    ctx.strokeRect(a + 1, barTop + 1, Math.max(0, b - a - 2), barH - 2);
    const p = prims.byKey.get(sp.id);
    if (p) label(ctx, `waits for ${p.name}`, a + 1, b - 1, barTop + barH / 2 + 0.5, C.fg, xmin);
    n++;
  });
  return n;
}

function gutterText(ctx, C, name, sub, y, width) {
  ctx.textBaseline = "middle";
  ctx.fillStyle = C.fg; ctx.font = `12px ${C.font}`; ctx.fillText(fitText(ctx, name, width), 6, y + 10);
  ctx.fillStyle = C.muted; ctx.font = `10px ${C.font}`; ctx.fillText(fitText(ctx, sub, width), 6, y + 22);
}

// A step line: value v[i] from t[i] until the next sample (the last one until `end`).
// Samples within one pixel column become one vertical stroke (lowest to highest),
// so a queue sampled 100k times costs about one segment per pixel.
function stepLine(ctx, ts, vs, Y, X, t0, t1, end) {
  const i0 = Math.max(0, upperBound(ts, t0) - 1);
  if (i0 >= ts.length) return;
  let cx = X(ts[i0]), col = Math.floor(cx), cur = Y(vs[i0]), lo = cur, hi = cur, i = i0 + 1;
  ctx.beginPath(); ctx.moveTo(cx, cur);
  for (; i < ts.length && ts[i - 1] <= t1; i++) {
    const x = X(ts[i]), y = Y(vs[i]);
    if (Math.floor(x) === col) { lo = Math.min(lo, y); hi = Math.max(hi, y); cur = y; continue; }
    if (lo !== hi) { ctx.lineTo(cx, lo); ctx.lineTo(cx, hi); ctx.lineTo(cx, cur); }
    ctx.lineTo(x, cur); ctx.lineTo(x, y);
    cx = x; col = Math.floor(x); cur = lo = hi = y;
  }
  if (lo !== hi) { ctx.lineTo(cx, lo); ctx.lineTo(cx, hi); ctx.lineTo(cx, cur); }
  if (i === ts.length) ctx.lineTo(X(Math.max(end, ts[i - 1])), cur); // the last value holds until now
  ctx.stroke();
}

// Busy cores: process CPU time / wall time per sampler window, with the machine's cores dashed.
export function drawCores(ctx, C, prims, r, X, t0, t1, now, g, w, coresOpt) {
  const c = prims.cores, N = coresOpt > 0 ? coresOpt : Math.max(1, Math.round(c.max));
  const top = Math.max(N, c.max) * 1.12, y0 = r.y + r.h - 3, span = r.h - 8;
  const Y = (v) => y0 - (v / top) * span;
  ctx.fillStyle = C.stripe; ctx.fillRect(0, r.y, w, r.h);
  gutterText(ctx, C, "busy cores", "whole process", r.y + 4, g - 12);
  ctx.save();
  ctx.beginPath(); ctx.rect(g, r.y, w - g, r.h); ctx.clip();
  ctx.strokeStyle = C.muted; ctx.lineWidth = 1; ctx.setLineDash([4, 3]);
  ctx.beginPath(); ctx.moveTo(g, Math.round(Y(N)) + 0.5); ctx.lineTo(w, Math.round(Y(N)) + 0.5); ctx.stroke();
  ctx.setLineDash([]);
  ctx.fillStyle = C.muted; ctx.font = `10px ${C.font}`; ctx.textBaseline = "bottom";
  ctx.fillText(`${plural(N, "core")}`, g + 4, Math.round(Y(N)) - 1);
  ctx.beginPath();
  let lastT = -Infinity;
  for (let i = Math.max(0, upperBound(c.t, t0) - 1); i < c.t.length && c.s[i] <= t1; i++) {
    const y = Y(c.v[i]);
    if (c.s[i] > lastT + 1) ctx.moveTo(X(c.s[i]), y); else ctx.lineTo(X(c.s[i]), y); // a gap in sampling stays a gap
    ctx.lineTo(X(c.t[i]), y);
    lastT = c.t[i];
  }
  ctx.strokeStyle = C.cores; ctx.lineWidth = 1.5; ctx.stroke();
  ctx.restore();
}

// One primitive's row, drawn by what it is (see Primitives.kind).
export function drawRow(ctx, C, r, X, t0, t1, now, g, w, laneName) {
  const p = r.p, kind = Primitives.kind(p), lim = Primitives.limit(p);
  ctx.fillStyle = C.grid; ctx.fillRect(0, r.y + r.h - 1, w, 1);
  gutterText(ctx, C, p.name, p.type, r.y + 3, g - 12);
  ctx.save();
  ctx.beginPath(); ctx.rect(g, r.y, w - g, r.h); ctx.clip();
  ctx.font = `9px ${C.font}`; ctx.textBaseline = "middle";
  if (kind === "owner") {
    // Who holds it (a bar named after its owner) and, under it, whoever waits for it.
    p.holds.visit(t0, t1, (sp) => {
      const a = X(sp.s), b = X(sp.e ?? now);
      bar(ctx, C.hold, a, b, r.y + 4, 13, sp.inf);
      label(ctx, laneName(sp.lane), a, b, r.y + 11, sp.inf ? C.fg : C.holdText, g);
    });
    ctx.fillStyle = C.waitRow;
    p.waits.visit(t0, t1, (sp) => { const a = X(sp.s); ctx.fillRect(a, r.y + r.h - 9, Math.max(1, X(sp.e ?? now) - a), 5); });
  } else if (kind === "counter") {
    const vmax = Math.max(lim ? lim.v : 0, p.cMax, 1), y0 = r.y + r.h - 5, span = r.h - 10;
    const Y = (v) => y0 - (Math.min(v, vmax) / vmax) * span;
    if (lim) {
      ctx.strokeStyle = C.muted; ctx.lineWidth = 1; ctx.setLineDash([4, 3]);
      ctx.beginPath(); ctx.moveTo(g, Math.round(Y(lim.v)) + 0.5); ctx.lineTo(w, Math.round(Y(lim.v)) + 0.5); ctx.stroke();
      ctx.setLineDash([]);
      ctx.fillStyle = C.muted; ctx.textAlign = "right"; // named at the right end, where the line is free
      ctx.fillText(lim.label, w - 3, Math.round(Y(lim.v)) + 7); ctx.textAlign = "left";
    }
    ctx.strokeStyle = C.counter; ctx.lineWidth = 1.5;
    if (p.cT.length) stepLine(ctx, p.cT, p.cV, Y, X, t0, t1, now);
  } else {
    // An Event: shaded while set, a tick at every set or clear.
    for (let i = Math.max(0, upperBound(p.fT, t0) - 1); i < p.fT.length && p.fT[i] <= t1; i++) {
      const x = X(p.fT[i]);
      if (p.fV[i]) {
        ctx.globalAlpha = 0.25; ctx.fillStyle = C.hold;
        ctx.fillRect(x, r.y + 4, Math.max(1, X(i + 1 < p.fT.length ? p.fT[i + 1] : now) - x), r.h - 9);
        ctx.globalAlpha = 1;
      }
      ctx.fillStyle = C.fg; ctx.fillRect(Math.round(x) - 1, r.y + 3, 2, r.h - 7);
      ctx.fillText(p.fV[i] ? "set" : "clear", Math.round(x) + 3, r.y + 9);
    }
  }
  ctx.restore();
}

const names = (sps, laneName) => sps.map((sp) => laneName(sp.lane) + (sp.inf ? " (inferred)" : "")).join(", ");

const PLAIN_LOCK = "a plain Lock does not record its owner: the chart names one only where the sampler could tell who took it";

// The tooltip of a waiting span: what it waits for, and who holds that at t.
export function describeWait(prims, sp, t, now, laneName) {
  const p = prims.byKey.get(sp.id), owners = prims.ownersAt(sp.id, t, now).filter((h) => h.lane !== sp.lane);
  const what = p ? `${p.name} (${p.type})` : `primitive #${sp.id}`;
  // Nobody "holds" an Event, a Queue or a Barrier: say what the thread waits for instead.
  const why = { Event: "to be set", Queue: "(an item, or room for one)", Barrier: "(the other threads to arrive)" }[p?.type];
  return {
    title: why ? `waiting for ${what} ${why}`
      : `waiting for ${what}, held by ${owners.length ? names(owners, laneName) : "unknown owner"}`,
    note: !why && !owners.length && p?.type === "Lock" ? PLAIN_LOCK : null,
    s: sp.s, e: sp.e ?? now, open: sp.e == null, prim: sp.id,
  };
}

export function describeHold(prims, sp, now, laneName) {
  const p = prims.byKey.get(sp.id);
  return {
    title: `holds ${p ? `${p.name} (${p.type})` : `primitive #${sp.id}`}`,
    note: sp.inf ? "inferred: a plain Lock does not record its owner; this thread references it and does not wait for it"
      : sp.smp ? "read from outside: the Lock turned locked, or its wait ended, while no other thread could have taken it" : null,
    s: sp.s, e: sp.e ?? now, open: sp.e == null, prim: sp.id,
  };
}

// What is under the pointer in the rows below the lanes, or null.
export function hitRows(lay, prims, y, t, now, laneName, coresOpt) {
  const c = prims.cores;
  if (lay.cores && y >= lay.cores.y && y < lay.cores.y + lay.cores.h) {
    const i = upperBound(c.t, t - 1), N = coresOpt > 0 ? coresOpt : Math.max(1, Math.round(c.max));
    if (i >= c.t.length || c.s[i] > t) return { head: "busy cores", title: "no sample here", s: t, e: t };
    return { head: "busy cores", title: `${c.v[i].toFixed(2)} of ${plural(N, "core")} busy`, s: c.s[i], e: c.t[i] };
  }
  const r = lay.rows.find((row) => y >= row.y && y < row.y + row.h);
  if (!r) return null;
  const p = r.p, kind = Primitives.kind(p), used = [...p.lanes].sort((a, b) => a - b).map(laneName);
  const out = { head: `${p.name} (${p.type})`, prim: p.key, note: used.length ? `used by ${used.join(", ")}` : null, s: t, e: t };
  if (kind === "owner") {
    const owners = p.holds.at(t, now), waiting = p.waits.at(t, now);
    out.title = owners.length ? `held by ${names(owners, laneName)}` : "free (or its owner is not known)";
    if (waiting.length) out.title += `; ${waiting.length} waiting: ${names(waiting, laneName)}`;
    if (owners.length) { const h = owners[owners.length - 1]; out.s = h.s; out.e = h.e ?? now; out.open = h.e == null; }
    return out;
  }
  const ts = kind === "counter" ? p.cT : p.fT, i = upperBound(ts, t) - 1;
  if (i < 0) { out.title = kind === "counter" ? "no count yet" : "not set yet"; return out; }
  out.s = ts[i]; out.e = i + 1 < ts.length ? ts[i + 1] : now;
  if (kind === "event") { out.title = p.fV[i] ? "set: waiters go on" : "clear: waiters wait"; return out; }
  const v = p.cV[i], lim = Primitives.limit(p);
  out.title = p.type === "Queue" ? `${plural(v, "item")} queued${p.maxsize ? ` (maxsize ${p.maxsize})` : ""}`
    : p.type.endsWith("Semaphore") ? `${plural(v, "free slot")}${p.bound != null ? ` of ${p.bound}` : ""}`
      : p.type === "Barrier" ? `${v} arrived${p.parties != null ? ` of ${p.parties}` : ""}`
        : `${p.name} = ${v}${lim ? ` (${lim.label})` : ""}`;
  return out;
}
