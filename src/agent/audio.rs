//! One speaker's audio path from RTP packets to utterances: Opus decoding (with loss concealment and in-band
//! FEC), 48 kHz → 16 kHz resampling, wall-clock times from RTP timestamps, and the voice-activity detector.

use opus_rs::OpusDecoder;
use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Resampler};

use super::stt::AudioEvent;
use super::vad::{FRAME, Vad};

/// Opus in WebRTC always runs a 48 kHz clock.
const RTP_RATE: i64 = 48_000;
/// 20 ms at 48 kHz: the resampler's fixed input chunk.
const CHUNK_48K: usize = 960;
/// Opus's longest packet (120 ms at 48 kHz).
const MAX_PACKET_SAMPLES: usize = 5_760;
/// Up to this many lost packets in a row are concealed; more is a gap.
const MAX_CONCEALED: u16 = 5;
/// An RTP clock this far from the wall clock is re-anchored.
const MAX_CLOCK_SKEW_MS: i64 = 1_000;
/// With no packets for this long, an open utterance is over (muted microphone, DTX, a speaker who left).
pub const IDLE_END_MS: i64 = 600;

#[derive(Debug, thiserror::Error)]
#[error("audio pipeline: {0}")]
pub struct AudioError(String);

/// The audio path of one remote audio track.
pub struct SpeakerAudio {
    decoder: OpusDecoder,
    resampler: Fft<f32>,
    delay_ms: i64,
    /// Decoder output (48 kHz mono), sized for Opus's longest frame (120 ms).
    decoded: Vec<f32>,
    /// 48 kHz samples waiting for a whole resampler chunk, and the Unix ms of the first.
    pending: Vec<f32>,
    pending_at_ms: i64,
    resampled: Vec<f32>,
    /// RTP timestamp (unwrapped) and Unix ms of the anchor packet.
    anchor: Option<(i64, i64)>,
    /// Sequence number and unwrapped timestamp of the last packet.
    last: Option<(u16, i64)>,
    last_arrival_ms: i64,
    /// Samples (48 kHz) of the last decoded packet.
    packet_samples: usize,
    vad: Vad,
}

impl std::fmt::Debug for SpeakerAudio {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpeakerAudio").field("speaking", &self.vad.speaking()).finish_non_exhaustive()
    }
}

impl SpeakerAudio {
    pub fn new() -> Result<Self, AudioError> {
        // Mono output: the decoder downmixes stereo packets, and speech needs one channel.
        let decoder = OpusDecoder::new(48_000, 1).map_err(|e| AudioError(format!("Opus decoder: {e}")))?;
        // Fixed at both ends: every 20 ms in gives exactly one 20 ms frame out.
        let resampler = Fft::<f32>::new(48_000, 16_000, CHUNK_48K, 1, FixedSync::Both)
            .map_err(|e| AudioError(format!("resampler: {e}")))?;
        // The resampler's output lags its input; frame times say when the sound was made.
        let delay_ms = (resampler.output_delay() * 1000 / 16_000) as i64;
        Ok(Self {
            decoder,
            resampler,
            delay_ms,
            decoded: vec![0.0; MAX_PACKET_SAMPLES],
            pending: Vec::with_capacity(CHUNK_48K * 7),
            pending_at_ms: 0,
            resampled: vec![0.0; FRAME],
            anchor: None,
            last: None,
            last_arrival_ms: 0,
            packet_samples: 960,
            vad: Vad::new(),
        })
    }

    /// Whether the speaker is in the middle of an utterance.
    pub fn speaking(&self) -> bool {
        self.vad.speaking()
    }

