// The patient's upload: a progress bar while the file travels, then the scan's own page.
import { showError, uploadWithProgress } from "./api.js";

const form = document.getElementById("upload-form");
const box = document.getElementById("upload-progress");
const bar = document.getElementById("upload-bar");
const percent = document.getElementById("upload-percent");
const failure = document.getElementById("upload-error");
const button = form.querySelector("button[type=submit]");
const fileInput = form.elements.file;

// The server names what is wrong with a file ("The file is empty."); a patient also needs to hear what to
// do about it. Refusals whose sentence already says so (a colour photo, a CT scan) are left as they are.
const CHOOSE_ANOTHER = "Choose another file: the MRI image or file the hospital gave you. "
  + "If you are not sure which file that is, ask the hospital.";
const TOO_BIG = "Ask the hospital for a smaller copy of your scan, such as a single MRI image from it.";
const NEXT_STEP = {
  empty: CHOOSE_ANOTHER,
  unreadable: CHOOSE_ANOTHER,
  unsupported_type: CHOOSE_ANOTHER,
  unsupported_compression: CHOOSE_ANOTHER,
  mixed_sizes: CHOOSE_ANOTHER,
  no_brain_slices: CHOOSE_ANOTHER,
  extreme_shape: CHOOSE_ANOTHER,
  too_many_frames: TOO_BIG,
  too_many_pixels: TOO_BIG,
  too_large: TOO_BIG,
  no_patient_record: "Ask the hospital to add it; then you can upload your scan here.",
};
// The upload's own refusals are worded for a person; these codes are the framework's, whose words are
// for developers ("CSRF Failed: CSRF cookie not set."), or ("error") an answer that was not the API's
// at all (a proxy's error page, a crash).
const FRAMEWORK_CODES = new Set(["error", "permission_denied", "parse_error", "invalid", "unsupported_media_type",
  "method_not_allowed", "not_acceptable", "throttled", "not_found"]);
const UNEXPECTED = "Something went wrong, and your file was not stored. "
  + "Reload this page and try again; if it keeps happening, contact the hospital.";

function revealFailure() {
  failure.hidden = false;
  // The button was disabled while the file travelled, which dropped the keyboard focus to the page:
  // back on the file field, the patient can choose another file at once (the alert is read out).
  fileInput.focus();
}

function refuse(sentence) {
  failure.textContent = sentence;
  revealFailure();
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const file = fileInput.files[0];
  failure.hidden = true;
  if (!file) {
    refuse("Choose a file first.");
    return;
  }
  // The server's own limit and sentence, rendered into the form: a file over it is not sent at all.
  if (file.size > Number(form.dataset.maxBytes)) {
    refuse(`${form.dataset.tooLarge} ${NEXT_STEP.too_large}`);
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
    // The same file uploaded again is not stored twice: its earlier scan's page says so ("already").
    location.assign(`${form.dataset.page}${scan.id}/${scan.duplicate ? "?already=1" : ""}`);
  } catch (error) {
    box.hidden = true;
    button.disabled = false;
    if (FRAMEWORK_CODES.has(error.code)) {
      refuse(UNEXPECTED);
      return;
    }
    showError(failure, error);  // keeps its "Sign in again" link when the sign-in ended
    if (NEXT_STEP[error.code]) failure.append(` ${NEXT_STEP[error.code]}`);
    revealFailure();
  }
});
