"""A real WebRTC participant for the tests, on LiveKit's own real-time SDK (PyPI `livekit`).

Run with the venv `scripts/livekit-server python` prints:
    python lk_participant.py URL TOKEN [--audio tone|silence|WAV_PATH] [--video]

Reports what happens to it as one JSON object a line on stdout ({"event": ...}); reads commands from stdin,
one a line: `publish-audio`, `publish-video`, `play WAV_PATH` (a new microphone track speaking the file),
`unpublish`, `leave`. Every event carries `t`, this process's wall clock in seconds, so a test can relate
events to each other (when a clip started playing, when a caption arrived) without its own read delays. Exits when disconnected or stdin closes.
The Rust tests (tests/support/livekit.rs) drive it.
"""

import array
import asyncio
import json
import math
import sys
import time
import wave

from livekit import rtc

RATE = 48000
FRAME = RATE // 100  # 10 ms


def say(event, **fields):
    print(json.dumps({"event": event, "t": time.time(), **fields}), flush=True)


def permission_json(p):
    return {
        "canPublish": p.can_publish,
        "canSubscribe": p.can_subscribe,
        "canPublishData": p.can_publish_data,
        "sources": [int(s) for s in p.can_publish_sources],
    }


def wav_samples(path):
    """16-bit mono samples of a WAV file, resampled (nearest neighbour) to 48 kHz."""
    with wave.open(path, "rb") as w:
        if w.getsampwidth() != 2 or w.getnchannels() != 1:
            raise ValueError(f"{path}: need 16-bit mono")
        rate = w.getframerate()
        raw = w.readframes(w.getnframes())
    samples = memoryview(raw).cast("h")
    out = [samples[int(i * rate / RATE)] for i in range(int(len(samples) * RATE / rate))]
    return out


async def play(source, samples):
    """Feeds samples to the source in 10 ms frames; the source's queue paces it at real time."""
    for start in range(0, len(samples), FRAME):
        chunk = samples[start : start + FRAME]
        chunk = chunk + [0] * (FRAME - len(chunk))
        await source.capture_frame(rtc.AudioFrame(_pack(chunk), RATE, 1, FRAME))


def _pack(chunk):
    return array.array("h", chunk).tobytes()


async def tone_forever(source):
    phase = 0
    while True:
        chunk = [int(8000 * math.sin(2 * math.pi * 440 * (phase + i) / RATE)) for i in range(FRAME)]
        phase += FRAME
        await source.capture_frame(rtc.AudioFrame(_pack(chunk), RATE, 1, FRAME))


async def silence_forever(source):
    while True:
        await source.capture_frame(rtc.AudioFrame(bytes(FRAME * 2), RATE, 1, FRAME))


async def video_forever(source):
    width, height, n = 160, 120, 0
    while True:
        shade = (n * 8) % 256
        data = bytes([shade, 255 - shade, 128, 255]) * (width * height)
        source.capture_frame(rtc.VideoFrame(width, height, rtc.VideoBufferType.RGBA, data))
        n += 1
        await asyncio.sleep(0.1)


async def main():
    url, token = sys.argv[1], sys.argv[2]
    audio = None
    video = False
    args = sys.argv[3:]
    while args:
        if args[0] == "--audio":
            audio, args = args[1], args[2:]
        elif args[0] == "--video":
            video, args = True, args[1:]
        else:
            raise SystemExit(f"unknown argument {args[0]}")

    room = rtc.Room()
    done = asyncio.Event()
    tasks = []

    @room.on("disconnected")
    def _disconnected(reason):
        say("disconnected", reason=str(reason))
        done.set()

    @room.on("data_received")
    def _data(packet):
        say(
            "data",
            topic=packet.topic,
            payload=packet.data.decode("utf-8", "replace"),
            fromServer=packet.participant is None,
        )

    @room.on("participant_permissions_changed")
    def _permissions(participant, permission):
        say("permissions", identity=participant.identity, **permission_json(permission))

    @room.on("participant_connected")
    def _joined(p):
        say("participant_connected", identity=p.identity)

    @room.on("participant_disconnected")
    def _left(p):
        say("participant_disconnected", identity=p.identity)

    @room.on("track_subscribed")
    def _subscribed(track, publication, participant):
        say("track_subscribed", identity=participant.identity, sid=publication.sid, kind=int(track.kind))

    @room.on("track_muted")
    def _muted(participant, publication):
        say("track_muted", identity=participant.identity, sid=publication.sid)

    @room.on("local_track_unpublished")
    def _unpublished(publication):
        say("local_track_unpublished", sid=publication.sid)

    try:
        await room.connect(url, token, options=rtc.RoomOptions(auto_subscribe=True))
    except Exception as err:  # noqa: BLE001 - reported to the test, which decides
        say("connect_failed", error=str(err))
        return
    me = room.local_participant
    say("connected", identity=me.identity, sid=me.sid, **permission_json(me.permissions))

    async def publish_audio(audio=audio):
        source = rtc.AudioSource(RATE, 1)
        track = rtc.LocalAudioTrack.create_audio_track("microphone", source)
        options = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
        try:
            pub = await me.publish_track(track, options)
        except Exception as err:  # noqa: BLE001
            say("publish_failed", kind="audio", error=str(err))
            return
        say("published", kind="audio", sid=pub.sid)
        if audio == "tone" or audio is None:
            tasks.append(asyncio.create_task(tone_forever(source)))
        elif audio == "silence":
            tasks.append(asyncio.create_task(silence_forever(source)))
        else:

            samples = wav_samples(audio)

            async def speak_then_silence():
                say("playing", path=audio)
                await play(source, samples)
                say("played", path=audio)
                await silence_forever(source)

            tasks.append(asyncio.create_task(speak_then_silence()))

    async def publish_video():
        source = rtc.VideoSource(160, 120)
        track = rtc.LocalVideoTrack.create_video_track("camera", source)
        options = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_CAMERA)
        try:
            pub = await me.publish_track(track, options)
        except Exception as err:  # noqa: BLE001
            say("publish_failed", kind="video", error=str(err))
            return
        say("published", kind="video", sid=pub.sid)
        tasks.append(asyncio.create_task(video_forever(source)))

    if audio is not None:
        await publish_audio()
    if video:
        await publish_video()

    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

    async def commands():
        while True:
            line = await reader.readline()
            if not line:
                return
            command = line.decode().strip()
            if command == "publish-audio":
                await publish_audio()
            elif command.startswith("play "):
                await publish_audio(command[len("play ") :])
            elif command == "publish-video":
                await publish_video()
            elif command == "unpublish":
                for pub in list(me.track_publications.values()):
                    await me.unpublish_track(pub.sid)
                say("unpublished")
            elif command == "leave":
                return
            else:
                say("unknown_command", command=command)

    reading = asyncio.create_task(commands())
    waiting = asyncio.create_task(done.wait())
    await asyncio.wait([reading, waiting], return_when=asyncio.FIRST_COMPLETED)
    for task in tasks:
        task.cancel()
    if not done.is_set():
        await room.disconnect()
        say("left")


if __name__ == "__main__":
    asyncio.run(main())