    /// Takes one RTP packet (its Opus payload) received at `arrival_ms` (Unix ms); appends what the
    /// speech-to-text provider should get.
    pub fn push_rtp(
        &mut self,
        sequence: u16,
        timestamp: u32,
        payload: &[u8],
        arrival_ms: i64,
        out: &mut Vec<AudioEvent>,
    ) {
        self.last_arrival_ms = arrival_ms;
        let ts = match self.last {
            Some((_, prev)) => prev + i64::from(timestamp.wrapping_sub(prev as u32) as i32),
            None => i64::from(timestamp),
        };
        let lost = self.last.map_or(0, |(seq, _)| sequence.wrapping_sub(seq).wrapping_sub(1));
        // A packet from before the last one (reordered or repeated) is too late to use.
        if self.last.is_some() && lost >= u16::MAX / 2 {
            return;
        }
        let at_ms = self.time_of(ts, arrival_ms);
        if self.last.is_none() {
            self.pending_at_ms = at_ms;
        } else {
            // Where this packet should start if only the lost packets are missing.
            let expected_ms =
                self.pending_at_ms + samples_ms(self.pending.len()) + i64::from(lost) * samples_ms(self.packet_samples);
            if lost > MAX_CONCEALED || (at_ms - expected_ms).abs() > 60 {
                // A gap (DTX silence, a long loss, a mute): silence for the VAD, then start afresh at this
                // packet's time.
                self.vad.pause(at_ms - expected_ms, out);
                self.pending.clear();
                self.pending_at_ms = at_ms;
            } else if lost > 0 {
                // The lost packets are concealed; the last one is rebuilt from this packet's in-band FEC
                // when the sender included it (browsers do, `useinbandfec=1`).
                for _ in 1..lost {
                    self.decode(&[], out);
                }
                self.decode_fec(payload, out);
            }
        }
        self.last = Some((sequence, ts));
        self.decode(payload, out);
    }

    /// Called regularly: ends an open utterance when no packet came for a while.
    pub fn tick(&mut self, now_ms: i64, out: &mut Vec<AudioEvent>) {
        if self.vad.speaking() && now_ms - self.last_arrival_ms >= IDLE_END_MS {
            self.vad.end(out);
        }
    }

    /// The track ended: closes an open utterance.
    pub fn finish(&mut self, out: &mut Vec<AudioEvent>) {
        self.vad.end(out);
    }

    /// Unix ms of an RTP timestamp, anchored at the first packet's arrival. Packets arrive a little off what
    /// their timestamps say (network jitter); far later means the sender's clock did not count a pause (a
    /// muted or restarted sender), far earlier that it jumped: either way the clock is anchored anew.
    fn time_of(&mut self, ts: i64, arrival_ms: i64) -> i64 {
        let (anchor_ts, anchor_ms) = *self.anchor.get_or_insert((ts, arrival_ms));
        let at = anchor_ms + (ts - anchor_ts) * 1000 / RTP_RATE;
        if (at - arrival_ms).abs() > MAX_CLOCK_SKEW_MS {
            self.anchor = Some((ts, arrival_ms));
            return arrival_ms;
        }
        at
    }

    /// Decodes one packet (empty: conceal a lost one) and runs whole chunks through the rest of the path.
    fn decode(&mut self, payload: &[u8], out: &mut Vec<AudioEvent>) {
        let frame = if payload.is_empty() { self.packet_samples } else { MAX_PACKET_SAMPLES };
        match self.decoder.decode(payload, frame, &mut self.decoded) {
            Ok(n) => self.process(n, out),
            Err(err) => tracing::debug!(error = err, "undecodable Opus packet"),
        }
    }

    /// Rebuilds the packet lost just before `next` from `next`'s forward error correction.
    fn decode_fec(&mut self, next: &[u8], out: &mut Vec<AudioEvent>) {
        match self.decoder.decode_fec(next, self.packet_samples, &mut self.decoded) {
            Ok(n) => self.process(n, out),
            Err(err) => tracing::debug!(error = err, "Opus loss concealment failed"),
        }
    }

    fn process(&mut self, samples: usize, out: &mut Vec<AudioEvent>) {
        self.packet_samples = samples.clamp(120, MAX_PACKET_SAMPLES);
        self.pending.extend_from_slice(&self.decoded[..samples.min(self.decoded.len())]);
        let mut used = 0;
        while self.pending.len() - used >= CHUNK_48K {
            let Ok(input) = InterleavedSlice::new(&self.pending[used..used + CHUNK_48K], 1, CHUNK_48K) else { break };
            let Ok(mut output) = InterleavedSlice::new_mut(&mut self.resampled, 1, FRAME) else { break };
            if let Err(err) = self.resampler.process_into_buffer(&input, &mut output, None) {
                tracing::debug!(error = %err, "resampling failed");
                break;
            }
            used += CHUNK_48K;
            let frame: Vec<i16> =
                self.resampled.iter().map(|&s| (s * 32768.0).clamp(-32768.0, 32767.0) as i16).collect();
            let at_ms = self.pending_at_ms - self.delay_ms;
            self.pending_at_ms += 20;
            self.vad.push(frame, at_ms, out);
        }
        self.pending.drain(..used);
    }
}

fn samples_ms(samples_48k: usize) -> i64 {
    samples_48k as i64 * 1000 / RTP_RATE
}
