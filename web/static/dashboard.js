// Host dashboard: my rooms grouped live / ready / archived, each with its status, invite link (copy), live
// participant and lobby counts, the actions a host needs before and during a lecture, and its past lectures;
// above them, a search across all my lectures. Counts refresh every few seconds without re-rendering the
// cards (so keyboard focus and opened lists stay where they are).
import { $, ApiError, api, busy, copyText, el, errorText, formatDateTime, inviteUrl, setState, statusPill, t, toast } from "./common.js";
import { PastLectures, setupSearch } from "./dashboard-lectures.js";

const REFRESH_MS = 8000;
const groups = {
  LIVE: { list: $("rooms-live"), box: $("live-section") },
  READY: { list: $("rooms-ready"), box: $("ready-section") },
  ARCHIVED: { list: $("rooms-archived"), box: $("archived-rooms") },
};
const cards = new Map();
let loadedOnce = false;
let timer = null;

function countsText(room) {
  if (room.status === "ARCHIVED") return t("dashboard.archived_at", { when: formatDateTime(room.archivedAt) });
  if (room.status === "READY") return t("dashboard.ready_for", { number: room.lectureNumber });
  const inRoom = room.participants === null || room.participants === undefined ? "—" : room.participants;
  return t("dashboard.in_room", { count: inRoom });
}

function buildCard(room) {
  const name = el("h3", { text: room.name });
  const status = el("span", { class: "room-status" });
  const counts = el("span", { class: "counts" });
  const waiting = el("span", { class: "pill waiting" });
  const flags = el("span", { class: "flags" });
  const link = el("input", { readonly: true, "aria-label": t("room_form.invite.link") });
  const copy = el("button", { type: "button", class: "button", text: t("common.copy") });
  copy.addEventListener("click", () => copyText(link.value, link));
  const copyRow = el("div", { class: "copy-row" }, link, copy);
  const enter = el("a", { class: "button primary", href: `/rooms/${room.id}`, text: t("dashboard.enter") });
  const settings = el("a", { class: "button", href: `/rooms/${room.id}/settings`, text: t("dashboard.settings") });
  const end = el("button", { type: "button", class: "button danger-outline", text: t("dashboard.end") });
  end.addEventListener("click", () => endLecture(room.id, end));
  const actions = el("p", { class: "actions" }, enter, settings, end);
  const lectures = new PastLectures(room.id);
  const item = el(
    "li",
    { class: "card room-card", "data-room-id": room.id },
    el("div", {}, name, el("div", { class: "meta" }, counts, waiting, flags)),
    status,
    copyRow,
    actions,
    lectures.node,
  );
  return { item, name, status, counts, waiting, flags, link, copyRow, enter, end, lectures };
}

function updateCard(card, room) {
  const archived = room.status === "ARCHIVED";
  card.name.textContent = room.name;
  card.status.replaceChildren(statusPill(room.status));
  card.counts.textContent = countsText(room);
  card.waiting.textContent = t("dashboard.waiting", { count: room.waiting });
  card.waiting.hidden = archived || !room.waiting;
  const flags = [];
  if (room.hasPin) flags.push(t("dashboard.flag.pin"));
  if (room.lobbyEnabled) flags.push(t("dashboard.flag.lobby"));
  if (room.webinarMode) flags.push(t("dashboard.flag.webinar"));
  if (room.locked) flags.push(t("dashboard.flag.locked"));
  card.flags.textContent = archived ? "" : flags.join(" · ");
  card.link.value = inviteUrl(room.inviteCode);
  card.copyRow.hidden = archived;
  card.enter.hidden = archived;
  card.end.hidden = room.status !== "LIVE";
  card.lectures.setNumber(room.lectureNumber, room.status);
}

function render(rooms) {
  const seen = new Set();
  const counts = { LIVE: 0, READY: 0, ARCHIVED: 0 };
  for (const room of rooms) {
    seen.add(room.id);
    let card = cards.get(room.id);
    if (!card) {
      card = buildCard(room);
      cards.set(room.id, card);
    }
    updateCard(card, room);
    const group = groups[room.status] || groups.READY;
    if (card.item.parentNode !== group.list) group.list.append(card.item);
    counts[room.status in counts ? room.status : "READY"] += 1;
  }
  for (const [id, card] of cards) {
    if (!seen.has(id)) {
      card.item.remove();
      cards.delete(id);
    }
  }
  for (const [status, group] of Object.entries(groups)) group.box.hidden = counts[status] === 0;
  $("rooms-empty").hidden = counts.LIVE + counts.READY > 0;
  // Searching lectures makes sense once there is a room that can have some.
  $("lecture-search").hidden = rooms.length === 0;
  $("archived-count").textContent = String(counts.ARCHIVED);
}

async function load() {
  clearTimeout(timer);
  try {
    const body = await api("GET", "/api/dashboard/rooms");
    render(body.rooms);
    $("media-warning").hidden = body.mediaServerReachable;
    setState($("rooms-state"));
    loadedOnce = true;
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      location.assign(`/login?next=${encodeURIComponent(location.pathname)}`);
      return;
    }
    // After a first success a failed refresh keeps the list and says so; before it, the list is the error.
    setState($("rooms-state"), "error", loadedOnce ? t("dashboard.refresh_failed") : errorText(err), load);
  }
  timer = setTimeout(load, REFRESH_MS);
}

async function endLecture(id, button) {
  if (!confirm(t("room.end_confirm"))) return;
  try {
    const body = await busy(button, () => api("POST", `/api/rooms/${id}/end`));
    toast(t("room_form.ended_toast", { number: body.room.lectureNumber }));
    load();
  } catch (err) {
    toast(errorText(err), "error");
  }
}

document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible") load();
});

setupSearch();
load();
