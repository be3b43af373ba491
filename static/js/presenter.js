// Presenter mode: large type and tall lanes, readable from the back of a room,
// and keys for the person at the front: r run, p replay, n / b next / previous
// experiment. `?present=1` turns it on (and `?present=0` off) for this browser;
// the header's Presenter button toggles it. Loaded (deferred) before the page's
// modules, so they see body.present when they build their charts.
(() => {
  const KEY = "playground:present";
  const body = document.body;
  const asked = new URLSearchParams(location.search).get("present");
  if (asked === "1") localStorage.setItem(KEY, "1");
  else if (asked === "0") localStorage.removeItem(KEY);
  const on = asked === "1" || (asked !== "0" && localStorage.getItem(KEY) === "1");
  body.classList.toggle("present", on);

  const toggle = document.getElementById("presenter-toggle");
  const mark = () => { if (toggle) toggle.setAttribute("aria-pressed", String(body.classList.contains("present"))); };
  mark();
  if (toggle) {
    toggle.addEventListener("click", () => {
      const now = !body.classList.contains("present");
      body.classList.toggle("present", now);
      if (now) localStorage.setItem(KEY, "1"); else localStorage.removeItem(KEY);
      mark();
      // Charts pick their lane height when built: the next page load (or a reload) shows it.
    });
  }

  function slugHere() {
    const m = location.pathname.match(/^\/experiments\/([^/]+)/);
    if (m) return decodeURIComponent(m[1]);
    const run = document.querySelector("[data-experiment]");
    return run ? run.dataset.experiment : null;
  }

  function step(delta) {
    const slugs = (body.dataset.catalog || "").split(" ").filter(Boolean);
    if (!slugs.length) return;
    const i = slugs.indexOf(slugHere());
    const next = i < 0 ? (delta > 0 ? 0 : slugs.length - 1) : (i + delta + slugs.length) % slugs.length;
    location.assign(`/experiments/${encodeURIComponent(slugs[next])}`);
  }

  const actions = {
    r: () => {
      const form = document.getElementById("run-form") || document.getElementById("room-run-form");
      if (form) form.requestSubmit();
    },
    p: () => {
      const button = document.getElementById("replay-play");
      if (button && !button.closest("[hidden]")) button.click();
    },
    n: () => step(1),
    b: () => step(-1),
  };

  document.addEventListener("keydown", (e) => {
    if (!body.classList.contains("present") || e.ctrlKey || e.metaKey || e.altKey || e.repeat) return;
    const t = e.target;
    if (t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName))) return; // typing, not commanding
    const act = actions[e.key];
    if (act) { e.preventDefault(); act(); }
  });
})();
