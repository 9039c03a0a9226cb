// The local controls in the bar under the stage: microphone, camera and screen (usable while connected with
// permission to publish), the webinar's raised hand, and the devices dialog (the browser's lists, switched live
// when connected). Owns whether this participant may publish and whether their hand is up.
import { $, api, el, errorText, t, toast } from "./common.js";
import { loadClient } from "./room-connection.js";

function setIcon(button, id) {
  button.querySelector("use").setAttribute("href", `#${id}`);
}

export class Controls {
  /**
   * @param {object} options
   * @param {string} options.roomId
   * @param {boolean} options.isHost
   * @param {object|null} options.session the guest's admission session (null for hosts).
   * @param {boolean} options.webinar the room is a webinar: guests raise a hand to speak.
   * @param {() => object} options.headers headers for the guest routes.
   * @param {{lk: object|null, room: object|null, stage: object|null}} options.live the room's shared objects
   *   (room.js), written by the media connection; read only here.
   * @param {(err: unknown) => boolean} options.onProblem errors that end the visit; true when handled.
   */
  constructor(options) {
    this.options = options;
    this.live = options.live;
    /** The media server lets this participant publish (set on connecting, changed by the host). */
    this.canPublish = false;
    this.handRaised = false;
    $("btn-mic").addEventListener("click", () => this.toggle("mic"));
    $("btn-cam").addEventListener("click", () => this.toggle("cam"));
    $("btn-screen").addEventListener("click", () => this.toggle("screen"));
    $("btn-hand").addEventListener("click", () => this.setHand(!this.handRaised));
    for (const select of document.querySelectorAll("#devices-dialog select")) {
      select.addEventListener("change", () => this.switchDevice(select));
    }
    $("btn-devices").addEventListener("click", () => {
      $("devices-dialog").showModal();
      this.fillDevices();
    });
  }

  setButtons(enabled) {
    for (const id of ["btn-mic", "btn-cam", "btn-screen"]) $(id).disabled = !enabled;
    this.update();
  }

  /** Shows the buttons as the connection, the permissions and the local tracks now are. */
  update() {
    const { isHost, session, webinar } = this.options;
    const room = this.live.room;
    const local = room?.localParticipant;
    const micOn = !!local?.isMicrophoneEnabled;
    const camOn = !!local?.isCameraEnabled;
    const screenOn = !!local?.isScreenShareEnabled;
    const mayPublish = !!room && this.canPublish;
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
    $("btn-hand").setAttribute("aria-pressed", String(this.handRaised));
    $("btn-hand").querySelector(".ctl-label").textContent = this.handRaised ? t("room.hand_lower") : t("room.hand");
  }

  deviceError(err) {
    const name = err && err.name;
    if (name === "NotAllowedError") toast(t("room.device_denied"), "error");
    else if (name === "NotFoundError") toast(t("room.device_missing"), "error");
    else toast(t("room.device_failed"), "error");
  }

  async toggle(kind) {
    const local = this.live.room?.localParticipant;
    if (!local) return;
    try {
      if (kind === "mic") await local.setMicrophoneEnabled(!local.isMicrophoneEnabled);
      if (kind === "cam") await local.setCameraEnabled(!local.isCameraEnabled);
      if (kind === "screen") await local.setScreenShareEnabled(!local.isScreenShareEnabled, { audio: true });
    } catch (err) {
      if (!(kind === "screen" && err && err.name === "NotAllowedError")) this.deviceError(err);
    }
    this.update();
    this.live.stage.sync();
  }

  /** The media server granted or took back this participant's permission to publish. */
  permissionsChanged(participant) {
    const now = !!participant.permissions?.canPublish;
    if (now !== this.canPublish) toast(now ? t("room.may_speak") : t("room.may_not_speak"));
    this.canPublish = now;
    if (now && this.handRaised) this.setHand(false, true);
    this.update();
  }

  async setHand(raised, quiet = false) {
    const { roomId, headers, onProblem } = this.options;
    try {
      await api("POST", `/api/rooms/${roomId}/hand`, { raised }, { headers: headers() });
      this.handRaised = raised;
      if (!quiet) toast(raised ? t("room.hand_raised_toast") : t("room.hand_lowered_toast"));
    } catch (err) {
      if (!onProblem(err)) toast(errorText(err), "error");
    }
    this.update();
  }

  // Device pickers: the browser's lists, switched live when connected.
  async fillDevices() {
    const note = $("devices-note");
    note.textContent = "";
    try {
      await loadClient(this.live);
    } catch {
      note.textContent = t("room.client_failed");
      return;
    }
    const lk = this.live.lk;
    for (const select of document.querySelectorAll("#devices-dialog select")) {
      const kind = select.dataset.kind;
      let devices;
      try {
        devices = await lk.Room.getLocalDevices(kind, false);
      } catch {
        devices = [];
      }
      const active = this.live.room?.getActiveDevice(kind);
      select.replaceChildren(...devices.map((d, i) => el("option", { value: d.deviceId, selected: d.deviceId === active, text: d.label || t("devices.unnamed", { n: i + 1 }) })));
      select.disabled = devices.length === 0 || (kind === "audiooutput" && !lk.supportsAudioOutputSelection());
      if (!devices.length) select.append(el("option", { text: t("devices.none") }));
    }
  }

  async switchDevice(select) {
    const room = this.live.room;
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
  }
}
