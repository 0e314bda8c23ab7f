// The door screen: live preview, a burst of frames for face unlock, and an anti-peep PIN pad.
"use strict";
(function () {
  const video = document.getElementById("kiosk-video");
  const status = document.getElementById("camera-status");
  const faceButton = document.getElementById("face-unlock");
  const result = document.getElementById("result");
  const display = document.getElementById("pin-display");
  const pad = document.getElementById("keypad");
  const relock = document.getElementById("relock");
  const words = document.getElementById("kiosk").dataset;  // the page's language, from the server's catalogue
  const prompt = document.getElementById("prompt");
  const BURST = 5, INTERVAL_MS = 120, PIN_WINDOW_MS = 30000;  // PIN_WINDOW: thresholds.SECOND_FACTOR_WINDOW_S
  let typed = "";
  let busy = false;

  function show(opened, message) {
    result.textContent = message;
    result.className = "result " + (opened ? "opened" : "refused");
    result.dataset.opened = opened ? "1" : "0";
    clearTimeout(show.timer);
    show.timer = setTimeout(() => { result.textContent = ""; result.className = "result"; }, 8000);
  }

  // While the lock works (1-3 s for a face): say so and take no second press.
  function checking(on) {
    busy = on;
    faceButton.disabled = on || !video.srcObject;
    pad.querySelectorAll("button").forEach((b) => { b.disabled = on; });
    if (on) {
      clearTimeout(show.timer);
      result.textContent = words.tChecking;
      result.className = "result checking";
      delete result.dataset.opened;
    }
  }

  // After an opening: "locks again in 29 s", counting down (the lock relocks by itself).
  function countdown(seconds) {
    clearInterval(countdown.timer);
    if (!seconds) { relock.textContent = ""; return; }
    const end = Date.now() + seconds * 1000;
    const tick = () => {
      const left = Math.max(0, Math.round((end - Date.now()) / 1000));
      relock.textContent = left ? words.tRelock.replace("{s}", String(left)) : "";
      if (!left) clearInterval(countdown.timer);
    };
    tick();
    countdown.timer = setInterval(tick, 1000);
  }

  // A face recognised as a first factor: the lock holds it for this screen (server-side) for a short
  // window; the next keypad entry completes it.  Nothing here tells the server the face was "ok".
  function awaitPin(waiting) {
    clearTimeout(awaitPin.timer);
    pad.classList.toggle("awaiting", waiting);
    if (waiting) {
      result.dataset.awaiting = "1";
      awaitPin.timer = setTimeout(() => awaitPin(false), PIN_WINDOW_MS);
    } else {
      delete result.dataset.awaiting;
    }
  }

  function clearResult() {
    clearTimeout(show.timer);
    result.textContent = "";
    result.className = "result";
    delete result.dataset.opened;
  }

  async function post(url, init) {
    checking(true);
    let answer = null;
    try {
      const response = await fetch(url, init);
      answer = response.ok ? await response.json() : {opened: false, message: await LimenCamera.errorText(response)};
    } catch (e) {
      answer = {opened: false, message: words.tNoanswer};
    } finally {
      checking(false);
    }
    show(answer.opened, answer.message);
    if (answer.tries_left !== undefined) result.dataset.triesLeft = String(answer.tries_left);
    else delete result.dataset.triesLeft;
    countdown(answer.opened ? answer.relock_in_s : 0);
    awaitPin(Boolean(answer.awaiting_pin));
  }

  // Randomised challenge (RGB-only cameras, the owner's kiosk_challenge): the lock picks the moves and
  // keeps them; we prompt them one by one, facing the camera before and after, taking frames at each.
  // The preview is mirrored, so a move "left" in the camera image is the person's own right.
  const PROMPT = {left: words.tRight, right: words.tLeft, up: words.tUp};
  const STEP_FRAMES = 2, STEP_MS = 900, STEP_GAP_MS = 250;  // 5 steps × 2 = 10 frames (SERVICE_MAX_UNLOCK_FRAMES)

  async function challengeBurst() {
    const response = await fetch("/api/kiosk/challenge", {method: "POST"});
    if (!response.ok) throw new Error(await LimenCamera.errorText(response));
    const challenge = await response.json();
    const frames = [];
    try {
      for (const step of [null, ...challenge.moves, null]) {
        prompt.textContent = step ? PROMPT[step] : words.tFace;
        prompt.hidden = false;
        await new Promise((r) => setTimeout(r, STEP_MS - STEP_FRAMES * STEP_GAP_MS));
        frames.push(...await LimenCamera.burst(video, STEP_FRAMES, STEP_GAP_MS));
      }
    } finally {
      prompt.hidden = true;
      prompt.textContent = "";
    }
    return {frames, id: challenge.id, intervalMs: Math.round(STEP_MS / STEP_FRAMES)};
  }

  async function faceUnlock() {
    if (busy) return;
    clearResult();
    let taken;
    try {
      if (words.challenge) {
        busy = true;
        faceButton.disabled = true;
        taken = await challengeBurst();
      } else {
        checking(true);
        taken = {frames: await LimenCamera.burst(video, BURST, INTERVAL_MS), id: "", intervalMs: INTERVAL_MS};
      }
    } catch (e) {
      checking(false);
      show(false, e.message);
      return;
    }
    const form = new FormData();
    taken.frames.forEach((blob, i) => form.append("frames", blob, "frame" + i + ".jpg"));
    form.append("interval_ms", String(taken.intervalMs));
    if (taken.id) form.append("challenge", taken.id);
    await post("/api/kiosk/unlock", {method: "POST", body: form});
  }

  // Anti-peep keypad: the digit layout is shuffled on every entry and the display only shows dots.
  function shuffled() {
    const digits = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];
    const rnd = new Uint32Array(digits.length);
    crypto.getRandomValues(rnd);
    for (let i = digits.length - 1; i > 0; i--) {
      const j = rnd[i] % (i + 1);
      [digits[i], digits[j]] = [digits[j], digits[i]];
    }
    return digits;
  }

  function renderPad() {
    pad.innerHTML = "";
    const keys = shuffled();
    keys.splice(9, 0, "*");
    keys.push("⌫", "OK");
    for (const k of keys) {
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = k;
      b.dataset.key = k;
      b.className = "key" + (k === "OK" ? " ok" : "");
      pad.appendChild(b);
    }
  }

  function refreshDisplay() {
    display.textContent = typed ? "•".repeat(typed.length) : "\u00a0";
  }

  pad.addEventListener("click", async (ev) => {
    const key = ev.target && ev.target.dataset ? ev.target.dataset.key : null;
    if (!key) return;
    clearResult();
    if (key === "⌫") typed = typed.slice(0, -1);
    else if (key === "OK") {
      if (!typed || busy) return;
      const entry = typed;
      typed = "";
      refreshDisplay();
      renderPad();
      await post("/api/kiosk/keypad", {method: "POST", headers: {"Content-Type": "application/json"},
                                       body: JSON.stringify({entry})});
      return;
    } else if (typed.length < 32) typed += key;
    refreshDisplay();
  });

  // Pushed lock state: a relock countdown started elsewhere (the owner's remote unlock) shows here too.
  document.addEventListener("limen:live", (event) => {
    const s = event.detail;
    if (s.relock_in_s && !relock.textContent) countdown(s.relock_in_s);
    if (!s.relock_in_s && s.state === "locked") countdown(0);
  });

  faceButton.addEventListener("click", faceUnlock);
  renderPad();
  refreshDisplay();
  LimenCamera.start(video).then(() => {
    status.textContent = words.tReady;
    faceButton.disabled = false;
  }).catch((e) => {
    status.textContent = e.message;
    faceButton.disabled = true;
  });
})();
