//! Generates the labelled masking corpus `tests/data/masking_corpus.tsv`, deterministically.
//!
//! `cargo run --example gen_masking_corpus [OUT]` (default: the file in this crate). Same seed, same file.
//!
//! Each line is `text<TAB>labels`, labels being a JSON array of `[detector, exact_value]`. Texts mix log
//! lines, CSV rows, JSON, config snippets, SQL, shell/k8s output and prose. About three quarters carry no
//! sensitive value at all (so throughput measured on the corpus reflects mostly clean text), and the clean
//! lines are full of look-alikes: timestamps, UUIDs, git SHAs, versions (`1.2.3.4.5`), order numbers,
//! prices, Luhn-invalid card numbers, reserved SSNs, bad IBAN checksums, MAC addresses, `std::io` paths,
//! `max_tokens=`, `password: ********`, publishable `pk_live_` keys, certificates, `logo@2x.png`…
//! Every generated value is valid by construction (Luhn digit, IBAN check digits, JWT header JSON).

use std::fmt::Write as _;

/// SplitMix64: tiny, good enough, and fully specified here so the corpus never changes under us.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len() as u64) as usize]
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    fn from(&mut self, alphabet: &[u8], n: usize) -> String {
        (0..n).map(|_| char::from(*self.pick(alphabet))).collect()
    }
    fn digits(&mut self, n: usize) -> String {
        self.from(b"0123456789", n)
    }
    fn alnum(&mut self, n: usize) -> String {
        self.from(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", n)
    }
    fn hex(&mut self, n: usize) -> String {
        self.from(b"0123456789abcdef", n)
    }
}

const FIRST: &[&str] = &[
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory", "oscar", "peggy",
    "trent", "victor", "wendy", "zoe", "liam", "noah", "emma",
];
const LAST: &[&str] = &[
    "smith", "jones", "garcia", "miller", "davis", "lopez", "wilson", "moore", "taylor", "thomas", "martin", "lee",
    "walker", "young", "king",
];
const DOMAINS: &[&str] = &[
    "example.com",
    "example.org",
    "mail.example.net",
    "corp.example.co.uk",
    "acme.io",
    "globex.com",
    "initech.de",
    "umbrella.fr",
];
const LEVELS: &[&str] = &["INFO", "INFO", "INFO", "DEBUG", "WARN", "ERROR"];
const MODULES: &[&str] = &["api", "worker", "billing", "auth", "scheduler", "db.pool", "http", "cache"];
const WORDS: &[&str] =
    &["orders", "invoices", "customers", "sessions", "shipments", "reports", "payments", "users", "events", "metrics"];
