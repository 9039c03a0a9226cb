// The invite link: who is inviting, the guest's name (remembered), the PIN when the room has one, consent
// when the AI assistant is on; then the waiting room, live over SSE, reconnecting with backoff when the
// network drops, and a clear message for every way it can end.
import { $, ApiError, api, busy, data, errorText, showError, t } from "./common.js";
import { browserId, forgetSession, loadSession, rememberLecture, rememberName, rememberedName, roomForCode, saveSession, sessionHeaders } from "./guest.js";

const code = String(data.code || "").toLowerCase();
const views = ["join-loading", "join-problem", "join-form", "waiting"];
let room = null;
let stream = null;
let retryTimer = null;
let attempt = 0;

function show(id) {
  for (const view of views) $(view).hidden = view !== id;
}

/** A final (or retryable) message instead of the form. Returns true (it took over the page). */
function problem(titleKey, text, retry) {
  closeStream();
  $("problem-title").textContent = t(titleKey);
  $("problem-text").textContent = text;
  const button = $("problem-retry");
  button.hidden = !retry;
  button.onclick = retry || null;
  show("join-problem");
  document.title = `${t(titleKey)} · confctl`;
  $("problem-title").setAttribute("tabindex", "-1");
  $("problem-title").focus();
  return true;
}

/** The message for an error code that ends a guest's visit. */
function finalProblem(codeName, reason) {
  switch (codeName) {
    case "banned":
      return problem("join.banned.title", t("join.banned.text"));
    case "room_ended":
      return problem("join.ended.title", t("join.ended.text"));
    case "room_archived":
      return problem("join.archived.title", t("join.archived.text"));
    case "removed":
      return problem("join.removed.title", t("join.removed.text"), () => showForm());
    case "rejected":
      return problem("join.rejected.title", reason ? t("join.rejected.reason", { reason }) : t("join.rejected.text"));
    default:
      return false;
  }
}

async function loadRoom() {
  show("join-loading");
  try {
    room = await api("GET", `/api/rooms/by-code/${encodeURIComponent(code)}`);
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) return problem("join.invalid_code.title", t("join.invalid_code.text"));
    return problem("join.load_failed.title", errorText(err), loadRoom);
  }
  if (room.status === "ARCHIVED") return problem("join.archived.title", t("join.archived.text"));
  document.title = `${room.name} · confctl`;
  // A reload while waiting goes straight back to the waiting room.
  const previousRoom = roomForCode(code);
  const session = previousRoom === room.id ? loadSession(room.id) : null;
  if (session && session.status === "PENDING") return wait(session);
  if (session && session.status === "APPROVED") return location.assign(`/rooms/${room.id}`);
  showForm();
}

function showForm() {
  closeStream();
  $("room-name").textContent = room.name;
  $("host-name").textContent = t("join.host", { name: room.hostName });
  $("pin-field").hidden = !room.requiresPin;
  $("consent-field").hidden = !room.aiAssistant;
  $("lecture-pages-note").hidden = !room.lecturesForParticipants;
  const name = $("display-name");
  if (!name.value) name.value = rememberedName();
  show("join-form");
  (name.value ? (room.requiresPin ? $("pin") : $("join-submit")) : name).focus();
}

function invalid(input, key) {
  input.setAttribute("aria-invalid", "true");
  input.focus();
  showError($("form-error"), t(key));
}

$("join-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  for (const input of form.querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
  const name = $("display-name").value.trim();
  const pin = $("pin").value.trim();
  if (!name) return invalid($("display-name"), "join.need_name");
  if (room.requiresPin && !pin) return invalid($("pin"), "join.need_pin");
  if (room.aiAssistant && !$("consent").checked) return invalid($("consent"), "join.need_consent");
  showError($("form-error"), "");
  rememberName(name);
  const previous = loadSession(room.id);
  // The invite code proves the guest holds the current link: a replaced code locks out the old one.
  const body = { inviteCode: code, displayName: name, sessionFingerprint: browserId() };
  if (room.requiresPin) body.pin = pin;
  let answer;
  try {
    answer = await busy($("join-submit"), () =>
      api("POST", `/api/rooms/${room.id}/join`, body, { headers: sessionHeaders(previous) }),
    );
  } catch (err) {
    if (err instanceof ApiError && err.code === "wrong_pin") {
      $("pin").value = "";
      return invalid($("pin"), "error.code.wrong_pin");
    }
    if (err instanceof ApiError && err.code === "invite_not_found") {
      return problem("join.invalid_code.title", t("join.invalid_code.text"));
    }
    if (err instanceof ApiError && finalProblem(err.code)) return;
    if (err instanceof ApiError && err.code === "room_locked") return showError($("form-error"), t("error.code.room_locked"));
    return showError($("form-error"), errorText(err));
  }
  const session = {
    sessionId: answer.sessionId,
    lectureId: answer.lectureId,
    status: answer.status,
    displayName: name,
    roomName: room.name,
    hostName: room.hostName,
    code,
    webinarMode: room.webinarMode,
    aiAssistant: room.aiAssistant,
    lecturesForParticipants: room.lecturesForParticipants,
  };
  if (answer.status === "APPROVED") return enter(session, answer);
  saveSession(room.id, session);
  wait(session);
});

