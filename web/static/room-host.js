// The host's controls inside the room: the lobby (live from the host event stream: approve, reject, approve
// all), the people in the room with kick and ban, mute all (confirmed once), lock, the raised-hands queue
// with "let speak" / "revoke", and the room's lock and panic-mute state.
import { $, ApiError, api, busy, el, errorText, showError, t, toast } from "./common.js";
import { confirmDialog } from "./room-dialog.js";
import { onData } from "./room-data.js";

const ROSTER_MS = 5000;

export class HostControls {
  /**
   * @param {object} options roomId; room (the RoomView); livePeople() → [{identity, name, role}] from the
   *   media connection; onRoomEnded(lectureId?); onRoomArchived(); onLobbyCount(n); onPeopleChanged();
   *   onHands(hands).
   */
  constructor(options) {
    this.options = options;
    this.roomId = options.roomId;
    this.entries = new Map();
    this.roster = [];
    this.rosterError = "";
    this.hands = [];
    this.locked = !!options.room?.locked;
    this.guestsMuted = !!options.room?.guestsMuted;
    this.webinar = !!options.room?.webinarMode;
    this.source = null;
    this.retry = 0;
    $("approve-all").addEventListener("click", () => this.approveAll());
    $("mute-all").addEventListener("click", () => this.muteAll());
    $("toggle-lock").addEventListener("click", () => this.toggleLock());
    onData("hand-raise", () => this.loadHands());
    this.renderLock();
    this.renderMute();
  }

  start() {
    this.openEvents();
    this.loadHands();
    this.pollRoster();
  }

  // ----- lobby -----

  openEvents() {
    if (this.source) this.source.close();
    const source = new EventSource(`/api/rooms/${this.roomId}/events`);
    this.source = source;
    const on = (name, handler) =>
      source.addEventListener(name, (event) => {
        try {
          handler(JSON.parse(event.data));
        } catch (err) {
          console.error("host event", name, err);
        }
      });
    source.addEventListener("open", () => {
      this.retry = 0;
      showError($("lobby-error"), "");
      // A browser's own reconnect sends Last-Event-ID: the server then replays what was missed instead
      // of a "lobby" snapshot, so the "reconnecting" line is cleared here.
      this.renderLobby();
    });
    on("lobby", (d) => {
      this.entries.clear();
      for (const entry of d.entries) this.entries.set(entry.id, entry);
      this.renderLobby();
    });
    on("guest_waiting", (d) => {
      const isNew = !this.entries.has(d.entry.id);
      this.entries.set(d.entry.id, d.entry);
      this.renderLobby();
      if (isNew) toast(t("lobby.arrived", { name: d.entry.displayName }));
    });
    on("guest_left", (d) => {
      this.entries.delete(d.entryId);
      this.renderLobby();
    });
    on("lobby_decided", (d) => {
      for (const entry of d.entries) this.entries.delete(entry.id);
      this.renderLobby();
      this.pollRoster(true);
    });
    on("lecture_ended", (d) => this.options.onRoomEnded(d.lectureId));
    on("room_updated", (d) => {
      this.locked = !!d.locked;
      this.guestsMuted = !!d.guestsMuted;
      this.renderLock();
      this.renderMute();
    });
    on("hands", (d) => {
      this.hands = d.hands || [];
      this.renderHands();
    });
    // A kick or ban answered "pending" (LiveKit did not answer): confctl already refuses the person.
    on("removal_confirmed", () => this.pollRoster(true));
    on("removal_failed", () => toast(t("host.removal_failed"), "error"));
    source.addEventListener("error", () => {
      if (source.readyState !== EventSource.CLOSED) {
        $("lobby-state").textContent = t("lobby.reconnecting");
        return;
      }
      // The browser gave up (an HTTP error): find out why, then try again with backoff.
      this.source = null;
      this.checkLobby();
    });
  }

  async checkLobby() {
    try {
      const body = await api("GET", `/api/rooms/${this.roomId}/lobby`);
      this.entries.clear();
      for (const entry of body.entries) this.entries.set(entry.id, entry);
      this.renderLobby();
    } catch (err) {
      if (err instanceof ApiError && err.code === "room_archived") return this.options.onRoomArchived();
      if (err instanceof ApiError && err.status === 401) return location.assign(`/login?next=${encodeURIComponent(location.pathname)}`);
      showError($("lobby-error"), errorText(err));
    }
    this.retry += 1;
    setTimeout(() => this.openEvents(), Math.min(15, 2 ** this.retry) * 1000);
  }

