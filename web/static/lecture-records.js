// What else the lecture left: its chat (each line linked to its moment in the transcript), the files shared
// in it, and — for the host — who attended and for how long.
import { $, el, formatBytes, formatDateTime, formatTime, lang, setState, t } from "./common.js";
import { lectureUrl } from "./lecture-access.js";
import { clock } from "./lecture-time.js";

const minutes = new Intl.NumberFormat(lang, { maximumFractionDigits: 1 });

/** The chat history, oldest first. */
export function renderChat(lines) {
  const log = $("chat-log");
  log.replaceChildren(
    ...lines.map((line) => {
      const role = line.senderRole && line.senderRole !== "guest" ? el("span", { class: "role", text: t(`chat.role.${line.senderRole}`) }) : null;
      const when = line.offsetMs !== null && line.offsetMs >= 0 ? el("a", { class: "when", href: `#t=${line.offsetMs}`, title: formatDateTime(line.at), text: clock(line.offsetMs) }) : el("time", { class: "when", datetime: line.at, text: formatTime(line.at) });
      return el("li", { class: "msg", "data-id": line.id }, el("div", {}, role, el("span", { class: "who", text: line.senderName }), when), el("p", { class: "text", text: line.text }));
    }),
  );
  setState($("chat-state"), "", lines.length ? "" : t("chat.empty"));
}

/**
 * The shared files, each downloaded under the lecture's own access rules (`/api/lectures/{id}/files/{fileId}`:
 * the host's cookie or the share link's `?share=` travel with a plain link). A guest proves access with a
 * header a link cannot carry: they find the files in the ZIP of the downloads.
 */
export function renderFiles(files, canDownload) {
  $("files-list").replaceChildren(
    ...files.map((file) => {
      const meta = el("div", { class: "file-meta", text: [formatBytes(file.size), file.uploaderName, formatDateTime(file.sharedAt)].filter(Boolean).join(" · ") });
      const link = canDownload ? el("a", { class: "button small", href: lectureUrl(`/files/${encodeURIComponent(file.id)}`), download: file.name, "aria-label": t("files.download_label", { name: file.name }), text: t("files.download") }) : null;
      return el("li", { "data-id": file.id }, el("div", {}, el("div", { class: "file-name", text: file.name }), meta), link);
    }),
  );
  setState($("files-state"), "", files.length ? "" : t("files.empty"));
  $("files-note").hidden = canDownload || !files.length;
}

/** A time of day (the header gives the date), the full date and time on hover. */
function clockTime(value) {
  return el("time", { datetime: value, title: formatDateTime(value), text: formatTime(value) });
}

/** Who attended: one row per person, minutes summed over rejoins. */
export function renderAttendance(rows) {
  const section = $("attendance-section");
  section.hidden = !rows;
  if (!rows) return;
  const table = $("attendance");
  table.querySelector("tbody").replaceChildren(
    ...rows.map((row) =>
      el(
        "tr",
        {},
        el("td", {}, el("strong", { text: row.name }), row.role && row.role !== "guest" ? el("span", { class: "muted small", text: ` ${t(`chat.role.${row.role}`)}` }) : null),
        el("td", { class: "num", text: minutes.format(row.minutesPresent) }),
        el("td", { class: "num", text: row.joins }),
        el("td", {}, clockTime(row.firstJoin)),
        el("td", {}, row.lastLeave ? clockTime(row.lastLeave) : t("lecture.attendance.still_here")),
      ),
    ),
  );
  table.hidden = !rows.length;
  setState($("attendance-state"), "", rows.length ? "" : t("lecture.attendance.none"));
}
