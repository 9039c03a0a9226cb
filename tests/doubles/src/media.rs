//! Owns the doubles' audio: test speech encoded to Opus as a browser sends a microphone (48 kHz mono, 20 ms
//! packets, VoIP mode, 32 kbit/s), with the pure-Rust `opus-rs` encoder.

/// Samples per 20 ms packet at 48 kHz.
pub const PACKET_SAMPLES: usize = 960;

/// Encodes 48 kHz mono audio into 20 ms Opus packets (the last one padded with silence).
pub fn opus_packets(samples: &[i16]) -> anyhow::Result<Vec<Vec<u8>>> {
    let mut encoder = opus_rs::OpusEncoder::new(48_000, 1, opus_rs::Application::Voip).map_err(anyhow::Error::msg)?;
    encoder.bitrate_bps = 32_000;
    let mut out = Vec::with_capacity(samples.len() / PACKET_SAMPLES + 1);
    let mut buffer = [0u8; 1500];
    for chunk in samples.chunks(PACKET_SAMPLES) {
        let mut frame = chunk.to_vec();
        frame.resize(PACKET_SAMPLES, 0);
        let n = encoder.encode_i16(&frame, PACKET_SAMPLES, &mut buffer).map_err(anyhow::Error::msg)?;
        out.push(buffer[..n].to_vec());
    }
    Ok(out)
}
