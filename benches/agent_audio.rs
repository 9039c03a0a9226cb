//! CPU per speaker stream for the assistant's audio path: Opus decoding, 48 → 16 kHz resampling and voice
//! activity detection, exactly as `confctl agent` runs them for every remote microphone. Target (issue: the
//! AI assistant): one 2-core VM carries 50 concurrent speaker streams into a remote speech-to-text service.
//!
//! Run: `cargo bench --bench agent_audio` (optionally `-- 50` for the number of streams). This is a
//! measurement, not a test: it prints CPU time per second of audio per stream and whether 50 streams fit in
//! 2 cores, leaving half of them for WebRTC, HTTP and everything else.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use confctl::agent::audio::SpeakerAudio;
use confctl::agent::vad::Vad;
use confctl_doubles::media::opus_packets;
use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Resampler};

const SECONDS: usize = 20;

/// A lecture-like clip at 48 kHz: espeak-ng speech when it is installed, else a synthetic voice (a harmonic
/// buzz with syllable-rate loudness changes and pauses).
fn lecture_audio() -> (Vec<i16>, &'static str) {
    let text = "Photosynthesis is how plants convert sunlight into chemical energy. The chlorophyll in the \
                leaves absorbs red and blue light and reflects green. The energy is stored as glucose, which \
                the plant uses to grow. Are there any questions about chlorophyll?";
    let dir = std::env::temp_dir().join(format!("confctl-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (raw, out) = (dir.join("raw.wav"), dir.join("speech.wav"));
    let made =
        std::process::Command::new("espeak-ng").args(["-v", "en-us", "-s", "150", "-w"]).arg(&raw).arg(text).status();
    let converted = made.is_ok_and(|s| s.success())
        && std::process::Command::new("sox")
            .arg(&raw)
            .args(["-r", "48000", "-c", "1", "-b", "16"])
            .arg(&out)
            .status()
            .is_ok_and(|s| s.success());
    let clip = if converted {
        let bytes = std::fs::read(&out).unwrap();
        let data = bytes.windows(4).position(|w| w == b"data").unwrap() + 8;
        Some(bytes[data..].chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect::<Vec<i16>>())
    } else {
        None
    };
    let _ = std::fs::remove_dir_all(&dir);
    let (clip, source) = match clip {
        Some(c) => (c, "espeak-ng speech"),
        None => (synthetic_voice(), "synthetic voice (espeak-ng/sox not installed)"),
    };
    // Loop the clip, with a second of silence after each pass, to fill the measured duration.
    let mut audio = Vec::with_capacity(48_000 * SECONDS);
    while audio.len() < 48_000 * SECONDS {
        audio.extend(&clip);
        audio.extend(std::iter::repeat_n(0, 48_000));
    }
    audio.truncate(48_000 * SECONDS);
    (audio, source)
}

fn synthetic_voice() -> Vec<i16> {
    (0..48_000 * 8)
        .map(|i| {
            let t = i as f32 / 48_000.0;
            let syllable = (2.0 * std::f32::consts::PI * 4.0 * t).sin().max(0.0);
            let sentence = if (t % 4.0) < 3.2 { 1.0 } else { 0.0 };
            let f0 = 120.0 + 20.0 * (2.0 * std::f32::consts::PI * 0.5 * t).sin();
            let buzz: f32 = (1..12).map(|h| (2.0 * std::f32::consts::PI * f0 * h as f32 * t).sin() / h as f32).sum();
            (6_000.0 * syllable * sentence * buzz) as i16
        })
        .collect()
}

fn main() {
    let streams: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(50);
    let (audio, source) = lecture_audio();
    let packets = opus_packets(&audio).unwrap();
    println!("agent audio path: {streams} streams × {SECONDS} s of {source}, 20 ms Opus packets at 32 kbit/s");

    // Every stream gets the same packets, each starting at a different point so they are not in lockstep.
    let mut pipelines: Vec<SpeakerAudio> = (0..streams).map(|_| SpeakerAudio::new().unwrap()).collect();
    let mut events = Vec::new();
    let mut utterances = 0usize;
    let started = Instant::now();
    for i in 0..packets.len() {
        for (s, pipeline) in pipelines.iter_mut().enumerate() {
            let k = (i + s * 37) % packets.len();
            let seq = i as u16;
            let ts = (i as u32).wrapping_mul(960);
            pipeline.push_rtp(seq, ts, &packets[k], 1_000_000 + 20 * i as i64, &mut events);
            utterances += events.iter().filter(|e| matches!(e, confctl::agent::stt::AudioEvent::UtteranceEnd)).count();
            events.clear();
        }
    }
    let cpu = started.elapsed();
    let audio_seconds = (packets.len() * streams) as f64 * 0.02;
    let per_stream = cpu.as_secs_f64() / audio_seconds; // CPU seconds per second of one stream
    println!(
        "  {} utterances found; {:.2} s CPU (one thread) for {:.0} s of stream audio",
        utterances,
        cpu.as_secs_f64(),
        audio_seconds
    );
    println!(
        "  CPU per stream: {:.2} ms per second of audio = {:.2} % of one core",
        per_stream * 1000.0,
        per_stream * 100.0
    );
    let cores_for_50 = per_stream * 50.0;
    println!(
        "  50 streams need {:.3} cores for decode + resample + VAD: {}",
        cores_for_50,
        if cores_for_50 <= 1.0 { "fits a 2-core VM with a core to spare (target met)" } else { "TARGET MISSED" }
    );

    // The stages on their own, on one stream, for where the time goes.
    let mut decoder = opus_rs::OpusDecoder::new(48_000, 1).unwrap();
    let mut pcm = vec![0f32; 5_760];
    let mut decoded = Vec::with_capacity(audio.len());
    let t = Instant::now();
    for p in &packets {
        let n = decoder.decode(p, 5_760, &mut pcm).unwrap();
        decoded.extend_from_slice(&pcm[..n]);
    }
    let decode = t.elapsed();
    let mut resampler = Fft::<f32>::new(48_000, 16_000, 960, 1, FixedSync::Both).unwrap();
    let mut out = vec![0f32; 320];
    let mut frames = Vec::with_capacity(decoded.len() / 960);
    let t = Instant::now();
    for chunk in decoded.chunks_exact(960) {
        let input = InterleavedSlice::new(chunk, 1, 960).unwrap();
        let mut output = InterleavedSlice::new_mut(&mut out, 1, 320).unwrap();
        resampler.process_into_buffer(&input, &mut output, None).unwrap();
        frames.push(out.iter().map(|&s| (s * 32768.0) as i16).collect::<Vec<i16>>());
    }
    let resample = t.elapsed();
    let mut vad = Vad::new();
    let t = Instant::now();
    for (i, f) in frames.into_iter().enumerate() {
        vad.push(f, 20 * i as i64, &mut events);
        events.clear();
    }
    let detect = t.elapsed();
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1000.0 / SECONDS as f64;
    println!(
        "  stages, ms CPU per second of audio: Opus decoding {:.2}, resampling {:.2}, VAD {:.2}",
        ms(decode),
        ms(resample),
        ms(detect)
    );
}
