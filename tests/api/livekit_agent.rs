//! The assistant on real media: a lecturer (LiveKit's Python real-time SDK) speaks an espeak-ng lecture as
//! her microphone into the real livekit-server; `confctl agent`'s worker learns of the room from the real
//! server's room_started webhook, joins hidden and listen-only through the SFU (webrtc-rs), decodes the Opus
//! the server forwards, and the local Whisper server transcribes it; the captions reach the lecturer's
//! client through the server's SendData; when the lecture ends, the transcript and the summary are stored.
//! Prints caption latency (phrase end → caption received by the client) and word recall: measurements,
//! not assertions.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::agent::RunningAgent;
use crate::support::livekit::{PATIENCE, Participant, WithRealLiveKit};
use crate::support::speech;
use crate::support::{self, Db, Service};

/// 16-bit mono PCM as a WAV file.
fn write_wav(path: &std::path::Path, rate: u32, samples: &[i16]) {
    let data_len = u32::try_from(samples.len() * 2).unwrap();
    let mut out = Vec::with_capacity(44 + samples.len() * 2);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&rate.to_le_bytes());
    out.extend_from_slice(&(rate * 2).to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    for s in samples {
        out.extend_from_slice(&s.to_le_bytes());
    }
    std::fs::write(path, out).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_assistant_captions_real_media_and_summarises_the_lecture() {
    let Some(_turn) = support::media_turn_with(&[Service::LiveKit, Service::Speech, Service::Whisper]).await else {
        return;
    };
    let sentences = speech::LECTURE;
    // One word only each sentence has, to tell when that sentence was captioned.
    let markers = ["today", "sunlight", "blue", "why", "reflect", "chapter"];
    let mut audio = speech::silence(1_000, 48_000);
    let mut ends_ms = Vec::new();
    for s in sentences {
        audio.extend(speech::speak(s, "en-us", 48_000));
        ends_ms.push(audio.len() as f64 / 48.0);
        audio.extend(speech::silence(1_500, 48_000));
    }
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("lecture.wav");
    write_wav(&wav, 48_000, &audio);

    let w = WithRealLiveKit::spawn(Db::Sqlite, &[]).await;
    let agent = RunningAgent::start(&w.t).await;
    let host = w.t.client();
    host.register("ada@uni.edu", "Ada Lovelace").await;
    let (s, room) =
        host.post("/api/rooms", json!({"name": "Biology 101", "lobbyEnabled": false, "aiAssistant": true})).await;
    assert_eq!(s, 201, "{room}");
    let id = room["id"].as_str().unwrap().to_owned();
    let lk_room = room["livekitRoomName"].as_str().unwrap().to_owned();
    let (_, token) = host.post(&format!("/api/rooms/{id}/token"), json!({})).await;
    let host_identity = token["identity"].as_str().unwrap().to_owned();
    let mut ada = Participant::join("host", &w.lk.ws_url, token["token"].as_str().unwrap(), &[]).await;

    // room_started from the real server → the assistant joins, hidden and without publishing rights.
    let assistant = w.lk.wait_participant(&lk_room, "confctl-assistant", "joined", |_| true).await;
    let perm = assistant.permission.unwrap();
    assert!(perm.hidden && !perm.can_publish, "{perm:?}");

    ada.command(&format!("play {}", wav.display())).await;
    let playing = ada.next_of(&["playing"]).await;
    let started = playing["t"].as_f64().unwrap();
    // The SFU forwards the microphone to the assistant, who subscribes to it.
    let judge = w.lk.rooms();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let list = judge.list_participants(&lk_room).await.unwrap();
        let mic = list.iter().find(|p| p.identity == host_identity).and_then(|p| p.tracks.first().cloned());
        if mic.is_some() {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the lecturer's microphone never reached the server");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The captions arrive in the lecturer's client, from the server (SendData on topic `transcription`).
    let mut finals: Vec<(f64, Value)> = Vec::new();
    let mut latencies = Vec::new();
    for (i, marker) in markers.iter().enumerate() {
        let found = |finals: &[(f64, Value)]| {
            finals.iter().find(|(_, c)| c["text"].as_str().unwrap().to_lowercase().contains(marker)).map(|(t, _)| *t)
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while found(&finals).is_none() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "no caption with {marker:?}; captions so far: {:?}",
                finals.iter().map(|(_, c)| c["text"].clone()).collect::<Vec<_>>()
            );
            let e = ada.wait_for("a caption", |e| e["event"] == "data" && e["topic"] == "transcription").await;
            assert_eq!(e["fromServer"], true);
            let caption: Value = serde_json::from_str(e["payload"].as_str().unwrap()).unwrap();
            if caption["final"] == true {
                finals.push((e["t"].as_f64().unwrap(), caption));
            }
        }
        let at = found(&finals).unwrap();
        latencies.push(at - (started + ends_ms[i] / 1000.0));
    }
    let text: String = finals.iter().map(|(_, c)| c["text"].as_str().unwrap()).collect::<Vec<_>>().join(" ");
    let script: Vec<String> = sentences.iter().flat_map(|s| speech::words(s)).collect();
    let heard = speech::words(&text);
    let recalled = script.iter().filter(|w| heard.contains(w)).count();
    println!(
        "real livekit-server: caption latency after each phrase (s): {:?}",
        latencies.iter().map(|l| format!("{l:.2}")).collect::<Vec<_>>()
    );
    println!(
        "real livekit-server: whisper word recall {recalled} of {} script words ({:.0} %); captions: {text:?}",
        script.len(),
        100.0 * recalled as f64 / script.len() as f64
    );
    for (t, c) in &finals {
        println!("  +{:.2} s [{}–{}] {}", t - started, c["startMs"], c["endMs"], c["text"]);
    }
    println!("  phrase ends: {:?}", ends_ms.iter().map(|e| format!("+{:.2} s", e / 1000.0)).collect::<Vec<_>>());
    for (_, c) in &finals {
        assert_eq!(c["speakerIdentity"], host_identity.as_str(), "{c}");
        assert_eq!(c["speakerName"], "Ada Lovelace");
    }
    speech::assert_words(&text, &["sunlight", "chlorophyll", "green", "chapter"]);

    // The lecture ends: transcript and summary are stored, and the assistant leaves the room.
    let (s, _) = host.post(&format!("/api/rooms/{id}/end"), json!({})).await;
    assert_eq!(s, 200);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let artifact = loop {
        let (_, token) =
            confctl::accounts::agent_tokens::create(&w.t.app, &confctl::audit::Actor::cli(), "reader").await.unwrap();
        let r = reqwest::Client::new()
            .get(format!("{}/api/agent/lectures/{}/artifact", w.t.base, room["lectureId"].as_str().unwrap()))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let (status, body) = support::read(r).await;
        // The lecture page says "being written" (pending) until the assistant's artifact arrives.
        if status == 200 && body["status"] != "pending" {
            break body;
        }
        assert!(tokio::time::Instant::now() < deadline, "no artifact: {status} {body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(artifact["status"], "complete", "{artifact}");
    let transcript = artifact["transcriptText"].as_str().unwrap();
    assert!(transcript.contains("] Ada Lovelace: "), "{transcript}");
    speech::assert_words(transcript, &["sunlight", "chapter"]);
    assert!(!artifact["summary"]["abstract"].as_str().unwrap().is_empty(), "{artifact}");
    agent.stop().await;
}
