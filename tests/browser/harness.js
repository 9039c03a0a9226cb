// Test harness for the real-browser tests: starts the LiveKit double and `confctl serve` (the debug
// binaries built by scripts/test-browser) on free loopback ports with a throwaway data directory, launches
// Debian's Chromium through playwright-core, and offers the helpers the flows need.
import { execFileSync, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, "../..");
const targetDir = process.env.CARGO_TARGET_DIR || path.join(repo, "target");
const bin = (name) => path.join(targetDir, "debug", name);
export const screenshotDir = process.env.BROWSER_SCREENSHOTS || path.join(repo, "target", "browser-screenshots");

export const API_KEY = "APIbrowsertests";
export const API_SECRET = "browser-tests-secret-that-is-long-enough";

export const DESKTOP = { width: 1280, height: 800 };
export const PHONE = { width: 360, height: 740 };

/** Starts a process and resolves once a line of its output matches `ready`; rejects on early exit. */
function start(command, args, { env, ready, name, timeoutMs = 30000 }) {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let log = "";
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`${name} did not start within ${timeoutMs} ms:\n${log}`));
    }, timeoutMs);
    const onData = (chunk) => {
      log += chunk.toString();
      const match = log.match(ready);
      if (match) {
        clearTimeout(timer);
        resolve({ child, match, log: () => log });
      }
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited with ${code} before it was ready:\n${log}`));
    });
  });
}

/** A free loopback TCP port (closed again at once; the caller binds it). */
function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/**
 * A TCP relay on a free port to whatever `target` port is set (none: connections are closed). LiveKit's
 * webhook URL is static configuration, but confctl gets its port only once it runs: LiveKit posts to the
 * relay, which passes the bytes on untouched (signature included).
 */
function startRelay() {
  const relay = { target: null };
  relay.server = net.createServer((inbound) => {
    if (!relay.target) return inbound.destroy();
    const outbound = net.connect(relay.target, "127.0.0.1");
    inbound.pipe(outbound).pipe(inbound);
    outbound.on("error", () => inbound.destroy());
    inbound.on("error", () => outbound.destroy());
  });
  return new Promise((resolve) =>
    relay.server.listen(0, "127.0.0.1", () => {
      relay.port = relay.server.address().port;
      resolve(relay);
    }),
  );
}

/**
 * The real livekit-server (TEST_LIVEKIT_SERVER_BIN, built by scripts/livekit-server) on free loopback ports
 * with a generated config whose webhooks go to `webhookUrl`. Fails loudly when the binary is not configured.
 */
async function startLiveKitServer(dir, webhookUrl) {
  const server = process.env.TEST_LIVEKIT_SERVER_BIN;
  if (!server) throw new Error("TEST_LIVEKIT_SERVER_BIN is not set: run scripts/test-browser (it builds livekit-server once)");
  let lastError;
  for (let attempt = 0; attempt < 3; attempt++) {
    const [port, tcp, udp] = [await freePort(), await freePort(), await freePort()];
    const config = path.join(dir, "livekit.yaml");
    writeFileSync(
      config,
      [
        `port: ${port}`,
        `bind_addresses: ["127.0.0.1"]`,
        "rtc:",
        `  tcp_port: ${tcp}`,
        `  udp_port: ${udp}`,
        "  use_external_ip: false",
        "  node_ip: 127.0.0.1",
        // Without this LiveKit hands browsers public STUN servers; nothing here may leave the machine. The
        // TCP port's number on UDP: nobody answers there (STUN sent to LiveKit's own UDP port upsets the
        // assistant's ICE), and loopback host candidates need no STUN.
        `  stun_servers: ["127.0.0.1:${tcp}"]`,
        // Media over UDP on loopback only (LiveKit leaves loopback out by default).
        "  enable_loopback_candidate: true",
        "  ips:",
        '    includes: ["127.0.0.1/32"]',
        "keys:",
        `  ${API_KEY}: ${API_SECRET}`,
        "webhook:",
        `  api_key: ${API_KEY}`,
        `  urls: ["${webhookUrl}"]`,
        "logging:",
        "  level: info",
        "",
      ].join("\n"),
    );
    try {
      const proc = await start(server, ["--config", config], { name: "livekit-server", ready: /starting LiveKit server/ });
      const url = `http://127.0.0.1:${port}`;
      for (let i = 0; i < 100; i++) {
        const ok = await fetch(url).then((r) => r.text(), () => "");
        if (ok === "OK") return { proc, url };
        await new Promise((r) => setTimeout(r, 100));
      }
      await stop(proc);
      lastError = new Error(`livekit-server does not answer on ${url}:\n${proc.log()}`);
    } catch (err) {
      lastError = err; // a port taken meanwhile: try others
    }
  }
  throw lastError;
}

