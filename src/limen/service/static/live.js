// Live lock state pushed by the server (server-sent events): no reloads.  Elements are optional per page.
// When the lock's history grows (a new audit record), the page's lists ([data-feed]: activity, recent,
// incidents) are fetched again as fragments and swapped in, keeping the page's filters.
"use strict";
(function () {
  const root = document.querySelector("[data-live]");
  if (!root || !window.EventSource) return;
  const $ = (id) => document.getElementById(id);
  const words = root.dataset.words ? JSON.parse(root.dataset.words) : {};
  const word = (w) => words[w] || w;
  function text(id, value) { const el = $(id); if (el) el.textContent = value; }
  function shown(id, on) { const el = $(id); if (el) el.hidden = !on; }
  let history = null;

  async function refresh(list) {
    const params = new URLSearchParams(window.location.search);
    params.set("limit", list.dataset.limit || "100");
    if (list.dataset.back) params.set("back_to", list.dataset.back);
    const response = await fetch("/owner/fragments/" + list.dataset.feed + "?" + params.toString(),
                                 {credentials: "same-origin", headers: {"Accept": "text/html"}});
    if (response.ok) {
      list.innerHTML = await response.text();
      list.dataset.updated = String(Date.now());
      document.dispatchEvent(new CustomEvent("limen:feed", {detail: list.dataset.feed}));
    }
  }

  const source = new EventSource(root.dataset.live);
  source.onmessage = (event) => {
    const s = JSON.parse(event.data);
    root.dataset.state = s.state;
    text("lock-state", word(s.state));
    if (s.door !== undefined) text("door-state", word(s.door));
    const relock = root.dataset.tRelock || "locks again in {s} s";
    text("relock-state", s.relock_in_s ? relock.replace("{s}", s.relock_in_s) : "");
    shown("lockdown-state", s.lockdown);
    if (s.lockdown_cause !== undefined) {  // the console: which lockdown, and what lifts it
      shown("lockdown-tamper", s.lockdown_cause === "tamper");
      shown("lockdown-command", s.lockdown_cause === "command");
      shown("lockdown-start", !s.lockdown);
    }
    shown("lockout-state", Boolean(s.locked_out_until));
    text("lockout-until", s.locked_out_until || "");
    if (s.history !== undefined) {
      if (history !== null && s.history !== history) {
        document.querySelectorAll("[data-feed]").forEach((list) => { refresh(list).catch(() => {}); });
      }
      history = s.history;
    }
    document.dispatchEvent(new CustomEvent("limen:live", {detail: s}));
  };
})();
