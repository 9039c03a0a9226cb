// A whole lecture in real browsers: the first admin registers, creates a room with PIN and waiting room,
// a student on a phone opens the invite link (wrong PIN, then right), waits, is let in live, lands in the
// room holding a proper token, chats; the host mutes everyone, removes and then bans the student, who then
// sees the ban message at the invite link; another guest is turned away; the lecture ends for a waiting
// guest too. The media server is the LiveKit double, which has no media: the room must say so, not hang.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { DESKTOP, Harness, PHONE, jwtClaims, routeMissing } from "./harness.js";

const h = new Harness();
const PIN = "2468";
const state = {};

before(async () => {
  await h.start();
});

after(async () => {
  await h.stop();
});

/** Waits for the response to a request the page makes while `action` runs. */
async function responseTo(page, method, pattern, action) {
  const [response] = await Promise.all([
    page.waitForResponse((r) => r.request().method() === method && pattern.test(new URL(r.url()).pathname), { timeout: 15000 }),
    action(),
  ]);
  return response;
}

async function guestSession(page, roomId) {
  return page.evaluate((id) => JSON.parse(sessionStorage.getItem(`confctl.guest.${id}`) || "null"), roomId);
}

async function askToJoin(page, { name, pin }) {
  await page.locator("#join-form").waitFor();
  await page.fill("#display-name", name);
  if (pin !== undefined) await page.fill("#pin", pin);
  const consent = page.locator("#consent");
  if (await consent.isVisible()) await consent.check();
  await page.click("#join-submit");
}

async function openTab(page, name) {
  await page.click(`#tab-${name}`);
  await page.locator(`#panel-${name}`).waitFor();
}

