// Replay of a finished run: the chart shows only the events up to the slider's
// time, played at the run's real pace or faster. run.js hands over its chart and
// every event it received (`run:ended`, bubbling from #run: the run view may have
// been swapped into the experiment page after this module loaded, see launch.js).
//
// Moving forward feeds the chart the next slice of events (cheap, every frame);
// moving back rebuilds it from the start up to the new time (one rebuild per
// scrub, not per frame). While replaying, the chart is "live" at the replay time:
// open states reach the cursor line, as they did when the run was live.
import { Gantt } from "./gantt.js";

const STEPS = 1000; // slider resolution

function upperBound(arr, v) {
  let lo = 0, hi = arr.length;
  while (lo < hi) { const mid = (lo + hi) >> 1; if (arr[mid] <= v) lo = mid + 1; else hi = mid; }
  return lo;
}

const fmt = (ns) => (ns >= 1e9 ? `${(ns / 1e9).toFixed(2)} s` : `${(ns / 1e6).toFixed(1)} ms`);

function setup(root, { chart, events, options }) {
  const panel = document.getElementById("replay");
  const valid = events.filter((ev) => Array.isArray(ev) && Number.isFinite(ev[0]));
  if (!valid.length || !panel) return;
  // By time; Array.prototype.sort is stable, so events of one instant keep their order.
  const sorted = valid.slice().sort((a, b) => a[0] - b[0]);
  const times = Float64Array.from(sorted, (ev) => ev[0]);
  const end = Math.max(times[times.length - 1], 1);
  const host = chart.el;
  const play = document.getElementById("replay-play");
  const speed = document.getElementById("replay-speed");
  const slider = document.getElementById("replay-slider");
  const out = document.getElementById("replay-time");
  const badge = document.getElementById("replay-badge");
  let gantt = chart, fed = sorted.length, t = end, playing = false, last = 0, raf = 0;

  function label() {
    const replaying = playing || t < end;
    badge.hidden = !replaying;
    host.dataset.replay = replaying ? "1" : "0";
    out.textContent = `${replaying ? "replay " : ""}${fmt(t)} / ${fmt(end)}`;
  }

  function show(time) {
    t = Math.min(end, Math.max(0, time));
    const n = upperBound(times, t);
    if (n < fed) { // back in time: start the chart over
      gantt.destroy();
      gantt = new Gantt(host, options);
      fed = 0;
      // Whoever holds the old chart (annotations.js) takes the new one.
      root.dispatchEvent(new CustomEvent("run:chart", { bubbles: true, detail: { chart: gantt } }));
    }
    if (n > fed) { gantt.addEvents(sorted.slice(fed, n)); fed = n; }
    gantt.setLive(t < end);
    gantt.setLiveTime(t);
    gantt.setRange(0, end);
    slider.value = String(Math.round((t / end) * STEPS));
    label();
  }

  function frame(now) {
    raf = 0;
    if (!playing) return;
    show(t + (now - last) * 1e6 * Number(speed.value)); // ms of wall clock -> ns of run time
    last = now;
    if (t >= end) stop();
    else raf = requestAnimationFrame(frame);
  }

  function stop() {
    playing = false;
    play.textContent = "Replay";
    cancelAnimationFrame(raf);
    raf = 0;
    label();
  }

  play.addEventListener("click", () => {
    if (playing) { stop(); return; }
    if (t >= end) show(0);
    playing = true;
    play.textContent = "Pause";
    last = performance.now();
    label();
    raf = requestAnimationFrame(frame);
  });
  slider.addEventListener("input", () => show((Number(slider.value) / STEPS) * end));
  panel.hidden = false;
  label();
}

document.addEventListener("run:ended", (e) => setup(e.target, e.detail));
