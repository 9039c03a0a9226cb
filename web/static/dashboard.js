// Host dashboard: my rooms with status, invite link (copy), live participant and lobby counts, and the
// actions a host needs before and during a lecture. Counts refresh every few seconds without re-rendering
// the cards (so keyboard focus stays where it is).
import { $, ApiError, api, busy, copyText, el, errorText, formatDateTime, inviteUrl, setState, statusPill, t, toast } from "./common.js";

const REFRESH_MS = 8000;
const list = $("rooms");
const endedList = $("ended-list");
const cards = new Map();
let loadedOnce = false;
let timer = null;

function countsText(room) {
  const inRoom = room.participants === null || room.participants === undefined ? "—" : room.participants;
  return t("dashboard.in_room", { count: inRoom });
}

function buildCard(room) {
  const name = el("h2", { text: room.name });
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
  const lecture = el("a", { class: "button", href: `/lectures/${room.id}`, text: t("dashboard.view_lecture") });
  const end = el("button", { type: "button", class: "button danger-outline", text: t("dashboard.end") });
  end.addEventListener("click", () => endRoom(room.id, end));
  const actions = el("p", { class: "actions" }, enter, settings, lecture, end);
  const item = el(
    "li",
    { class: "card room-card", "data-room-id": room.id },
    el("div", {}, name, el("div", { class: "meta" }, counts, waiting, flags)),
    status,
    copyRow,
    actions,
  );
  return { item, name, status, counts, waiting, flags, link, copyRow, enter, lecture, end };
}

function updateCard(card, room) {
  const ended = room.status === "ENDED";
  card.name.textContent = room.name;
  card.status.replaceChildren(statusPill(room.status));
  card.counts.textContent = ended ? t("dashboard.ended_at", { when: formatDateTime(room.endedAt) }) : countsText(room);
  card.waiting.textContent = t("dashboard.waiting", { count: room.waiting });
  card.waiting.hidden = ended || !room.waiting;
  const flags = [];
  if (room.hasPin) flags.push(t("dashboard.flag.pin"));
  if (room.lobbyEnabled) flags.push(t("dashboard.flag.lobby"));
  if (room.webinarMode) flags.push(t("dashboard.flag.webinar"));
  if (room.locked) flags.push(t("dashboard.flag.locked"));
  card.flags.textContent = flags.join(" · ");
  card.link.value = inviteUrl(room.inviteCode);
  card.copyRow.hidden = ended;
  card.enter.hidden = ended;
  card.end.hidden = ended;
  card.lecture.hidden = !ended;
}

function render(rooms) {
  const seen = new Set();
  let open = 0;
  let ended = 0;
  for (const room of rooms) {
    seen.add(room.id);
    let card = cards.get(room.id);
    if (!card) {
      card = buildCard(room);
      cards.set(room.id, card);
    }
    updateCard(card, room);
    const target = room.status === "ENDED" ? endedList : list;
    if (card.item.parentNode !== target) target.append(card.item);
    if (room.status === "ENDED") ended += 1;
    else open += 1;
  }
  for (const [id, card] of cards) {
    if (!seen.has(id)) {
      card.item.remove();
      cards.delete(id);
    }
  }
  $("rooms-empty").hidden = open > 0;
  $("ended-rooms").hidden = ended === 0;
  $("ended-count").textContent = String(ended);
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

async function endRoom(id, button) {
  if (!confirm(t("room.end_confirm"))) return;
  try {
    await busy(button, () => api("POST", `/api/rooms/${id}/end`));
    toast(t("room.ended_toast"));
    load();
  } catch (err) {
    toast(errorText(err), "error");
  }
}

document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible") load();
});

load();
