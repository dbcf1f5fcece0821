//! Streaming: split secrets, equivalence with one-shot masking, bounded memory.

use gateway_core::mask::{MaskCounts, Masker, STREAM_MAX_HELD, STREAM_PEM_MAX};

use super::masker;

/// Streams `chunks` and returns the output and counts.
fn stream(m: &Masker, chunks: &[&str]) -> (String, MaskCounts) {
    let mut counts = MaskCounts::default();
    let mut s = m.stream();
    let mut out = String::new();
    for c in chunks {
        out += &s.push(c, &mut counts);
        assert!(s.held_bytes() <= STREAM_MAX_HELD);
    }
    out += &s.finish(&mut counts);
    (out, counts)
}

fn one_shot(m: &Masker, text: &str) -> (String, MaskCounts) {
    let mut counts = MaskCounts::default();
    (m.mask_text(text, &mut counts).into_owned(), counts)
}

const SEVERAL: &str = "ok\nuser alice@example.com card 4111 1111 1111 1111 password=hunter2 from 10.0.0.12 \
    token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl and AKIAIOSFODNN7EXAMPLE\n\
    -----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----\ntail +44 20 7946 0958";

#[test]
fn secret_split_across_chunks_is_masked() {
    let m = masker();
    let (out, counts) = stream(&m, &["user alice@exa", "mple.com logged in\n"]);
    assert_eq!(out, "user [EMAIL] logged in\n");
    assert_eq!(counts.get("email"), 1);
}

#[test]
fn every_split_point_of_lines_with_several_secrets_gives_the_one_shot_result() {
    let m = masker();
    let expected = one_shot(&m, SEVERAL);
    assert_eq!(expected.1.total(), 8, "{expected:?}");
    for i in (0..=SEVERAL.len()).filter(|&i| SEVERAL.is_char_boundary(i)) {
        assert_eq!(stream(&m, &[&SEVERAL[..i], &SEVERAL[i..]]), expected, "split at {i}");
    }
    // And byte-by-byte (well, char by char).
    let chars: Vec<String> = SEVERAL.chars().map(String::from).collect();
    let refs: Vec<&str> = chars.iter().map(String::as_str).collect();
    assert_eq!(stream(&m, &refs), expected);
}

#[test]
fn complete_lines_are_emitted_at_once_and_only_the_partial_line_is_held() {
    let m = masker();
    let mut counts = MaskCounts::default();
    let mut s = m.stream();
    assert_eq!(s.push("a@example.com\nb@exa", &mut counts), "[EMAIL]\n");
    assert_eq!(s.held_bytes(), "b@exa".len());
    assert_eq!(s.finish(&mut counts), "b@exa");
}

#[test]
fn streaming_the_corpus_in_4k_chunks_gives_the_one_shot_result() {
    let corpus = include_str!("../data/masking_corpus.tsv");
    let m = masker();
    let mut chunks = Vec::new();
    let mut rest = corpus;
    while !rest.is_empty() {
        let mut n = rest.len().min(4096);
        while !rest.is_char_boundary(n) {
            n -= 1;
        }
        chunks.push(&rest[..n]);
        rest = &rest[n..];
    }
    assert_eq!(stream(&m, &chunks), one_shot(&m, corpus));
}

#[test]
fn private_key_is_held_until_its_end_line() {
    let m = masker();
    let mut counts = MaskCounts::default();
    let mut s = m.stream();
    assert_eq!(s.push("before\n-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1r\n", &mut counts), "before\n");
    assert_eq!(
        s.push("ZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\nafter\n", &mut counts),
        "[PRIVATE_KEY]\nafter\n"
    );
    assert_eq!(counts.get("private_key"), 1);
}

#[test]
fn oversized_private_key_is_replaced_and_dropped_until_its_end() {
    let m = masker();
    let mut counts = MaskCounts::default();
    let mut s = m.stream();
    let mut out = s.push("x\n-----BEGIN PRIVATE KEY-----\n", &mut counts);
    let body_line = format!("{}\n", "A".repeat(64));
    for _ in 0..(2 * STREAM_PEM_MAX / body_line.len()) {
        out += &s.push(&body_line, &mut counts);
        assert!(s.held_bytes() <= STREAM_PEM_MAX + body_line.len());
    }
    out += &s.push("AAAA\n-----END PRIV", &mut counts);
    out += &s.push("ATE KEY-----\ny\n", &mut counts);
    out += &s.finish(&mut counts);
    assert_eq!(out, "x\n[PRIVATE_KEY]\ny\n");
    assert_eq!(counts.get("private_key"), 1);
}

#[test]
fn held_back_memory_is_bounded_on_a_50mb_stream_without_newlines() {
    let m = masker();
    // 4 KiB chunks of clean words with a secret every ~64 KiB, some split across chunks.
    let filler = "lorem ipsum dolor sit amet consectetur 2024-05-01T12:30:45Z status=200 ";
    let mut text = String::new();
    let mut secrets = 0;
    while text.len() < 200_000 {
        text.push_str(filler);
        if text.len() % 65_536 < filler.len() {
            text.push_str("mail carol.jones@example.org and password=Kestrel42! ");
            secrets += 2;
        }
    }
    let mut counts = MaskCounts::default();
    let mut s = m.stream();
    let (mut emitted, mut max_held, mut fed) = (0usize, 0usize, 0usize);
    let mut leaked = false;
    let mut tail = String::new(); // last bytes emitted, to catch a secret spanning two outputs
    while fed < 50 * 1024 * 1024 {
        let mut start = 0;
        while start < text.len() {
            let end = (start + 4096).min(text.len());
            let out = s.push(&text[start..end], &mut counts);
            max_held = max_held.max(s.held_bytes());
            emitted += out.len();
            tail.push_str(&out);
            leaked |= tail.contains("carol.jones@") || tail.contains("Kestrel42");
            let keep = tail.len().saturating_sub(64);
            tail.drain(..tail.char_indices().map(|(i, _)| i).find(|&i| i >= keep).unwrap_or(tail.len()));
            start = end;
        }
        fed += text.len();
    }
    emitted += s.finish(&mut counts).len();
    assert!(max_held <= STREAM_MAX_HELD, "held {max_held}");
    assert!(!leaked, "a secret was emitted in clear");
    let rounds = fed / text.len();
    assert_eq!(counts.total(), (secrets * rounds) as u64, "{counts:?}");
    assert!(emitted > fed / 2, "output was emitted as the stream went");
}
