// The patient's upload: a progress bar while the file travels, then the scan's own page.
import { showError, uploadWithProgress } from "./api.js";

const form = document.getElementById("upload-form");
const box = document.getElementById("upload-progress");
const bar = document.getElementById("upload-bar");
const percent = document.getElementById("upload-percent");
const failure = document.getElementById("upload-error");
const button = form.querySelector("button[type=submit]");

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const file = form.elements.file.files[0];
  failure.hidden = true;
  if (!file) {
    failure.textContent = "Choose a file first.";
    failure.hidden = false;
    return;
  }
  // The server's own limit and sentence, rendered into the form: a file over it is not sent at all.
  if (file.size > Number(form.dataset.maxBytes)) {
    failure.textContent = form.dataset.tooLarge;
    failure.hidden = false;
    return;
  }
  const body = new FormData();
  body.append("file", file, file.name);
  button.disabled = true;
  box.hidden = false;
  try {
    const scan = await uploadWithProgress(form.action, body, (fraction) => {
      const value = Math.round(fraction * 100);
      bar.value = value;
      bar.textContent = `${value}%`;
      percent.textContent = value < 100 ? `${value}% sent` : "Sent; checking the file…";
    });
    location.assign(`${form.dataset.page}${scan.id}/`);
  } catch (error) {
    showError(failure, error);
    failure.hidden = false;
    box.hidden = true;
    button.disabled = false;
  }
});
