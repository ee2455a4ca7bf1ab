// Calls to the NeuroFed API from pages: the session cookie authenticates, the CSRF token guards writes.

export class ApiError extends Error {
  constructor(status, code, detail) {
    super(detail);
    this.status = status;
    this.code = code;
  }
}

export function csrfToken() {
  const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
  return match ? decodeURIComponent(match[1]) : "";
}

async function errorOf(response) {
  try {
    const body = await response.json();
    return new ApiError(response.status, body.error || "error", body.detail || "The request failed.");
  } catch {
    return new ApiError(response.status, "error", `The server answered ${response.status}.`);
  }
}

// api(url, {method, json, form}): the parsed JSON answer, or an ApiError with the server's sentence.
export async function api(url, { method = "GET", json, form } = {}) {
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
  if (!response.ok) throw await errorOf(response);
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
      else reject(new ApiError(xhr.status, body?.error || "error", body?.detail || `The server answered ${xhr.status}.`));
    });
    xhr.addEventListener("error", () => reject(new ApiError(0, "network", "The connection failed; check it and try again.")));
    xhr.send(form);
  });
}