  renderLobby() {
    const list = $("lobby");
    const entries = [...this.entries.values()].filter((e) => e.status === "PENDING");
    list.replaceChildren(
      ...entries.map((entry) => {
        const approve = el("button", { type: "button", class: "button small primary", text: t("lobby.approve"), "aria-label": t("lobby.approve_label", { name: entry.displayName }) });
        const reject = el("button", { type: "button", class: "button small", text: t("lobby.reject"), "aria-label": t("lobby.reject_label", { name: entry.displayName }) });
        approve.addEventListener("click", () => this.decide(entry, "approve", approve));
        reject.addEventListener("click", () => this.reject(entry, reject));
        return el("li", { "data-entry-id": entry.id }, el("span", { class: "person-name", text: entry.displayName }), approve, reject);
      }),
    );
    $("lobby-state").textContent = entries.length ? t("lobby.waiting_count", { count: entries.length }) : t("lobby.empty");
    $("approve-all").disabled = entries.length === 0;
    this.options.onLobbyCount(entries.length);
  }

  async decide(entry, action, button, body) {
    showError($("lobby-error"), "");
    try {
      await busy(button, () => api("POST", `/api/rooms/${this.roomId}/lobby/${entry.id}/${action}`, body));
      this.entries.delete(entry.id);
      this.renderLobby();
    } catch (err) {
      if (err instanceof ApiError && err.code === "already_decided") {
        this.entries.delete(entry.id);
        this.renderLobby();
        return;
      }
      showError($("lobby-error"), errorText(err));
    }
  }

  async reject(entry, button) {
    const answer = await confirmDialog({
      title: t("lobby.reject_title", { name: entry.displayName }),
      text: t("lobby.reject_text"),
      ok: t("lobby.reject"),
      reason: true,
      reasonLabel: t("lobby.reject_reason"),
    });
    if (!answer.ok) return;
    await this.decide(entry, "reject", button, answer.reason ? { reason: answer.reason } : {});
  }

  async approveAll() {
    const button = $("approve-all");
    showError($("lobby-error"), "");
    try {
      const body = await busy(button, () => api("POST", `/api/rooms/${this.roomId}/lobby/approve-all`));
      toast(body.stillWaiting ? t("lobby.approved_some", { count: body.approved, left: body.stillWaiting }) : t("lobby.approved_all", { count: body.approved }));
    } catch (err) {
      showError($("lobby-error"), errorText(err));
    }
  }

  // ----- people -----

  /** Refreshes who is in the media session; `once` refreshes now without touching the periodic poll. */
  async pollRoster(once) {
    if (!once) clearTimeout(this.rosterTimer);
    try {
      const body = await api("GET", `/api/rooms/${this.roomId}/participants`);
      this.roster = body.participants;
      this.rosterError = "";
    } catch (err) {
      if (err instanceof ApiError && err.code === "room_archived") return this.options.onRoomArchived();
      this.rosterError = err instanceof ApiError && err.code === "livekit_unavailable" ? t("people.media_unreachable") : errorText(err);
    }
    this.options.onPeopleChanged();
    if (!once) this.rosterTimer = setTimeout(() => this.pollRoster(), ROSTER_MS);
  }

  /** Everyone known: the live media connection's view first, the media server's list for the rest. */
  people() {
    const byIdentity = new Map();
    for (const p of this.roster) byIdentity.set(p.identity, { ...p });
    for (const p of this.options.livePeople()) byIdentity.set(p.identity, { ...byIdentity.get(p.identity), ...p });
    return [...byIdentity.values()];
  }

  /** Moderation buttons for one guest row. */
  actionsFor(person) {
    if (person.role !== "guest") return [];
    const buttons = [];
    if (this.webinar) {
      const allowed = person.speakingAllowed;
      const speak = el("button", { type: "button", class: "button small", text: allowed ? t("hands.revoke") : t("hands.let_speak") });
      speak.addEventListener("click", () => this.setSpeaking(person, !allowed, speak));
      buttons.push(speak);
    }
    const kick = el("button", { type: "button", class: "button small", text: t("host.kick"), "aria-label": t("host.kick_label", { name: person.name }) });
    kick.addEventListener("click", () => this.kick(person, kick));
    const ban = el("button", { type: "button", class: "button small danger", text: t("host.ban"), "aria-label": t("host.ban_label", { name: person.name }) });
    ban.addEventListener("click", () => this.ban(person, ban));
    buttons.push(kick, ban);
    return buttons;
  }

  hostError(err) {
    const text = errorText(err);
    showError($("host-error"), text);
    toast(text, "error");
  }

  async kick(person, button) {
    const answer = await confirmDialog({ title: t("host.kick_title", { name: person.name }), text: t("host.kick_text"), ok: t("host.kick") });
    if (!answer.ok) return;
    await this.remove(person, button, "kick", undefined, "host.kicked");
  }

  async ban(person, button) {
    const answer = await confirmDialog({
      title: t("host.ban_title", { name: person.name }),
      text: t("host.ban_text"),
      ok: t("host.ban"),
      reason: true,
      reasonLabel: t("host.ban_reason"),
    });
    if (!answer.ok) return;
    await this.remove(person, button, "ban", answer.reason ? { reason: answer.reason } : {}, "host.banned");
  }

