//! Voice-activity detection: cuts one speaker's 16 kHz audio into utterances, so a transcription request
//! goes out as soon as a phrase ends and silence is never sent anywhere.
//!
//! Energy-based with an adaptive noise floor: the floor is the quietest frame of the last few seconds
//! (speech always has gaps between syllables and sentences; steady noise does not rise above itself), and a
//! 20 ms frame is voiced when it is clearly louder than the floor (and than an absolute minimum). An utterance opens after a few voiced frames (with some audio from
//! before, so first syllables are kept) and closes after a pause; long monologues are cut at the next short
//! pause, or at a hard cap.

use std::collections::VecDeque;

use super::stt::AudioEvent;

/// Samples per frame: 20 ms at 16 kHz.
pub const FRAME: usize = 320;
const FRAME_MS: i64 = 20;

/// Frames of audio kept from before the utterance opened.
const PREROLL_FRAMES: usize = 15;
/// Voiced frames among the last five that open an utterance.
const OPEN_VOICED: usize = 3;
/// Silence that closes an utterance: long enough not to split a sentence at a comma, short enough for
/// captions to follow within ~2 s of the end of a phrase.
const HANGOVER_MS: i64 = 600;
/// After this long, the utterance closes at the next shorter pause…
const SOFT_CAP_MS: i64 = 12_000;
const SOFT_PAUSE_MS: i64 = 200;
/// …and at this length regardless (Whisper's window is 30 s).
const HARD_CAP_MS: i64 = 25_000;
/// A frame is voiced when it is this much louder than the noise floor…
const ABOVE_FLOOR_DB: f32 = 12.0;
/// …and louder than this at all (dBFS).
const MIN_VOICE_DB: f32 = -50.0;
/// The floor never rises above this (a noisy hall must not make the lecturer "silence").
const MAX_FLOOR_DB: f32 = -35.0;
/// Frames the floor is the minimum of (3 s).
const FLOOR_FRAMES: usize = 150;

#[derive(Debug, Clone)]
pub struct Vad {
    levels: VecDeque<f32>,
    preroll: VecDeque<(Vec<i16>, i64)>,
    recent: VecDeque<bool>,
    speaking: bool,
    utterance_ms: i64,
    silence_ms: i64,
}

impl Default for Vad {
    fn default() -> Self {
        Self::new()
    }
}

impl Vad {
    pub fn new() -> Self {
        Self {
            levels: VecDeque::with_capacity(FLOOR_FRAMES + 1),
            preroll: VecDeque::with_capacity(PREROLL_FRAMES + 1),
            recent: VecDeque::with_capacity(6),
            speaking: false,
            utterance_ms: 0,
            silence_ms: 0,
        }
    }

    /// Whether an utterance is open.
    pub fn speaking(&self) -> bool {
        self.speaking
    }

    /// Takes one 20 ms frame (`FRAME` samples) starting at `at_ms`; appends what the provider should get.
    pub fn push(&mut self, frame: Vec<i16>, at_ms: i64, out: &mut Vec<AudioEvent>) {
        let level = level_db(&frame);
        let floor = self.levels.iter().copied().fold(MAX_FLOOR_DB, f32::min);
        let voiced = level > (floor + ABOVE_FLOOR_DB).max(MIN_VOICE_DB);
        if self.levels.len() == FLOOR_FRAMES {
            self.levels.pop_front();
        }
        self.levels.push_back(level);
        if self.recent.len() == 5 {
            self.recent.pop_front();
        }
        self.recent.push_back(voiced);

        if !self.speaking {
            self.preroll.push_back((frame, at_ms));
            if self.preroll.len() > PREROLL_FRAMES {
                self.preroll.pop_front();
            }
            if voiced && self.recent.iter().filter(|v| **v).count() >= OPEN_VOICED {
                self.speaking = true;
                self.utterance_ms = 0;
                self.silence_ms = 0;
                for (samples, at_ms) in self.preroll.drain(..) {
                    self.utterance_ms += FRAME_MS;
                    out.push(AudioEvent::Speech { samples, at_ms });
                }
            }
            return;
        }

        self.utterance_ms += FRAME_MS;
        self.silence_ms = if voiced { 0 } else { self.silence_ms + FRAME_MS };
        out.push(AudioEvent::Speech { samples: frame, at_ms });
        let ends = self.silence_ms >= HANGOVER_MS
            || (self.utterance_ms >= SOFT_CAP_MS && self.silence_ms >= SOFT_PAUSE_MS)
            || self.utterance_ms >= HARD_CAP_MS;
        if ends {
            self.end(out);
        }
    }

    /// `ms` of audio never arrived (discontinuous transmission, a gap in the stream): silence inside an open
    /// utterance, which it may end.
    pub fn pause(&mut self, ms: i64, out: &mut Vec<AudioEvent>) {
        if !self.speaking || ms <= 0 {
            return;
        }
        self.silence_ms += ms;
        self.utterance_ms += ms;
        if self.silence_ms >= HANGOVER_MS || self.utterance_ms >= HARD_CAP_MS {
            self.end(out);
        }
    }

    /// No audio is arriving (a muted microphone, discontinuous transmission, a speaker who left): an open
    /// utterance is over.
    pub fn end(&mut self, out: &mut Vec<AudioEvent>) {
        if self.speaking {
            out.push(AudioEvent::UtteranceEnd);
        }
        self.speaking = false;
        self.recent.clear();
        self.preroll.clear();
    }
}

