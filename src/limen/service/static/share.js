// Guest code: share the message (the phone's share sheet where there is one) or copy it.
"use strict";
(function () {
  const text = document.getElementById("share-text");
  if (!text) return;
  const share = document.getElementById("share-btn");
  if (!navigator.share) share.hidden = true;
  share.addEventListener("click", () => navigator.share({text: text.value}).catch(() => {}));
  document.getElementById("copy-btn").addEventListener("click", async () => {
    try { await navigator.clipboard.writeText(text.value); } catch (e) { text.select(); document.execCommand("copy"); }
    const copy = document.getElementById("copy-btn");
    copy.textContent = copy.dataset.tCopied || "Copied";
  });
})();
