// The experiment page's Run, without a navigation. Loading /runs/<id> as a new
// document cost most of the time from the click to the first lane drawn
// (bench/live_path.py: the browser's navigation, the old page's teardown, the
// parse, the module graph, the first frame, all before the socket could open).
// Here the form is posted with fetch, exactly as the browser would post it (same
// body, same 303 to the run page, same delete cookie), the run's socket opens as
// soon as the answer's headers name the run, and the run page's <main> and
// <footer> from that same answer are swapped in while the socket connects. The
// address becomes /runs/<id> (pushState), so the link to share is the same; that
// page loaded directly (a shared link, a reload, Back then Forward) starts itself
// in run.js as before.
//
// Anything unexpected falls back to what the page did without this module: a
// refused form (422: the page with the errors beside the fields) or an error page
// is swapped in the same way, at the same address; a fetch that fails outright
// submits the form natively.
import { openSocket, startRun } from "./run.js";
import "./replay.js"; // they listen on the document for the run view's events
import "./annotations.js";

const RUN_PATH = /^\/runs\/([^/?#]+)$/;
let shownPath = location.pathname; // the page this document shows (htmx changes only the query)

document.addEventListener("submit", (e) => {
  const form = e.target;
  if (!(form instanceof HTMLFormElement) || form.id !== "run-form" || e.defaultPrevented) return;
  e.preventDefault();
  if (form.dataset.launching === "1") return; // one run per click, as a navigation would start
  form.dataset.launching = "1";
  launch(form).catch((error) => {
    location.assign(location.href); // a broken swap: load whatever the address now names
    throw error;
  });
});

// Back from a swapped-in run view, or Forward to it again after that (Chromium
// keeps a reloaded document's pushed entries same-document): the address names
// a page this document does not show, so load it. htmx must not handle that
// popstate: it would first save the run view as the experiment page's snapshot
// (its history cache) and swap it back in. This listener runs before htmx's
// (window.onpopstate, set once the document has loaded, after modules ran).
window.addEventListener("popstate", (e) => {
  if (location.pathname === shownPath) return;
  e.stopImmediatePropagation();
  location.reload();
});

async function launch(form) {
  let response;
  try {
    response = await fetch(form.action, { method: "POST", body: new URLSearchParams(new FormData(form)) });
  } catch {
    form.submit(); // not sent at all: let the browser post it (submit() fires no submit event)
    return;
  }
  const url = new URL(response.url);
  const run = response.ok && response.redirected && url.origin === location.origin && RUN_PATH.exec(url.pathname);
  // First thing: the server starts the run when its page has connected (supervisor: await_viewer).
  const socket = run ? openSocket(run[1]) : null;
  const page = new DOMParser().parseFromString(await response.text(), "text/html");
  if (run) {
    history.pushState({ run: run[1] }, "", url.href);
    shownPath = url.pathname;
  }
  swapIn(page);
  const root = document.getElementById("run");
  if (socket && root) startRun(root, socket);
  else if (socket) socket.close();
}

function swapIn(page) {
  document.title = page.title;
  const have = new Set(Array.from(document.querySelectorAll('link[rel="stylesheet"]'), (l) => l.href));
  for (const link of page.head.querySelectorAll('link[rel="stylesheet"]')) {
    if (!have.has(link.href)) document.head.append(link);
  }
  for (const tag of ["main", "footer"]) {
    const mine = document.querySelector(`body > ${tag}`);
    const theirs = page.querySelector(`body > ${tag}`);
    if (!mine || !theirs) continue;
    for (const script of theirs.querySelectorAll("script")) script.remove(); // their modules are loaded here already
    mine.replaceWith(theirs);
    window.htmx?.process(theirs); // the status line, result panel and footer refresh themselves through htmx
  }
  window.scrollTo(0, 0);
}
