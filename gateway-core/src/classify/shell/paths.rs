//! Path helpers: normalisation, secret paths, system paths, devices.

/// Last path component (`/usr/bin/../bin/rm` → `rm`).
pub(crate) fn basename(p: &str) -> &str {
    let t = p.trim_end_matches('/');
    match t.rfind('/') {
        Some(i) => &t[i + 1..],
        None => t,
    }
}

/// The command a name resolves to: basename, lower-cased.
pub(crate) fn command_basename(raw: &str) -> String {
    basename(raw).to_lowercase()
}

/// Lexical normalisation: collapses `//` and `/./`, resolves `..`, and maps
/// `$HOME`-like prefixes (`/root/`, `/home/USER/`) to `~/` so secret paths
/// are recognised however they are spelled.
pub(crate) fn normalize(p: &str) -> String {
    let absolute = p.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for comp in p.split('/') {
        match comp {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|l| *l != "..") {
                    parts.pop();
                } else if !absolute {
                    parts.push("..");
                }
            }
            c => parts.push(c),
        }
    }
    let mut out = if absolute { String::from("/") } else { String::new() };
    out.push_str(&parts.join("/"));
    if let Some(rest) = out.strip_prefix("/root/") {
        return format!("~/{rest}");
    }
    if let Some(rest) = out.strip_prefix("/home/")
        && let Some(i) = rest.find('/')
    {
        return format!("~/{}", &rest[i + 1..]);
    }
    out
}

/// Concrete secret paths, used to test globs and dynamic paths against.
const SECRET_SAMPLES: &[&str] = &[
    "/etc/shadow",
    "/etc/gshadow",
    "/etc/shadow-",
    "~/.ssh/id_rsa",
    "~/.ssh/id_ed25519",
    "~/.aws/credentials",
    "~/.kube/config",
    "~/.docker/config.json",
    "~/.bash_history",
    "~/.netrc",
    "/proc/1/environ",
    "/proc/self/environ",
    "/var/run/secrets/kubernetes.io/serviceaccount/token",
    "/etc/kubernetes/admin.conf",
    ".env",
];

/// Secret file names that matter wherever they are (for relative globs).
const SECRET_BASENAMES: &[&str] = &[
    ".env",
    ".bash_history",
    ".zsh_history",
    "id_rsa",
    "id_ed25519",
    "id_ecdsa",
    "id_dsa",
    ".netrc",
    ".pgpass",
    ".git-credentials",
    "shadow",
    "gshadow",
    "credentials",
    "environ",
];

/// Is this (static) path a secret?
pub(crate) fn is_secret_path(p: &str) -> bool {
    let n = normalize(p);
    let base = basename(&n);
    let has = |s: &str| n.contains(s);
    n == "/etc/shadow"
        || n == "/etc/gshadow"
        || n == "/etc/shadow-"
        || n == "/etc/gshadow-"
        || n == "/etc/security/opasswd"
        || has(".ssh/id_")
        || n.ends_with("/.ssh")
        || n == ".ssh"
        || (n.starts_with("/etc/ssh/ssh_host_") && !n.ends_with(".pub"))
        || has(".aws/credentials")
        || has(".kube/config")
        || has(".docker/config.json")
        || has(".gnupg")
        || has("/etc/ssl/private")
        || has("/etc/kubernetes/admin.conf")
        || has("secrets/kubernetes.io/serviceaccount")
        || n.starts_with("/run/secrets")
        || n.starts_with("/var/run/secrets")
        || (n.starts_with("/proc/") && base == "environ")
        || base == ".env"
        || base.starts_with(".env.")
        || base.ends_with("_history")
        || base == ".history"
        || base == ".netrc"
        || base == ".pgpass"
        || base == ".git-credentials"
        || base == ".pypirc"
        || base == ".vault-token"
        || (base.ends_with(".key") && !base.ends_with(".pub.key"))
        || base.ends_with(".pem") && has("private")
}

/// Could this glob pattern (or dynamic path, with `*` for unknown parts)
/// match a secret path?
pub(crate) fn glob_may_match_secret(pattern: &str) -> bool {
    let pat = normalize(pattern);
    if pat.contains('/') || pat.starts_with('~') {
        SECRET_SAMPLES.iter().any(|s| glob_match(&pat, s))
    } else {
        SECRET_BASENAMES.iter().any(|s| glob_match(&pat, s))
    }
}

