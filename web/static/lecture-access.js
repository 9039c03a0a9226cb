// Who reads this lecture page, as the API learns it: a host's or admin's cookie (the browser sends it), the
// guest session this browser was admitted to the lecture with (kept per lecture in guest.js), or the token of
// a share link (`?share=` in the page's address). Every lecture request goes through here.
import { api, data } from "./common.js";
import { lectureProof } from "./guest.js";

export const lectureId = String(data.lectureId || "");
const shareToken = new URLSearchParams(location.search).get("share") || "";
const proof = lectureProof(lectureId);

/** Whether this reader proves access with a header (a guest session), which a plain link cannot carry. */
export const needsHeader = !!proof;

/** The headers that prove access for a guest or a share link's reader (hosts need none). */
export function readerHeaders() {
  const headers = {};
  if (shareToken) headers["X-Confctl-Share"] = shareToken;
  if (proof) headers["X-Confctl-Session"] = proof.sessionId;
  return headers;
}

/** A lecture route for a link the browser follows itself: the share token rides along as `?share=`. */
export function lectureUrl(suffix, params = {}) {
  const query = new URLSearchParams(params);
  if (shareToken) query.set("share", shareToken);
  const text = query.toString();
  return `/api/lectures/${encodeURIComponent(lectureId)}${suffix}${text ? `?${text}` : ""}`;
}

/** A link within confctl that keeps the share token (the language switch: it must not lock the reader out). */
export function keepShare(href) {
  if (!shareToken) return href;
  const url = new URL(href, location.href);
  url.searchParams.set("share", shareToken);
  return `${url.pathname}${url.search}${url.hash}`;
}

/** Calls a lecture route (`suffix` after `/api/lectures/{id}`) as this reader. */
export function lectureApi(method, suffix, body) {
  return api(method, `/api/lectures/${encodeURIComponent(lectureId)}${suffix}`, body, { headers: readerHeaders() });
}
