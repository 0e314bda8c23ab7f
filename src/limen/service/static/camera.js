// Camera helpers shared by the kiosk and the enrolment page (no build step, no dependencies).
"use strict";
window.LimenCamera = {
  // Start the camera in `video`; resolves to the stream, rejects with a message a person can act on.
  async start(video) {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      throw new Error("this browser cannot use a camera here (it needs https or localhost)");
    }
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({video: {width: 640, height: 480}, audio: false});
    } catch (err) {
      if (err && (err.name === "NotAllowedError" || err.name === "SecurityError")) {
        throw new Error("camera permission denied: allow the camera, or use the keypad");
      }
      throw new Error("no camera available: use the keypad");
    }
    video.srcObject = stream;
    await video.play().catch(() => {});
    return stream;
  },
  // Grab `count` JPEG frames `intervalMs` apart; rejects if the camera delivers no picture.
  async burst(video, count, intervalMs) {
    const frames = [];
    for (let i = 0; i < count; i++) {
      if (!video.videoWidth || !video.videoHeight) {
        await new Promise((r) => setTimeout(r, intervalMs));
        continue;
      }
      const canvas = document.createElement("canvas");
      canvas.width = video.videoWidth;
      canvas.height = video.videoHeight;
      canvas.getContext("2d").drawImage(video, 0, 0);
      const blob = await new Promise((r) => canvas.toBlob(r, "image/jpeg", 0.92));
      if (blob) frames.push(blob);
      if (i + 1 < count) await new Promise((r) => setTimeout(r, intervalMs));
    }
    if (frames.length === 0) throw new Error("the camera gives no picture: use the keypad");
    return frames;
  },
  csrf() {
    const meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  },
  async errorText(response) {
    try {
      const body = await response.json();
      return body.reason || body.message || ("error " + response.status);
    } catch (e) {
      return "error " + response.status;
    }
  },
};