/// The frame's loudness in dBFS (RMS); digital silence is -100.
pub fn level_db(frame: &[i16]) -> f32 {
    if frame.is_empty() {
        return -100.0;
    }
    let energy: f64 = frame.iter().map(|&s| f64::from(s) * f64::from(s)).sum::<f64>() / frame.len() as f64;
    let rms = energy.sqrt() / 32768.0;
    if rms <= 1e-5 { -100.0 } else { (20.0 * rms.log10()) as f32 }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Syllable-like "speech": a 220 Hz tone, 200 ms loud then 60 ms 25 dB quieter.
    fn tone(frames: usize, amplitude: f32) -> Vec<Vec<i16>> {
        (0..frames)
            .map(|f| {
                let gain = if f % 13 < 10 { 1.0 } else { 0.056 };
                (0..FRAME)
                    .map(|i| {
                        let t = (f * FRAME + i) as f32 / 16_000.0;
                        (gain * amplitude * 32767.0 * (2.0 * std::f32::consts::PI * 220.0 * t).sin()) as i16
                    })
                    .collect()
            })
            .collect()
    }

    fn noise(frames: usize, amplitude: f32) -> Vec<Vec<i16>> {
        let mut x: u32 = 12345;
        (0..frames)
            .map(|_| {
                (0..FRAME)
                    .map(|_| {
                        x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                        ((f32::from((x >> 16) as u16) / 65535.0 - 0.5) * 2.0 * amplitude * 32767.0) as i16
                    })
                    .collect()
            })
            .collect()
    }

    /// Runs frames through a VAD; returns the utterances as (first frame time, number of frames).
    fn utterances(vad: &mut Vad, frames: Vec<Vec<i16>>, t0: i64) -> (Vec<(i64, usize)>, bool) {
        let mut out = Vec::new();
        for (i, f) in frames.into_iter().enumerate() {
            vad.push(f, t0 + 20 * i as i64, &mut out);
        }
        let mut found = Vec::new();
        let mut current: Option<(i64, usize)> = None;
        for e in out {
            match e {
                AudioEvent::Speech { at_ms, .. } => {
                    let c = current.get_or_insert((at_ms, 0));
                    c.1 += 1;
                }
                AudioEvent::UtteranceEnd => found.extend(current.take()),
            }
        }
        let open = current.is_some();
        found.extend(current);
        (found, open)
    }

    #[test]
    fn speech_between_pauses_is_one_utterance_with_preroll_and_closes_after_the_hangover() {
        let mut vad = Vad::new();
        let mut frames = noise(50, 0.001); // 1 s of room noise
        frames.extend(tone(100, 0.3)); // 2 s of "speech"
        frames.extend(noise(50, 0.001)); // 1 s pause
        let (found, open) = utterances(&mut vad, frames, 0);
        assert!(!open);
        assert_eq!(found.len(), 1, "{found:?}");
        let (start, n) = found[0];
        // Opens at the third voiced frame with 15 frames of pre-roll: starts 300 - 40 ms before the tone.
        assert_eq!(start, 1_000 - 20 * (PREROLL_FRAMES as i64 - OPEN_VOICED as i64));
        // Ends 600 ms into the pause.
        assert_eq!(start + 20 * n as i64, 3_000 + HANGOVER_MS);
    }

    #[test]
    fn short_pauses_do_not_split_a_sentence_and_noise_alone_is_not_speech() {
        let mut vad = Vad::new();
        let mut frames = tone(50, 0.2);
        frames.extend(noise(15, 0.002)); // a 300 ms pause between words
        frames.extend(tone(50, 0.2));
        let (found, open) = utterances(&mut vad, frames, 0);
        assert_eq!(found.len(), 1);
        assert!(open, "still speaking at the end");

        let mut vad = Vad::new();
        let (found, _) = utterances(&mut vad, noise(500, 0.02), 0);
        assert!(found.is_empty(), "steady noise is learnt as the floor: {found:?}");
    }

    #[test]
    fn a_monologue_is_cut_at_a_pause_after_the_soft_cap_and_always_at_the_hard_cap() {
        let mut vad = Vad::new();
        let mut frames = tone(700, 0.3); // 14 s
        frames.extend(noise(12, 0.001)); // 240 ms breath
        frames.extend(tone(100, 0.3));
        let (found, _) = utterances(&mut vad, frames, 0);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!((14_000..14_400).contains(&(found[0].1 as i64 * 20)), "{found:?}");

        let mut vad = Vad::new();
        let (found, _) = utterances(&mut vad, tone(2_000, 0.3), 0);
        assert!(found.iter().all(|(_, n)| *n as i64 * 20 <= HARD_CAP_MS), "{found:?}");
        assert!(found.len() >= 2);
    }

    #[test]
    fn ending_from_outside_closes_an_open_utterance_once() {
        let mut vad = Vad::new();
        let mut out = Vec::new();
        for (i, f) in tone(10, 0.3).into_iter().enumerate() {
            vad.push(f, 20 * i as i64, &mut out);
        }
        assert!(vad.speaking());
        out.clear();
        vad.end(&mut out);
        vad.end(&mut out);
        assert_eq!(out, vec![AudioEvent::UtteranceEnd]);
    }

    #[test]
    fn levels_are_in_dbfs() {
        assert_eq!(level_db(&[0; 320]), -100.0);
        let full: Vec<i16> = (0..320).map(|i| if i % 2 == 0 { 32767 } else { -32767 }).collect();
        assert!(level_db(&full).abs() < 0.01);
    }
}
