// The video room. Gets a token (hosts: their session; guests: the admission session kept in this tab),
// starts chat, files and (for hosts) the lobby at once — they need only confctl — and loads livekit-client
// in parallel for audio and video. When the media server cannot be reached the page says so in a banner
// with a retry button, and everything that does not need media keeps working.
import { $, ApiError, api, data, el, errorText, t, toast, user } from "./common.js";
import { forgetSession, loadSession, saveSession, sessionHeaders } from "./guest.js";
import { Chat } from "./room-chat.js";
import { Files } from "./room-files.js";
import { dispatchData } from "./room-data.js";
import { Stage } from "./room-media.js";
import "./room-captions.js";

const roomId = data.roomId;
const isHost = data.role === "host";
const roomInfo = data.room || null;
const session = isHost ? null : loadSession(roomId);
let lk = null;
let room = null;
let stage = null;
let host = null;
let connecting = false;
let retryTimer = null;
let retryDelay = 10;
let leaving = false;
let ended = false;
// Set once the visit is over (ended, removed, banned, left): nothing may reconnect or save state after it.
let stopped = false;
let canPublish = false;
let handRaised = false;

const headers = () => sessionHeaders(session);
const webinar = isHost ? !!roomInfo?.webinarMode : !!session?.webinarMode;
const myName = isHost ? user?.name : session?.displayName;
const myRole = isHost ? (user?.role === "ADMIN" && roomInfo?.hostId !== user?.id ? "admin" : "host") : "guest";

// ----- page states -----

function setConnState(kind, text) {
  const pill = $("conn-state");
  pill.textContent = text;
  pill.classList.toggle("live", kind === "live");
  pill.classList.toggle("bad", kind === "bad");
}

/** A state that ends (or pauses) the visit, over the whole room. */
function overlay(titleKey, text, actions = []) {
  $("room-problem-title").textContent = t(titleKey);
  $("room-problem-text").textContent = text;
  $("room-problem-actions").replaceChildren(...actions);
  $("room-problem").hidden = false;
  $("media-banner").hidden = true;
  document.title = `${t(titleKey)} · confctl`;
  $("room-problem-title").setAttribute("tabindex", "-1");
  $("room-problem-title").focus();
}

function linkButton(href, key, primary = false) {
  return el("a", { class: `button${primary ? " primary" : ""}`, href, text: t(key) });
}

function stopEverything() {
  stopped = true;
  clearTimeout(retryTimer);
  // "Live" stops the fallback polling.
  chat.setLive(true);
  files.setLive(true);
  host?.stop();
  if (room) {
    leaving = true;
    room.disconnect();
  }
}

/**
 * The lecture is over. Hosts get its page and the news that the room is ready for next time (same invite
 * link); guests a thank-you, the lecture's page when the room shares it with participants, and the invite
 * link for the next lecture. `lectureId`: the lecture that ended (the host's end answer or event), else the
 * one this page was opened for.
 */
function showEnded(lectureId) {
  if (ended) return;
  ended = true;
  stopEverything();
  setConnState("", t("room.ended_short"));
  if (isHost) {
    const endedId = lectureId || roomInfo?.lectureId;
    const next = el("button", { type: "button", class: "button", text: t("room.ended.start_next") });
    next.addEventListener("click", () => location.reload());
    const actions = [endedId ? linkButton(`/lectures/${endedId}`, "room.open_lecture", true) : null, next, linkButton("/dashboard", "nav.dashboard")];
    overlay("room.ended.title", t("room.ended.host_text"), actions.filter(Boolean));
    return;
  }
  // This tab's admission is spent: the invite link leads to the next lecture, the proof stays for the page.
  forgetSession(roomId);
  const page = session?.lecturesForParticipants && session?.lectureId ? linkButton(`/lectures/${session.lectureId}`, "room.open_lecture", true) : null;
  const again = session?.code ? linkButton(`/j/${session.code}`, "room.ended.join_next") : null;
  overlay("room.ended.title", t("room.ended.text"), [page, again, linkButton("/", "error.home")].filter(Boolean));
}

/** The host archived the room: nobody joins until it is unarchived. */
function showArchived() {
  stopEverything();
  setConnState("", t("status.ARCHIVED"));
  const actions = isHost ? [linkButton(`/rooms/${roomId}/settings`, "dashboard.settings", true), linkButton("/dashboard", "nav.dashboard")] : [linkButton("/", "error.home")];
  overlay("room.archived.title", t(isHost ? "room.archived.host_text" : "join.archived.text"), actions);
}

