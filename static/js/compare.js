// The compare page: two Gantt charts, each fed by its run's WebSocket. Once both
// runs have ended, both get the same view range (0 to the later run's last event),
// so equal widths mean equal times; the range is left on each chart as
// data-range="t0,t1" (ns) for tests and curious readers. Then `compare:finished`
// on <body> tells htmx to refresh the results table.
import { Gantt } from "./gantt.js";

const root = document.getElementById("compare");
const scheme = location.protocol === "https:" ? "wss" : "ws";
const sides = ["a", "b"].map((side) => follow(side, root.dataset[side]));

function follow(side, runId) {
  const host = document.getElementById(`chart-${side}`);
  const panel = document.getElementById(`side-${side}`);
  const state = panel.querySelector(".state-text");
  const s = { chart: new Gantt(host, { legend: true }), host, maxT: 0, ended: false };
  const socket = new WebSocket(`${scheme}://${location.host}/runs/${runId}/events`);
  const show = (value) => {
    panel.dataset.state = value;
    if (state) state.textContent = value.replace("_", " ");
  };
  socket.addEventListener("message", (message) => {
    const msg = JSON.parse(message.data);
    switch (msg.type) {
      case "hello":
      case "status":
        s.chart.setLive(msg.state === "queued" || msg.state === "running");
        show(msg.state);
        break;
      case "events":
        // The chart keeps its own maximum privately; this one is for the shared range.
        for (const ev of msg.events) if (Array.isArray(ev) && Number.isFinite(ev[0]) && ev[0] > s.maxT) s.maxT = ev[0];
        s.chart.addEvents(msg.events);
        break;
      case "result":
        show(msg.state);
        break;
      case "end":
        s.ended = true;
        s.chart.setLive(false);
        socket.close(); // the client closes: see DESIGN.md, WebSocket rules
        if (sides.every((x) => x.ended)) align();
        break;
      case "error":
        panel.dataset.error = msg.error;
        break;
    }
  });
  socket.addEventListener("close", () => { if (!s.ended) panel.dataset.disconnected = "1"; });
  return s;
}

function align() {
  const t1 = Math.max(1e6, ...sides.map((s) => s.maxT)); // at least 1 ms, as a chart's own fit
  for (const s of sides) {
    s.chart.setRange(0, t1);
    s.host.dataset.range = `0,${t1}`;
  }
  root.dataset.aligned = "1";
  document.body.dispatchEvent(new CustomEvent("compare:finished", { bubbles: true }));
}