/// Minimal glob matcher (`*`, `?`, `[...]`). `*` also matches `/` here:
/// over-matching is the safe direction.
pub(crate) fn glob_match(pat: &str, s: &str) -> bool {
    let p: Vec<char> = pat.chars().collect();
    let t: Vec<char> = s.chars().collect();
    // Iterative matcher with single backtrack point: linear-ish, no
    // recursion.
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() {
            match p[pi] {
                '*' => {
                    star = Some((pi, ti));
                    pi += 1;
                    continue;
                }
                '?' => {
                    pi += 1;
                    ti += 1;
                    continue;
                }
                '[' => {
                    if let Some((matched, next)) = class_match(&p, pi, t[ti]) {
                        if matched {
                            pi = next;
                            ti += 1;
                            continue;
                        }
                    } else if t[ti] == '[' {
                        pi += 1;
                        ti += 1;
                        continue;
                    }
                }
                c if c == t[ti] => {
                    pi += 1;
                    ti += 1;
                    continue;
                }
                _ => {}
            }
        }
        match star {
            Some((sp, st)) => {
                pi = sp + 1;
                ti = st + 1;
                star = Some((sp, st + 1));
            }
            None => return false,
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// Matches `[...]` at `p[start]` against `c`: `(matched, index after ])`.
fn class_match(p: &[char], start: usize, c: char) -> Option<(bool, usize)> {
    let mut i = start + 1;
    let negate = matches!(p.get(i), Some('!' | '^'));
    if negate {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    while i < p.len() {
        if p[i] == ']' && !first {
            return Some((matched != negate, i + 1));
        }
        first = false;
        if i + 2 < p.len() && p[i + 1] == '-' && p[i + 2] != ']' {
            if p[i] <= c && c <= p[i + 2] {
                matched = true;
            }
            i += 3;
        } else {
            if p[i] == c {
                matched = true;
            }
            i += 1;
        }
    }
    None
}

const SYSTEM_DIRS: &[&str] = &[
    "/", "/etc", "/var", "/usr", "/boot", "/home", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/opt", "/root",
    "/srv", "/sys", "/proc", "/dev", "/run", "/mnt", "/media", "/snap", "~",
];

/// Directories whose *contents* are system files: deleting anything inside
/// them is destructive.
const SYSTEM_TREES: &[&str] =
    &["/etc", "/boot", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/usr", "/var/lib", "/dev", "/sys", "/proc"];

/// Is this path a system directory itself or a file inside a system tree?
/// Globs are tested against the same list.
pub(crate) fn is_system_path(p: &str) -> bool {
    let n = normalize(p);
    let n = n.trim_end_matches("/*");
    let n = if n.is_empty() { "/" } else { n };
    if SYSTEM_DIRS.contains(&n) {
        return true;
    }
    SYSTEM_TREES.iter().any(|t| n.starts_with(&format!("{t}/")) || (n.contains(['*', '?', '[']) && glob_match(n, t)))
}

/// Block devices: writing to them destroys file systems.
pub(crate) fn is_block_device(p: &str) -> bool {
    let n = normalize(p);
    let Some(dev) = n.strip_prefix("/dev/") else {
        return false;
    };
    ["sd", "hd", "vd", "xvd", "nvme", "mmcblk", "dm-", "md", "mapper/", "disk/", "loop", "sr"]
        .iter()
        .any(|pre| dev.starts_with(pre))
}

/// Harmless write targets.
pub(crate) fn is_null_sink(p: &str) -> bool {
    matches!(p, "/dev/null" | "/dev/stdout" | "/dev/stderr" | "/dev/tty" | "-") || p.starts_with("/dev/fd/")
}

/// Files whose modification grants or changes privileges.
pub(crate) fn is_privilege_file(p: &str) -> bool {
    let n = normalize(p);
    n.starts_with("/etc/sudoers")
        || matches!(n.as_str(), "/etc/passwd" | "/etc/shadow" | "/etc/group" | "/etc/gshadow" | "/etc/doas.conf")
        || n.starts_with("/etc/pam.d/")
        || n.ends_with(".ssh/authorized_keys")
}

/// Looks like a remote location (`host:path`, `user@host:path`,
/// `rsync://`, `host::module`).
pub(crate) fn is_remote_spec(s: &str) -> bool {
    if s.contains("://") {
        return true;
    }
    match s.find(':') {
        Some(i) => {
            let before = &s[..i];
            !before.is_empty() && !before.contains('/')
        }
        None => false,
    }
}
