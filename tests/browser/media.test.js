// Real media in real browsers: Chromium against `confctl serve --with-agent` and the real livekit-server
// (scripts/livekit-server), with two fake cameras and a WAV of spoken English (espeak-ng) as every page's
// microphone (only the host's is on). The host and two students join through the real pages (invite link,
// waiting room, approval); each sees the others' video decoding (videoWidth > 0, frames advancing); the
// host's screen share reaches the students; the host switches camera in the device picker and the students
// keep decoding; the assistant captions the lecture on the students' pages; the host removes a student,
// whose page says so and whose tile leaves the others' stage.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { Harness } from "./harness.js";

const h = new Harness();
const state = { guests: [] };
const speechDir = mkdtempSync(path.join(tmpdir(), "confctl-speech-"));

/** A lecture clip: espeak-ng speaks, sox makes 48 kHz mono with pauses (Chromium loops the file). */
function lectureWav() {
  const raw = path.join(speechDir, "raw.wav");
  const wav = path.join(speechDir, "lecture.wav");
  execFileSync("espeak-ng", ["-v", "en-us", "-s", "150", "-w", raw, "Plants convert sunlight into chemical energy. For next week, please read chapter four."]);
  execFileSync("sox", [raw, "-r", "48000", "-c", "1", "-b", "16", wav, "pad", "1", "3"]);
  return wav;
}

before(async () => {
  await h.start({ media: "real", withAgent: true, fakeAudio: lectureWav() });
});

after(async () => {
  await h.stop();
  rmSync(speechDir, { recursive: true, force: true });
});

async function askToJoin(page, name) {
  await page.locator("#join-form").waitFor();
  await page.fill("#display-name", name);
  const consent = page.locator("#consent");
  if (await consent.isVisible()) await consent.check();
  await page.click("#join-submit");
}

async function openTab(page, name) {
  await page.click(`#tab-${name}`);
  await page.locator(`#panel-${name}`).waitFor();
}

/** What each video tile on the page shows: identity, size, frames decoded so far. */
function tiles(page) {
  return page.evaluate(() =>
    [...document.querySelectorAll(".tile")].map((tile) => {
      const video = tile.querySelector("video");
      const quality = video && video.getVideoPlaybackQuality ? video.getVideoPlaybackQuality() : null;
      return {
        identity: tile.dataset.identity,
        screen: tile.classList.contains("screen"),
        hidden: !video || video.hidden,
        width: video ? video.videoWidth : 0,
        frames: quality ? quality.totalVideoFrames : 0,
      };
    }),
  );
}

