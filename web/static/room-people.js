// The people list in the side panel: the host's roster (room-host.js) when there is one, else whoever the
// media connection sees; "(you)", the host tag and, for hosts, each person's actions. Keeps no state of its
// own: it reads the room's shared `live` objects (see room.js) each time it renders.
import { $, el, t } from "./common.js";

export class People {
  /**
   * @param {object} options
   * @param {{room: object|null, host: object|null}} options.live the room's shared objects (room.js): the
   *   LiveKit room while connected, the host's controls once loaded; read only.
   */
  constructor(options) {
    this.live = options.live;
  }

  /** Everyone in the media connection (this participant first), with the role from their metadata. */
  fromMedia() {
    const room = this.live.room;
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

  render() {
    const { host, room } = this.live;
    const people = host ? host.people() : this.fromMedia();
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
}
