// The lecture page in a real browser, on a lecture seeded through the real APIs: a host opens a room (the
// LiveKit double's webhooks make it live), a student joins through the invite link, the assistant's API
// stores a transcript and, once the host ends the lecture, a summary citing real segment times. Then: a
// summary item shows its passage in the transcript, search marks matches, the host's edit survives a reload
// (and the server's complaint lands at the field it names), regeneration asks before replacing edits, a
// share link reads without host controls and stops working once revoked, the student's browser keeps its
// proof for the page, the dashboard lists past lectures and finds words in them, and archiving closes the
// invite link.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Harness, PHONE } from "./harness.js";

const h = new Harness();
const state = {};

/** The transcript: 120 five-second segments, the speaker changing every 8 (15 paragraphs). */
const SEGMENTS = Array.from({ length: 120 }, (_, i) => {
  const special = {
    5: "Today we look at photosynthesis: how plants turn light, water and carbon dioxide into sugar.",
    30: "Does the dark reaction really happen in the dark?",
    31: "No: it only does not need light directly, and it runs in daylight too.",
    60: "For Friday, please read chapter four and bring your lab notebook.",
    100: "Chlorophyll absorbs red and blue light but reflects green, which is why leaves look green.",
  }[i];
  return {
    index: i,
    startMs: i * 5000,
    endMs: i * 5000 + 4500,
    text: special || `Passage ${i + 1} of the lecture goes on about the thylakoid membrane and the stroma in some detail, sentence after sentence.`,
  };
});

before(async () => {
  await h.start();
});

after(async () => {
  await h.stop();
});

/** An API call as a page (its cookies), for seeding steps a person would do through the UI elsewhere. */
async function pageApi(page, method, route, body, headers = {}) {
  return page.evaluate(
    async ({ method, route, body, headers }) => {
      const r = await fetch(route, { method, headers: { ...(body ? { "Content-Type": "application/json" } : {}), ...headers }, body: body ? JSON.stringify(body) : undefined });
      const text = await r.text();
      return { status: r.status, body: text ? JSON.parse(text) : null };
    },
    { method, route, body, headers },
  );
}