function stop(proc) {
  if (!proc || proc.child.exitCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      proc.child.kill("SIGKILL");
      resolve();
    }, 5000);
    proc.child.once("exit", () => {
      clearTimeout(timer);
      resolve();
    });
    proc.child.kill("SIGTERM");
  });
}

/** One running confctl + LiveKit double + Chromium, for one test file. */
export class Harness {
  /**
   * `media: "double"` (default) runs the LiveKit double; `media: "real"` the real livekit-server, with
   * `withAgent` for `confctl serve --with-agent` (the Whisper server at TEST_STT_URL) and `fakeAudio` a WAV
   * file every page of this browser uses as its microphone.
   */
  async start({ env = {}, media = "double", withAgent = false, fakeAudio = null, google = false } = {}) {
    mkdirSync(screenshotDir, { recursive: true });
    this.dataDir = mkdtempSync(path.join(tmpdir(), "confctl-browser-"));
    this.media = media;
    if (media === "real") {
      this.relay = await startRelay();
      const real = await startLiveKitServer(this.dataDir, `http://127.0.0.1:${this.relay.port}/api/webhooks/livekit`);
      this.livekit = real.proc;
      this.livekitUrl = real.url;
    } else {
      this.livekit = await start(bin("livekit-double"), ["--listen", "127.0.0.1:0", "--api-key", API_KEY, "--api-secret", API_SECRET], {
        name: "livekit-double",
        ready: /LIVEKIT_DOUBLE_URL=(\S+)/,
      });
      this.livekitUrl = this.livekit.match[1];
    }
    let listen = "127.0.0.1:0";
    if (google) {
      // Google's redirect URI is registered before confctl starts, so confctl gets its port and public URL now.
      const port = await freePort();
      listen = `127.0.0.1:${port}`;
      this.google = await start(bin("google-double"), ["--redirect-uri", `http://${listen}/auth/google/callback`], {
        name: "google-double",
        ready: /GOOGLE_DOUBLE_URL=(\S+)/,
      });
      const settings = Object.fromEntries([...this.google.log().matchAll(/^(CONFCTL_GOOGLE__\w+)=(\S+)$/gm)].map((m) => [m[1], m[2]]));
      env = { ...settings, CONFCTL_PUBLIC_URL: `http://${listen}`, ...env };
    }
    const serveArgs = ["--data-dir", path.join(this.dataDir, "data"), "serve", "--listen", listen];
    if (withAgent) {
      if (!process.env.TEST_STT_URL) throw new Error("TEST_STT_URL is not set: run scripts/test-browser (it starts the Whisper server)");
      serveArgs.push("--with-agent");
      env = { CONFCTL_AGENT__STT_URL: process.env.TEST_STT_URL, CONFCTL_AGENT__WEBRTC_UDP_ADDR: "127.0.0.1:0", ...env };
    }
    this.server = await start(bin("confctl"), serveArgs, {
      name: "confctl serve",
      ready: /listening on (http:\/\/[0-9.:]+)/,
      env: {
        CONFCTL_LIVEKIT__URL: this.livekitUrl,
        CONFCTL_LIVEKIT__API_KEY: API_KEY,
        CONFCTL_LIVEKIT__API_SECRET: API_SECRET,
        CONFCTL_LOG_FORMAT: "json",
        ...env,
      },
    });
    this.base = this.server.match[1];
    if (media === "real") {
      this.relay.target = Number(new URL(this.base).port);
    } else {
      // The double announces rooms and participants to confctl, as LiveKit would.
      await this.double("PUT", "/_double/webhook-url", { url: `${this.base}/api/webhooks/livekit` });
    }
    const mediaArgs =
      media === "real"
        ? [
            // Media flows over 127.0.0.1, which Chromium leaves out of WebRTC unless told otherwise.
            "--allow-loopback-in-peer-connection",
            "--disable-features=WebRtcHideLocalIpsWithMdns",
            // Screen sharing without a picker: the fake capture device.
            "--auto-accept-this-tab-capture",
            "--auto-select-desktop-capture-source=Entire screen",
          ]
        : [];
    if (fakeAudio) mediaArgs.push(`--use-file-for-fake-audio-capture=${fakeAudio}`);
    this.browser = await chromium.launch({
      executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
      headless: true,
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--use-fake-ui-for-media-stream",
        // Three fake cameras with real media, so the device picker has something to switch to.
        media === "real" ? "--use-fake-device-for-media-stream=device-count=3" : "--use-fake-device-for-media-stream",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        ...mediaArgs,
      ],
    });
    this.contexts = [];
    this.problems = [];
    return this;
  }

  async stop() {
    for (const context of this.contexts || []) await context.close().catch(() => {});
    await this.browser?.close().catch(() => {});
    await stop(this.server);
    await stop(this.livekit);
    await stop(this.google);
    this.relay?.server.close();
    if (this.dataDir) rmSync(this.dataDir, { recursive: true, force: true });
  }

  /** The server's log so far (for failure messages). */
  serverLog() {
    return this.server ? this.server.log() : "";
  }

  /**
   * A new browser profile (its own cookies and storage) with a page. Every CSP violation and uncaught page
   * error is collected in `this.problems`, which the tests require to stay empty.
   */
  async newPage({ viewport = DESKTOP, locale = "en-US", label = "page" } = {}) {
    const context = await this.browser.newContext({ viewport, locale, baseURL: this.base, permissions: ["camera", "microphone"] });
    this.contexts.push(context);
    const page = await context.newPage();
    // Fail a step quickly rather than wait out the runner's budget.
    page.setDefaultTimeout(15000);
    page.on("pageerror", (err) => this.problems.push(`${label}: page error: ${err.message}`));
    page.on("console", (msg) => {
      const text = msg.text();
      if (/Content.Security.Policy|Refused to (load|execute|apply|connect)/i.test(text)) this.problems.push(`${label}: CSP: ${text}`);
    });
    page.on("dialog", (dialog) => dialog.accept());
    return page;
  }

  /** Saves a screenshot as `<name>-<width>.png` and returns its path. */
  async shot(page, name) {
    const { width } = page.viewportSize();
    const file = path.join(screenshotDir, `${name}-${width}.png`);
    await page.screenshot({ path: file, fullPage: false });
    return file;
  }

  /** Screenshots a page at desktop and phone width, checking the phone layout has no sideways scrolling. */
  async shotBoth(page, name) {
    const original = page.viewportSize();
    await page.setViewportSize(DESKTOP);
    await page.waitForTimeout(150);
    await this.shot(page, name);
    await page.setViewportSize(PHONE);
    await page.waitForTimeout(150);
    await this.shot(page, name);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    await page.setViewportSize(original);
    return overflow;
  }

  /** Calls the LiveKit double's control API. */
  async double(method, route, body) {
    const response = await fetch(`${this.livekitUrl}${route}`, {
      method,
      headers: body ? { "Content-Type": "application/json" } : {},
      body: body ? JSON.stringify(body) : undefined,
    });
    const text = await response.text();
    return { status: response.status, body: text ? JSON.parse(text) : null };
  }

  /**
   * Pretends a browser joined a lecture's media room (`livekitRoomName` of the room, which names its current
   * lecture) with this token's identity (the double has no media).
   */
  async joinMedia(room, identity, name, role = "guest") {
    await this.double("POST", "/_double/rooms", { name: room });
    const added = await this.double("POST", `/_double/rooms/${room}/participants`, {
      identity,
      name,
      metadata: JSON.stringify({ role }),
      permission: { canSubscribe: true, canPublish: true, canPublishData: true },
    });
    await this.double("POST", `/_double/rooms/${room}/participants/${identity}/tracks`, { name: "mic", type: "AUDIO", source: "MICROPHONE" });
    return added;
  }

  /** Calls the Google double's control API (`start({ google: true })` only). */
  async googleDouble(method, route) {
    const response = await fetch(`${this.google.match[1]}${route}`, { method });
    const text = await response.text();
    return { status: response.status, body: text ? JSON.parse(text) : null };
  }

  /** Runs a `confctl` command on this server's data directory (e.g. `admin agent-token create`); its stdout. */
  cli(args) {
    return execFileSync(bin("confctl"), ["--data-dir", path.join(this.dataDir, "data"), ...args], { encoding: "utf8" });
  }

  /** Calls confctl's API directly (no cookies): for checks, never for the steps people do. */
  async api(method, route, body) {
    const response = await fetch(`${this.base}${route}`, {
      method,
      headers: body ? { "Content-Type": "application/json" } : {},
      body: body ? JSON.stringify(body) : undefined,
    });
    const text = await response.text();
    return { status: response.status, body: text ? JSON.parse(text) : null };
  }
}

/** The claims of a JWT (no signature check: the Rust tests check signing). */
export function jwtClaims(token) {
  const payload = token.split(".")[1];
  return JSON.parse(Buffer.from(payload.replace(/-/g, "+").replace(/_/g, "/"), "base64").toString("utf8"));
}

/**
 * Whether an API route is not built on this server yet: the router's generic 404 (`not_found`), as opposed
 * to a domain 404 such as `participant_not_found`. Flows that need such a route skip the step naming it —
 * never a silent pass.
 */
export async function routeMissing(response) {
  if (response.status() !== 404) return false;
  try {
    const body = await response.json();
    return body?.error?.code === "not_found";
  } catch {
    return false;
  }
}
