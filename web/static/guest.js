// A guest's identity in this browser: a random browser id (localStorage; never a fingerprint of the device)
// and, per room, the admission session (sessionStorage: it lives as long as the tab).

const FINGERPRINT_KEY = "confctl.browserId";
const NAME_KEY = "confctl.displayName";

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
