// Owner page: enrol a face from the camera (a burst of frames) or from an uploaded video / burst of frames.
"use strict";
(function () {
  const form = document.getElementById("enrol-form");
  const video = document.getElementById("enrol-video");
  const out = document.getElementById("enrol-result");
  const cameraButton = document.getElementById("enrol-camera");

  const t = (key, fallback) => form.dataset["t" + key] || fallback;  // the page's language (data-t-*)

  function say(text, ok) {
    out.textContent = text;
    out.className = ok ? "notice" : "error";
  }

  function fields() {
    const data = new FormData();
    data.append("name", document.getElementById("enrol-name").value);
    data.append("purpose", document.getElementById("enrol-purpose").value);
    data.append("retention_days", document.getElementById("enrol-retention").value);
    data.append("consent", document.getElementById("enrol-consent").checked ? "true" : "false");
    if (form.dataset.userId) data.append("user_id", form.dataset.userId);  // an existing person
    return data;
  }

  async function send(data) {
    if (!form.reportValidity()) return;
    say(t("Working", "Enrolling… this takes a few seconds."), true);
    form.querySelectorAll("button").forEach((b) => { b.disabled = true; });
    let response;
    try {
      const password = form.querySelector('input[name="password"]');  // a face is a way in: step up first
      if (password && password.value) {
        const totp = form.querySelector('input[name="totp"]');
        response = await fetch("/api/step-up", {method: "POST", headers: {"Content-Type": "application/json",
                                                                          "X-CSRF-Token": LimenCamera.csrf()},
                                                body: JSON.stringify({password: password.value,
                                                                      totp: totp ? totp.value : ""})});
        password.value = "";
        if (!response.ok) {
          form.querySelectorAll("button").forEach((b) => { b.disabled = b.id === "enrol-camera" && !video.srcObject; });
          say(await LimenCamera.errorText(response), false);
          return;
        }
      }
      response = await fetch("/api/users/enrol", {method: "POST", body: data,
                                                  headers: {"X-CSRF-Token": LimenCamera.csrf()}});
    } catch (e) {
      form.querySelectorAll("button").forEach((b) => { b.disabled = b.id === "enrol-camera" && !video.srcObject; });
      say(t("Noanswer", "The lock does not answer; try again."), false);
      return;
    }
    form.querySelectorAll("button").forEach((b) => { b.disabled = b.id === "enrol-camera" && !video.srcObject; });
    if (!response.ok) {
      say(await LimenCamera.errorText(response), false);
      return;
    }
    const body = await response.json();
    let text = t("Done", "Enrolled {name}.").replace("{name}", body.name) + " (" + body.samples + ")";
    if (body.warnings && body.warnings.length) text += " " + body.warnings.join(" ");
    say(text, true);
    const link = document.createElement("a");
    link.href = "/owner/users/" + body.user_id;
    link.id = "enrolled-person";
    link.textContent = " → " + body.name;
    out.appendChild(link);
  }

  document.getElementById("camera-start").addEventListener("click", () => {
    LimenCamera.start(video).then(() => { cameraButton.disabled = false; say(t("Camera", "Camera ready."), true); })
      .catch((e) => say(e.message, false));
  });

  cameraButton.addEventListener("click", async () => {
    let frames;
    try {
      frames = await LimenCamera.burst(video, 8, 150);
    } catch (e) {
      say(e.message, false);
      return;
    }
    const data = fields();
    data.append("source", "camera");
    frames.forEach((blob, i) => data.append("files", blob, "camera" + i + ".jpg"));
    await send(data);
  });

  document.getElementById("enrol-upload").addEventListener("click", async () => {
    const files = document.getElementById("enrol-files").files;
    if (!files.length) {
      say(t("Nofiles", "Choose a short video or a burst of frames first."), false);
      return;
    }
    const data = fields();
    data.append("source", "upload");
    for (const f of files) data.append("files", f, f.name);
    await send(data);
  });
})();
