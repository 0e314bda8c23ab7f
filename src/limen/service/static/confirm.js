// Destructive forms (class "confirm", text in data-confirm) ask once before they are sent.
"use strict";
document.querySelectorAll("form.confirm").forEach((form) => {
  form.addEventListener("submit", (event) => {
    if (!window.confirm(form.dataset.confirm || "Are you sure?")) event.preventDefault();
  });
});
