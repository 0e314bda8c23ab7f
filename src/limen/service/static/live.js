// Live lock state pushed by the server (server-sent events): no reloads.  Elements are optional per page.
"use strict";
(function () {
  const root = document.querySelector("[data-live]");
  if (!root || !window.EventSource) return;
  const $ = (id) => document.getElementById(id);
  function text(id, value) { const el = $(id); if (el) el.textContent = value; }
  function shown(id, on) { const el = $(id); if (el) el.hidden = !on; }
  const source = new EventSource(root.dataset.live);
  source.onmessage = (event) => {
    const s = JSON.parse(event.data);
    root.dataset.state = s.state;
    text("lock-state", s.state);
    if (s.door !== undefined) text("door-state", s.door);
    text("relock-state", s.relock_in_s ? "locks again in " + s.relock_in_s + " s" : "");
    shown("lockdown-state", s.lockdown);
    shown("lockout-state", Boolean(s.locked_out_until));
    text("lockout-until", s.locked_out_until || "");
    document.dispatchEvent(new CustomEvent("limen:live", {detail: s}));
  };
})();
