//! Masking throughput (`cargo bench --bench masking`), all detectors on, strategy redact, with a realistic
//! credential scrubber (a few configured secrets), as in production:
//! (a) `mask_text` over the whole labelled corpus (~75 % clean lines),
//! (b) the corpus streamed in 4 KiB chunks,
//! (c) 1 MB of clean structured log text, one shot and streamed;
//! (e, f) a 100k-row SQL result (ids, names, e-mails, card numbers, cities, free text; 12.3 MB of cell text)
//! masked cell by cell with `mask_cell` as the pipeline does, with the mask plan the shipped default policy
//! gives that SELECT (column rules + detectors), and with every detector on and no column rule;
//! (g) the same rows as one tab-separated text through `mask_text` (the detectors alone, no per-cell work);
//! (h) one column-rule lookup, which `mask_cell` does per cell.
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, LazyLock};

use divan::counter::BytesCount;
use divan::{Bencher, black_box};
use gateway_core::classify::Dialect;
use gateway_core::classify::sql::classify;
use gateway_core::identity::Identity;
use gateway_core::mask::{CredentialScrubber, MaskCounts, MaskPlan, Masker, Strategy};
use gateway_core::policy::{CallFacts, PolicySet, Tool};
use serde_json::Value;

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

/// Columns of the 100k-row result (a customers table as an agent would select it).
const ROW_COLUMNS: [&str; 6] = ["id", "name", "email", "card_number", "city", "note"];

/// 100k realistic rows, as the SQL connector hands them to the pipeline (numbers as JSON numbers, text as
/// strings): ids, names, e-mails, Luhn-valid card numbers, cities and free-text notes, one in five of which
/// carries a phone number, an e-mail or an IP address. Deterministic.
static ROWS_100K: LazyLock<Vec<Vec<Value>>> = LazyLock::new(|| {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let first = ["Ada", "Grace", "Alan", "Barbara", "Edsger", "Frances", "Donald", "Margaret", "Ken", "Radia"];
    let last = ["Lovelace", "Hopper", "Turing", "Liskov", "Dijkstra", "Allen", "Knuth", "Hamilton", "Thompson"];
    let domains = ["example.com", "example.net", "mail.example.org", "corp.example.co.uk"];
    let cities = ["Lisbon", "Nairobi", "Osaka", "Toronto", "Berlin", "Sao Paulo", "Melbourne", "Oslo"];
    let notes = [
        "prefers e-mail contact, renewal due next quarter",
        "upgraded to the annual plan after the trial",
        "asked about invoice 2024-118; resolved by support",
        "VIP: route tickets to the enterprise queue",
        "address changed in March, shipping confirmed",
        "no further action",
    ];
    (0..100_000u64)
        .map(|i| {
            let n = next();
            let (f, l) = (first[(n % 10) as usize], last[((n >> 8) % 9) as usize]);
            let mut card: Vec<u32> = vec![4];
            card.extend((0..14).map(|k| ((n >> (k * 4)) % 10) as u32));
            let sum: u32 = card
                .iter()
                .rev()
                .enumerate()
                .map(|(k, &d)| if k % 2 == 0 { (d * 2) / 10 + (d * 2) % 10 } else { d })
                .sum();
            card.push((10 - sum % 10) % 10);
            let card: String = card.iter().map(|d| char::from(b'0' + *d as u8)).collect();
            let note = match next() % 10 {
                0 => format!("{} Call back on +1 415 555 {:04}.", notes[(n % 6) as usize], n % 10_000),
                1 => format!("{} cc {}.{}@{}", notes[(n % 6) as usize], l.to_lowercase(), i, domains[0]),
                2 => {
                    format!("{} last login from 10.{}.{}.{}", notes[(n % 6) as usize], n % 256, (n >> 8) % 256, i % 256)
                }
                _ => notes[(n % 6) as usize].to_owned(),
            };
            vec![
                Value::from(i + 1),
                Value::from(format!("{f} {l}")),
                Value::from(format!("{}.{}{}@{}", f.to_lowercase(), l.to_lowercase(), i, domains[(n % 4) as usize])),
                Value::from(card),
                Value::from(cities[((n >> 16) % 8) as usize]),
                Value::from(note),
            ]
        })
        .collect()
});

/// Bytes of cell text in the 100k rows (what `limits.max_output_bytes` counts: strings' length, numbers'
/// decimal text).
fn rows_bytes() -> usize {
    ROWS_100K
        .iter()
        .flatten()
        .map(|v| match v {
            Value::String(s) => s.len(),
            other => other.to_string().len(),
        })
        .sum()
}

/// The mask plan the shipped default policy gives an agent's `SELECT` of these columns.
fn shipped_policy_masker() -> Masker {
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../policies/default.yaml");
    let yaml = std::fs::read_to_string(&dir).unwrap();
    let set = PolicySet::from_sources(&[(dir, yaml)]).unwrap();
    let sql = format!("SELECT {} FROM customers", ROW_COLUMNS.join(", "));
    let classification = classify(&sql, Dialect::Postgres);
    let identity = Identity::agent("bench-agent", &["agents"]);
    let decision = set.decide(&CallFacts {
        tool: Tool::SqlQuery,
        connection: "shop",
        identity: &identity,
        raw: &sql,
        sql: Some(&classification),
        shell: None,
        namespace: None,
        pod: None,
    });
    let scrubber = CredentialScrubber::new(["Pg-Adm1n-Passw0rd".to_owned()]);
    Masker::new(&decision.mask, b"bench-key", Arc::new(scrubber)).unwrap()
}

/// Every cell through `mask_cell`, as the pipeline masks a SQL result.
fn mask_rows(b: Bencher<'_, '_>, m: &Masker) {
    let rows = &*ROWS_100K;
    b.counter(BytesCount::new(rows_bytes())).bench(|| {
        let mut counts = MaskCounts::default();
        let masked: Vec<Vec<Value>> = black_box(rows)
            .iter()
            .map(|row| row.iter().zip(ROW_COLUMNS).map(|(v, c)| m.mask_cell(c, v, &mut counts)).collect())
            .collect();
        (masked.len(), counts.total())
    });
}

#[divan::bench(sample_count = 20, sample_size = 1)]
fn e_mask_cells_100k_rows_shipped_policy(b: Bencher<'_, '_>) {
    mask_rows(b, &shipped_policy_masker());
}

#[divan::bench(sample_count = 20, sample_size = 1)]
fn f_mask_cells_100k_rows_all_detectors(b: Bencher<'_, '_>) {
    mask_rows(b, &masker());
}

/// The same 100k rows as one tab-separated text through `mask_text` (every detector on): the detectors' cost on
/// these bytes without the per-cell work.
#[divan::bench(sample_count = 20, sample_size = 1)]
fn g_mask_text_100k_rows_as_one_text(b: Bencher<'_, '_>) {
    let text: String = ROWS_100K
        .iter()
        .map(|row| {
            row.iter()
                .map(|v| match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect::<Vec<_>>()
                .join("\t")
        })
        .collect::<Vec<_>>()
        .join("\n");
    one_shot(b, Box::leak(text.into_boxed_str()));
}

/// One column-rule lookup (`Masker::column_strategy`), which `mask_cell` does for every cell, with the shipped
/// policy's column rules.
#[divan::bench]
fn h_column_strategy_lookup_shipped_policy(b: Bencher<'_, '_>) {
    let m = shipped_policy_masker();
    let mut i = 0;
    b.bench_local(|| {
        i = (i + 1) % ROW_COLUMNS.len();
        m.column_strategy(black_box(ROW_COLUMNS[i]))
    });
}