/**
 * Errors that end a guest's visit (from any request). Returns true when it took over the page.
 */
function handleProblem(err) {
  if (!(err instanceof ApiError)) return false;
  switch (err.code) {
    case "room_ended":
      showEnded();
      return true;
    case "room_archived":
      showArchived();
      return true;
    case "banned":
      stopEverything();
      forgetSession(roomId);
      overlay("join.banned.title", t("join.banned.text"), [linkButton("/", "error.home")]);
      return true;
    case "removed":
      stopEverything();
      overlay("join.removed.title", t("join.removed.text"), session?.code ? [linkButton(`/j/${session.code}`, "room.rejoin", true)] : [linkButton("/", "error.home")]);
      forgetSession(roomId);
      return true;
    case "not_a_participant":
    case "session_not_found":
    case "rejected":
      if (isHost) return false;
      stopEverything();
      forgetSession(roomId);
      overlay("room.no_session.title", t("room.no_session.text"), session?.code ? [linkButton(`/j/${session.code}`, "room.rejoin", true)] : [linkButton("/", "error.home")]);
      return true;
    case "not_admitted":
      if (session?.code) location.assign(`/j/${session.code}`);
      return true;
    case "not_signed_in":
      location.assign(`/login?next=${encodeURIComponent(location.pathname)}`);
      return true;
    default:
      return false;
  }
}

// ----- side panel -----

const tabs = [...document.querySelectorAll('[role="tab"]')];
let currentTab = "tab-chat";

function selectTab(id, focus = false) {
  currentTab = id;
  for (const tab of tabs) {
    const selected = tab.id === id;
    tab.setAttribute("aria-selected", String(selected));
    tab.tabIndex = selected ? 0 : -1;
    $(tab.getAttribute("aria-controls")).hidden = !selected;
    if (selected && focus) tab.focus();
  }
  if (id === "tab-chat") {
    $("chat-unread").hidden = true;
    $("side-badge").hidden = true;
  }
}

for (const tab of tabs) {
  tab.addEventListener("click", () => selectTab(tab.id));
  tab.addEventListener("keydown", (event) => {
    const i = tabs.indexOf(tab);
    const next = { ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: tabs.length - 1 }[event.key];
    if (next === undefined) return;
    event.preventDefault();
    selectTab(tabs[(next + tabs.length) % tabs.length].id, true);
  });
}

const narrow = window.matchMedia("(max-width: 900px)");
function setSide(open) {
  $("side").classList.toggle("closed", !open);
  $("btn-side").setAttribute("aria-expanded", String(open));
  if (open) $("side-badge").hidden = true;
}
setSide(!narrow.matches);
// Crossing the breakpoint (rotating a tablet, resizing a window) resets the panel to that width's default.
narrow.addEventListener("change", (event) => setSide(!event.matches));
$("btn-side").addEventListener("click", () => setSide($("side").classList.contains("closed")));
$("close-side").addEventListener("click", () => {
  setSide(false);
  $("btn-side").focus();
});

function sideVisible() {
  return !$("side").classList.contains("closed");
}

// ----- chat, files, people -----

const chat = new Chat({
  roomId,
  headers,
  isHost,
  myName,
  myRole,
  onProblem: handleProblem,
  onUnread: () => {
    if (currentTab !== "tab-chat" || !sideVisible()) {
      $("chat-unread").hidden = currentTab === "tab-chat";
      $("chat-unread").textContent = "•";
      $("side-badge").hidden = sideVisible();
    }
  },
});
const files = new Files({ roomId, headers, isHost, onProblem: handleProblem });

function livePeople() {
  if (!room) return [];
  const people = [];
  for (const p of [room.localParticipant, ...room.remoteParticipants.values()]) {
    let role;
    try {
      role = JSON.parse(p.metadata || "{}").role || null;
    } catch {
      role = null;
    }
    if (!role) role = p.identity.startsWith("h_") ? "host" : p.identity.startsWith("g_") ? "guest" : null;
    people.push({ identity: p.identity, name: p.name || p.identity, role, local: p === room.localParticipant, speakingAllowed: !!p.permissions?.canPublish });
  }
  return people;
}

function renderPeople() {
  const people = host ? host.people() : livePeople();
  const list = $("people");
  const me = room?.localParticipant?.identity;
  list.replaceChildren(
    ...people.map((person) => {
      const tag = person.role === "host" ? el("span", { class: "tag", text: t("chat.role.host") }) : null;
      const you = person.identity === me ? ` ${t("people.you")}` : "";
      return el("li", { "data-identity": person.identity }, el("span", { class: "person-name" }, `${person.name}${you} `, tag), ...(host ? host.actionsFor(person) : []));
    }),
  );
  // Hosts see the media server's list even without their own media connection; guests only their own view.
  const empty = host ? host.rosterError || t("people.nobody") : room ? t("people.nobody") : t("people.needs_media");
  if (!people.length) list.append(el("li", { class: "muted small", text: empty }));
  $("people-count").textContent = people.length ? `(${people.length})` : "";
}

