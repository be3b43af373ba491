// The run page's controller: one WebSocket feeds the Gantt widget; the rest of
// the page (status line, result panel) is server-rendered and refreshed by htmx
// when this module dispatches `run:status` / `run:finished` on <body>.
//
// Two ways in: the run page loaded as a document (/runs/<id>, a shared link)
// starts itself below; the experiment page's Run (launch.js) swaps the run view
// in without a navigation and calls startRun with the socket it opened first.
import { Gantt } from "./gantt.js";

// Messages that arrive before the view exists (launch.js opens the socket while
// the run page's HTML is still on its way) wait in `early` for startRun.
export function openSocket(runId) {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}/runs/${runId}/events`);
  const early = [];
  const hold = (message) => early.push(message);
  socket.addEventListener("message", hold);
  socket.takeEarly = () => {
    socket.removeEventListener("message", hold);
    return early;
  };
  return socket;
}

export function startRun(root, socket = openSocket(root.dataset.runId)) {
  const runId = root.dataset.runId;
  // Presenter mode (presenter.js sets body.present before this runs): taller lanes.
  const options = {
    legend: true,
    laneHeight: document.body.classList.contains("present") ? 56 : 32,
    cores: Number(root.dataset.cores) || null, // the busy-cores row marks how many the machine has
  };
  const chart = new Gantt(root.querySelector("#chart"), options);
  const received = []; // every event, for replay.js once the run has ended
  let finished = false;

  function announce(name, detail) {
    document.body.dispatchEvent(new CustomEvent(name, { bubbles: true, detail }));
  }

  function onMessage(message) {
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
        offerDelete(runId);
        // Bubbles to the document, where replay.js and annotations.js listen (the view may be swapped in).
        root.dispatchEvent(new CustomEvent("run:ended", { bubbles: true, detail: { chart, events: received, options } }));
        break;
      case "error":
        root.dataset.error = msg.error;
        break;
    }
  }

  for (const message of socket.takeEarly()) onMessage(message);
  socket.addEventListener("message", onMessage);
  const lost = () => { if (!finished) root.dataset.disconnected = "1"; };
  socket.addEventListener("close", lost);
  if (socket.readyState === WebSocket.CLOSED) lost(); // closed before the view was swapped in
}

// Deletion: only the browser that started the run holds its token, in a cookie
// (the server marks the form data-deletable) or, from a script, in localStorage.
function offerDelete(runId) {
  const form = document.getElementById("delete-run");
  if (!form) return;
  const token = localStorage.getItem(`playground:delete:${runId}`);
  if (token) document.getElementById("delete-token").value = token;
  if (token || form.dataset.deletable === "1") form.hidden = false;
  form.addEventListener("submit", (e) => {
    if (!confirm("Delete this run and its recording for everyone?")) e.preventDefault();
  });
}

const root = document.getElementById("run");
if (root) startRun(root);