/** Waits until the page decodes video from every identity in `others` (camera tiles, or screen tiles). */
async function seesVideoOf(page, others, { screen = false, label } = {}) {
  const deadline = Date.now() + 45000;
  let first = null;
  let last = [];
  while (Date.now() < deadline) {
    last = await tiles(page);
    const decoding = others.every((id) => last.some((t) => t.identity === id && t.screen === screen && !t.hidden && t.width > 0));
    if (decoding) {
      if (!first) first = last;
      else {
        // Frames keep coming: every one of those tiles decoded more since the first look.
        const advanced = others.every((id) => {
          const before = first.find((t) => t.identity === id && t.screen === screen);
          const now = last.find((t) => t.identity === id && t.screen === screen);
          return now.frames > before.frames;
        });
        if (advanced) return last;
      }
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`${label}: no advancing ${screen ? "screen" : "camera"} video from ${others.join(", ")}; tiles: ${JSON.stringify(last)}`);
}

async function connected(page) {
  await page.locator("#conn-state.live").waitFor({ timeout: 30000 });
}

/** A student opens the invite link, asks to join, is let in by the host and turns the camera on. */
async function admit(name) {
  const page = await h.newPage({ label: name });
  await page.goto(state.invite);
  await askToJoin(page, name);
  await page.locator("#waiting").waitFor();
  await openTab(state.host, "lobby");
  const entry = state.host.locator("#lobby li", { hasText: name });
  await entry.getByRole("button", { name: "Let in" }).click();
  await page.waitForURL(`**/rooms/${state.roomId}`, { timeout: 20000 });
  await connected(page);
  // Guests come in with camera and microphone off, and choose: these turn the camera on.
  await page.click("#btn-cam");
  await page.locator("#btn-cam[aria-pressed=true]").waitFor();
  const session = await page.evaluate((id) => JSON.parse(sessionStorage.getItem(`confctl.guest.${id}`) || "null"), state.roomId);
  const identity = JSON.parse(Buffer.from(session.token.split(".")[1], "base64url").toString()).sub;
  state.guests.push({ name, page, identity });
}

describe("real media through the video room", { concurrency: false }, () => {
  it("lets the host register, create a room and go live", async () => {
    const host = await h.newPage({ label: "host" });
    state.host = host;
    await host.goto("/register");
    await host.fill("#name", "Ada Lovelace");
    await host.fill("#email", "ada@uni.example");
    await host.fill("#password", "correct horse battery");
    await Promise.all([host.waitForURL("**/dashboard"), host.click("#register-form button[type=submit]")]);
    await host.goto("/rooms/new");
    await host.fill("#name", "Biology 101 — live");
    await Promise.all([host.waitForURL(/\/rooms\/[^/]+\/settings/), host.click("#room-form button[type=submit]")]);
    state.roomId = host.url().split("/rooms/")[1].split("/")[0];
    state.invite = await host.inputValue("#invite-url");
    await host.goto(`/rooms/${state.roomId}`);
    await connected(host);
    assert.equal(await host.locator("#media-banner").isVisible(), false, "the media server is reachable");
    state.hostIdentity = (await tiles(host)).find((t) => !t.screen)?.identity;
    assert.match(state.hostIdentity || "", /^h_/, "the host's own tile is on the stage");
  });

  it("admits a student through the invite link and the waiting room", async () => {
    await admit("Ann Student");
  });

  it("captions the lecture on the student's page (the assistant on real media)", async () => {
    const page = state.guests[0].page;
    await page.locator("#captions").waitFor({ state: "visible", timeout: 90000 });
    await page.waitForFunction(() => /sunlight|chapter|energy/i.test(document.getElementById("captions").innerText), null, { timeout: 90000 });
    const shown = await page.locator("#captions").innerText();
    assert.match(shown, /Ada Lovelace:/, "captions name the speaker");
    assert.doesNotMatch(shown, /\bnull\b|undefined/, "no placeholder text among the lines");
    await h.shot(page, "33-real-media-captions");
  });

  it("admits a second student", async () => {
    await admit("Bob Student");
  });

  it("shows everyone everyone else's camera, decoding", async () => {
    const everyone = [{ page: state.host, identity: state.hostIdentity, name: "host" }, ...state.guests];
    for (const me of everyone) {
      const others = everyone.filter((o) => o.identity !== me.identity).map((o) => o.identity);
      const seen = await seesVideoOf(me.page, others, { label: me.name });
      assert.ok(seen.filter((t) => !t.screen).length >= 3, `${me.name} has a tile for each of the three: ${JSON.stringify(seen)}`);
    }
    await h.shot(state.host, "30-real-media-host");
    await h.shot(state.guests[0].page, "31-real-media-guest");
  });

  it("shares the host's screen with the students", async () => {
    await state.host.click("#btn-screen");
    for (const g of state.guests) await seesVideoOf(g.page, [state.hostIdentity], { screen: true, label: g.name });
    await state.guests[0].page.locator("#stage-focus .tile.screen").waitFor();
    await h.shot(state.guests[0].page, "32-real-media-screen-share");
    await state.host.click("#btn-screen");
  });

  it("switches the host's camera from the device picker while the students keep watching", async () => {
    const host = state.host;
    /** The camera the host's own tile shows (the local track's capture device). */
    const ownCamera = () =>
      host.evaluate((id) => {
        const video = document.querySelector(`.tile[data-identity="${id}"]:not(.screen) video`);
        const track = video?.srcObject?.getVideoTracks?.()[0];
        return track ? { device: track.getSettings().deviceId, state: track.readyState } : null;
      }, state.hostIdentity);
    const before = await ownCamera();
    assert.ok(before?.device, `the host's tile shows a local camera: ${JSON.stringify(before)}`);
    await host.click("#btn-devices");
    await host.locator("#devices-dialog[open]").waitFor();
    await host.waitForFunction(() => document.querySelectorAll("#dev-videoinput option[value]").length >= 2);
    const cameras = await host.$$eval("#dev-videoinput option", (options) =>
      options.map((o) => ({ value: o.value, label: o.textContent, selected: o.selected })),
    );
    assert.equal(cameras.find((c) => c.selected)?.value, before.device, "the picker marks the camera in use");
    // Chromium's fake cameras differ in pixel format: 0 is I420, 1 a Y16 depth camera (its frames never reached
    // the students here), 2 MJPEG like most USB webcams. The host moves from the first to the MJPEG one.
    const other = cameras.find((c) => c.label === "fake_device_2");
    assert.ok(other && other.value !== before.device, `a second camera to switch to: ${JSON.stringify(cameras)}`);
    await host.selectOption("#dev-videoinput", other.value);
    await host.locator("#devices-note", { hasText: "Switched." }).waitFor({ timeout: 15000 });
    await host.waitForFunction(
      ({ id, want }) => {
        const track = document.querySelector(`.tile[data-identity="${id}"]:not(.screen) video`)?.srcObject?.getVideoTracks?.()[0];
        return track && track.readyState === "live" && track.getSettings().deviceId === want;
      },
      { id: state.hostIdentity, want: other.value },
      { timeout: 15000 },
    );
    await h.shot(host, "34-real-media-devices");
    await host.click("#devices-dialog button[value=close]");
    await seesVideoOf(host, [state.hostIdentity], { label: "host itself" });
    // Every student still decodes advancing frames from the host, now from the other camera.
    for (const g of state.guests) await seesVideoOf(g.page, [state.hostIdentity], { label: g.name });
    assert.deepEqual(h.problems, []);
  });

  it("removes a student: their page says so and their tile leaves the stage", async () => {
    const bob = state.guests[1];
    const host = state.host;
    await openTab(host, "people");
    const row = host.locator("#people li", { hasText: bob.name });
    await row.getByRole("button", { name: "Remove" }).click();
    await host.locator("#confirm-dialog[open]").waitFor();
    await host.click("#confirm-ok");
    await bob.page.locator("#room-problem-title", { hasText: "You were removed" }).waitFor({ timeout: 20000 });
    await host.waitForFunction((id) => !document.querySelector(`.tile[data-identity="${id}"]`), bob.identity, { timeout: 20000 });
    await state.guests[0].page.waitForFunction((id) => !document.querySelector(`.tile[data-identity="${id}"]`), bob.identity, { timeout: 20000 });
    assert.deepEqual(h.problems, []);
  });
});
