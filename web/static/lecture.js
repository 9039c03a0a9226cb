// The lecture page: what one session of a room left behind — summary (with its state, the host's edits and
// regeneration), transcript (search, citations, `#t=<ms>` links), chat, files, attendance (host), share links
// (host), downloads and "Export to Drive" (host). The page asks `GET /api/lectures/{id}` as whoever reads it (lecture-access.js) and
// polls while the summary is being written or the lecture is still live.
import { $, ApiError, el, errorText, formatDateTime, setState, statusPill, t } from "./common.js";
import { keepShare, lectureApi, lectureId, needsHeader } from "./lecture-access.js";
import { renderDownloads } from "./lecture-downloads.js";
import { renderDriveExport } from "./lecture-drive.js";
import { renderAttendance, renderChat, renderFiles } from "./lecture-records.js";
import { SharePanel } from "./lecture-share.js";
import { SummaryEditor } from "./lecture-summary-edit.js";
import { SummaryPanel } from "./lecture-summary.js";
import { duration } from "./lecture-time.js";
import { Transcript } from "./lecture-transcript.js";

/** How often to look again while the summary is being written, and while the lecture is still live. */
const POLL_PENDING_MS = 4000;
const POLL_LIVE_MS = 15000;

/** The lecture as last read (the `GET /api/lectures/{id}` body). */
let lecture = null;
let pollTimer = null;

const transcript = new Transcript({
  body: $("transcript-body"),
  state: $("transcript-state"),
  count: $("transcript-count"),
  input: $("transcript-q"),
  clear: $("transcript-clear"),
});
const shares = new SharePanel();
const editor = new SummaryEditor({
  defaultRange: () => transcript.currentRange(),
  onSaved: (block) => summaryChanged(block),
  onClosed: () => showSummary(),
});
const summary = new SummaryPanel({
  onCite: (startMs, endMs) => {
    history.replaceState(null, "", `#t=${startMs}`);
    transcript.jumpTo(startMs, endMs);
  },
  onChanged: (block) => summaryChanged(block),
  onEdit: (block) => {
    $("summary-body").hidden = true;
    $("summary-tools").hidden = true;
    editor.open(block);
  },
});

function showSummary() {
  $("summary-body").hidden = false;
  $("summary-tools").hidden = false;
  summary.render(lecture);
}

/** A new summary block (saved, regenerating): shown at once, and watched while it is being written. */
function summaryChanged(block) {
  lecture.summary = block;
  showSummary();
  schedulePoll();
}

/** Why the transcript is empty, in the summary's words when they say it better. */
function transcriptEmptyText() {
  if (lecture.status !== "ENDED") return t("transcript.live");
  if (lecture.summary.state === "assistantOff") return t("summary.state.assistant_off");
  return t("transcript.empty");
}

function renderHead() {
  const number = t("lecture.number", { number: lecture.number });
  $("lecture-number").textContent = number;
  $("lecture-name").textContent = lecture.roomName;
  document.title = `${lecture.roomName} · ${number} · confctl`;
  const parts = [
    lecture.startedAt ? el("time", { datetime: lecture.startedAt, text: formatDateTime(lecture.startedAt) }) : null,
    lecture.hostName ? t("lecture.host", { name: lecture.hostName }) : null,
    lecture.durationMs !== null && lecture.durationMs !== undefined ? t(lecture.status === "ENDED" ? "lecture.lasted" : "lecture.running_for", { duration: duration(lecture.durationMs) }) : null,
  ].filter(Boolean);
  $("lecture-meta").replaceChildren(...[statusPill(lecture.status), ...parts].map((part) => el("li", {}, part)));
  const note = { share: "lecture.reader.share", participant: "lecture.reader.participant" }[lecture.viewer.role];
  $("reader-note").textContent = note ? t(note) : "";
  $("reader-note").hidden = !note;
}

/** Everything but the summary, which `showSummary` keeps current on its own. */
function renderRecords() {
  renderChat(lecture.chat);
  renderFiles(lecture.files, !needsHeader);
  renderAttendance(lecture.viewer.canSeeAttendance ? lecture.attendance || [] : null);
  renderDownloads(lecture);
  renderDriveExport(lecture);
  shares.start(lecture.viewer.canEdit);
}

function schedulePoll() {
  clearTimeout(pollTimer);
  const state = lecture.summary.state;
  const delay = state === "pending" ? POLL_PENDING_MS : state === "live" ? POLL_LIVE_MS : 0;
  if (delay) pollTimer = setTimeout(refresh, delay);
}

/** Reads the lecture again: the summary (unless the host is editing it) and, when the lecture ended since, everything. */
async function refresh() {
  let next;
  try {
    next = await lectureApi("GET", "");
  } catch {
    // A failed look is tried again later; what is on screen stays.
    pollTimer = setTimeout(refresh, POLL_LIVE_MS);
    return;
  }
  const ended = next.status !== lecture.status;
  lecture = next;
  renderHead();
  if (!editor.isOpen) showSummary();
  if (ended) {
    renderRecords();
    transcript.load(transcriptEmptyText());
  }
  schedulePoll();
}

function notFound() {
  setState($("lecture-state"));
  $("lecture-missing").hidden = false;
  const signIn = $("missing-sign-in");
  if (signIn) signIn.href = `/login?next=${encodeURIComponent(location.pathname)}`;
  document.title = `${t("lecture.not_found.title")} · confctl`;
}

/** `#t=<ms>`: a moment of the lecture (from the dashboard's search, a chat line, a paragraph's time). */
function followHash() {
  const match = /^#t=(\d+)$/.exec(location.hash);
  if (match) transcript.jumpTo(Number(match[1]));
}

async function start() {
  for (const link of document.querySelectorAll("a.lang")) link.href = keepShare(link.getAttribute("href"));
  if (!lectureId) return notFound();
  try {
    lecture = await lectureApi("GET", "");
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) return notFound();
    setState($("lecture-state"), "error", errorText(err), start);
    return;
  }
  setState($("lecture-state"));
  $("lecture").hidden = false;
  // Downloads stand open where there is room for them; on a phone they wait behind one line.
  $("downloads").open = window.matchMedia("(min-width: 901px)").matches;
  renderHead();
  showSummary();
  renderRecords();
  schedulePoll();
  await transcript.load(transcriptEmptyText());
  followHash();
  window.addEventListener("hashchange", followHash);
}

start();