// ----- media -----

async function grant() {
  if (isHost) return api("POST", `/api/rooms/${roomId}/token`);
  return api("POST", `/api/rooms/${roomId}/guest-token`, undefined, { headers: headers() });
}

function mediaFailed(text) {
  if (stopped) return;
  chat.setLive(false);
  files.setLive(false);
  setConnState("bad", t("room.media_offline"));
  $("media-banner-text").textContent = text;
  $("media-banner").hidden = false;
  $("stage-empty-text").textContent = t("room.media_unavailable");
  $("stage-empty").querySelector(".spinner").hidden = true;
  $("stage-empty").hidden = false;
  setButtons(false);
  renderPeople();
  // Keep trying in the background too, more slowly each time (10 s … 60 s).
  clearTimeout(retryTimer);
  retryTimer = setTimeout(() => connectMedia(), retryDelay * 1000);
  retryDelay = Math.min(60, retryDelay * 2);
}

async function loadClient() {
  if (!lk) {
    lk = await import("./livekit-client.esm.mjs");
    lk.setLogLevel("warn");
    stage = new Stage(lk);
  }
  return lk;
}

async function connectMedia() {
  if (connecting || stopped) return;
  connecting = true;
  clearTimeout(retryTimer);
  setConnState("", t("room.connecting"));
  $("media-retry").disabled = true;
  $("stage-empty-text").textContent = t("room.connecting");
  $("stage-empty").querySelector(".spinner").hidden = false;
  try {
    let access;
    try {
      access = await grant();
    } catch (err) {
      if (handleProblem(err)) return;
      return mediaFailed(errorText(err));
    }
    if (stopped) return;
    if (!isHost && session) saveSession(roomId, { ...session, token: access.token, livekitUrl: access.livekitUrl });
    try {
      await loadClient();
    } catch {
      return mediaFailed(t("room.client_failed"));
    }
    if (room) {
      room.removeAllListeners();
      await room.disconnect();
      stage.detach();
    }
    const attempt = new lk.Room({ adaptiveStream: true, dynacast: true, disconnectOnPageLeave: true });
    room = attempt;
    wireRoom(attempt);
    try {
      await attempt.connect(access.livekitUrl, access.token, { autoSubscribe: true, maxRetries: 0, websocketTimeout: 10000, peerConnectionTimeout: 15000 });
    } catch (err) {
      console.warn("media connection failed", err);
      attempt.removeAllListeners();
      if (room === attempt) room = null;
      return mediaFailed(t("room.media_unreachable.text"));
    }
    if (stopped) {
      attempt.disconnect();
      return;
    }
    connected();
  } finally {
    connecting = false;
    $("media-retry").disabled = false;
  }
}

function connected() {
  retryDelay = 10;
  $("media-banner").hidden = true;
  setConnState("live", t("room.live"));
  chat.setLive(true);
  files.setLive(true);
  stage.attach(room);
  canPublish = !!room.localParticipant.permissions?.canPublish;
  setButtons(true);
  renderPeople();
  if (isHost) {
    // Hosts come in with microphone and camera on; guests choose for themselves.
    room.localParticipant.setMicrophoneEnabled(true).catch((err) => deviceError(err)).finally(updateButtons);
    room.localParticipant.setCameraEnabled(true).catch((err) => deviceError(err)).finally(updateButtons);
  }
  if (!room.canPlaybackAudio) offerAudio();
}

function offerAudio() {
  const button = el("button", { type: "button", class: "button", text: t("room.enable_audio") });
  button.addEventListener("click", async () => {
    await room?.startAudio();
    toastBox.remove();
  });
  const toastBox = el("div", { class: "toast" }, t("room.audio_blocked"), " ", button);
  $("toasts").append(toastBox);
}

function deviceError(err) {
  const name = err && err.name;
  if (name === "NotAllowedError") toast(t("room.device_denied"), "error");
  else if (name === "NotFoundError") toast(t("room.device_missing"), "error");
  else toast(t("room.device_failed"), "error");
}

