//! Speech for the assistant's tests: lecture audio synthesised with Debian's `espeak-ng` (resampled by `sox`),
//! WAV reading, and the address of the real Whisper server `scripts/stt-server` starts.

use std::process::Command;

/// The short lecture the end-to-end tests speak, sentence by sentence: facts, a question with its answer and
/// an assignment, for the captions and the summary to find.
pub const LECTURE: [&str; 6] = [
    "Today we study photosynthesis.",
    "Plants convert sunlight into chemical energy.",
    "The chlorophyll in the leaves absorbs red and blue light.",
    "Why are the leaves green?",
    "Because chlorophyll reflects green light.",
    "For next week, please read chapter four.",
];

/// The OpenAI-compatible Whisper server's base URL. Tests ask `require(&[Service::Whisper])` first.
pub fn stt_url() -> String {
    std::env::var("TEST_STT_URL").expect(
        "TEST_STT_URL is not set: run the suite with scripts/test, or `eval \"$(scripts/stt-server start)\"` first",
    )
}

/// `text` spoken by espeak-ng (`voice` e.g. `en-us`, `ru`) as mono 16-bit samples at `rate` Hz.
pub fn speak(text: &str, voice: &str, rate: u32) -> Vec<i16> {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("espeak.wav");
    let out = dir.path().join("speech.wav");
    // -s 150 words per minute: a lecturer's pace rather than espeak's brisk default.
    let status = Command::new("espeak-ng")
        .args(["-v", voice, "-s", "150", "-w"])
        .arg(&raw)
        .arg(text)
        .status()
        .expect("espeak-ng is not installed: run scripts/test-services start (it installs espeak-ng and sox)");
    assert!(status.success(), "espeak-ng failed");
    let status = Command::new("sox")
        .arg(&raw)
        .args(["-r", &rate.to_string(), "-c", "1", "-b", "16"])
        .arg(&out)
        .status()
        .expect("sox is not installed: run scripts/test-services start");
    assert!(status.success(), "sox failed");
    read_wav(&std::fs::read(out).unwrap()).1
}

/// Sample rate and the samples of a 16-bit PCM mono WAV file.
pub fn read_wav(bytes: &[u8]) -> (u32, Vec<i16>) {
    assert_eq!(&bytes[0..4], b"RIFF");
    let mut pos = 12;
    let mut rate = 0;
    while pos + 8 <= bytes.len() {
        let id = &bytes[pos..pos + 4];
        let len = u32::from_le_bytes(bytes[pos + 4..pos + 8].try_into().unwrap()) as usize;
        let body = &bytes[pos + 8..(pos + 8 + len).min(bytes.len())];
        if id == b"fmt " {
            assert_eq!(u16::from_le_bytes([body[0], body[1]]), 1, "PCM");
            assert_eq!(u16::from_le_bytes([body[2], body[3]]), 1, "mono");
            rate = u32::from_le_bytes(body[4..8].try_into().unwrap());
        } else if id == b"data" {
            return (rate, body.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect());
        }
        pos += 8 + len + (len & 1);
    }
    panic!("no data chunk in the WAV file");
}

/// `ms` milliseconds of silence at `rate` Hz.
pub fn silence(ms: usize, rate: u32) -> Vec<i16> {
    vec![0; ms * rate as usize / 1000]
}

/// The words of `text`, lower-cased without punctuation, for "these words must appear" assertions.
pub fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_lowercase).collect()
}

/// Asserts that every word in `expected` occurs in `text` (case and punctuation ignored).
pub fn assert_words(text: &str, expected: &[&str]) {
    let got = words(text);
    let missing: Vec<&&str> = expected.iter().filter(|w| !got.iter().any(|g| g == &w.to_lowercase())).collect();
    assert!(missing.is_empty(), "words {missing:?} missing from {text:?}");
}
