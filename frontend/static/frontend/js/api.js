// Calls to the NeuroFed API from pages: the session cookie authenticates, the CSRF token guards writes.

export class ApiError extends Error {
  constructor(status, code, detail) {
    super(detail);
    this.status = status;
    this.code = code;
  }

  // The sign-in ended while the page was open (the server answers not_authenticated): signing in again helps.
  get signedOut() { return this.code === SIGNED_OUT; }
}

const SIGNED_OUT = "not_authenticated";
const SIGNED_OUT_WRITE = "Your sign-in has ended, so nothing was saved. Sign in again, then repeat this.";
const SIGNED_OUT_READ = "Your sign-in has ended. Sign in again to see the latest.";

// The server's own words are for developers ("Authentication credentials were not provided."): a person
// whose sign-in ended is told so plainly.
function apiError(status, body, { reads = false } = {}) {
  if (body?.error === SIGNED_OUT) return new ApiError(status, SIGNED_OUT, reads ? SIGNED_OUT_READ : SIGNED_OUT_WRITE);
  return new ApiError(status, body?.error || "error", body?.detail || `The server answered ${status}.`);
}

// The sign-in page, coming back to this one afterwards.
export function signInUrl() {
  return `/accounts/login/?next=${encodeURIComponent(location.pathname + location.search)}`;
}

// Puts an error's sentence into `element` as text, with a link to sign in again where that is the way out.
export function showError(element, error) {
  element.textContent = error.message;
  if (!error.signedOut) return;
  const link = document.createElement("a");
  link.href = signInUrl();
  link.textContent = "Sign in again";
  element.append(" ", link);
}

export function csrfToken() {
  const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
  return match ? decodeURIComponent(match[1]) : "";
}

async function errorOf(response, reads) {
  try {
    const body = await response.json();
    return apiError(response.status, { detail: "The request failed.", ...body }, { reads });
  } catch {
    return new ApiError(response.status, "error", `The server answered ${response.status}.`);
  }
}

// api(url, {method, json, form, reads}): the parsed JSON answer, or an ApiError with the server's sentence.
// `reads`: the call changes nothing even if it is a POST (a search), so an ended sign-in lost no work.
export async function api(url, { method = "GET", json, form, reads = method === "GET" } = {}) {
  const headers = { Accept: "application/json" };
  let body;
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  } else if (form !== undefined) {
    body = form;
  }
  if (method !== "GET") headers["X-CSRFToken"] = csrfToken();
  const response = await fetch(url, { method, headers, body, credentials: "same-origin" });
  if (!response.ok) throw await errorOf(response, reads);
  return response.status === 204 ? null : response.json();
}

// fetch() reports no upload progress; XMLHttpRequest does, which a patient on a slow line needs.
export function uploadWithProgress(url, form, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", url);
    xhr.setRequestHeader("X-CSRFToken", csrfToken());
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) onProgress(event.loaded / event.total);
    });
    xhr.addEventListener("load", () => {
      let body = null;
      try { body = JSON.parse(xhr.responseText); } catch { /* not JSON: reported below */ }
      if (xhr.status >= 200 && xhr.status < 300 && body) resolve(body);
      else reject(apiError(xhr.status, body));
    });
    xhr.addEventListener("error", () => reject(new ApiError(0, "network", "The connection failed; check it and try again.")));
    xhr.send(form);
  });
}
