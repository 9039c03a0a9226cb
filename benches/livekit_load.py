"""The load generator of `benches/livekit_load.rs`: many real WebRTC participants (LiveKit's Python
real-time SDK, PyPI `livekit`, libwebrtc underneath) in one process, one `rtc.Room` each.

Run with the venv `scripts/livekit-server python` prints:
    python livekit_load.py SPEC.json

SPEC: {"url": ws://..., "seconds": D, "video": bool, "audio": "tone" | WAV_PATH, "connectAtOnce": K,
       "churnEvery": S (0: none), "participants": [{"identity", "token", "publish": bool}, ...]}

Publishers publish a microphone (a 440 Hz tone, or a WAV file looped) and, with "video", a 160x120 camera
at 10 frames/s; everybody subscribes to everything (auto_subscribe). Connections are made at most K at a
time. Once all are connected and published it prints `ready`, holds the room for D seconds (with
"churnEvery", one subscriber after another leaves and comes back, S seconds between one rejoin and the
next, so webhooks keep flowing), prints `steady_end` with what the participants received (media as
libwebrtc counts it, caption data packets on topic `transcription`), then everyone leaves and it prints
`left`. One JSON object a line on stdout; the Rust bench reads them.
"""

import array
import asyncio
import json
import math
import os
import sys
import time

from livekit import rtc

# The WAV reader and the test pattern the API tests' participant uses (tests/api/support/lk_participant.py).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "api", "support"))
from lk_participant import video_forever, wav_samples  # noqa: E402

RATE = 48000
FRAME = RATE // 100  # 10 ms


def say(event, **fields):
    print(json.dumps({"event": event, "t": time.time(), **fields}), flush=True)


def tone():
    """One second of a 440 Hz tone (a whole number of periods, so it loops without a click)."""
    return [int(8000 * math.sin(2 * math.pi * 440 * i / RATE)) for i in range(RATE)]


def speech(path):
    """The clip's samples at 48 kHz (the tests' reader), plus 1.5 s of silence between loops."""
    return wav_samples(path) + [0] * (RATE * 3 // 2)


def frames_of(samples):
    """The samples as ready-made 10 ms frames (built once, shared by every publisher)."""
    frames = []
    for start in range(0, len(samples) - FRAME + 1, FRAME):
        frames.append(array.array("h", samples[start : start + FRAME]).tobytes())
    return frames


async def audio_forever(source, frames):
    """Feeds the frames in a loop; the source's queue paces it at real time."""
    while True:
        for data in frames:
            await source.capture_frame(rtc.AudioFrame(data, RATE, 1, FRAME))


class Member:
    def __init__(self, spec, url):
        self.identity = spec["identity"]
        self.token = spec["token"]
        self.publish = spec["publish"]
        self.url = url
        self.room = None
        self.tasks = []
        self.subscribed = 0
        self.connects = 0
        # Media received over earlier connections (a churning subscriber's counters restart on each connect).
        self.carried = (0, 0, 0)
        self.captions = 0

    async def connect(self, frames, video):
        room = rtc.Room()

        @room.on("track_subscribed")
        def _subscribed(track, publication, participant):
            self.subscribed += 1

        @room.on("data_received")
        def _data(packet):
            if packet.topic == "transcription":
                self.captions += 1

        await room.connect(self.url, self.token, options=rtc.RoomOptions(auto_subscribe=True))
        self.room = room
        self.connects += 1
        if not self.publish:
            return 0
        me = room.local_participant
        source = rtc.AudioSource(RATE, 1)
        track = rtc.LocalAudioTrack.create_audio_track("microphone", source)
        await me.publish_track(track, rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE))
        self.tasks.append(asyncio.create_task(audio_forever(source, frames)))
        published = 1
        if video:
            vsource = rtc.VideoSource(160, 120)
            vtrack = rtc.LocalVideoTrack.create_video_track("camera", vsource)
            await me.publish_track(vtrack, rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_CAMERA))
            self.tasks.append(asyncio.create_task(video_forever(vsource)))
            published += 1
        return published

    async def leave(self):
        for task in self.tasks:
            task.cancel()
        self.tasks = []
        if self.room is not None:
            await self.room.disconnect()
            self.room = None

    async def received(self):
        """Media bytes, packets and lost packets received, as libwebrtc counts them (this SDK may carry both
        directions on one peer connection, reported as the publisher's: inbound RTP is looked for in both)."""
        if self.room is None:
            return (0, 0, 0)
        try:
            stats = await self.room.get_rtc_stats()
        except Exception:  # noqa: BLE001 - stats are a nicety; the bench shows zeros when they are missing
            return (0, 0, 0)
        total = [0, 0, 0]
        for s in list(stats.subscriber_stats) + list(stats.publisher_stats):
            if s.HasField("inbound_rtp"):
                total[0] += s.inbound_rtp.inbound.bytes_received
                total[1] += s.inbound_rtp.received.packets_received
                total[2] += max(0, s.inbound_rtp.received.packets_lost)
        return tuple(total)


async def main():
    with open(sys.argv[1]) as f:
        spec = json.load(f)
    audio = spec.get("audio", "tone")
    frames = frames_of(tone() if audio == "tone" else speech(audio))
    members = [Member(p, spec["url"]) for p in spec["participants"]]
    gate = asyncio.Semaphore(max(1, spec.get("connectAtOnce", 4)))
    failures = []

    async def bring(m):
        async with gate:
            try:
                return await asyncio.wait_for(m.connect(frames, spec.get("video", False)), 60)
            except Exception as err:  # noqa: BLE001 - reported to the bench, which decides (timeouts too)
                failures.append(f"{m.identity}: {err!r}")
                return 0

    published = sum(await asyncio.gather(*(bring(m) for m in members)))
    connected = sum(1 for m in members if m.room is not None)
    say("ready", connected=connected, published=published, failures=failures[:5])
    if connected == 0:
        return

    churn_every = spec.get("churnEvery", 0)
    churners = [m for m in members if not m.publish and m.room is not None]
    churned = 0
    end = time.monotonic() + spec["seconds"]
    if churn_every > 0 and churners:
        while time.monotonic() + churn_every <= end:
            await asyncio.sleep(churn_every)
            m = churners[churned % len(churners)]
            now = await m.received()
            m.carried = tuple(a + b for a, b in zip(m.carried, now))
            await m.leave()
            try:
                await m.connect(frames, False)
                churned += 1
            except Exception as err:  # noqa: BLE001
                failures.append(f"{m.identity} rejoining: {err!r}")
    await asyncio.sleep(max(0.0, end - time.monotonic()))

    now = await asyncio.gather(*(m.received() for m in members))
    received = [tuple(a + b for a, b in zip(m.carried, r)) for m, r in zip(members, now)]
    say(
        "steady_end",
        connected=sum(1 for m in members if m.room is not None),
        subscriptions=sum(m.subscribed for m in members),
        receivedBytes=sum(r[0] for r in received),
        receivedPackets=sum(r[1] for r in received),
        lostPackets=sum(r[2] for r in received),
        churned=churned,
        captions=sum(m.captions for m in members),
        failures=failures[:5],
    )
    await asyncio.gather(*(m.leave() for m in members))
    say("left")


if __name__ == "__main__":
    asyncio.run(main())
