// The run's annotations (templates/_annotations.html, computed by playground/annotations.py):
// each button zooms the chart to the place it names and highlights its lanes; a second click
// shows the whole run again. run.js hands over the chart with `run:ended` (bubbling from #run,
// which launch.js may swap in after this module loaded). The buttons
// come from the server, and htmx replaces the result panel (buttons included) when a live run
// ends, so clicks are delegated from the document.
const PAD = 0.1; // share of the annotated stretch shown on each side of it
const MIN_PAD_NS = 1e6; // and at least 1 ms of context
let chart = null;
let pending = null; // a button clicked before the chart was handed over

function highlight(lanes) {
  if (typeof chart.highlightLanes === "function") chart.highlightLanes(lanes); // the chart may not have it yet
}

function select(button) {
  const section = button.closest("#annotations");
  const again = button.getAttribute("aria-pressed") === "true";
  for (const b of section.querySelectorAll("button[data-annotation]")) b.setAttribute("aria-pressed", "false");
  if (again) {
    chart.fit();
    highlight(null);
    delete section.dataset.active;
    delete section.dataset.range;
    return;
  }
  const t0 = Number(button.dataset.t0), t1 = Number(button.dataset.t1);
  if (!Number.isFinite(t0) || !Number.isFinite(t1)) return;
  const lanes = (button.dataset.lanes || "").split(" ").filter(Boolean).map(Number);
  const pad = Math.max((t1 - t0) * PAD, MIN_PAD_NS);
  const from = Math.max(0, t0 - pad), to = t1 + pad;
  chart.setRange(from, to);
  highlight(lanes.length ? lanes : null);
  button.setAttribute("aria-pressed", "true");
  section.dataset.active = button.dataset.annotation;
  section.dataset.range = `${Math.round(from)} ${Math.round(to)}`;
  document.getElementById("chart")?.scrollIntoView({ block: "nearest", behavior: "smooth" });
}

document.addEventListener("click", (e) => {
  const button = e.target instanceof Element && e.target.closest("#annotations button[data-annotation]");
  if (!button) return;
  if (chart) select(button);
  else pending = button; // the chart is still receiving the run: zoom once it has all of it
});

document.addEventListener("run:ended", (e) => {
  chart = e.detail.chart;
  if (pending && pending.isConnected) select(pending);
  pending = null;
});
// replay.js starts a new chart when the slider goes back in time.
document.addEventListener("run:chart", (e) => { chart = e.detail.chart; });
