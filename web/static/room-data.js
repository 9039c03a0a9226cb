// Data messages in the room, by topic (`chat`, `hand-raise`, `files`, `transcription`, …). LiveKit delivers
// them; panels subscribe here, so each panel knows only its topic and its JSON.
const handlers = new Map();
const decoder = new TextDecoder();

// Topics only confctl's server publishes (through LiveKit's SendData, which arrives without a sender). A
// message on them from a participant is a forgery — a guest's modified client could otherwise show fake
// chat lines, captions, raised hands or file links — so it is dropped.
const SERVER_ONLY = new Set(["chat", "files", "transcription", "hand-raise"]);

/** Calls `handler(message, sender)` for every message on `topic`; `sender` is undefined for the server. */
export function onData(topic, handler) {
  if (!handlers.has(topic)) handlers.set(topic, []);
  handlers.get(topic).push(handler);
}

/** Hands one received payload (bytes or an object) to the handlers of its topic. */
export function dispatchData(topic, payload, sender) {
  if (sender && SERVER_ONLY.has(topic)) {
    console.warn("ignored a participant's message on a server-only topic", topic);
    return;
  }
  let message = payload;
  if (payload instanceof Uint8Array || payload instanceof ArrayBuffer) {
    try {
      message = JSON.parse(decoder.decode(payload));
    } catch {
      return;
    }
  }
  for (const handler of handlers.get(topic) || []) {
    try {
      handler(message, sender);
    } catch (err) {
      console.error("data handler failed", topic, err);
    }
  }
}
