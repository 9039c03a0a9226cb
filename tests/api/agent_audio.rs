//! The assistant's audio path: Opus packets as a browser sends them (espeak-ng speech, pure-Rust encoder in
//! the doubles) through decoding, resampling and voice-activity detection, into utterances the real Whisper
//! server understands; packet loss, discontinuous transmission, muting and RTP timestamp wrap-around.

use confctl::agent::audio::SpeakerAudio;
use confctl::agent::stt::AudioEvent;
use confctl::agent::stt::openai::OpenAiStt;
use confctl_doubles::media::opus_packets;

use crate::support::{self, Service, speech};

const T0: i64 = 1_800_000_000_000;

/// Utterances found in `events`: (start ms, samples).
fn utterances(events: &[AudioEvent]) -> Vec<(i64, Vec<i16>)> {
    let mut out = Vec::new();
    let mut current: Option<(i64, Vec<i16>)> = None;
    for e in events {
        match e {
            AudioEvent::Speech { samples, at_ms } => current.get_or_insert((*at_ms, Vec::new())).1.extend(samples),
            AudioEvent::UtteranceEnd => out.extend(current.take()),
        }
    }
    out.extend(current);
    out
}

/// Feeds packets as RTP (20 ms apart, arriving in real time from `T0`), skipping the indices in `lost`.
fn feed(
    audio: &mut SpeakerAudio,
    packets: &[Vec<u8>],
    first_seq: u16,
    first_ts: u32,
    lost: &[usize],
) -> Vec<AudioEvent> {
    let mut events = Vec::new();
    for (i, p) in packets.iter().enumerate() {
        if lost.contains(&i) {
            continue;
        }
        let seq = first_seq.wrapping_add(i as u16);
        let ts = first_ts.wrapping_add(960 * i as u32);
        audio.push_rtp(seq, ts, p, T0 + 20 * i as i64, &mut events);
    }
    events
}

#[tokio::test]
async fn opus_speech_becomes_utterances_that_whisper_understands() {
    let Some(_turn) = support::media_turn_with(&[Service::Speech, Service::Whisper]).await else { return };
    confctl::tls_provider();
    let mut pcm = speech::silence(500, 48_000);
    pcm.extend(speech::speak("Plants convert sunlight into chemical energy.", "en-us", 48_000));
    let second_at = pcm.len() as i64 * 1000 / 48_000 + 1_500;
    pcm.extend(speech::silence(1_500, 48_000));
    pcm.extend(speech::speak("Are there any questions about chlorophyll?", "en-us", 48_000));
    pcm.extend(speech::silence(1_000, 48_000));
    let packets = opus_packets(&pcm).unwrap();

    let mut audio = SpeakerAudio::new().unwrap();
    let events = feed(&mut audio, &packets, 40_000, 3_000_000_000, &[]);
    let found = utterances(&events);
    assert_eq!(found.len(), 2, "{:?}", found.iter().map(|(t, s)| (t - T0, s.len())).collect::<Vec<_>>());
    assert!(matches!(events.last(), Some(AudioEvent::UtteranceEnd)));
    // Each utterance starts shortly (pre-roll) before its speech.
    assert!((T0 + 100..=T0 + 520).contains(&found[0].0), "{}", found[0].0 - T0);
    assert!((T0 + second_at - 400..=T0 + second_at + 100).contains(&found[1].0), "{} vs {second_at}", found[1].0 - T0);

    let stt = OpenAiStt::new(speech::stt_url().parse().unwrap(), "whisper-1".into(), None).unwrap();
    let first = stt.transcribe_utterance(&found[0].1, "en", "").await.unwrap();
    let second = stt.transcribe_utterance(&found[1].1, "en", "").await.unwrap();
    // Whisper base hears "plants" as "planets" now and then once the audio went through Opus.
    speech::assert_words(&first, &["convert", "sunlight", "chemical", "energy"]);
    speech::assert_words(&second, &["questions"]);
}

#[test]
fn lost_packets_are_concealed_and_gaps_are_silence() {
    let tone: Vec<i16> = (0..48_000 * 2)
        .map(|i| (8_000.0 * (2.0 * std::f32::consts::PI * 220.0 * i as f32 / 48_000.0).sin()) as i16)
        .collect();
    let packets = opus_packets(&tone).unwrap();

    // Three packets lost in the middle: concealed, one continuous utterance of the full length.
    let mut audio = SpeakerAudio::new().unwrap();
    let mut events = feed(&mut audio, &packets, 1, 0, &[40, 41, 42]);
    audio.finish(&mut events);
    let found = utterances(&events);
    assert_eq!(found.len(), 1);
    let ms = found[0].1.len() as i64 / 16;
    assert!((1_900..=2_000).contains(&ms), "{ms} ms");

    // Discontinuous transmission: consecutive sequence numbers, but the timestamps jump a second. The gap
    // is silence, which ends the utterance; the next speech is a new one at its own time.
    let mut audio = SpeakerAudio::new().unwrap();
    let mut events = Vec::new();
    for (i, p) in packets.iter().enumerate().take(50) {
        audio.push_rtp(i as u16, 960 * i as u32, p, T0 + 20 * i as i64, &mut events);
    }
    for (i, p) in packets.iter().enumerate().skip(50) {
        audio.push_rtp(i as u16, 960 * i as u32 + 48_000, p, T0 + 1_000 + 20 * i as i64, &mut events);
    }
    audio.finish(&mut events);
    let found = utterances(&events);
    assert_eq!(found.len(), 2, "{:?}", found.iter().map(|(t, s)| (t - T0, s.len())).collect::<Vec<_>>());
    assert!((T0 + 1_950..=T0 + 2_100).contains(&found[1].0), "{}", found[1].0 - T0);
}

#[test]
fn a_muted_speaker_ends_the_utterance_and_timestamps_wrap() {
    let tone: Vec<i16> = (0..48_000)
        .map(|i| (8_000.0 * (2.0 * std::f32::consts::PI * 300.0 * i as f32 / 48_000.0).sin()) as i16)
        .collect();
    let packets = opus_packets(&tone).unwrap();
    let mut audio = SpeakerAudio::new().unwrap();
    // The RTP timestamp passes u32::MAX half-way through.
    let events = feed(&mut audio, &packets, 65_500, u32::MAX - 960 * 25, &[]);
    let found = utterances(&events);
    assert_eq!(found.len(), 1);
    assert!(found[0].1.len() as i64 / 16 >= 900, "no time lost at the wrap");
    assert!(audio.speaking());
    // Muted: no packets at all. The regular tick ends the utterance.
    let mut events = Vec::new();
    audio.tick(T0 + 1_300, &mut events);
    assert!(events.is_empty(), "not yet");
    audio.tick(T0 + 1_700, &mut events);
    assert_eq!(events, vec![AudioEvent::UtteranceEnd]);
}
