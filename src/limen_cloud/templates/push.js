// "Notify this browser" on /account: register the service worker, subscribe with the cloud's VAPID key and
// hand the subscription to the cloud (same origin, the page's CSRF token in X-CSRF-Token) with the password (and
// authenticator code) typed beside the button: the cloud asks them again before a browser receives the alarms.
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
  var password = document.getElementById("push-password");
  var totp = document.getElementById("push-totp");  // present once an authenticator is enrolled
  button.addEventListener("click", function () {
    if (!password.value || (totp && !totp.value)) {
      state.textContent = totp ? "Type your password and authenticator code first." : "Type your password first.";
      return;
    }
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
      body.password = password.value;
      body.totp = totp ? totp.value : "";
      return fetch("/account/push", {method: "POST", credentials: "same-origin",
        headers: {"Content-Type": "application/json", "X-CSRF-Token": box.dataset.csrf},
        body: JSON.stringify(body)});
    }).then(function (answer) {
      if (answer.ok) {
        window.location.assign("/account?done=push-on");
        return;
      }
      if (totp) { totp.value = ""; }  // a code is taken once: type the next one
      return answer.json().catch(function () { return {}; }).then(function (refusal) {
        var why = typeof refusal.detail === "string" ? refusal.detail : "";
        throw new Error("the cloud refused it (" + answer.status + (why ? ": " + why : "") + ")");
      });
    }).catch(function (error) {
      state.textContent = "Not turned on: " + error.message;
      button.disabled = false;
    });
  });
}());
