// The lecture's downloads (`GET /api/lectures/{id}/export?format=…`). Hosts and share-link readers get plain
// links (a cookie, or the token as `?share=`), so the browser's own download handling applies; a guest proves
// access with a header, which only fetch can send, so their download is fetched and then saved.
import { $, ApiError, el, errorText, t } from "./common.js";
import { lectureUrl, needsHeader, readerHeaders } from "./lecture-access.js";

/** Every format, in the order offered; attendance only for those who may see it. */
const FORMATS = [
  { format: "pdf", label: "downloads.pdf" },
  { format: "md", label: "downloads.md" },
  { format: "txt", label: "downloads.txt" },
  { format: "vtt", label: "downloads.vtt" },
  { format: "srt", label: "downloads.srt" },
  { format: "json", label: "downloads.json" },
  { format: "attendance.csv", label: "downloads.attendance", attendance: true },
  { format: "zip", label: "downloads.zip" },
];

/** The file name from a Content-Disposition header (the RFC 5987 form first). */
function fileName(disposition, fallback) {
  const extended = /filename\*=UTF-8''([^;]+)/i.exec(disposition || "");
  if (extended) {
    try {
      return decodeURIComponent(extended[1]);
    } catch {
      // A malformed name: use the plain one.
    }
  }
  const plain = /filename="([^"]+)"/i.exec(disposition || "");
  return plain ? plain[1] : fallback;
}

async function fetchAndSave(url, fallbackName, button) {
  const status = $("downloads-status");
  button.disabled = true;
  status.textContent = t("downloads.preparing");
  try {
    const response = await fetch(url, { headers: readerHeaders(), credentials: "same-origin" });
    if (!response.ok) {
      const body = await response.json().catch(() => null);
      throw new ApiError(response.status, body?.error?.code || `http_${response.status}`, body?.error?.message || response.statusText);
    }
    const blob = await response.blob();
    const href = URL.createObjectURL(blob);
    const a = el("a", { href, download: fileName(response.headers.get("Content-Disposition"), fallbackName) });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(href), 10000);
    status.textContent = "";
  } catch (err) {
    status.textContent = err instanceof ApiError ? errorText(err) : t("error.network");
  } finally {
    button.disabled = false;
  }
}

/** Fills the downloads row for this reader. */
export function renderDownloads(lecture) {
  const base = `lecture-${lecture.number}`;
  const items = FORMATS.filter((f) => !f.attendance || lecture.viewer?.canSeeAttendance).map(({ format, label }) => {
    const url = lectureUrl("/export", { format });
    const name = `${base}.${format}`;
    if (!needsHeader) return el("a", { class: "button small", href: url, download: name, "data-format": format, text: t(label) });
    const button = el("button", { type: "button", class: "button small", "data-format": format, text: t(label) });
    button.addEventListener("click", () => fetchAndSave(url, name, button));
    return button;
  });
  $("downloads-list").replaceChildren(...items);
}
