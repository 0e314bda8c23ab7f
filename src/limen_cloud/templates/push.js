// "Notify this browser" on /account: register the service worker, subscribe with the cloud's VAPID key and
// hand the subscription to the cloud (same origin, the page's CSRF token in X-CSRF-Token).
(function () {
  "use strict";
  var box = document.getElementById("push");
  if (!box) { return; }
  var button = document.getElementById("push-on");
  var state = document.getElementById("push-state");
  if (!("serviceWorker" in navigator) || !("PushManager" in window) || !("Notification" in window)) {
    state.textContent = "This browser cannot receive web push.";
    button.disabled = true;
    return;
  }
  function bytes(b64url) {
    var b64 = b64url.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((b64url.length + 3) % 4);
    var raw = atob(b64), out = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) { out[i] = raw.charCodeAt(i); }
    return out;
  }
  button.addEventListener("click", function () {
    button.disabled = true;
    state.textContent = "Asking this browser…";
    Notification.requestPermission().then(function (permission) {
      if (permission !== "granted") { throw new Error("notifications are blocked for this site"); }
      return navigator.serviceWorker.register("/push-sw.js", {scope: "/"});
    }).then(function () {
      return navigator.serviceWorker.ready;
    }).then(function (registration) {
      return registration.pushManager.subscribe({userVisibleOnly: true, applicationServerKey: bytes(box.dataset.key)});
    }).then(function (subscription) {
      var body = subscription.toJSON();
      body.label = document.getElementById("push-label").value.slice(0, 100);
      return fetch("/account/push", {method: "POST", credentials: "same-origin",
        headers: {"Content-Type": "application/json", "X-CSRF-Token": box.dataset.csrf},
        body: JSON.stringify(body)});
    }).then(function (answer) {
      if (!answer.ok) { throw new Error("the cloud refused it (" + answer.status + ")"); }
      window.location.assign("/account?done=push-on");
    }).catch(function (error) {
      state.textContent = "Not turned on: " + error.message;
      button.disabled = false;
    });
  });
}());
