// The room page: asks /api/rooms/<code> every second; when the instructor's
// latest run changes, the chart follows that run's WebSocket (as run.js does);
// when the class's runs change, htmx refreshes the class table (`room:class`).
// A learner's name is typed once and kept in localStorage.
import { Gantt } from "./gantt.js";

const root = document.getElementById("room");
const host = document.getElementById("room-chart");
const current = document.getElementById("room-current");
const POLL_MS = 1000;
const WHO_KEY = "playground:who";
const options = { legend: true, laneHeight: document.body.classList.contains("present") ? 56 : 32 };

let following = null; // { id, chart, socket, ended }
let classSeen = null;

// -- the learner's name ------------------------------------------------------------

const who = document.getElementById("room-who");
if (who) {
  who.value = localStorage.getItem(WHO_KEY) || "";
  who.addEventListener("input", () => localStorage.setItem(WHO_KEY, who.value.trim()));
}
const recipe = document.getElementById("class-recipe");
const roomRecipe = document.getElementById("room-recipe");
for (const input of [recipe, roomRecipe]) {
  if (input) input.addEventListener("input", () => { input.dataset.edited = "1"; });
}

// -- following the instructor's run ---------------------------------------------------

function follow(run) {
  if (following) {
    if (!following.ended) following.socket.close();
    following.chart.destroy();
  }
  const chart = new Gantt(host, options);
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}/runs/${run.id}/events`);
  const me = { id: run.id, chart, socket, ended: false };
  following = me;
  host.dataset.run = run.id;
  socket.addEventListener("message", (message) => {
    const msg = JSON.parse(message.data);
    if (msg.type === "hello" || msg.type === "status") chart.setLive(msg.state === "queued" || msg.state === "running");
    else if (msg.type === "events") chart.addEvents(msg.events);
    else if (msg.type === "end") {
      me.ended = true;
      chart.setLive(false);
      chart.fit();
      socket.close(); // the client closes: DESIGN.md, WebSocket rules
    }
  });
}

function describe(run) {
  const parts = [];
  const link = document.createElement("a");
  link.href = run.url;
  link.textContent = run.experiment;
  parts.push(link, " ");
  for (const [k, v] of Object.entries(run.params)) {
    if (k === "python") continue;
    const code = document.createElement("code");
    code.textContent = `${k}=${v}`;
    parts.push(code, " ");
  }
  parts.push(`· ${run.state.replace("_", " ")}`);
  current.replaceChildren(...parts);
}

function update(room) {
  const run = room.current;
  if (run) {
    describe(run);
    if (!following || following.id !== run.id) {
      follow(run);
      for (const input of [recipe, roomRecipe]) {
        if (input && !input.dataset.edited) input.value = run.recipe; // learners start from the instructor's setup
      }
    }
  }
  const signature = JSON.stringify(room.class.map((r) => [r.run, r.state, r.held]));
  if (classSeen !== null && signature !== classSeen) {
    document.body.dispatchEvent(new CustomEvent("room:class", { bubbles: true }));
  }
  classSeen = signature;
}

async function poll() {
  try {
    const response = await fetch(root.dataset.api, { headers: { Accept: "application/json" } });
    if (response.ok) {
      update(await response.json());
      delete root.dataset.offline;
    } else root.dataset.offline = String(response.status);
  } catch {
    root.dataset.offline = "1"; // the server restarts, the wifi drops: keep asking
  }
  setTimeout(poll, POLL_MS);
}

poll();
