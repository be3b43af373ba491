// The run page's controller: one WebSocket feeds the Gantt widget; the rest of
// the page (status line, result panel) is server-rendered and refreshed by htmx
// when this module dispatches `run:status` / `run:finished` on <body>.
import { Gantt } from "./gantt.js";

const root = document.getElementById("run");
const runId = root.dataset.runId;
const chart = new Gantt(document.getElementById("chart"), { legend: true });
let finished = false;

const scheme = location.protocol === "https:" ? "wss" : "ws";
const socket = new WebSocket(`${scheme}://${location.host}/runs/${runId}/events`);

function announce(name, detail) {
  document.body.dispatchEvent(new CustomEvent(name, { bubbles: true, detail }));
}

socket.addEventListener("message", (message) => {
  const msg = JSON.parse(message.data);
  switch (msg.type) {
    case "hello":
      chart.setLive(msg.state === "queued" || msg.state === "running");
      break;
    case "status":
      root.dataset.state = msg.state;
      chart.setLive(msg.state === "queued" || msg.state === "running");
      announce("run:status", msg);
      break;
    case "events":
      chart.addEvents(msg.events);
      break;
    case "result":
      root.dataset.state = msg.state;
      break;
    case "end":
      finished = true;
      chart.setLive(false);
      chart.fit();
      root.dataset.finished = "1";
      socket.close(); // the client closes: see DESIGN.md, WebSocket rules
      announce("run:status", {});
      announce("run:finished", {});
      break;
    case "error":
      root.dataset.error = msg.error;
      break;
  }
});

socket.addEventListener("close", () => {
  if (!finished) root.dataset.disconnected = "1";
});
