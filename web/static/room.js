// The video room. Gets a token (hosts: their session; guests: the admission session kept in this tab),
// starts chat, files and (for hosts) the lobby at once — they need only confctl — and loads livekit-client
// in parallel for audio and video. When the media server cannot be reached the page says so in a banner
// with a retry button, and everything that does not need media keeps working.
//
// This module only wires the room's parts together: the side panel (room-side.js), chat, files and people
// (room-chat.js, room-files.js, room-people.js), the local controls (room-controls.js), the media connection
// and the end of the visit (room-connection.js), and for hosts their controls (room-host.js), loaded lazily.
import { $, api, data, errorText, t, toast, user } from "./common.js";
import { loadSession, sessionHeaders } from "./guest.js";
import { Chat } from "./room-chat.js";
import { Files } from "./room-files.js";
import { MediaConnection } from "./room-connection.js";
import { Controls } from "./room-controls.js";
import { People } from "./room-people.js";
import { SidePanel } from "./room-side.js";
import { linkButton, overlay, setConnState } from "./room-status.js";
import "./room-captions.js";

const roomId = data.roomId;
const isHost = data.role === "host";
const roomInfo = data.room || null;
const session = isHost ? null : loadSession(roomId);

const headers = () => sessionHeaders(session);
const webinar = isHost ? !!roomInfo?.webinarMode : !!session?.webinarMode;
const myName = isHost ? user?.name : session?.displayName;
const myRole = isHost ? (user?.role === "ADMIN" && roomInfo?.hostId !== user?.id ? "admin" : "host") : "guest";

// What the parts share, each field written by one owner: lk (livekit-client), room (the LiveKit Room while
// there is one) and stage by the MediaConnection; host (the HostControls, hosts only) by startHost below.
const live = { lk: null, room: null, stage: null, host: null };

const side = new SidePanel();
// Errors that end the visit, from any request; the media connection decides (it is made last, it needs the rest).
const onProblem = (err) => media.handleProblem(err);
const chat = new Chat({ roomId, headers, isHost, myName, myRole, onProblem, onUnread: () => side.markUnread() });
const files = new Files({ roomId, headers, isHost, onProblem });
const people = new People({ live });
const controls = new Controls({ roomId, isHost, session, webinar, headers, live, onProblem });
const media = new MediaConnection({ roomId, isHost, roomInfo, session, headers, live, chat, files, people, controls });

// ----- host -----

async function startHost() {
  const { HostControls } = await import("./room-host.js");
  live.host = new HostControls({
    roomId,
    room: roomInfo,
    livePeople: () => people.fromMedia(),
    onRoomEnded: (lectureId) => media.showEnded(lectureId),
    onRoomArchived: () => media.showArchived(),
    onLobbyCount: (n) => {
      $("lobby-count").textContent = String(n);
      $("lobby-count").hidden = n === 0;
    },
    onPeopleChanged: () => people.render(),
    onHands: (hands) => live.stage?.setHands(hands.map((h) => h.identity)),
  });
  live.host.start();
  const end = $("btn-end");
  end.addEventListener("click", async () => {
    const { confirmDialog } = await import("./room-dialog.js");
    const answer = await confirmDialog({ title: t("room.end_title"), text: t("room.end_confirm"), ok: t("room.end_for_all") });
    if (!answer.ok) return;
    try {
      end.disabled = true;
      const body = await api("POST", `/api/rooms/${roomId}/end`);
      media.showEnded(body.endedLectureId);
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
  if (isHost && roomInfo.status === "ARCHIVED") return media.showArchived();
  controls.update();
  people.render();
  chat.start();
  files.start();
  if (isHost) startHost();
  media.connect();
}

start();
