// Live captions from the assistant: data messages on topic `transcription`. Accepts
// {text, speaker|speakerName|participantName, final|isFinal, id|segmentId}; the latest lines stay on
// screen, an unfinished line is replaced as it grows, and the area hides after a quiet spell.
import { $, el } from "./common.js";
import { onData } from "./room-data.js";

const KEEP_LINES = 2;
const HIDE_AFTER_MS = 9000;
const box = $("captions");
const finals = [];
let interim = null;
let hideTimer = null;

function speakerOf(message) {
  return message.speaker || message.speakerName || message.participantName || message.name || "";
}

function line(message, isInterim) {
  const speaker = speakerOf(message);
  return el("p", { class: isInterim ? "line interim" : "line" }, speaker ? el("span", { class: "speaker", text: `${speaker}:` }) : null, String(message.text));
}

function render() {
  // replaceChildren turns a null argument into the text "null": pass only real lines.
  box.replaceChildren(...finals.map((m) => line(m, false)), ...(interim ? [line(interim, true)] : []));
  box.hidden = finals.length === 0 && !interim;
  clearTimeout(hideTimer);
  hideTimer = setTimeout(() => {
    finals.length = 0;
    interim = null;
    box.hidden = true;
  }, HIDE_AFTER_MS);
}

onData("transcription", (message) => {
  if (!message || typeof message.text !== "string" || !message.text.trim()) return;
  const isFinal = message.final ?? message.isFinal ?? true;
  if (isFinal) {
    const id = message.id ?? message.segmentId;
    const same = id !== undefined ? finals.findIndex((m) => (m.id ?? m.segmentId) === id) : -1;
    if (same >= 0) finals[same] = message;
    else finals.push(message);
    while (finals.length > KEEP_LINES) finals.shift();
    interim = null;
  } else {
    interim = message;
  }
  render();
});
