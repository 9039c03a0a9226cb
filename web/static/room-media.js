// The video stage: one tile per participant (camera or initials), the active speaker outlined, a shared
// screen shown large, and remote audio played through hidden <audio> elements. `sync()` reconciles the
// tiles with the room's state after any change, so event order never leaves a stale tile behind.
import { $, el, t } from "./common.js";

function initials(name) {
  const parts = String(name || "?").trim().split(/\s+/).filter(Boolean);
  const letters = parts.length > 1 ? parts[0][0] + parts[parts.length - 1][0] : (parts[0] || "?").slice(0, 2);
  return letters.toUpperCase();
}

function icon(id, extra = "") {
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("class", `icon ${extra}`);
  svg.setAttribute("aria-hidden", "true");
  const use = document.createElementNS("http://www.w3.org/2000/svg", "use");
  use.setAttribute("href", `#${id}`);
  svg.append(use);
  return svg;
}

export class Stage {
  constructor(lk) {
    this.lk = lk;
    this.room = null;
    this.tiles = new Map();
    this.audio = new Map();
    this.hands = new Set();
    this.grid = $("grid");
    this.focus = $("stage-focus");
    this.empty = $("stage-empty");
    this.audioBox = el("div", { hidden: true });
    document.body.append(this.audioBox);
  }

  attach(room) {
    this.room = room;
    this.sync();
  }

  detach() {
    for (const tile of this.tiles.values()) tile.node.remove();
    this.tiles.clear();
    for (const [, element] of this.audio) element.remove();
    this.audio.clear();
    this.focus.replaceChildren();
    this.focus.hidden = true;
    this.room = null;
  }

  setHands(identities) {
    this.hands = new Set(identities);
    this.sync();
  }

  participants() {
    if (!this.room) return [];
    return [this.room.localParticipant, ...this.room.remoteParticipants.values()];
  }

  /** Makes the tiles, videos and audio elements match the room. */
  sync() {
    const { Track } = this.lk;
    const wanted = new Set();
    const wantedAudio = new Set();
    let screen = null;
    for (const p of this.participants()) {
      const local = p === this.room.localParticipant;
      const camera = p.getTrackPublication(Track.Source.Camera);
      const screenPub = p.getTrackPublication(Track.Source.ScreenShare);
      const mic = p.getTrackPublication(Track.Source.Microphone);
      const key = `${p.identity}:camera`;
      wanted.add(key);
      const cameraTrack = camera && camera.track && !camera.isMuted ? camera.track : null;
      this.tile(key, p, cameraTrack, { local, micMuted: !mic || mic.isMuted, screen: false });
      if (screenPub && screenPub.track && !screenPub.isMuted) {
        const screenKey = `${p.identity}:screen`;
        wanted.add(screenKey);
        this.tile(screenKey, p, screenPub.track, { local, micMuted: false, screen: true });
        if (!screen) screen = screenKey;
      }
      if (!local) {
        for (const pub of p.audioTrackPublications.values()) {
          if (pub.track && pub.isSubscribed) {
            const audioKey = `${p.identity}:${pub.trackSid}`;
            wantedAudio.add(audioKey);
            if (!this.audio.has(audioKey)) {
              const element = pub.track.attach();
              this.audioBox.append(element);
              this.audio.set(audioKey, element);
            }
          }
        }
      }
    }
    for (const [key, tile] of this.tiles) {
      if (!wanted.has(key)) {
        if (tile.track) tile.track.detach(tile.video);
        tile.node.remove();
        this.tiles.delete(key);
      }
    }
    for (const [key, element] of this.audio) {
      if (!wantedAudio.has(key)) {
        element.remove();
        this.audio.delete(key);
      }
    }
    // A shared screen takes the big area; everyone else becomes a strip below it.
    const focusTile = screen ? this.tiles.get(screen) : null;
    for (const [key, tile] of this.tiles) {
      const target = key === screen ? this.focus : this.grid;
      if (tile.node.parentNode !== target) target.append(tile.node);
    }
    if (focusTile) this.focus.replaceChildren(focusTile.node);
    this.focus.hidden = !focusTile;
    this.empty.hidden = this.tiles.size > 0;
    this.speakers(this.room ? this.room.activeSpeakers : []);
  }

  tile(key, participant, track, { local, micMuted, screen }) {
    let tile = this.tiles.get(key);
    if (!tile) {
      const video = el("video", { autoplay: true, playsinline: true, muted: true });
      video.muted = true;
      const avatar = el("div", { class: "avatar", "aria-hidden": "true" });
      const label = el("span", { class: "label" });
      const mic = icon("i-mic-off");
      const name = el("div", { class: "name" }, mic, label);
      const hand = el("span", { class: "hand-flag", text: `✋ ${t("room.hand_raised")}` });
      const node = el("div", { class: `tile${screen ? " screen" : ""}`, "data-identity": participant.identity, role: "group" }, avatar, video, name, hand);
      tile = { node, video, avatar, label, mic, hand, track: null };
      this.tiles.set(key, tile);
    }
    const displayName = participant.name || participant.identity;
    const shown = local ? t("room.you", { name: displayName }) : displayName;
    tile.label.textContent = screen ? t("room.screen_of", { name: shown }) : shown;
    tile.node.setAttribute("aria-label", tile.label.textContent);
    tile.avatar.textContent = initials(displayName);
    tile.mic.style.display = micMuted && !screen ? "" : "none";
    tile.hand.hidden = screen || !this.hands.has(participant.identity);
    if (tile.track !== track) {
      if (tile.track) tile.track.detach(tile.video);
      tile.track = track;
      if (track) track.attach(tile.video);
    }
    tile.video.hidden = !track;
    tile.avatar.hidden = !!track;
    // Mirror one's own camera, as people expect from a mirror.
    tile.video.classList.toggle("mirror", local && !screen);
  }

  speakers(list) {
    const speaking = new Set((list || []).map((p) => p.identity));
    for (const [key, tile] of this.tiles) {
      tile.node.classList.toggle("speaking", key.endsWith(":camera") && speaking.has(key.slice(0, -":camera".length)));
    }
  }
}
