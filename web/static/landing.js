// Landing page: the "join with a code" form accepts a code or a whole invite link.
import { $, t } from "./common.js";

const form = $("join-form");
const input = $("code");
const error = $("code-error");

/** The invite code inside what was typed or pasted: a bare code or a link ending in /j/CODE. */
function extractCode(text) {
  const trimmed = text.trim();
  const fromLink = trimmed.match(/\/j\/([^/?#\s]+)/);
  const code = (fromLink ? fromLink[1] : trimmed).toLowerCase().replace(/\s+/g, "");
  return /^[a-z0-9-]{4,64}$/.test(code) ? code : "";
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  const code = extractCode(input.value);
  if (!code) {
    error.textContent = t("landing.join.invalid");
    error.hidden = false;
    input.setAttribute("aria-invalid", "true");
    input.focus();
    return;
  }
  location.assign(`/j/${encodeURIComponent(code)}`);
});

input.addEventListener("input", () => {
  error.hidden = true;
  input.removeAttribute("aria-invalid");
});
