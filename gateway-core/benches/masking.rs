//! Masking throughput (`cargo bench --bench masking`), all detectors on, strategy redact, with a realistic
//! credential scrubber (a few configured secrets), as in production:
//! (a) `mask_text` over the whole labelled corpus (~75 % clean lines),
//! (b) the corpus streamed in 4 KiB chunks,
//! (c) 1 MB of clean structured log text, one shot and streamed.
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, LazyLock};

use divan::counter::BytesCount;
use divan::{Bencher, black_box};
use gateway_core::mask::{CredentialScrubber, MaskCounts, MaskPlan, Masker, Strategy};

fn main() {
    divan::main();
}

/// Corpus texts only (labels would add the sensitive values a second time), one per line.
static CORPUS: LazyLock<String> = LazyLock::new(|| {
    include_str!("../tests/data/masking_corpus.tsv")
        .lines()
        .map(|l| l.split_once('\t').map_or(l, |(t, _)| t))
        .collect::<Vec<_>>()
        .join("\n")
});

/// ~1 MB of clean application/access log lines (deterministic).
static CLEAN_LOG: LazyLock<String> = LazyLock::new(|| {
    let mut s = String::new();
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let paths = ["/api/v1/orders", "/api/v1/customers", "/healthz", "/api/v2/invoices/search", "/metrics"];
    let levels = ["INFO", "INFO", "INFO", "DEBUG", "WARN"];
    while s.len() < 1_000_000 {
        let n = next();
        s.push_str(&format!(
            "2024-05-{:02}T{:02}:{:02}:{:02}.{:03}Z {} [http] GET {}/{} status={} duration_ms={} bytes={} \
             request_id={:08x}-{:04x}-4{:03x}-a{:03x}-{:012x} ua=\"curl/8.4.0\" build=v2.{}.{}\n",
            n % 28 + 1,
            n % 24,
            n % 60,
            (n >> 8) % 60,
            n % 1000,
            levels[(n % 5) as usize],
            paths[((n >> 3) % 5) as usize],
            n % 100_000,
            [200, 200, 201, 204, 404][((n >> 5) % 5) as usize],
            (n >> 12) % 900,
            (n >> 20) % 50_000,
            next() as u32,
            next() as u16,
            next() % 4096,
            next() % 4096,
            next() % (1 << 48),
            n % 20,
            (n >> 30) % 10,
        ));
    }
    s
});

fn masker() -> Masker {
    let creds = ["Pg-Adm1n-Passw0rd", "ssh-token-7fa9c2e1d0", "k8s-bearer-abcdef123456", "vault-unseal-9911aa"];
    let scrubber = CredentialScrubber::new(creds.iter().map(|s| s.to_string()));
    Masker::new(&MaskPlan::all_detectors(Strategy::Redact), b"bench-key", Arc::new(scrubber)).unwrap()
}

fn one_shot(b: Bencher<'_, '_>, text: &'static str) {
    let m = masker();
    b.counter(BytesCount::new(text.len())).bench(|| {
        let mut counts = MaskCounts::default();
        m.mask_text(black_box(text), &mut counts).len()
    });
}

fn streamed(b: Bencher<'_, '_>, text: &'static str) {
    let m = masker();
    let chunks: Vec<&str> = {
        let (mut v, mut rest) = (Vec::new(), text);
        while !rest.is_empty() {
            let mut n = rest.len().min(4096);
            while !rest.is_char_boundary(n) {
                n -= 1;
            }
            v.push(&rest[..n]);
            rest = &rest[n..];
        }
        v
    };
    b.counter(BytesCount::new(text.len())).bench(|| {
        let mut counts = MaskCounts::default();
        let mut s = m.stream();
        let mut n = 0;
        for c in &chunks {
            n += s.push(black_box(c), &mut counts).len();
        }
        n + s.finish(&mut counts).len()
    });
}

#[divan::bench]
fn a_mask_text_corpus(b: Bencher<'_, '_>) {
    one_shot(b, &CORPUS);
}

#[divan::bench]
fn b_stream_corpus_4k_chunks(b: Bencher<'_, '_>) {
    streamed(b, &CORPUS);
}

#[divan::bench]
fn c_mask_text_clean_log_1mb(b: Bencher<'_, '_>) {
    one_shot(b, &CLEAN_LOG);
}

#[divan::bench]
fn d_stream_clean_log_1mb_4k_chunks(b: Bencher<'_, '_>) {
    streamed(b, &CLEAN_LOG);
}
