// Shared by every page: the boot data the server put in the page, translations, the JSON API client,
// small DOM helpers, toasts, and the header's sign-out button.

const bootElement = document.getElementById("boot");
export const boot = bootElement ? JSON.parse(bootElement.textContent) : { lang: "en", strings: {}, data: {} };
export const data = boot.data || {};
export const user = boot.user || null;
export const lang = boot.lang || "en";

/** The translated string for `key`, with `{name}` placeholders filled from `params`. */
export function t(key, params) {
  let text = boot.strings[key];
  if (text === undefined) {
    console.warn("missing translation", key);
    text = key;
  }
  if (params) {
    for (const [name, value] of Object.entries(params)) {
      text = text.split(`{${name}}`).join(String(value));
    }
  }
  return text;
}

/** An error from the API (or the network), with the server's code when there is one. */
export class ApiError extends Error {
  constructor(status, code, message, retryAfter) {
    super(message);
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

/** A message for people: the catalogue's text for a known error code, else the server's own words. */
export function errorText(err) {
  if (!(err instanceof ApiError)) return t("error.unexpected");
  if (err.code === "network") return t("error.network");
  if (err.code === "rate_limited" && err.retryAfter) return t("error.rate_limited_wait", { seconds: err.retryAfter });
  const key = `error.code.${err.code}`;
  if (boot.strings[key]) return t(key);
  if (err.status === 404 && err.code === "not_found") return t("error.not_available");
  return err.message || t("error.unexpected");
}

/**
 * Calls the JSON API. Resolves with the parsed body (or null for 204); rejects with ApiError — code
 * "network" when the server could not be reached.
 */
export async function api(method, path, body, { headers = {}, signal } = {}) {
  const init = { method, headers: { Accept: "application/json", ...headers }, credentials: "same-origin", signal };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (err) {
    if (err && err.name === "AbortError") throw err;
    throw new ApiError(0, "network", t("error.network"));
  }
  if (response.status === 204) return null;
  let parsed = null;
  const text = await response.text();
  if (text) {
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = null;
    }
  }
  if (!response.ok) {
    const error = parsed && parsed.error ? parsed.error : {};
    const retry = Number(response.headers.get("Retry-After")) || undefined;
    throw new ApiError(response.status, error.code || `http_${response.status}`, error.message || response.statusText, retry);
  }
  return parsed;
}

/** Creates an element: `el("p", { class: "x", text: "hi" }, child, …)`. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "text") node.textContent = value;
    else if (name === "class") node.className = value;
    else if (name.startsWith("on") && typeof value === "function") node.addEventListener(name.slice(2), value);
    else if (value === true) node.setAttribute(name, "");
    else node.setAttribute(name, String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export const $ = (id) => document.getElementById(id);

/** `text` as nodes with every case-insensitive occurrence of `query` in a <mark>. */
export function markMatches(text, query) {
  const escaped = query.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const parts = String(text).split(new RegExp(`(${escaped})`, "giu"));
  return parts.map((part, i) => (i % 2 ? el("mark", { text: part }) : part)).filter((part) => part !== "");
}

/** Shows `text` in an alert box (or hides it when text is empty). */
export function showError(box, text) {
  if (!box) return;
  box.textContent = text || "";
  box.hidden = !text;
}

/** Shows a loading/failure line: `state(node, "loading")`, `state(node, "error", text, retry)`, `state(node)`. */
export function setState(node, kind, text, retry) {
  if (!node) return;
  node.replaceChildren();
  node.classList.toggle("error", kind === "error");
  if (kind === "loading") node.append(el("span", { class: "spinner", "aria-hidden": "true" }), " ", text || t("common.loading"));
  else if (text) node.append(text);
  if (retry) node.append(" ", el("button", { type: "button", class: "button small", onclick: retry, text: t("common.retry") }));
}

/** A short message at the bottom of the screen, read out by screen readers. */
export function toast(text, kind = "info") {
  const box = $("toasts");
  if (!box) return;
  const item = el("div", { class: `toast ${kind}`, text });
  box.append(item);
  setTimeout(() => item.remove(), kind === "error" ? 8000 : 4000);
}

/** Disables a button while `work` runs (no double submits), then restores it. */
export async function busy(button, work) {
  if (button) {
    button.disabled = true;
    button.setAttribute("aria-busy", "true");
  }
  try {
    return await work();
  } finally {
    if (button) {
      button.disabled = false;
      button.removeAttribute("aria-busy");
    }
  }
}

/** Copies text to the clipboard; falls back to selecting an input so the user can copy it by hand. */
export async function copyText(text, input) {
  try {
    await navigator.clipboard.writeText(text);
    toast(t("common.copied"));
  } catch {
    if (input) {
      input.focus();
      input.select();
    }
    toast(t("common.copy_manually"));
  }
}

const dateTime = new Intl.DateTimeFormat(lang, { dateStyle: "medium", timeStyle: "short" });
const timeOnly = new Intl.DateTimeFormat(lang, { hour: "2-digit", minute: "2-digit" });

export function formatDateTime(value) {
  if (!value) return "—";
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? "—" : dateTime.format(d);
}

export function formatTime(value) {
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? "" : timeOnly.format(d);
}

export function formatBytes(size) {
  const units = ["B", "KB", "MB", "GB"];
  let n = Number(size) || 0;
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i += 1;
  }
  return `${n.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

/** The absolute invite link of a code. */
export function inviteUrl(code) {
  return `${location.origin}/j/${encodeURIComponent(code)}`;
}

/** A status pill for a room (READY, LIVE, ARCHIVED) or a lecture (OPEN, LIVE, ENDED). */
export function statusPill(status) {
  const kind = { LIVE: "live", ARCHIVED: "ended", ENDED: "ended" }[status] || "";
  return el("span", { class: `pill ${kind}`, text: t(`status.${status}`) });
}

/** Waits, unless aborted. */
export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function wireHeader() {
  for (const button of document.querySelectorAll('[data-action="logout"]')) {
    button.addEventListener("click", async () => {
      try {
        await busy(button, () => api("POST", "/api/auth/logout"));
        location.assign("/");
      } catch (err) {
        if (err instanceof ApiError && err.status === 401) location.assign("/");
        else toast(errorText(err), "error");
      }
    });
  }
}

wireHeader();
