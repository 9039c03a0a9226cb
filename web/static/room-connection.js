// The media connection's lifecycle and the end of the visit. Connects to LiveKit with a fresh grant, wires the
// room's events to the stage, the controls, the people list and the data topics, and when the media server
// cannot be reached says so in a banner and tries again in the background (10 s … 60 s, or at once from the
// banner's button) while chat and files poll. Ends the visit — ended, archived, removed, banned, left — with
// an overlay, after which nothing reconnects. Owns the retry state and whether the visit is over; writes the
// shared lk, room and stage (see room.js).
import { $, ApiError, api, el, errorText, t } from "./common.js";
import { forgetSession, saveSession } from "./guest.js";
import { dispatchData } from "./room-data.js";
import { Stage } from "./room-media.js";
import { linkButton, overlay, setConnState } from "./room-status.js";

/** Loads livekit-client once, and the stage that draws with it, into `live.lk` and `live.stage`. */
export async function loadClient(live) {
  if (!live.lk) {
    live.lk = await import("./livekit-client.esm.mjs");
    live.lk.setLogLevel("warn");
    live.stage = new Stage(live.lk);
  }
  return live.lk;
}

export class MediaConnection {
  /**
   * @param {object} options
   * @param {string} options.roomId
   * @param {boolean} options.isHost
   * @param {object|null} options.roomInfo the RoomView (hosts).
   * @param {object|null} options.session the guest's admission session (null for hosts).
   * @param {() => object} options.headers headers for the guest routes.
   * @param {{lk: object|null, room: object|null, stage: object|null, host: object|null}} options.live the
   *   room's shared objects (room.js): this class writes lk, room and stage; host is read to stop it.
   * @param {{setLive(live: boolean): void, poll(): void}} options.chat
   * @param {{setLive(live: boolean): void}} options.files
   * @param {{render(): void}} options.people
   * @param {{canPublish: boolean, setButtons(enabled: boolean): void, update(): void, deviceError(err: unknown): void,
   *   permissionsChanged(participant: object): void}} options.controls
   */
  constructor(options) {
    this.options = options;
    this.live = options.live;
    this.connecting = false;
    this.retryTimer = null;
    this.retryDelay = 10;
    this.leaving = false;
    this.ended = false;
    // Set once the visit is over (ended, removed, banned, left): nothing may reconnect or save state after it.
    this.stopped = false;
    $("media-retry").addEventListener("click", () => {
      this.retryDelay = 10;
      this.connect();
    });
    $("btn-leave").addEventListener("click", () => this.leave());
  }

  // ----- the end of the visit -----

  stopEverything() {
    const { chat, files } = this.options;
    this.stopped = true;
    clearTimeout(this.retryTimer);
    // "Live" stops the fallback polling.
    chat.setLive(true);
    files.setLive(true);
    this.live.host?.stop();
    if (this.live.room) {
      this.leaving = true;
      this.live.room.disconnect();
    }
  }

