// A guest's identity in this browser: a random browser id (localStorage; never a fingerprint of the device),
// per room the admission session (sessionStorage: it lives as long as the tab), and per lecture the session
// that was admitted to it (localStorage: the proof that opens the lecture's page afterwards, kept when next
// week's lecture of the same room gets a session of its own).

const FINGERPRINT_KEY = "confctl.browserId";
const NAME_KEY = "confctl.displayName";
const LECTURES_KEY = "confctl.lectures";
/** Lectures remembered per browser; the oldest are forgotten beyond this. */
const MAX_LECTURES = 200;

function randomId(bytes) {
  const buffer = new Uint8Array(bytes);
  crypto.getRandomValues(buffer);
  return Array.from(buffer, (b) => b.toString(16).padStart(2, "0")).join("");
}

function safeGet(storage, key) {
  try {
    return storage.getItem(key);
  } catch {
    return null;
  }
}

function safeSet(storage, key, value) {
  try {
    if (value === null) storage.removeItem(key);
    else storage.setItem(key, value);
  } catch {
    // Storage can be disabled (private mode); the page still works for this visit.
  }
}

/** This browser's random id (16–256 characters, as the join API wants). */
export function browserId() {
  let id = safeGet(localStorage, FINGERPRINT_KEY);
  if (!id || id.length < 16 || id.length > 256) {
    id = `b-${randomId(16)}`;
    safeSet(localStorage, FINGERPRINT_KEY, id);
  }
  return id;
}

export function rememberedName() {
  return safeGet(localStorage, NAME_KEY) || "";
}

export function rememberName(name) {
  safeSet(localStorage, NAME_KEY, name);
}

/** The guest's session in a room: {sessionId, displayName, roomName, code, token?, livekitUrl?, …}. */
export function loadSession(roomId) {
  const raw = safeGet(sessionStorage, `confctl.guest.${roomId}`);
  if (!raw) return null;
  try {
    return JSON.parse(raw);
  } catch {
    return null;
  }
}

export function saveSession(roomId, session) {
  safeSet(sessionStorage, `confctl.guest.${roomId}`, JSON.stringify(session));
  if (session.code) safeSet(sessionStorage, `confctl.code.${session.code}`, roomId);
}

export function forgetSession(roomId) {
  const session = loadSession(roomId);
  safeSet(sessionStorage, `confctl.guest.${roomId}`, null);
  if (session && session.code) safeSet(sessionStorage, `confctl.code.${session.code}`, null);
}

/** The room this tab already joined through an invite code, if any. */
export function roomForCode(code) {
  return safeGet(sessionStorage, `confctl.code.${code}`);
}

/** Headers that identify a guest to the guest routes. */
export function sessionHeaders(session) {
  return session && session.sessionId ? { "X-Confctl-Session": session.sessionId } : {};
}

/** @typedef {{sessionId: string, roomId: string, roomName: string, at: number}} LectureProof */

/** @returns {Record<string, LectureProof>} */
function lectureProofs() {
  try {
    const parsed = JSON.parse(safeGet(localStorage, LECTURES_KEY) || "{}");
    return parsed && typeof parsed === "object" ? parsed : {};
  } catch {
    return {};
  }
}

/** Keeps the session admitted to a lecture, for its page after the lecture (one entry per lecture). */
export function rememberLecture(lectureId, { sessionId, roomId, roomName }) {
  if (!lectureId || !sessionId) return;
  const proofs = lectureProofs();
  proofs[lectureId] = { sessionId, roomId, roomName, at: Date.now() };
  const ids = Object.keys(proofs).sort((a, b) => proofs[b].at - proofs[a].at);
  for (const id of ids.slice(MAX_LECTURES)) delete proofs[id];
  safeSet(localStorage, LECTURES_KEY, JSON.stringify(proofs));
}

/** The session this browser was admitted to a lecture with, if any. */
export function lectureProof(lectureId) {
  const proof = lectureProofs()[lectureId];
  return proof && typeof proof.sessionId === "string" ? proof : null;
}
