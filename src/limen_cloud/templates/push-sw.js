// limen-cloud's service worker: an alarm pushed to this browser becomes a notification (lock, kind, time);
// clicking it opens the alarms page.  The payload carries no person and no biometric data.
self.addEventListener("push", function (event) {
  var alarm = {};
  try { alarm = event.data ? event.data.json() : {}; } catch (e) { alarm = {}; }
  var title = "Limen alarm: " + (alarm.lock || "one of your locks");
  var body = (alarm.kind || "alarm") + (alarm.at ? " at " + alarm.at : "");
  event.waitUntil(self.registration.showNotification(title, {
    body: body, tag: "limen-alarm-" + (alarm.alarm_id || "new"), renotify: true,
    requireInteraction: alarm.severity === "critical", data: {url: "/alarms"}
  }));
});
self.addEventListener("notificationclick", function (event) {
  event.notification.close();
  event.waitUntil(self.clients.openWindow("/alarms"));
});