describe("a lecture, end to end", { concurrency: false }, () => {
  it("registers the first account, which becomes the administrator", async () => {
    const host = await h.newPage({ label: "host" });
    state.host = host;
    await host.goto("/");
    await host.getByRole("heading", { level: 1 }).waitFor();
    assert.equal(await h.shotBoth(host, "01-landing"), 0, "the landing page fits a 360 px phone");
    await host.click("text=Create an account");
    await host.locator("#register-first").waitFor();
    await host.fill("#name", "Ada Lovelace");
    await host.fill("#email", "ada@uni.example");
    await host.fill("#password", "short");
    await host.click("#register-form button[type=submit]");
    await host.locator("#form-error", { hasText: "at least 8 characters" }).waitFor();
    assert.equal(await h.shotBoth(host, "02-register"), 0);
    await host.fill("#password", "correct horse battery");
    await Promise.all([host.waitForURL("**/dashboard"), host.click("#register-form button[type=submit]")]);
    await host.locator("#rooms-empty").waitFor();
    assert.match(await host.locator(".topnav").innerText(), /Administration/);
    assert.equal(await h.shotBoth(host, "03-dashboard-empty"), 0);
  });

  it("creates a room with a PIN and a waiting room", async () => {
    const host = state.host;
    await host.click("text=New room");
    await host.waitForURL("**/rooms/new");
    await host.fill("#name", "Biology 101 — Photosynthesis");
    await host.fill("#pin", "12");
    await host.click("#room-form button[type=submit]");
    await host.locator("#form-error", { hasText: "4 to 12 digits" }).waitFor();
    assert.equal(await h.shotBoth(host, "04-new-room"), 0);
    await host.fill("#pin", PIN);
    assert.equal(await host.isChecked("#lobby"), true, "the waiting room is on by default");
    await Promise.all([host.waitForURL(/\/rooms\/[^/]+\/settings/), host.click("#room-form button[type=submit]")]);
    await host.locator("#invite-section").waitFor();
    state.roomId = host.url().split("/rooms/")[1].split("/")[0];
    // LiveKit rooms are named after the room's current lecture.
    state.livekitRoom = (await host.evaluate(async (id) => (await fetch(`/api/rooms/${id}`)).json(), state.roomId)).livekitRoomName;
    await host.locator("#room-status", { hasText: "Ready for lecture 1" }).waitFor();
    state.invite = await host.inputValue("#invite-url");
    assert.match(state.invite, /\/j\/[a-z]{3}-[a-z]{4}-[a-z]{3}$/);
    await host.locator("#bans-section").waitFor();
    assert.equal(await h.shotBoth(host, "05-room-settings"), 0);
    await host.goto("/dashboard");
    const card = host.locator(`[data-room-id="${state.roomId}"]`);
    await card.waitFor();
    assert.equal(await card.locator("input").inputValue(), state.invite);
    assert.match(await card.innerText(), /Ready for lecture 1/);
    assert.equal(await h.shotBoth(host, "06-dashboard"), 0);
  });

  it("opens the room page, which shows the media-server banner instead of hanging", async () => {
    const host = state.host;
    const started = Date.now();
    await host.click(`[data-room-id="${state.roomId}"] >> text=Enter room`);
    await host.waitForURL(`**/rooms/${state.roomId}`);
    await host.locator("#media-banner").waitFor({ timeout: 20000 });
    assert.ok(Date.now() - started < 20000, "the banner appears within 20 s");
    assert.match(await host.locator("#media-banner").innerText(), /Can't reach the media server/);
    assert.equal(await host.locator("#conn-state").innerText(), "No audio or video");
    // Retry tries again and fails again, visibly, without hanging.
    await host.click("#media-retry");
    await host.locator("#media-banner").waitFor({ state: "visible", timeout: 20000 });
    await host.locator("#chat-state", { hasText: "No messages yet" }).waitFor();
    await openTab(host, "lobby");
    await host.locator("#lobby-state", { hasText: "Nobody is waiting" }).waitFor();
    assert.equal(await h.shotBoth(host, "07-room-host-no-media"), 0);
  });

  it("shows live captions sent on the transcription topic", async () => {
    const host = state.host;
    // The page's own data-message module (the same instance LiveKit would feed), found by its hashed URL in
    // the page's script or in the room modules it imports (room.js only wires the parts together).
    const shown = await host.evaluate(async () => {
      const queue = [document.querySelector('script[type="module"]').src];
      const seen = new Set();
      let url = null;
      while (!url && queue.length) {
        const script = queue.shift();
        if (seen.has(script)) continue;
        seen.add(script);
        const text = await (await fetch(script)).text();
        url = text.match(/"(\/assets\/room-data\.[0-9a-f]+\.js)"/)?.[1] || null;
        for (const m of text.matchAll(/"(\/assets\/room-[a-z-]+\.[0-9a-f]+\.js)"/g)) queue.push(new URL(m[1], location.href).href);
      }
      if (!url) throw new Error("no room module imports room-data.js");
      const { dispatchData } = await import(url);
      const bytes = new TextEncoder().encode(JSON.stringify({ text: "Chlorophyll absorbs light.", speaker: "Ada Lovelace", final: true }));
      dispatchData("transcription", bytes);
      dispatchData("transcription", { text: "Plants convert sunlight", speaker: "Ada Lovelace", final: false });
      // The same topic from a participant is a forgery (only the server publishes captions): dropped.
      dispatchData("transcription", { text: "FORGED caption", speaker: "Ada Lovelace", final: true }, { identity: "g_mallory" });
      return document.getElementById("captions").innerText;
    });
    assert.match(shown, /Chlorophyll absorbs light\./);
    assert.match(shown, /Plants convert sunlight/);
    assert.doesNotMatch(shown, /FORGED/);
    await h.shot(host, "08-room-captions");
  });

  it("lets a student on a phone ask to join: wrong PIN first, then the right one", async () => {
    const guest = await h.newPage({ viewport: PHONE, label: "guest" });
    state.guest = guest;
    await guest.goto(state.invite);
    await guest.locator("#room-name", { hasText: "Biology 101" }).waitFor();
    assert.match(await guest.locator("#host-name").innerText(), /Ada Lovelace/);
    await guest.locator("#consent-field").waitFor();
    assert.equal(await h.shotBoth(guest, "09-invite"), 0);
    await askToJoin(guest, { name: "Ann Student", pin: "1111" });
    await guest.locator("#form-error", { hasText: "Wrong PIN" }).waitFor();
    assert.equal(await guest.getAttribute("#pin", "aria-invalid"), "true");
    assert.equal(await h.shotBoth(guest, "10-invite-wrong-pin"), 0);
    await guest.fill("#pin", PIN);
    await guest.click("#join-submit");
    await guest.locator("#waiting").waitFor();
    assert.equal(await h.shotBoth(guest, "11-waiting-room"), 0);
  });

  it("shows the waiting student to the host without a reload, and lets them in", async () => {
    const host = state.host;
    const entry = host.locator("#lobby li", { hasText: "Ann Student" });
    await entry.waitFor({ timeout: 10000 });
    assert.equal(await host.locator("#lobby-count").innerText(), "1");
    await h.shot(host, "12-host-lobby");
    const response = await responseTo(host, "POST", /\/lobby\/[^/]+\/approve$/, () => entry.getByRole("button", { name: "Let in" }).click());
    assert.equal(response.status(), 200);
  });

  it("brings the student into the room with a token for this room only", async () => {
    const guest = state.guest;
    await guest.waitForURL(`**/rooms/${state.roomId}`, { timeout: 15000 });
    const session = await guestSession(guest, state.roomId);
    assert.ok(session && session.token, "the admitted guest holds a token");
    const claims = jwtClaims(session.token);
    assert.equal(claims.video.room, state.livekitRoom);
    assert.equal(claims.video.roomJoin, true);
    assert.equal(claims.video.canPublish, true, "not a webinar: guests may speak");
    assert.equal(claims.video.canSubscribe, true);
    assert.ok(!claims.video.roomAdmin && !claims.video.roomCreate, "no admin rights");
    assert.equal(claims.name, "Ann Student");
    assert.match(claims.sub, /^g_/);
    assert.equal(JSON.parse(claims.metadata).role, "guest");
    assert.ok(claims.exp - Date.now() / 1000 <= 600 + 5, "short-lived");
    state.guestIdentity = claims.sub;
    await guest.locator("#media-banner").waitFor({ timeout: 20000 });
    assert.match(await guest.locator("#room-title").innerText(), /Biology 101/);
    assert.equal(await h.shotBoth(guest, "13-room-guest-no-media"), 0);
  });

  it("delivers the student's chat message to the host's chat", async (t) => {
    const guest = state.guest;
    if (await guest.locator("#side.closed").count()) await guest.click("#btn-side");
    await guest.fill("#chat-input", "Will the exam cover chloroplasts?");
    const response = await responseTo(guest, "POST", /\/chat$/, () => guest.click("#chat-form button[type=submit]"));
    if (await routeMissing(response)) return t.skip("POST /api/rooms/{id}/chat is not built yet");
    assert.equal(response.status(), 201);
    await guest.locator("#chat-log .msg", { hasText: "chloroplasts" }).waitFor();
    await openTab(state.host, "chat");
    await state.host.locator("#chat-log .msg", { hasText: "chloroplasts" }).waitFor({ timeout: 10000 });
    assert.match(await state.host.locator("#chat-log .msg").last().innerText(), /Ann Student/);
    await h.shot(state.host, "14-host-chat");
    await h.shot(guest, "15-guest-chat");
  });

  it("shares a file: the host uploads with a progress bar, the student downloads it", async (t) => {
    const host = state.host;
    await openTab(host, "files");
    await host.locator("#files-state", { hasText: "No files shared yet" }).waitFor();
    const slides = { name: "week-3-slides.pdf", mimeType: "application/pdf", buffer: Buffer.from("%PDF-1.4 confctl test slides\n") };
    const request = await responseTo(host, "POST", /\/files$/, () => host.setInputFiles("#upload-input", slides));
    if (await routeMissing(request)) return t.skip("POST /api/rooms/{id}/files is not built yet");
    assert.equal(request.status(), 201);
    await host.locator("#files-list li", { hasText: "week-3-slides.pdf" }).waitFor();
    await host.locator("#upload-status", { hasText: "is shared" }).waitFor();
    await h.shot(host, "15b-host-files");
    const guest = state.guest;
    await openTab(guest, "files");
    const item = guest.locator("#files-list li", { hasText: "week-3-slides.pdf" });
    await item.waitFor({ timeout: 15000 });
    const [download] = await Promise.all([guest.waitForEvent("download"), item.getByRole("button", { name: "Download" }).click()]);
    assert.equal(download.suggestedFilename(), "week-3-slides.pdf");
    await h.shot(guest, "15c-guest-files");
    await openTab(guest, "chat");
  });

  it("lets the host mute everyone (confirmed once)", async (t) => {
    const host = state.host;
    await h.joinMedia(state.livekitRoom, state.guestIdentity, "Ann Student");
    await openTab(host, "people");
    await host.locator("#people li", { hasText: "Ann Student" }).waitFor({ timeout: 10000 });
    await host.click("#mute-all");
    await host.locator("#confirm-dialog[open]").waitFor();
    await h.shot(host, "16-host-mute-all-confirm");
    const response = await responseTo(host, "POST", /\/mute-all$/, () => host.click("#confirm-ok"));
    if (await routeMissing(response)) return t.skip("POST /api/rooms/{id}/mute-all is not built yet");
    assert.equal(response.status(), 200);
    const report = await response.json();
    assert.deepEqual(report.failed, []);
    await host.locator("#mute-all", { hasText: "Allow guests to speak" }).waitFor();
  });

  it("lets the host remove the student, who is told so", async (t) => {
    const host = state.host;
    const row = host.locator("#people li", { hasText: "Ann Student" });
    await row.getByRole("button", { name: "Remove" }).click();
    await host.locator("#confirm-dialog[open]").waitFor();
    const response = await responseTo(host, "POST", /\/kick$/, () => host.click("#confirm-ok"));
    if (await routeMissing(response)) return t.skip("POST /api/rooms/{id}/participants/{identity}/kick is not built yet");
    assert.equal(response.status(), 200);
    const gone = await h.double("GET", `/_double/rooms/${state.livekitRoom}/participants/${state.guestIdentity}`);
    assert.equal(gone.status, 404, "the media server disconnected them");
    await state.guest.locator("#room-problem-title", { hasText: "You were removed" }).waitFor({ timeout: 15000 });
    assert.equal(await h.shotBoth(state.guest, "17-guest-removed"), 0);
  });

  it("lets the removed student come back through the lobby, then bans them", async (t) => {
    const guest = state.guest;
    const host = state.host;
    await guest.getByRole("link", { name: "Join again" }).click();
    await askToJoin(guest, { name: "Ann Student", pin: PIN });
    await guest.locator("#waiting").waitFor();
    await openTab(host, "lobby");
    const response = await responseTo(host, "POST", /\/approve$/, () => host.locator("#lobby li", { hasText: "Ann Student" }).getByRole("button", { name: "Let in" }).click());
    assert.equal(response.status(), 200);
    await guest.waitForURL(`**/rooms/${state.roomId}`, { timeout: 15000 });
    const identity = jwtClaims((await guestSession(guest, state.roomId)).token).sub;
    await h.joinMedia(state.livekitRoom, identity, "Ann Student");
    await openTab(host, "people");
    const row = host.locator("#people li", { hasText: "Ann Student" });
    await row.waitFor({ timeout: 10000 });
    await row.getByRole("button", { name: "Ban" }).click();
    await host.locator("#confirm-dialog[open]").waitFor();
    await host.fill("#confirm-reason", "Disrupted the lecture");
    await h.shot(host, "18-host-ban-dialog");
    const ban = await responseTo(host, "POST", /\/ban$/, () => host.click("#confirm-ok"));
    if (await routeMissing(ban)) return t.skip("POST /api/rooms/{id}/participants/{identity}/ban is not built yet");
    assert.equal(ban.status(), 201);
    await guest.locator("#room-problem-title", { hasText: "You cannot join this lecture" }).waitFor({ timeout: 15000 });
    // Retrying the invite link in the same browser: the ban message, not the waiting room.
    await guest.goto(state.invite);
    await askToJoin(guest, { name: "Ann Student", pin: PIN });
    await guest.locator("#problem-title", { hasText: "You cannot join this lecture" }).waitFor();
    assert.equal(await h.shotBoth(guest, "19-guest-banned"), 0);
    const bans = await host.evaluate(async (id) => (await fetch(`/api/rooms/${id}/bans`)).json(), state.roomId);
    assert.equal(bans.bans.length, 1);
    assert.equal(bans.bans[0].reason, "Disrupted the lecture");
  });

  it("turns a second guest away with a reason they can read", async () => {
    const bob = await h.newPage({ viewport: PHONE, label: "bob" });
    await bob.goto(state.invite);
    await askToJoin(bob, { name: "Bob Latecomer", pin: PIN });
    await bob.locator("#waiting").waitFor();
    const host = state.host;
    await openTab(host, "lobby");
    const entry = host.locator("#lobby li", { hasText: "Bob Latecomer" });
    await entry.waitFor();
    await entry.getByRole("button", { name: "Turn away" }).click();
    await host.fill("#confirm-reason", "This is the Tuesday group");
    const response = await responseTo(host, "POST", /\/reject$/, () => host.click("#confirm-ok"));
    assert.equal(response.status(), 200);
    await bob.locator("#problem-title", { hasText: "The host did not let you in" }).waitFor({ timeout: 10000 });
    assert.match(await bob.locator("#problem-text").innerText(), /This is the Tuesday group/);
    assert.equal(await h.shotBoth(bob, "20-guest-rejected"), 0);
  });

  it("ends the lecture for everyone, including a guest still waiting; the room stays ready with the same link", async () => {
    const cleo = await h.newPage({ viewport: PHONE, label: "cleo" });
    await cleo.goto(state.invite);
    await askToJoin(cleo, { name: "Cleo Waiting", pin: PIN });
    await cleo.locator("#waiting").waitFor();
    const host = state.host;
    await host.locator("#lobby-count", { hasText: "1" }).waitFor();
    await host.click("#btn-end");
    await host.locator("#confirm-dialog[open]").waitFor();
    const response = await responseTo(host, "POST", /\/end$/, () => host.click("#confirm-ok"));
    assert.equal(response.status(), 200);
    const ended = await response.json();
    assert.equal(ended.room.status, "READY");
    state.lectureId = ended.endedLectureId;
    await host.locator("#room-problem-title", { hasText: "The lecture has ended" }).waitFor();
    assert.match(await host.locator("#room-problem-text").innerText(), /same invite link/);
    assert.equal(await host.getByRole("link", { name: "Lecture page" }).getAttribute("href"), `/lectures/${state.lectureId}`);
    assert.equal(await h.shotBoth(host, "21-host-ended"), 0);
    await cleo.locator("#problem-title", { hasText: "This lecture has ended" }).waitFor({ timeout: 10000 });
    await h.shot(cleo, "22-guest-ended");
    // The same link leads to the room's next lecture.
    const late = await h.newPage({ viewport: PHONE, label: "late" });
    await late.goto(state.invite);
    await late.locator("#join-form #room-name", { hasText: "Biology 101" }).waitFor();
  });

  it("keeps the ended lecture's chat on its lecture page", async () => {
    const host = state.host;
    await Promise.all([host.waitForURL(`**/lectures/${state.lectureId}`), host.getByRole("link", { name: "Lecture page" }).click()]);
    await host.locator("#lecture-name", { hasText: "Biology 101" }).waitFor();
    await host.locator("#chat-log .msg", { hasText: "chloroplasts" }).waitFor();
    await host.locator("#files-list li", { hasText: "week-3-slides.pdf" }).waitFor();
    assert.equal(await h.shotBoth(host, "23-lecture-page"), 0);
  });

  it("raised no CSP violation or script error in any page", () => {
    assert.deepEqual(h.problems, []);
  });
});

describe("the invite page at the width of a phone", () => {
  it("keeps every control reachable and labelled", async () => {
    const page = await h.newPage({ viewport: PHONE, label: "a11y" });
    await page.goto("/j/abc-defg-hjk");
    await page.locator("#problem-title", { hasText: "This link does not work" }).waitFor();
    await page.goto(state.invite || "/");
    const unlabeled = await page.evaluate(() =>
      [...document.querySelectorAll("input, select, textarea, button")]
        .filter((e) => e.offsetParent !== null)
        .filter((e) => !(e.labels && e.labels.length) && !e.getAttribute("aria-label") && !e.textContent.trim())
        .map((e) => e.id || e.outerHTML.slice(0, 80)),
    );
    assert.deepEqual(unlabeled, []);
    assert.deepEqual(DESKTOP, { width: 1280, height: 800 });
  });
});
