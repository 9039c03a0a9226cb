// Times inside a lecture: milliseconds since it went live, shown and typed as m:ss or h:mm:ss.
import { t } from "./common.js";

const pad = (n) => String(n).padStart(2, "0");

/** "4:05" or "1:02:09" for a time in the lecture (milliseconds since it went live). */
export function clock(ms) {
  const total = Math.max(0, Math.floor((Number(ms) || 0) / 1000));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  return h ? `${h}:${pad(m)}:${pad(s)}` : `${m}:${pad(s)}`;
}

/** "4:05–4:40" for a cited range, or one time when both ends fall in the same second. */
export function clockRange(startMs, endMs) {
  const a = clock(startMs);
  const b = clock(endMs);
  return a === b ? a : `${a}–${b}`;
}

/**
 * Seconds from "m:ss", "mm:ss" or "h:mm:ss" (seconds and minutes after the first field below 60); null when
 * the text is not such a time.
 */
export function parseClock(text) {
  const match = /^\s*(?:(\d{1,3}):)?(\d{1,3}):(\d{2})\s*$/.exec(String(text));
  if (!match) return null;
  const [, hours, minutes, seconds] = match;
  const m = Number(minutes);
  const s = Number(seconds);
  if (s > 59 || (hours !== undefined && m > 59)) return null;
  return Number(hours || 0) * 3600 + m * 60 + s;
}

/** "1 h 20 min", "45 min", "under a minute". */
export function duration(ms) {
  const minutes = Math.round((Number(ms) || 0) / 60000);
  if (minutes < 1) return t("lecture.duration.short");
  const h = Math.floor(minutes / 60);
  const m = minutes % 60;
  if (!h) return t("lecture.duration.m", { m });
  return m ? t("lecture.duration.hm", { h, m }) : t("lecture.duration.h", { h });
}