function wireRoom(r) {
  const { RoomEvent, DisconnectReason } = lk;
  const sync = () => {
    stage.sync();
    renderPeople();
    updateButtons();
  };
  for (const event of [
    RoomEvent.ParticipantConnected,
    RoomEvent.ParticipantDisconnected,
    RoomEvent.TrackSubscribed,
    RoomEvent.TrackUnsubscribed,
    RoomEvent.TrackMuted,
    RoomEvent.TrackUnmuted,
    RoomEvent.LocalTrackPublished,
    RoomEvent.LocalTrackUnpublished,
    RoomEvent.ParticipantNameChanged,
  ]) {
    r.on(event, sync);
  }
  r.on(RoomEvent.ActiveSpeakersChanged, (speakers) => stage.speakers(speakers));
  r.on(RoomEvent.DataReceived, (payload, participant, _kind, topic) => dispatchData(topic, payload, participant));
  r.on(RoomEvent.Reconnecting, () => {
    setConnState("bad", t("room.reconnecting"));
    chat.setLive(false);
  });
  r.on(RoomEvent.Reconnected, () => {
    setConnState("live", t("room.live"));
    chat.setLive(true);
    chat.poll();
  });
  r.on(RoomEvent.AudioPlaybackStatusChanged, () => {
    if (!r.canPlaybackAudio) offerAudio();
  });
  r.on(RoomEvent.ParticipantPermissionsChanged, (_previous, participant) => {
    if (participant === r.localParticipant) {
      const now = !!participant.permissions?.canPublish;
      if (now !== canPublish) toast(now ? t("room.may_speak") : t("room.may_not_speak"));
      canPublish = now;
      if (now && handRaised) setHand(false, true);
      updateButtons();
    }
    renderPeople();
  });
  r.on(RoomEvent.Disconnected, (reason) => {
    // A failed first connection is reported by connect() itself.
    if (r !== room || connecting) return;
    stage.detach();
    setButtons(false);
    if (leaving) return;
    if (reason === DisconnectReason.ROOM_DELETED) return showEnded();
    if (reason === DisconnectReason.PARTICIPANT_REMOVED) {
      // Kicked or banned: the guest-token route says which.
      return grant().then(
        () => mediaFailed(t("room.disconnected")),
        (err) => handleProblem(err) || mediaFailed(errorText(err)),
      );
    }
    room = null;
    mediaFailed(t("room.disconnected"));
  });
}

// ----- controls -----

function setButtons(enabled) {
  for (const id of ["btn-mic", "btn-cam", "btn-screen"]) $(id).disabled = !enabled;
  updateButtons();
}

function setIcon(button, id) {
  button.querySelector("use").setAttribute("href", `#${id}`);
}

function updateButtons() {
  const local = room?.localParticipant;
  const micOn = !!local?.isMicrophoneEnabled;
  const camOn = !!local?.isCameraEnabled;
  const screenOn = !!local?.isScreenShareEnabled;
  const mayPublish = !!room && canPublish;
  const micButton = $("btn-mic");
  micButton.disabled = !mayPublish;
  micButton.setAttribute("aria-pressed", String(micOn));
  setIcon(micButton, micOn ? "i-mic" : "i-mic-off");
  micButton.title = mayPublish ? (micOn ? t("room.mic_off") : t("room.mic_on")) : t("room.no_publish");
  const camButton = $("btn-cam");
  camButton.disabled = !mayPublish;
  camButton.setAttribute("aria-pressed", String(camOn));
  setIcon(camButton, camOn ? "i-cam" : "i-cam-off");
  camButton.title = mayPublish ? (camOn ? t("room.camera_off") : t("room.camera_on")) : t("room.no_publish");
  const screenButton = $("btn-screen");
  const screenAllowed = isHost || !!session?.guestScreenShare || (local?.permissions?.canPublishSources || []).length !== 2;
  screenButton.disabled = !mayPublish || !screenAllowed || !navigator.mediaDevices?.getDisplayMedia;
  screenButton.setAttribute("aria-pressed", String(screenOn));
  $("btn-hand").hidden = isHost || !webinar;
  $("btn-hand").setAttribute("aria-pressed", String(handRaised));
  $("btn-hand").querySelector(".ctl-label").textContent = handRaised ? t("room.hand_lower") : t("room.hand");
}

async function toggle(kind) {
  const local = room?.localParticipant;
  if (!local) return;
  try {
    if (kind === "mic") await local.setMicrophoneEnabled(!local.isMicrophoneEnabled);
    if (kind === "cam") await local.setCameraEnabled(!local.isCameraEnabled);
    if (kind === "screen") await local.setScreenShareEnabled(!local.isScreenShareEnabled, { audio: true });
  } catch (err) {
    if (!(kind === "screen" && err && err.name === "NotAllowedError")) deviceError(err);
  }
  updateButtons();
  stage.sync();
}