/** Admitted: the room page takes the token from the tab's session; the lecture's page keeps the proof. */
function enter(session, grant) {
  closeStream();
  rememberLecture(session.lectureId, { sessionId: session.sessionId, roomId: room.id, roomName: room.name });
  saveSession(room.id, { ...session, status: "APPROVED", token: grant.token, livekitUrl: grant.livekitUrl });
  location.assign(`/rooms/${room.id}`);
}

function closeStream() {
  clearTimeout(retryTimer);
  if (stream) {
    stream.close();
    stream = null;
  }
}

function connectionNote(text) {
  $("waiting-connection").textContent = text;
}

function wait(session) {
  $("waiting-room-name").textContent = room.name;
  show("waiting");
  document.title = `${t("waiting.heading")} · confctl`;
  openStream(session);
}

function openStream(session) {
  closeStream();
  const url = `/api/rooms/${room.id}/lobby/stream?sessionId=${encodeURIComponent(session.sessionId)}`;
  const source = new EventSource(url);
  stream = source;
  source.addEventListener("open", () => {
    attempt = 0;
    connectionNote("");
  });
  source.addEventListener("status", (event) => {
    let update;
    try {
      update = JSON.parse(event.data);
    } catch {
      return;
    }
    attempt = 0;
    connectionNote("");
    if (update.status === "APPROVED") enter(session, update);
    else if (update.status === "REJECTED") decided(session, update.reason);
  });
  // The stream failed or ended: ask where things stand before deciding what to do.
  source.addEventListener("error", () => {
    if (stream !== source) return;
    source.close();
    stream = null;
    probe(session);
  });
}

/** Turned away (or the room ended, or a ban): the guest-token route names the exact reason. */
async function decided(session, reason) {
  closeStream();
  try {
    const grant = await api("POST", `/api/rooms/${room.id}/guest-token`, undefined, { headers: sessionHeaders(session) });
    return enter(session, grant);
  } catch (err) {
    forgetSession(room.id);
    if (err instanceof ApiError && finalProblem(err.code, reason)) return;
    finalProblem("rejected", reason);
  }
}

async function probe(session) {
  try {
    const grant = await api("POST", `/api/rooms/${room.id}/guest-token`, undefined, { headers: sessionHeaders(session) });
    return enter(session, grant);
  } catch (err) {
    if (err instanceof ApiError && err.code === "not_admitted") return reconnect(session, false);
    if (err instanceof ApiError && err.status === 404) {
      forgetSession(room.id);
      showForm();
      return showError($("form-error"), t("join.session_lost"));
    }
    if (err instanceof ApiError && finalProblem(err.code)) {
      forgetSession(room.id);
      return;
    }
    reconnect(session, true);
  }
}

/** Tries again after 1, 2, 4, 8, 15, 15… seconds, saying so. */
function reconnect(session, networkLost) {
  attempt += 1;
  const delay = Math.min(15, 2 ** (attempt - 1));
  if (networkLost || attempt > 1) connectionNote(t("waiting.reconnecting", { seconds: delay }));
  clearTimeout(retryTimer);
  retryTimer = setTimeout(() => openStream(session), delay * 1000);
}

$("leave-waiting").addEventListener("click", () => {
  closeStream();
  forgetSession(room.id);
  showForm();
});

window.addEventListener("online", () => {
  const session = room && loadSession(room.id);
  if (session && session.status === "PENDING" && !$("waiting").hidden && !stream) {
    attempt = 0;
    openStream(session);
  }
});

loadRoom();