  /**
   * The lecture is over. Hosts get its page and the news that the room is ready for next time (same invite
   * link); guests a thank-you, the lecture's page when the room shares it with participants, and the invite
   * link for the next lecture. `lectureId`: the lecture that ended (the host's end answer or event), else the
   * one this page was opened for.
   */
  showEnded(lectureId) {
    const { isHost, roomId, roomInfo, session } = this.options;
    if (this.ended) return;
    this.ended = true;
    this.stopEverything();
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
  showArchived() {
    const { isHost, roomId } = this.options;
    this.stopEverything();
    setConnState("", t("status.ARCHIVED"));
    const actions = isHost ? [linkButton(`/rooms/${roomId}/settings`, "dashboard.settings", true), linkButton("/dashboard", "nav.dashboard")] : [linkButton("/", "error.home")];
    overlay("room.archived.title", t(isHost ? "room.archived.host_text" : "join.archived.text"), actions);
  }

  /**
   * Errors that end a guest's visit (from any request). Returns true when it took over the page.
   */
  handleProblem(err) {
    const { isHost, roomId, session } = this.options;
    if (!(err instanceof ApiError)) return false;
    switch (err.code) {
      case "room_ended":
        this.showEnded();
        return true;
      case "room_archived":
        this.showArchived();
        return true;
      case "banned":
        this.stopEverything();
        forgetSession(roomId);
        overlay("join.banned.title", t("join.banned.text"), [linkButton("/", "error.home")]);
        return true;
      case "removed":
        this.stopEverything();
        overlay("join.removed.title", t("join.removed.text"), session?.code ? [linkButton(`/j/${session.code}`, "room.rejoin", true)] : [linkButton("/", "error.home")]);
        forgetSession(roomId);
        return true;
      case "not_a_participant":
      case "session_not_found":
      case "rejected":
        if (isHost) return false;
        this.stopEverything();
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

  /** The leave button: hosts go to the dashboard, guests see a way back in. */
  leave() {
    this.stopEverything();
    if (this.options.isHost) {
      location.assign("/dashboard");
      return;
    }
    const rejoin = el("button", { type: "button", class: "button primary", text: t("room.rejoin") });
    rejoin.addEventListener("click", () => location.reload());
    overlay("room.left.title", t("room.left.text"), [rejoin, linkButton("/", "error.home")]);
  }

  // ----- media -----

  async grant() {
    const { isHost, roomId, headers } = this.options;
    if (isHost) return api("POST", `/api/rooms/${roomId}/token`);
    return api("POST", `/api/rooms/${roomId}/guest-token`, undefined, { headers: headers() });
  }

  mediaFailed(text) {
    const { chat, files, people, controls } = this.options;
    if (this.stopped) return;
    chat.setLive(false);
    files.setLive(false);
    setConnState("bad", t("room.media_offline"));
    $("media-banner-text").textContent = text;
    $("media-banner").hidden = false;
    $("stage-empty-text").textContent = t("room.media_unavailable");
    $("stage-empty").querySelector(".spinner").hidden = true;
    $("stage-empty").hidden = false;
    controls.setButtons(false);
    people.render();
    // Keep trying in the background too, more slowly each time (10 s … 60 s).
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.connect(), this.retryDelay * 1000);
    this.retryDelay = Math.min(60, this.retryDelay * 2);
  }

  async connect() {
    const { isHost, roomId, session } = this.options;
    const live = this.live;
    if (this.connecting || this.stopped) return;
    this.connecting = true;
    clearTimeout(this.retryTimer);
    setConnState("", t("room.connecting"));
    $("media-retry").disabled = true;
    $("stage-empty-text").textContent = t("room.connecting");
    $("stage-empty").querySelector(".spinner").hidden = false;
    try {
      let access;
      try {
        access = await this.grant();
      } catch (err) {
        if (this.handleProblem(err)) return;
        return this.mediaFailed(errorText(err));
      }
      if (this.stopped) return;
      if (!isHost && session) saveSession(roomId, { ...session, token: access.token, livekitUrl: access.livekitUrl });
      try {
        await loadClient(live);
      } catch {
        return this.mediaFailed(t("room.client_failed"));
      }
      if (live.room) {
        live.room.removeAllListeners();
        await live.room.disconnect();
        live.stage.detach();
      }
      const attempt = new live.lk.Room({ adaptiveStream: true, dynacast: true, disconnectOnPageLeave: true });
      live.room = attempt;
      this.wireRoom(attempt);
      try {
        await attempt.connect(access.livekitUrl, access.token, { autoSubscribe: true, maxRetries: 0, websocketTimeout: 10000, peerConnectionTimeout: 15000 });
      } catch (err) {
        console.warn("media connection failed", err);
        attempt.removeAllListeners();
        if (live.room === attempt) live.room = null;
        return this.mediaFailed(t("room.media_unreachable.text"));
      }
      if (this.stopped) {
        attempt.disconnect();
        return;
      }
      this.connected();
    } finally {
      this.connecting = false;
      $("media-retry").disabled = false;
    }
  }

  connected() {
    const { isHost, chat, files, people, controls } = this.options;
    const room = this.live.room;
    this.retryDelay = 10;
    $("media-banner").hidden = true;
    setConnState("live", t("room.live"));
    chat.setLive(true);
    files.setLive(true);
    this.live.stage.attach(room);
    controls.canPublish = !!room.localParticipant.permissions?.canPublish;
    controls.setButtons(true);
    people.render();
    if (isHost) {
      // Hosts come in with microphone and camera on; guests choose for themselves.
      room.localParticipant.setMicrophoneEnabled(true).catch((err) => controls.deviceError(err)).finally(() => controls.update());
      room.localParticipant.setCameraEnabled(true).catch((err) => controls.deviceError(err)).finally(() => controls.update());
    }
    if (!room.canPlaybackAudio) this.offerAudio();
  }

  offerAudio() {
    const button = el("button", { type: "button", class: "button", text: t("room.enable_audio") });
    button.addEventListener("click", async () => {
      await this.live.room?.startAudio();
      toastBox.remove();
    });
    const toastBox = el("div", { class: "toast" }, t("room.audio_blocked"), " ", button);
    $("toasts").append(toastBox);
  }

  wireRoom(r) {
    const { chat, people, controls } = this.options;
    const live = this.live;
    const { RoomEvent, DisconnectReason } = live.lk;
    const sync = () => {
      live.stage.sync();
      people.render();
      controls.update();
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
    r.on(RoomEvent.ActiveSpeakersChanged, (speakers) => live.stage.speakers(speakers));
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
      if (!r.canPlaybackAudio) this.offerAudio();
    });
    r.on(RoomEvent.ParticipantPermissionsChanged, (_previous, participant) => {
      if (participant === r.localParticipant) controls.permissionsChanged(participant);
      people.render();
    });
    r.on(RoomEvent.Disconnected, (reason) => {
      // A failed first connection is reported by connect() itself.
      if (r !== live.room || this.connecting) return;
      live.stage.detach();
      controls.setButtons(false);
      if (this.leaving) return;
      if (reason === DisconnectReason.ROOM_DELETED) return this.showEnded();
      if (reason === DisconnectReason.PARTICIPANT_REMOVED) {
        // Kicked or banned: the guest-token route says which.
        return this.grant().then(
          () => this.mediaFailed(t("room.disconnected")),
          (err) => this.handleProblem(err) || this.mediaFailed(errorText(err)),
        );
      }
      live.room = null;
      this.mediaFailed(t("room.disconnected"));
    });
  }
}