$("btn-mic").addEventListener("click", () => toggle("mic"));
$("btn-cam").addEventListener("click", () => toggle("cam"));
$("btn-screen").addEventListener("click", () => toggle("screen"));
$("media-retry").addEventListener("click", () => {
  retryDelay = 10;
  connectMedia();
});

async function setHand(raised, quiet = false) {
  try {
    await api("POST", `/api/rooms/${roomId}/hand`, { raised }, { headers: headers() });
    handRaised = raised;
    if (!quiet) toast(raised ? t("room.hand_raised_toast") : t("room.hand_lowered_toast"));
  } catch (err) {
    if (!handleProblem(err)) toast(errorText(err), "error");
  }
  updateButtons();
}
$("btn-hand").addEventListener("click", () => setHand(!handRaised));

$("btn-leave").addEventListener("click", () => {
  stopEverything();
  if (isHost) {
    location.assign("/dashboard");
    return;
  }
  const rejoin = el("button", { type: "button", class: "button primary", text: t("room.rejoin") });
  rejoin.addEventListener("click", () => location.reload());
  overlay("room.left.title", t("room.left.text"), [rejoin, linkButton("/", "error.home")]);
});

// Device pickers: the browser's lists, switched live when connected.
async function fillDevices() {
  const note = $("devices-note");
  note.textContent = "";
  try {
    await loadClient();
  } catch {
    note.textContent = t("room.client_failed");
    return;
  }
  for (const select of document.querySelectorAll("#devices-dialog select")) {
    const kind = select.dataset.kind;
    let devices;
    try {
      devices = await lk.Room.getLocalDevices(kind, false);
    } catch {
      devices = [];
    }
    const active = room?.getActiveDevice(kind);
    select.replaceChildren(...devices.map((d, i) => el("option", { value: d.deviceId, selected: d.deviceId === active, text: d.label || t("devices.unnamed", { n: i + 1 }) })));
    select.disabled = devices.length === 0 || (kind === "audiooutput" && !lk.supportsAudioOutputSelection());
    if (!devices.length) select.append(el("option", { text: t("devices.none") }));
  }
}

for (const select of document.querySelectorAll("#devices-dialog select")) {
  select.addEventListener("change", async () => {
    if (!room) {
      $("devices-note").textContent = t("devices.apply_on_connect");
      return;
    }
    try {
      await room.switchActiveDevice(select.dataset.kind, select.value);
      $("devices-note").textContent = t("devices.switched");
    } catch {
      $("devices-note").textContent = t("room.device_failed");
    }
  });
}

$("btn-devices").addEventListener("click", () => {
  $("devices-dialog").showModal();
  fillDevices();
});

// ----- host -----

async function startHost() {
  const { HostControls } = await import("./room-host.js");
  host = new HostControls({
    roomId,
    room: roomInfo,
    livePeople,
    onRoomEnded: showEnded,
    onRoomArchived: showArchived,
    onLobbyCount: (n) => {
      $("lobby-count").textContent = String(n);
      $("lobby-count").hidden = n === 0;
    },
    onPeopleChanged: renderPeople,
    onHands: (hands) => stage?.setHands(hands.map((h) => h.identity)),
  });
  host.start();
  const end = $("btn-end");
  end.addEventListener("click", async () => {
    const { confirmDialog } = await import("./room-dialog.js");
    const answer = await confirmDialog({ title: t("room.end_title"), text: t("room.end_confirm"), ok: t("room.end_for_all") });
    if (!answer.ok) return;
    try {
      end.disabled = true;
      const body = await api("POST", `/api/rooms/${roomId}/end`);
      showEnded(body.endedLectureId);
    } catch (err) {
      end.disabled = false;
      toast(errorText(err), "error");
    }
  });
}

// ----- start -----

function start() {
  if (!isHost && !session) {
    setConnState("bad", t("room.not_joined"));
    overlay("room.no_session.title", t("room.no_session.text"), [linkButton("/", "error.home", true)]);
    return;
  }
  if (!isHost) {
    $("room-title").textContent = session.roomName || t("room.title");
    document.title = `${session.roomName || t("room.title")} · confctl`;
  } else {
    document.title = `${roomInfo.name} · confctl`;
  }
  if (isHost && roomInfo.status === "ARCHIVED") return showArchived();
  updateButtons();
  renderPeople();
  chat.start();
  files.start();
  if (isHost) startHost();
  connectMedia();
}

start();
