// The lecture page (placeholder for the full artifacts page): an ended room's chat history and shared files.
import { $, api, data, errorText, formatDateTime, setState, statusPill, t } from "./common.js";
import { messageNode } from "./room-chat.js";
import { Files } from "./room-files.js";
import { loadSession, sessionHeaders } from "./guest.js";

const roomId = data.roomId;
const isHost = data.role === "host";
const session = isHost ? null : loadSession(roomId);
const headers = () => sessionHeaders(session);

function start() {
  const room = data.room;
  if (room) {
    $("lecture-name").textContent = room.name;
    $("lecture-meta").replaceChildren(statusPill(room.status), " ", room.endedAt ? t("lecture.ended_at", { when: formatDateTime(room.endedAt) }) : t("lecture.not_ended"));
  } else if (session) {
    $("lecture-name").textContent = session.roomName || t("lecture.heading");
  } else {
    setState($("lecture-state"), "error", t("lecture.no_access"));
    return;
  }
  setState($("lecture-state"));
  // Errors show where they happened (the chat or file list); nothing here ends the page.
  const showInPlace = () => false;
  new ChatHistory().start();
  new Files({ roomId, headers, isHost, onProblem: showInPlace, readOnly: true }).start();
}

/** Read-only chat: the same rendering as the room, all pages of the history. */
class ChatHistory {
  async start() {
    const state = $("chat-state");
    setState(state, "loading");
    const log = $("chat-log");
    try {
      let after = 0;
      let total = 0;
      for (let page = 0; page < 50; page += 1) {
        const body = await api("GET", `/api/rooms/${roomId}/chat?limit=500&after=${after}`, undefined, { headers: headers() });
        for (const message of body.messages) {
          log.append(messageNode(message));
          after = Math.max(after, message.seq || 0);
        }
        total += body.messages.length;
        if (body.messages.length < 500) break;
      }
      setState(state, "", total ? "" : t("chat.empty"));
    } catch (err) {
      setState(state, "error", errorText(err), () => this.start());
    }
  }
}

start();
