// New room and room settings: one form, plus (for settings) the invite link, bans and the danger zone.
import { $, ApiError, api, busy, copyText, data, el, errorText, formatDateTime, inviteUrl, setState, showError, statusPill, t, toast } from "./common.js";

const form = $("room-form");
const box = $("form-error");
const saved = $("form-ok");
let room = data.room || null;

function readForm() {
  const body = {
    name: $("name").value.trim(),
    lobbyEnabled: $("lobby").checked,
    webinarMode: $("webinar").checked,
    guestScreenShare: $("screen-share").checked,
    aiAssistant: $("ai").checked,
    lecturesForParticipants: $("lectures-for-participants").checked,
  };
  const pin = $("pin").value.trim();
  const max = $("max").value.trim();
  if (room) {
    if ($("remove-pin")?.checked) body.pin = null;
    else if (pin) body.pin = pin;
    body.maxParticipants = max ? Number(max) : null;
    body.locked = $("locked").checked;
  } else {
    if (pin) body.pin = pin;
    if (max) body.maxParticipants = Number(max);
  }
  return body;
}

function validate(body) {
  const invalid = (id, key) => {
    const input = $(id);
    input.setAttribute("aria-invalid", "true");
    input.focus();
    return t(key);
  };
  if (!body.name) return invalid("name", "error.code.invalid_room_name");
  if (typeof body.pin === "string" && !/^[0-9]{4,12}$/.test(body.pin)) return invalid("pin", "error.code.invalid_pin");
  if (body.maxParticipants !== undefined && body.maxParticipants !== null) {
    if (!Number.isInteger(body.maxParticipants) || body.maxParticipants < 1 || body.maxParticipants > 10000) {
      return invalid("max", "error.code.invalid_max_participants");
    }
  }
  return "";
}

/** The room's state in one line: live (lecture n under way) or ready for lecture n; archived says more below. */
function statusLine(r) {
  const text = { LIVE: "room_form.status.live", READY: "room_form.status.ready" }[r.status];
  return [statusPill(r.status), " ", text ? t(text, { number: r.lectureNumber }) : ""];
}

function fill(r) {
  $("name").value = r.name;
  $("pin").value = "";
  $("max").value = r.maxParticipants ?? "";
  $("lobby").checked = r.lobbyEnabled;
  $("webinar").checked = r.webinarMode;
  $("screen-share").checked = r.guestScreenShare;
  $("ai").checked = r.aiAssistant;
  $("lectures-for-participants").checked = r.lecturesForParticipants;
  $("locked").checked = r.locked;
  $("remove-pin-row").hidden = !r.hasPin;
  $("remove-pin").checked = false;
  $("invite-url").value = inviteUrl(r.inviteCode);
  $("enter-room").href = `/rooms/${r.id}`;
  $("room-status").replaceChildren(...statusLine(r));
  // An archived room takes no joins and no setting changes until it is unarchived; its lectures stay.
  const archived = r.status === "ARCHIVED";
  $("archived-notice").hidden = !archived;
  $("invite-section").hidden = archived;
  form.hidden = archived;
  $("end-room").hidden = r.status !== "LIVE";
  $("archive-room").hidden = archived;
  $("archive-hint").hidden = archived;
  $("danger-section").hidden = false;
  $("bans-section").hidden = false;
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  for (const input of form.querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
  saved.hidden = true;
  const body = readForm();
  const problem = validate(body);
  if (problem) return showError(box, problem);
  showError(box, "");
  const button = form.querySelector("button[type=submit]");
  try {
    if (room) {
      room = await busy(button, () => api("PATCH", `/api/rooms/${room.id}`, body));
      fill(room);
      saved.hidden = false;
    } else {
      const created = await busy(button, () => api("POST", "/api/rooms", body));
      location.assign(`/rooms/${created.id}/settings?created=1`);
    }
  } catch (err) {
    showError(box, errorText(err));
  }
});

async function loadBans() {
  const state = $("bans-state");
  const listNode = $("bans");
  setState(state, "loading");
  try {
    const body = await api("GET", `/api/rooms/${room.id}/bans`);
    listNode.replaceChildren();
    if (!body.bans.length) setState(state, "", t("bans.none"));
    else setState(state);
    for (const ban of body.bans) {
      const lift = el("button", { type: "button", class: "button small", text: t("bans.lift") });
      lift.addEventListener("click", async () => {
        try {
          await busy(lift, () => api("DELETE", `/api/rooms/${room.id}/bans/${ban.id}`));
          toast(t("bans.lifted"));
          loadBans();
        } catch (err) {
          toast(errorText(err), "error");
        }
      });
      const who = ban.displayName || ban.name || ban.identity || t("bans.someone");
      const detail = [formatDateTime(ban.createdAt), ban.reason ? t("bans.reason", { reason: ban.reason }) : ""].filter(Boolean).join(" · ");
      listNode.append(el("li", { class: "ban" }, el("span", { class: "person-name" }, el("strong", { text: who }), " ", el("span", { class: "muted small", text: detail })), lift));
    }
  } catch (err) {
    setState(state, "error", errorText(err), loadBans);
  }
}

function setupSettings() {
  fill(room);
  setState($("page-state"));
  if (new URLSearchParams(location.search).get("created")) toast(t("room_form.created"));
  $("copy-invite").addEventListener("click", () => copyText($("invite-url").value, $("invite-url")));
  $("regenerate").addEventListener("click", async (event) => {
    if (!confirm(t("room_form.invite.regenerate_confirm"))) return;
    try {
      room = await busy(event.currentTarget, () => api("POST", `/api/rooms/${room.id}/invite-code`));
      fill(room);
      toast(t("room_form.invite.regenerated"));
    } catch (err) {
      toast(errorText(err), "error");
    }
  });
  $("end-room").addEventListener("click", async (event) => {
    if (!confirm(t("room.end_confirm"))) return;
    try {
      const body = await busy(event.currentTarget, () => api("POST", `/api/rooms/${room.id}/end`));
      room = body.room;
      fill(room);
      toast(t("room_form.ended_toast", { number: room.lectureNumber }));
    } catch (err) {
      showError($("danger-error"), errorText(err));
    }
  });
  $("archive-room").addEventListener("click", async (event) => {
    if (!confirm(t("room_form.archive_confirm"))) return;
    showError($("danger-error"), "");
    try {
      room = await busy(event.currentTarget, () => api("POST", `/api/rooms/${room.id}/archive`));
      fill(room);
      toast(t("room_form.archived_toast"));
    } catch (err) {
      showError($("danger-error"), errorText(err));
    }
  });
  $("unarchive-room").addEventListener("click", async (event) => {
    try {
      room = await busy(event.currentTarget, () => api("POST", `/api/rooms/${room.id}/unarchive`));
      fill(room);
      toast(t("room_form.unarchived_toast"));
    } catch (err) {
      toast(errorText(err), "error");
    }
  });
  $("delete-room").addEventListener("click", async (event) => {
    if (!confirm(t("room_form.delete_confirm"))) return;
    try {
      await busy(event.currentTarget, () => api("DELETE", `/api/rooms/${room.id}`));
      location.assign("/dashboard");
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) location.assign("/dashboard");
      else showError($("danger-error"), errorText(err));
    }
  });
  loadBans();
}

if (room) setupSettings();
else $("name").focus();
