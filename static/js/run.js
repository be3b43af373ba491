// The run page's controller: one WebSocket feeds the Gantt widget; the rest of
// the page (status line, result panel) is server-rendered and refreshed by htmx
// when this module dispatches `run:status` / `run:finished` on <body>.
import { Gantt } from "./gantt.js";

const root = document.getElementById("run");
const runId = root.dataset.runId;
// Presenter mode (presenter.js sets body.present before this module runs): taller lanes.
const options = {
  legend: true,
  laneHeight: document.body.classList.contains("present") ? 56 : 32,
  cores: Number(root.dataset.cores) || null, // the busy-cores row marks how many the machine has
};
const chart = new Gantt(document.getElementById("chart"), options);
const received = []; // every event, for replay.js once the run has ended
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
      for (const ev of msg.events) received.push(ev);
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
      offerDelete();
      root.dispatchEvent(new CustomEvent("run:ended", { detail: { chart, events: received, options } }));
      break;
    case "error":
      root.dataset.error = msg.error;
      break;
  }
});

socket.addEventListener("close", () => {
  if (!finished) root.dataset.disconnected = "1";
});

// Deletion: only the browser that started the run holds its token, in a cookie
// (the server marks the form data-deletable) or, from a script, in localStorage.
function offerDelete() {
  const form = document.getElementById("delete-run");
  if (!form) return;
  const token = localStorage.getItem(`playground:delete:${runId}`);
  if (token) document.getElementById("delete-token").value = token;
  if (token || form.dataset.deletable === "1") form.hidden = false;
  form.addEventListener("submit", (e) => {
    if (!confirm("Delete this run and its recording for everyone?")) e.preventDefault();
  });
}