  // What kicking and banning share once the host has confirmed: the request, the toasts (one more while the
  // removal is still pending) and the roster without the person.
  async remove(person, button, action, body, doneKey) {
    showError($("host-error"), "");
    try {
      const removal = await busy(button, () => api("POST", `/api/rooms/${this.roomId}/participants/${encodeURIComponent(person.identity)}/${action}`, body));
      toast(t(doneKey, { name: person.name }));
      if (removal && removal.pending) toast(t("host.removal_pending", { name: person.name }));
      this.roster = this.roster.filter((p) => p.identity !== person.identity);
      this.options.onPeopleChanged();
      this.pollRoster(true);
    } catch (err) {
      this.hostError(err);
    }
  }

  async muteAll() {
    const button = $("mute-all");
    showError($("host-error"), "");
    if (this.guestsMuted) {
      try {
        await busy(button, () => api("POST", `/api/rooms/${this.roomId}/unmute-all`));
        this.guestsMuted = false;
        this.renderMute();
        toast(t("host.unmuted_all"));
      } catch (err) {
        this.hostError(err);
      }
      return;
    }
    const answer = await confirmDialog({ title: t("host.mute_all_title"), text: t("host.mute_all_text"), ok: t("host.mute_all") });
    if (!answer.ok) return;
    try {
      const report = await busy(button, () => api("POST", `/api/rooms/${this.roomId}/mute-all`));
      this.guestsMuted = true;
      this.renderMute();
      const failed = (report.failed || []).length;
      toast(failed ? t("host.muted_some", { count: (report.muted || []).length, failed }) : t("host.muted_all", { count: (report.muted || []).length }));
    } catch (err) {
      this.hostError(err);
    }
  }

  renderMute() {
    $("mute-all").textContent = this.guestsMuted ? t("host.unmute_all") : t("host.mute_all");
    $("mute-all").classList.toggle("danger", !this.guestsMuted);
  }

  async toggleLock() {
    const button = $("toggle-lock");
    const want = !this.locked;
    showError($("host-error"), "");
    try {
      await busy(button, () => api("POST", `/api/rooms/${this.roomId}/${want ? "lock" : "unlock"}`));
      this.locked = want;
      this.renderLock();
      toast(want ? t("host.locked_toast") : t("host.unlocked_toast"));
    } catch (err) {
      this.hostError(err);
    }
  }

  renderLock() {
    const button = $("toggle-lock");
    button.setAttribute("aria-pressed", String(this.locked));
    button.textContent = this.locked ? t("host.unlock") : t("host.lock");
    $("room-locked").hidden = !this.locked;
  }

  // ----- hands -----

  async loadHands() {
    try {
      const body = await api("GET", `/api/rooms/${this.roomId}/hands`);
      this.hands = body.hands;
      $("hands-state").textContent = "";
    } catch (err) {
      $("hands-state").textContent = errorText(err);
    }
    this.renderHands();
  }

  renderHands() {
    const list = $("hands");
    $("hands-section").hidden = !this.webinar && this.hands.length === 0;
    $("hands-count").textContent = this.hands.length ? `(${this.hands.length})` : "";
    if (!this.hands.length && !$("hands-state").textContent) $("hands-state").textContent = t("hands.none");
    else if (this.hands.length && $("hands-state").textContent === t("hands.none")) $("hands-state").textContent = "";
    list.replaceChildren(
      ...this.hands.map((hand, index) => {
        const person = { identity: hand.identity, name: hand.displayName };
        const speak = el("button", { type: "button", class: "button small primary", text: t("hands.let_speak") });
        speak.addEventListener("click", () => this.setSpeaking(person, true, speak));
        const dismiss = el("button", { type: "button", class: "button small", text: t("hands.revoke") });
        dismiss.addEventListener("click", () => this.setSpeaking(person, false, dismiss));
        return el("li", {}, el("span", { class: "person-name", text: `${index + 1}. ${hand.displayName}` }), speak, dismiss);
      }),
    );
    this.options.onHands?.(this.hands);
  }

  async setSpeaking(person, canPublish, button) {
    showError($("host-error"), "");
    try {
      await busy(button, () => api("POST", `/api/rooms/${this.roomId}/participants/${encodeURIComponent(person.identity)}/permissions`, { canPublish }));
      toast(canPublish ? t("hands.allowed", { name: person.name }) : t("hands.revoked", { name: person.name }));
      this.loadHands();
      this.pollRoster(true);
    } catch (err) {
      this.hostError(err);
    }
  }

  stop() {
    if (this.source) this.source.close();
    this.source = null;
    clearTimeout(this.rosterTimer);
  }
}
