//! The Deepgram client's pure parts: the listen URL and the stream clock across pauses.

use super::*;

#[test]
fn listen_url_carries_the_stream_format_and_language() {
    let stt = DeepgramStt::new("wss://api.deepgram.com".parse().unwrap(), "nova-2".into(), None);
    let url = stt.listen_url("ru");
    assert_eq!(url.path(), "/v1/listen");
    let query: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(query["encoding"], "linear16");
    assert_eq!(query["sample_rate"], "16000");
    assert_eq!(query["interim_results"], "true");
    assert_eq!(query["language"], "ru");
    assert_eq!(query["model"], "nova-2");
}

#[test]
fn stream_time_follows_each_chunks_own_clock_across_pauses() {
    let mut s = Stream::default();
    s.push(vec![0; 16_000], 1_000_000); // 1 s of speech at t = 1000 s
    s.push(vec![0; 8_000], 1_010_000); // then 0.5 s after a 9 s pause
    assert_eq!(s.time_at(0.5, &None), 1_000_500);
    assert_eq!(s.time_at(1.25, &None), 1_010_250);
    // A final result up to 1.0 s forgets the first chunk but its times still resolve.
    let acked = s.ack(1.0);
    assert_eq!(s.unacked.len(), 1);
    assert_eq!(s.time_at(0.2, &acked), 1_000_200);
    // After a reconnect the rest is numbered from zero again.
    s.restart();
    assert_eq!(s.unacked[0].offset, 0);
    assert_eq!(s.time_at(0.25, &None), 1_010_250);
}