/** The assistant's API, with an agent token made by `confctl admin agent-token create`. */
async function agentApi(method, route, body) {
  const response = await fetch(`${h.base}${route}`, {
    method,
    headers: { Authorization: `Bearer ${state.agentToken}`, "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  return { status: response.status, body: await response.text() };
}

async function waitFor(check, what, timeoutMs = 15000) {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}\n${h.serverLog().slice(-3000)}`);
}

/** Whether the cited paragraph holding `text` is highlighted and visible, inside the transcript box and the window. */
async function citedInView(page, text) {
  return page.evaluate((text) => {
    const para = [...document.querySelectorAll("#transcript-body .para")].find((p) => p.textContent.includes(text));
    if (!para || !para.classList.contains("cited")) return false;
    const box = document.getElementById("transcript-body").getBoundingClientRect();
    const r = para.getBoundingClientRect();
    const inBox = r.bottom > box.top + 4 && r.top < box.bottom - 4;
    const inWindow = r.bottom > 0 && r.top < window.innerHeight;
    return inBox && inWindow;
  }, text);
}

describe("the lecture page", { concurrency: false }, () => {
  it("seeds a lecture through the real APIs: a live room, a student, captions, chat, the end, a summary", async () => {
    const host = await h.newPage({ label: "host" });
    state.host = host;
    await host.goto("/");
    const registered = await pageApi(host, "POST", "/api/auth/register", { email: "ada@uni.example", password: "correct horse battery", name: "Ada Lovelace" });
    assert.equal(registered.status, 201);
    const room = await pageApi(host, "POST", "/api/rooms", { name: "Биология 101 — Photosynthesis", lobbyEnabled: false, lecturesForParticipants: true });
    assert.equal(room.status, 201);
    state.room = room.body;
    assert.equal(room.body.status, "READY");
    // The host's token opens the lecture's room at LiveKit (the double announces room_started): LIVE.
    const token = await pageApi(host, "POST", `/api/rooms/${room.body.id}/token`);
    assert.equal(token.status, 200);
    state.hostIdentity = token.body.identity;
    await h.joinMedia(room.body.livekitRoomName, token.body.identity, "Ada Lovelace", "host");
    await waitFor(async () => (await pageApi(host, "GET", `/api/rooms/${room.body.id}`)).body.status === "LIVE", "the room to go live");

    // A student joins through the invite link, in their own browser.
    const guest = await h.newPage({ viewport: PHONE, label: "student" });
    state.guest = guest;
    await guest.goto(`/j/${room.body.inviteCode}`);
    await guest.locator("#lecture-pages-note").waitFor();
    await guest.fill("#display-name", "Ann Student");
    await guest.check("#consent");
    await Promise.all([guest.waitForURL(`**/rooms/${room.body.id}`), guest.click("#join-submit")]);
    const session = await guest.evaluate((id) => JSON.parse(sessionStorage.getItem(`confctl.guest.${id}`)), room.body.id);
    assert.equal(session.lectureId, room.body.lectureId, "the join answer names the lecture");
    const guestIdentity = JSON.parse(Buffer.from(session.token.split(".")[1], "base64url").toString()).sub;
    await h.joinMedia(room.body.livekitRoomName, guestIdentity, "Ann Student");
    const chat = await pageApi(guest, "POST", `/api/rooms/${room.body.id}/chat`, { text: "Is chlorophyll the only pigment?" }, { "X-Confctl-Session": session.sessionId });
    assert.equal(chat.status, 201);

    // The assistant's transcript, through its own API.
    state.agentToken = h.cli(["admin", "agent-token", "create", "--name", "browser-tests"]).match(/token: (\S+)/)[1];
    const speakers = [
      { identity: token.body.identity, name: "Ada Lovelace" },
      { identity: guestIdentity, name: "Ann Student" },
    ];
    for (const s of SEGMENTS) {
      // Turns of 8 segments, host first; the host answers the student's question (30) at 31.
      const speaker = speakers[s.index === 31 ? 0 : Math.floor(s.index / 8) % 2];
      const caption = { segmentId: `seg-${s.index}`, speakerIdentity: speaker.identity, speakerName: speaker.name, text: s.text, final: true, startMs: s.startMs, endMs: s.endMs, language: "en", provider: "test" };
      const answer = await agentApi("POST", `/api/agent/lectures/${room.body.lectureId}/captions`, caption);
      assert.equal(answer.status, 202, answer.body);
    }

    const ended = await pageApi(host, "POST", `/api/rooms/${room.body.id}/end`);
    assert.equal(ended.status, 200);
    assert.equal(ended.body.endedLectureId, room.body.lectureId);
    assert.equal(ended.body.room.status, "READY");
    state.lectureId = ended.body.endedLectureId;

    const at = (i) => ({ startMs: SEGMENTS[i].startMs, endMs: SEGMENTS[i].endMs });
    const summary = {
      abstract: "How plants make sugar from light, and why leaves are green.",
      keyTopics: [
        { topic: "What photosynthesis does", ...at(5) },
        { topic: "Why leaves are green", ...at(100) },
      ],
      actionItems: [{ text: "Read chapter four and bring the lab notebook on Friday", ...at(60) }],
      qa: [{ question: "Does the dark reaction happen in the dark?", answer: "No, it just does not need light directly.", startMs: SEGMENTS[30].startMs, endMs: SEGMENTS[31].endMs }],
      kind: "llm",
      language: "en",
    };
    const artifact = await agentApi("PUT", `/api/agent/lectures/${state.lectureId}/artifact`, {
      transcriptText: SEGMENTS.map((s) => s.text).join("\n"),
      transcriptVtt: "WEBVTT\n",
      summary,
      summaryKind: "llm",
      provider: "test",
      model: "test-model",
      status: "complete",
      error: null,
    });
    assert.equal(artifact.status, 200, artifact.body);
  });

  it("shows the summary, and a summary item scrolls the transcript to its cited paragraph", async () => {
    const host = state.host;
    await host.goto(`/lectures/${state.lectureId}`);
    await host.locator("#lecture-name", { hasText: "Биология 101" }).waitFor();
    assert.match(await host.locator("#lecture-number").innerText(), /Lecture 1/i);
    assert.match(await host.locator("#lecture-meta").innerText(), /Ada Lovelace/);
    await host.locator("#transcript-body .para").first().waitFor();
    assert.equal(await host.locator("#transcript-body .para").count(), 15, "one paragraph per speaker turn");
    assert.equal(await host.locator("#transcript-body .seg").count(), 120);
    assert.match(await host.locator("#transcript-body .para").first().innerText(), /Ada Lovelace/);
    const item = host.locator(".cite-item", { hasText: "Why leaves are green" });
    assert.match(await item.innerText(), /8:20/, "the item shows its cited time");
    assert.equal(await citedInView(host, "Chlorophyll absorbs red"), false, "not highlighted before the click");
    await item.click();
    await waitFor(() => citedInView(host, "Chlorophyll absorbs red"), "the cited paragraph in view and highlighted");
    assert.equal(await host.locator("#transcript-body .seg.cited").innerText(), SEGMENTS[100].text, "the cited segment itself is marked");
    await host.waitForTimeout(400);
    await h.shot(host, "40-lecture-cited");
    // The Q&A item cites two segments of two speakers.
    await host.locator(".cite-item", { hasText: "dark reaction" }).click();
    await waitFor(() => citedInView(host, "Does the dark reaction"), "the question's paragraph");
    assert.equal(await host.locator("#transcript-body .seg.cited").count(), 2);
    // Attendance, the chat and downloads are there for the host.
    await host.locator("#attendance tbody tr", { hasText: "Ann Student" }).waitFor();
    assert.match(await host.locator("#chat-log").innerText(), /only pigment/);
    assert.equal(await host.locator('#downloads-list [data-format="attendance.csv"]').count(), 1);
    assert.equal(await host.locator('#downloads-list [data-format="pdf"]').getAttribute("href"), `/api/lectures/${state.lectureId}/export?format=pdf`);
  });

  it("searches the transcript on the server and marks the matches", async () => {
    const host = state.host;
    await host.fill("#transcript-q", "GREEN");
    await host.locator("#transcript-state", { hasText: "containing" }).waitFor();
    const shown = await host.evaluate(() => [...document.querySelectorAll("#transcript-body .seg")].filter((s) => s.offsetParent !== null).map((s) => s.textContent));
    assert.deepEqual(shown, [`8:20 ${SEGMENTS[100].text}`], "only the matching segment is shown, with its time");
    assert.deepEqual(await host.locator("#transcript-body mark").allInnerTexts(), ["green", "green"]);
    await h.shot(host, "41-lecture-search");
    await host.click("#transcript-clear");
    await waitFor(async () => (await host.locator("#transcript-body mark").count()) === 0, "the marks to go");
    assert.equal(await host.evaluate(() => [...document.querySelectorAll("#transcript-body .seg")].filter((s) => s.offsetParent !== null).length), 120);
  });

  it("lets the host edit the summary: errors at the field the server names, the edit survives a reload", async () => {
    const host = state.host;
    await host.click("#summary-edit");
    const editor = host.locator("#summary-editor");
    await editor.waitFor();
    await editor.locator(".edit-topic").first().fill("What photosynthesis does, in one line");
    await host.click("#add-keyTopics");
    const row = editor.locator(".edit-item").nth(2);
    await row.locator(".edit-start").fill("abc");
    await host.click("#summary-save");
    await row.locator(".field-error", { hasText: "m:ss" }).waitFor();
    // The empty topic goes to the server, which names the field; the page shows it there.
    await row.locator(".edit-start").fill("59:00");
    await row.locator(".edit-end").fill("59:10");
    await host.click("#summary-save");
    await row.locator(".field-error", { hasText: "must not be empty" }).waitFor();
    assert.equal(await row.locator(".edit-topic").getAttribute("aria-invalid"), "true");
    await row.locator(".edit-topic").fill("Green light is reflected");
    await host.click("#summary-save");
    await row.locator(".field-error", { hasText: "Nothing was said at this time" }).waitFor();
    assert.equal(await row.locator(".edit-start").getAttribute("aria-invalid"), "true");
    await row.locator(".edit-start").fill("8:21");
    await row.locator(".edit-end").fill("8:23");
    await h.shot(host, "42-lecture-edit");
    await host.click("#summary-save");
    await host.locator(".cite-item", { hasText: "Green light is reflected" }).waitFor();
    await host.reload();
    const edited = host.locator(".cite-item", { hasText: "Green light is reflected" });
    await edited.waitFor();
    assert.match(await edited.innerText(), /8:21/);
    assert.match(await edited.innerText(), /edited/);
    assert.match(await host.locator(".cite-item", { hasText: "in one line" }).innerText(), /edited/);
    assert.doesNotMatch(await host.locator(".cite-item", { hasText: "Why leaves are green" }).innerText(), /edited/, "untouched items are not marked");
    assert.match(await host.locator(".summary-source").innerText(), /Edited by Ada Lovelace/);
  });

  it("opens a share link read-only, on a phone, and shows not found once it is revoked", async () => {
    const host = state.host;
    await host.locator("#share-section").waitFor();
    await host.click("#share-form button[type=submit]");
    await host.locator("#share-created").waitFor();
    const link = await host.inputValue("#share-url");
    assert.match(link, new RegExp(`/lectures/${state.lectureId}\\?share=`));
    await host.locator("#share-list li .pill", { hasText: "Active" }).waitFor();

    const reader = await h.newPage({ viewport: PHONE, label: "reader" });
    await reader.goto(link);
    await reader.locator(".cite-item", { hasText: "Green light is reflected" }).waitFor();
    await reader.locator("#transcript-body .para").first().waitFor();
    assert.equal(await reader.locator("#reader-note").isVisible(), true);
    assert.equal(await reader.locator("#summary-edit").count(), 0, "no edit control");
    assert.equal(await reader.locator("#summary-regenerate").count(), 0, "no regenerate control");
    assert.equal(await reader.locator("#attendance-section").isVisible(), false, "no attendance");
    assert.equal(await reader.locator("#share-section").isVisible(), false, "no share panel");
    assert.equal(await reader.locator('#downloads-list [data-format="attendance.csv"]').count(), 0);
    assert.match(await reader.locator('#downloads-list [data-format="md"]').getAttribute("href"), /[?&]share=/, "download links carry the token");
    assert.equal(await h.shotBoth(reader, "43-lecture-shared"), 0, "the shared page fits a 360 px phone");
    await reader.locator(".cite-item", { hasText: "Why leaves are green" }).click();
    await waitFor(() => citedInView(reader, "Chlorophyll absorbs red"), "the cited paragraph on a phone");
    await reader.waitForTimeout(400);
    await h.shot(reader, "44-lecture-shared-cited");

    await host.locator("#share-list li", { hasText: "Active" }).getByRole("button", { name: "Revoke" }).click();
    await host.locator("#confirm-dialog[open]").waitFor();
    await host.click("#confirm-ok");
    await host.locator("#share-list li .pill", { hasText: "Revoked" }).waitFor();
    await reader.reload();
    await reader.locator("#lecture-missing", { hasText: "Lecture not found" }).waitFor();
    assert.equal(await reader.locator("#lecture").isVisible(), false);
    await h.shot(reader, "45-lecture-revoked");
  });

  it("lays the host's page out at 360 px without sideways scrolling", async () => {
    const host = state.host;
    await host.setViewportSize(PHONE);
    await host.reload();
    await host.locator("#transcript-body .para").first().waitFor();
    assert.equal(await h.shotBoth(host, "46-lecture-host"), 0);
    await host.setViewportSize(PHONE);
    await host.locator("#attendance-section").scrollIntoViewIfNeeded();
    await h.shot(host, "47-lecture-host-attendance");
    await host.click("#summary-edit");
    await host.locator("#summary-editor").waitFor();
    assert.equal(await host.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth), 0, "the editor fits too");
    await host.locator("#summary-editor .edit-item").first().scrollIntoViewIfNeeded();
    await h.shot(host, "48-lecture-edit-phone");
    await host.setViewportSize({ width: 1280, height: 800 });
    await host.reload();
  });

  it("asks before regeneration replaces the edits, then shows the new summary", async () => {
    const host = state.host;
    await host.locator("#summary-regenerate").click();
    await host.locator("#confirm-dialog[open]", { hasText: "Replace your edits?" }).waitFor();
    await host.click("#confirm-ok");
    await host.locator("#summary-state", { hasText: "being written" }).waitFor();
    await host.locator(".summary-source", { hasText: "picked from the transcript" }).waitFor({ timeout: 30000 });
    assert.equal(await host.locator(".cite-item", { hasText: "Green light is reflected" }).count(), 0, "the edits were replaced");
    assert.ok((await host.locator(".cite-item").count()) > 0, "the extractive summary cites the transcript");
  });

  it("tells the student the lecture ended, and keeps their proof for its page after they join the next one", async () => {
    const guest = state.guest;
    // Still on the room page: the next token request (a retry) learns the lecture ended.
    const ended = guest.locator("#room-problem-title", { hasText: "The lecture has ended" });
    if (!(await ended.isVisible())) await guest.click("#media-retry");
    await ended.waitFor();
    assert.equal(await guest.getByRole("link", { name: "Lecture page" }).getAttribute("href"), `/lectures/${state.lectureId}`);
    await h.shot(guest, "54-guest-ended");
    // Next week: the same invite link, a new session for the next lecture.
    await Promise.all([guest.waitForURL(`**/j/${state.room.inviteCode}`), guest.getByRole("link", { name: "Join the next lecture" }).click()]);
    await guest.locator("#join-form").waitFor();
    await guest.check("#consent");
    await Promise.all([guest.waitForURL(`**/rooms/${state.room.id}`), guest.click("#join-submit")]);
    const next = await guest.evaluate((id) => JSON.parse(sessionStorage.getItem(`confctl.guest.${id}`)), state.room.id);
    assert.notEqual(next.lectureId, state.lectureId, "the new session is for the next lecture");
    // Last week's page still opens with last week's session.
    await guest.goto(`/lectures/${state.lectureId}`);
    await guest.locator("#transcript-body .para").first().waitFor();
    assert.match(await guest.locator("#reader-note").innerText(), /took part/);
    assert.equal(await guest.locator("#attendance-section").isVisible(), false);
    assert.equal(await guest.locator("#summary-edit").count(), 0);
    // Guests prove access with a header, so their downloads are buttons that fetch.
    assert.equal(await guest.locator('#downloads-list button[data-format="pdf"]').count(), 1);
  });

  it("lists the room's past lectures on the dashboard and searches all of them", async () => {
    const host = state.host;
    await host.goto("/dashboard");
    const card = host.locator(`#rooms-ready [data-room-id="${state.room.id}"]`);
    await card.waitFor();
    assert.match(await card.innerText(), /Ready for lecture 2/);
    await card.locator(".past-lectures summary").click();
    const link = card.locator(".lecture-links a", { hasText: "Lecture 1" });
    await link.waitFor();
    assert.equal(await link.getAttribute("href"), `/lectures/${state.lectureId}`);
    await host.fill("#search-input", "chlorophyll");
    const hit = host.locator("#search-results .search-hit", { hasText: "absorbs red" });
    await hit.waitFor();
    assert.equal(await hit.locator("mark").innerText(), "Chlorophyll");
    assert.equal(await h.shotBoth(host, "49-dashboard-lectures"), 0);
    await Promise.all([host.waitForURL(`**/lectures/${state.lectureId}#t=${SEGMENTS[100].startMs}`), hit.locator("a").click()]);
    await waitFor(() => citedInView(host, "Chlorophyll absorbs red"), "the searched moment in view");
    await host.waitForTimeout(400);
    await h.shot(host, "50-lecture-from-search");
  });

  it("speaks Russian", async () => {
    const host = state.host;
    await host.goto(`/lectures/${state.lectureId}?lang=ru`);
    await host.locator("#summary-heading", { hasText: "Конспект" }).waitFor();
    await host.locator("#lecture-number", { hasText: "Лекция 1" }).waitFor();
    await host.locator("#transcript-body .para").first().waitFor();
    assert.equal(await h.shotBoth(host, "53-lecture-ru"), 0);
    await host.goto(`/lectures/${state.lectureId}?lang=en`);
    await host.locator("#summary-heading", { hasText: "Summary" }).waitFor();
  });

  it("archives the room: the invite link says so, and unarchiving opens it again", async () => {
    const host = state.host;
    await host.goto(`/rooms/${state.room.id}/settings`);
    await host.locator("#room-status", { hasText: "lecture 2" }).waitFor();
    await host.click("#archive-room");
    await host.locator("#archived-notice").waitFor();
    assert.equal(await host.locator("#room-form").isVisible(), false);
    assert.equal(await h.shotBoth(host, "51-room-archived"), 0);
    const late = await h.newPage({ viewport: PHONE, label: "late" });
    await late.goto(`/j/${state.room.inviteCode}`);
    await late.locator("#problem-title", { hasText: "This room is closed" }).waitFor();
    await h.shot(late, "52-join-archived");
    await host.click("#unarchive-room");
    await host.locator("#invite-section").waitFor();
    await late.reload();
    await late.locator("#join-form").waitFor();
    // The archived room's lecture stays readable.
    const again = await pageApi(host, "GET", `/api/lectures/${state.lectureId}`);
    assert.equal(again.status, 200);
  });

  it("raised no CSP violation or script error in any page", () => {
    assert.deepEqual(h.problems, []);
  });
});