const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const B64URL: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fn b64url(data: &[u8]) -> String {
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |acc, (i, &b)| acc | (u32::from(b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(char::from(B64URL[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

fn luhn_check_digit(body: &str) -> u32 {
    let sum: u32 = body
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 0 {
                let x = d * 2;
                if x > 9 { x - 9 } else { x }
            } else {
                d
            }
        })
        .sum();
    (10 - sum % 10) % 10
}

struct Gen {
    r: Rng,
    labels: Vec<(&'static str, String)>,
}

impl Gen {
    fn label(&mut self, det: &'static str, v: String) -> String {
        self.labels.push((det, v.clone()));
        v
    }

    // ---------- clean pieces and look-alikes ----------
    fn ts(&mut self) -> String {
        let r = &mut self.r;
        format!(
            "2024-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
            r.range(1, 12),
            r.range(1, 28),
            r.below(24),
            r.below(60),
            r.below(60),
            r.below(1000)
        )
    }
    fn uuid(&mut self) -> String {
        let r = &mut self.r;
        format!("{}-{}-4{}-a{}-{}", r.hex(8), r.hex(4), r.hex(3), r.hex(3), r.hex(12))
    }
    fn order(&mut self) -> String {
        format!("ORD-2024-{:06}", self.r.below(1_000_000))
    }
    fn version(&mut self) -> String {
        let r = &mut self.r;
        match r.below(4) {
            0 => format!("{}.{}.{}", r.below(5), r.below(30), r.below(20)),
            1 => format!("v{}.{}.{}", r.below(5), r.below(30), r.below(20)),
            2 => format!("{}.{}.{}.{}.{}", r.below(5), r.below(30), r.below(20), r.below(9), r.below(9)),
            _ => format!("version {}.{}.{}.{}", r.below(12), r.below(30), r.below(20), r.below(99)),
        }
    }
    fn price(&mut self) -> String {
        let r = &mut self.r;
        match r.below(3) {
            0 => format!("${}.{:02}", r.range(1, 9999), r.below(100)),
            1 => format!("EUR {},{:03}.{:02}", r.range(1, 99), r.below(1000), r.below(100)),
            _ => format!("{}.{}%", r.below(100), r.below(10)),
        }
    }
    fn bad_card(&mut self) -> String {
        let body = format!("4{}", self.r.digits(14));
        format!("{body}{}", (luhn_check_digit(&body) + 1 + self.r.below(8) as u32) % 10)
    }
    fn bad_ssn(&mut self) -> String {
        let r = &mut self.r;
        match r.below(4) {
            0 => format!("000-{:02}-{:04}", r.range(1, 99), r.range(1, 9999)),
            1 => format!("666-{:02}-{:04}", r.range(1, 99), r.range(1, 9999)),
            2 => format!("9{:02}-{:02}-{:04}", r.below(100), r.range(1, 99), r.range(1, 9999)),
            _ => format!("{:03}-00-{:04}", r.range(1, 665), r.range(1, 9999)),
        }
    }
    fn lookalike(&mut self) -> String {
        let r = &mut self.r;
        match r.below(40) {
            0 => format!("tracking={}", self.bad_card()),
            1 => format!("ref {}", self.bad_ssn()),
            2 => "iban_check=DE00 3704 0044 0532 0130 00".to_owned(),
            3 => format!("oid 1.3.6.1.4.1.{}", r.below(40000)),
            4 => format!("mac {}:{}:{}:{}:{}:{}", r.hex(2), r.hex(2), r.hex(2), r.hex(2), r.hex(2), r.hex(2)),
            5 => "at std::collections::HashMap::new (src/lib.rs:42)".to_owned(),
            6 => format!("max_tokens={} input_tokens: {}", r.range(256, 8192), r.below(5000)),
            7 => "password: ********".to_owned(),
            8 => "password=<redacted>".to_owned(),
            9 => "token=${API_TOKEN}".to_owned(),
            10 => format!("pk_live_{}", r.alnum(24)),
            11 => "logo@2x.png".to_owned(),
            12 => "git@github.com:acme/infra.git".to_owned(),
            13 => format!("listening on 0.0.0.0:{} and 127.0.0.1:{}", r.range(1024, 9999), r.range(1024, 9999)),
            14 => format!("tz +05:30 offset +{:04}", r.below(1200)),
            15 => "-----BEGIN CERTIFICATE-----MIIBszCCAVmgAwIBAgIU-----END CERTIFICATE-----".to_owned(),
            16 => format!("cursor=eyJwYWdlIjo{}fQ", r.range(1, 9)),
            17 => "password_reset=true password_min_length: 12".to_owned(),
            18 => format!("bytes_total=18{}", r.digits(18)),
            19 => format!("epoch_ms=17{}", r.digits(11)),
            20 => format!("commit {}", r.hex(40)),
            21 => {
                let h = r.hex(7);
                format!("build {} ({h})", self.version())
            }
            22 => format!("pid {} port {} ext. {}", r.range(100, 65000), r.range(1024, 65535), r.range(100, 9999)),
            23 => "aws_access_key_id is rotated every 90 days (prefix AKIA)".to_owned(),
            24 => "PWD=/home/deploy/app".to_owned(),
            25 => format!("lodash@4.17.{} user@localhost", r.below(30)),
            26 => format!("ISBN 978-3-16-{:06}-0", r.below(1_000_000)),
            27 => format!("subnet 10.0.{} invalid 999.10.10.{}", r.below(9), r.below(255)),
            28 => format!("sha256:{}", r.hex(64)),
            29 => format!("card on file 4111 1111 1111 {:04}", (1111 + 1 + r.below(8)) % 10000),
            30 => format!("dated 05/{:02}/2024 and 2024/05/{:02}", r.range(1, 28), r.range(1, 28)),
            31 => format!("tracking 1Z999AA1{}", r.digits(10)),
            32 => format!("call 555-0{} or {}-{}-{}0", r.digits(3), r.range(201, 989), r.range(200, 999), r.digits(4)),
            33 => format!("ref {}-{}-{}", r.digits(3), r.digits(2), r.digits(5)),
            34 => "mask 255.255.255.255 gw 0.0.0.0 loopback ::1".to_owned(),
            35 => "write to ops at example dot com or ping @oncall".to_owned(),
            36 => format!("amount 4{},{:03}.{:02} USD", r.digits(2), r.below(1000), r.below(100)),
            37 => format!("secret_name: db-creds-{} token_type: bearer expires_in: 3600", r.below(9)),
            38 => format!("phone_verified=true sms_count={}", r.below(50)),
            _ => format!("invoice INV-{} dated 2024-{:02}-{:02}", r.digits(6), r.range(1, 12), r.range(1, 28)),
        }
    }
    fn filler(&mut self) -> String {
        let r = &mut self.r;
        match r.below(12) {
            0..=2 => self.lookalike(),
            3 => format!("request_id={}", self.uuid()),
            4 => format!("order={} total={}", self.order(), self.price()),
            5 => format!("duration_ms={} status={}", r.range(1, 5000), r.pick(&[200, 201, 204, 301, 400, 404, 500])),
            6 => format!("release {}", self.version()),
            7 => format!("trace_id={}", r.hex(32)),
            8 => format!("rows={} table={}", r.below(100000), r.pick(WORDS)),
            9 => format!("retry {}/{} after {}s", r.range(1, 5), 5, r.range(1, 60)),
            10 => format!("at {}", self.ts()),
            _ => format!("queue depth {} (p99 {} ms)", r.below(500), r.range(5, 900)),
        }
    }

    // ---------- sensitive values (each call records its label) ----------
    fn email(&mut self) -> String {
        let r = &mut self.r;
        let (f, l, d) = (*r.pick(FIRST), *r.pick(LAST), *r.pick(DOMAINS));
        let v = match r.below(4) {
            0 => format!("{f}.{l}@{d}"),
            1 => format!("{f}{}@{d}", r.below(1000)),
            2 => format!("{}{l}+{}@{d}", &f[..1], r.pick(WORDS)),
            _ => format!("{f}_{l}@{d}"),
        };
        self.label("email", v)
    }
    fn card(&mut self) -> String {
        let r = &mut self.r;
        let (prefix, len): (String, usize) = match r.below(6) {
            0 | 1 => ("4".into(), 16),
            2 => (format!("5{}", r.range(1, 5)), 16),
            3 => (r.pick(&["34", "37"]).to_string(), 15),
            4 => ("6011".into(), 16),
            _ => (format!("{}", r.range(2221, 2720)), 16),
        };
        let body = format!("{prefix}{}", r.digits(len - prefix.len() - 1));
        let n = format!("{body}{}", luhn_check_digit(&body));
        let v = match (r.below(3), len) {
            (0, _) => n,
            (k, 15) => {
                let sep = if k == 1 { " " } else { "-" };
                format!("{}{sep}{}{sep}{}", &n[..4], &n[4..10], &n[10..])
            }
            (k, _) => {
                let sep = if k == 1 { " " } else { "-" };
                n.as_bytes().chunks(4).map(|c| String::from_utf8_lossy(c).into_owned()).collect::<Vec<_>>().join(sep)
            }
        };
        self.label("payment_card", v)
    }
    fn card_digits(&mut self) -> String {
        let body = format!("{}{}", self.r.pick(&["4", "51", "6011"]), self.r.digits(10));
        let body = format!("{body}{}", &self.r.digits(15 - body.len()));
        let v = format!("{body}{}", luhn_check_digit(&body));
        self.label("payment_card", v)
    }
    fn ssn_bare(&mut self) -> String {
        let v = format!("{:03}{:02}{:04}", self.r.range(1, 665), self.r.range(1, 99), self.r.range(1, 9999));
        self.label("us_ssn", v)
    }
    fn phone_e164(&mut self) -> String {
        let v = format!("+{}{}", self.r.pick(&["1415", "4420", "4930", "3314", "6129"]), self.r.digits(7));
        self.label("phone", v)
    }
    fn ssn(&mut self) -> String {
        let r = &mut self.r;
        let mut area = r.range(1, 899);
        if area == 666 {
            area = 667;
        }
        let v = format!("{area:03}-{:02}-{:04}", r.range(1, 99), r.range(1, 9999));
        self.label("us_ssn", v)
    }
    fn phone(&mut self) -> String {
        let r = &mut self.r;
        let (a, e, s) = (r.range(201, 989), r.range(200, 999), r.range(0, 9999));
        let v = match r.below(9) {
            0 => format!("({a}) {e}-{s:04}"),
            1 => format!("{a}-{e}-{s:04}"),
            2 => format!("{a}.{e}.{s:04}"),
            3 => format!("+1 {a} {e} {s:04}"),
            4 => format!("+1{a}{e}{s:04}"),
            5 => format!("+44 20 {} {}", r.range(7000, 8999), r.digits(4)),
            6 => format!("+49 30 {}", r.range(1_000_000, 9_999_999)),
            7 => format!("+33 1 {} {} {} {}", r.range(10, 99), r.range(10, 99), r.range(10, 99), r.range(10, 99)),
            _ => format!("+61 2 {} {}", r.range(1000, 9999), r.range(1000, 9999)),
        };
        self.label("phone", v)
    }
    fn iban(&mut self) -> String {
        let r = &mut self.r;
        const C: &[(&str, usize, usize)] = &[
            ("DE", 22, 0),
            ("GB", 22, 4),
            ("FR", 27, 0),
            ("NL", 18, 4),
            ("ES", 24, 0),
            ("IT", 27, 1),
            ("BE", 16, 0),
            ("CH", 21, 0),
            ("AT", 20, 0),
            ("PL", 28, 0),
            ("IE", 22, 4),
            ("NO", 15, 0),
        ];
        let &(cc, len, letters) = r.pick(C);
        let bban = format!("{}{}", r.from(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ", letters), r.digits(len - 4 - letters));
        let rearranged = format!("{bban}{cc}00");
        let rem = rearranged.bytes().fold(0u64, |acc, b| {
            if b.is_ascii_digit() {
                (acc * 10 + u64::from(b - b'0')) % 97
            } else {
                (acc * 100 + u64::from(b - b'A') + 10) % 97
            }
        });
        let compact = format!("{cc}{:02}{bban}", 98 - rem);
        let v = if r.chance(50) {
            compact
        } else {
            compact.as_bytes().chunks(4).map(|c| String::from_utf8_lossy(c).into_owned()).collect::<Vec<_>>().join(" ")
        };
        self.label("iban", v)
    }
    fn ipv4(&mut self) -> String {
        let r = &mut self.r;
        let first = *r.pick(&[10, 172, 192, 203, 198, 34, 52, 81, 100, 185]);
        let v = format!("{first}.{}.{}.{}", r.below(256), r.below(256), r.range(1, 254));
        self.label("ipv4", v)
    }
    fn ipv6(&mut self) -> String {
        let r = &mut self.r;
        let g = |r: &mut Rng| format!("{:x}", r.range(1, 0xffff));
        let v = match r.below(3) {
            0 => (0..8).map(|_| g(r)).collect::<Vec<_>>().join(":"),
            1 => format!("2001:db8::{}:{}", g(r), g(r)),
            _ => format!("fe80::{}:{}:{}:{}", g(r), g(r), g(r), g(r)),
        };
        self.label("ipv6", v)
    }
    fn jwt(&mut self) -> String {
        let r = &mut self.r;
        let header = *r.pick(&[
            r#"{"alg":"HS256","typ":"JWT"}"#,
            r#"{"alg":"RS256","typ":"JWT","kid":"k1"}"#,
            r#"{"typ":"JWT","alg":"ES256"}"#,
        ]);
        let payload = format!(
            r#"{{"sub":"user_{}","iat":17{},"role":"{}"}}"#,
            r.below(100000),
            r.digits(8),
            r.pick(&["admin", "reader", "ops"])
        );
        let v = format!("{}.{}.{}", b64url(header.as_bytes()), b64url(payload.as_bytes()), r.from(B64URL, 43));
        self.label("jwt", v)
    }
    fn private_key(&mut self) -> String {
        let r = &mut self.r;
        let kind = *r.pick(&[
            "RSA PRIVATE KEY",
            "PRIVATE KEY",
            "EC PRIVATE KEY",
            "OPENSSH PRIVATE KEY",
            "ENCRYPTED PRIVATE KEY",
        ]);
        let sep = if r.chance(70) { "\\n" } else { " " };
        let body = (0..r.range(2, 4)).map(|_| r.from(B64, 64)).collect::<Vec<_>>().join(sep);
        let v = format!("-----BEGIN {kind}-----{sep}{body}{sep}-----END {kind}-----");
        self.label("private_key", v)
    }
    fn aws(&mut self) -> String {
        let r = &mut self.r;
        if r.chance(55) {
            let v = format!("{}{}", r.pick(&["AKIA", "ASIA"]), r.from(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16));
            let v = self.label("aws_key", v);
            match self.r.below(3) {
                0 => format!("aws_access_key_id = {v}"),
                1 => format!("\"AccessKeyId\": \"{v}\""),
                _ => format!("using key {v} for upload"),
            }
        } else {
            let v = r.from(B64, 40);
            let v = self.label("aws_key", v);
            match self.r.below(3) {
                0 => format!("aws_secret_access_key = {v}"),
                1 => format!("\"SecretAccessKey\": \"{v}\""),
                _ => format!("export AWS_SECRET_ACCESS_KEY={v}"),
            }
        }
    }
    fn github(&mut self) -> String {
        let r = &mut self.r;
        let v = if r.chance(75) {
            format!("{}_{}", r.pick(&["ghp", "gho", "ghu", "ghs", "ghr"]), r.alnum(36))
        } else {
            format!("github_pat_{}_{}", r.alnum(22), r.alnum(59))
        };
        self.label("github_token", v)
    }
    fn slack(&mut self) -> String {
        let r = &mut self.r;
        let v = if r.chance(80) {
            format!(
                "{}-{}-{}-{}",
                r.pick(&["xoxb", "xoxp", "xoxa", "xoxr", "xoxs"]),
                r.digits(12),
                r.digits(13),
                r.alnum(24)
            )
        } else {
            format!("xapp-1-A{}-{}-{}", r.from(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", 10), r.digits(13), r.hex(64))
        };
        self.label("slack_token", v)
    }
    fn stripe(&mut self) -> String {
        let r = &mut self.r;
        let n = *r.pick(&[24, 32, 99]);
        let v = format!("{}_{}", r.pick(&["sk_live", "sk_test", "rk_live", "rk_test"]), r.alnum(n));
        self.label("stripe_key", v)
    }
    fn password(&mut self) -> String {
        let r = &mut self.r;
        let word = *r.pick(&["Summer", "tiger", "Blue", "dragon", "Kestrel", "monkey", "Orion", "falcon"]);
        match r.below(3) {
            0 => {
                let n = r.range(2, 4) as usize;
                format!("{word}{}{}", r.digits(n), r.pick(&["!", "#", "_", "*", "%"]))
            }
            1 => {
                let n = r.range(10, 20) as usize;
                format!("{}{}", r.alnum(n), r.pick(&["", "!", "~"]))
            }
            _ => format!("{}-{}-{}", word.to_lowercase(), r.alnum(6), r.digits(3)),
        }
    }
    fn secret(&mut self) -> String {
        let p = self.password();
        let p = self.label("secret_assignment", p);
        let r = &mut self.r;
        match r.below(19) {
            0 => format!("password={p}"),
            1 => format!("DB_PASSWORD={p}"),
            2 => format!("export PGPASSWORD='{p}'"),
            3 => format!("\"password\": \"{p}\""),
            4 => format!("password: {p}"),
            5 => format!("api_key = \"{p}\""),
            6 => format!("client_secret: {p}"),
            7 => format!("https://api.example.com/v1/export?token={p}&format=csv"),
            8 => format!("mysql -h db -u root --password={p} app"),
            9 => format!("vault-cli login --token {p}"),
            10 => format!("postgres://{}:{p}@db.internal:5432/app", r.pick(FIRST)),
            11 => format!("redis://:{p}@cache.internal:6379/0"),
            12 => format!("ALTER USER {} WITH PASSWORD '{p}';", r.pick(FIRST)),
            13 => format!("MYSQL_PWD={p}"),
            14 => format!("{{\"client_secret\":\"{p}\",\"grant_type\":\"client_credentials\"}}"),
            15 => format!("password: \"{p}\""),
            16 => format!("PASSWORD='{p}'"),
            17 => format!("spring.datasource.password={p}"),
            _ => format!("SECRET_KEY={p}"),
        }
    }
    fn bearer(&mut self) -> String {
        let v = self.r.alnum(32);
        let v = self.label("secret_assignment", v);
        format!("Authorization: Bearer {v}")
    }

    /// One sensitive fragment, with its usual context.
    fn sensitive(&mut self) -> String {
        match self.r.below(18) {
            0 => format!("email={}", self.email()),
            1 => format!("card {}", self.card()),
            2 => format!("ssn {}", self.ssn()),
            3 => format!("phone: {}", self.phone()),
            4 => format!("iban {}", self.iban()),
            5 => format!("client {}", self.ipv4()),
            6 => format!("from [{}]", self.ipv6()),
            7 => format!("Authorization: Bearer {}", self.jwt()),
            8 => format!("\"private_key\": \"{}\\n\"", self.private_key()),
            9 => self.aws(),
            10 => format!("GITHUB_TOKEN={}", self.github()),
            11 => format!("slack {}", self.slack()),
            12 => format!("STRIPE_API_KEY={}", self.stripe()),
            13 if self.r.chance(25) => self.bearer(),
            13 | 14 => self.secret(),
            15 => format!("src={} dst={}", self.ipv4(), self.ipv4()),
            16 => match self.r.below(10) {
                0 => format!("To: <{}>", self.email()),
                1 => format!("mailto:{}", self.email()),
                2 => format!("\"card\": {}", self.card_digits()),
                3 => format!("ssn: {}", self.ssn_bare()),
                4 => format!("tel:{}", self.phone_e164()),
                5 => format!("connect {}:{}", self.ipv4(), self.r.range(1024, 65535)),
                6 => format!("https://[{}]:8443/health", self.ipv6()),
                7 => {
                    let name: &str = self.r.pick::<&str>(FIRST);
                    format!("{},{},{}", capitalize(name), self.email(), self.phone())
                }
                8 => format!("payout to {} ok", self.iban()),
                _ => format!("contact {} / {}", self.email(), self.phone()),
            },
            _ => format!("contact {} / {}", self.email(), self.phone()),
        }
    }

    /// A whole record: clean (with look-alikes) or carrying 1–3 sensitive values, in one of several formats.
    fn record(&mut self, sensitive: bool) -> String {
        let mut parts = Vec::new();
        if sensitive {
            for _ in 0..*self.r.pick(&[1, 1, 1, 2, 2, 3]) {
                parts.push(self.sensitive());
            }
        }
        let n_fill = self.r.range(1, 3);
        for _ in 0..n_fill {
            parts.push(self.filler());
        }
        // Shuffle-free interleave: sensitive parts first or last keeps positions varied enough.
        if self.r.chance(50) {
            parts.reverse();
        }
        match self.r.below(8) {
            0..=2 => {
                let (ts, lvl, m) = (self.ts(), *self.r.pick(LEVELS), *self.r.pick(MODULES));
                format!("{ts} {lvl} [{m}] {}", parts.join(" "))
            }
            3 => {
                let id = self.r.range(1000, 99999);
                let w = *self.r.pick(WORDS);
                format!("{id},{w},{},{}", parts.join(","), self.price())
            }
            4 => {
                let mut s = String::from("{");
                for (i, p) in parts.iter().enumerate() {
                    let _ = write!(s, "{}\"f{i}\": \"{}\"", if i > 0 { ", " } else { "" }, p.replace('"', "'"));
                }
                s.push('}');
                s
            }
            5 => format!("# {} {}", self.r.pick(&["config:", "env:", "settings"]), parts.join("; ")),
            6 => {
                let (f, w) = (*self.r.pick(FIRST), *self.r.pick(WORDS));
                let t = self.r.range(100, 9999);
                format!(
                    "{} noted that the {w} job finished; details: {} (see ticket {t})",
                    capitalize(f),
                    parts.join(", then ")
                )
            }
            _ => format!(
                "SELECT * FROM {} WHERE note = '{}' LIMIT {}",
                self.r.pick(WORDS),
                parts.join(" "),
                self.r.range(1, 500)
            ),
        }
    }
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_uppercase().chain(c).collect()).unwrap_or_default()
}

fn main() {
    let out = std::env::args()
        .nth(1)
        .unwrap_or_else(|| format!("{}/tests/data/masking_corpus.tsv", env!("CARGO_MANIFEST_DIR")));
    let mut g = Gen { r: Rng(0x00A1_7C0C_2024_0501), labels: Vec::new() };
    let mut file = String::new();
    let (total, mut clean) = (3000, 0);
    for _ in 0..total {
        g.labels.clear();
        let sensitive = g.r.chance(26);
        let text = g.record(sensitive);
        let labels: Vec<(&str, String)> = std::mem::take(&mut g.labels);
        // The JSON format rewrites quotes; keep labels only for values still present verbatim.
        let labels: Vec<[String; 2]> = labels.into_iter().map(|(d, v)| [d.to_owned(), v]).collect();
        assert!(labels.iter().all(|[_, v]| text.contains(v.as_str())), "label not in text: {text}");
        assert!(!text.contains(['\t', '\n', '\r']), "control character in {text}");
        if labels.is_empty() {
            clean += 1;
        }
        let json = serde_json::to_string(&labels).expect("labels serialize");
        let _ = writeln!(file, "{text}\t{json}");
    }
    std::fs::write(&out, file).expect("write corpus");
    eprintln!("wrote {total} records ({clean} clean, {:.1}%) to {out}", 100.0 * clean as f64 / total as f64);
}
