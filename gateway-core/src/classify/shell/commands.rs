//! Per-command rules: wrappers that run their arguments, interpreters, and
//! the class table. See the parent module docs for the rules in prose.

use super::paths;
use super::{Arg, ShellClass as C, Stdin, Walker, dangerous_assignment};

/// Shells whose `-c` argument, script operand or stdin is code.
const SHELLS: &[&str] = &[
    "sh", "bash", "zsh", "dash", "ksh", "ash", "mksh", "yash", "rbash", "fish", "csh", "tcsh", "ksh93", "pdksh",
    "oksh", "hush",
];

/// Interpreters of other languages and the flag that introduces inline code.
fn interpreter_code_flags(name: &str) -> Option<&'static [&'static str]> {
    let base = name.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.');
    Some(match base {
        "python" | "pypy" => &["-c"],
        "perl" => &["-e", "-E"],
        "ruby" | "irb" => &["-e"],
        "node" | "nodejs" | "deno" | "bun" => &["-e", "--eval", "-p", "--print"],
        "php" => &["-r"],
        "lua" | "luajit" => &["-e"],
        "rscript" => &["-e"],
        "tclsh" | "wish" => &[],
        "osascript" => &["-e"],
        "pwsh" | "powershell" => &["-c", "-command", "-Command"],
        _ => return None,
    })
}

/// Plain diagnostics: no side effects, whatever the arguments.
const READ_ONLY: &[&str] = &[
    "uptime",
    "df",
    "du",
    "ps",
    "free",
    "ls",
    "ll",
    "dir",
    "vdir",
    "cat",
    "tac",
    "head",
    "tail",
    "less",
    "more",
    "most",
    "grep",
    "egrep",
    "fgrep",
    "zgrep",
    "zcat",
    "zless",
    "bzcat",
    "xzcat",
    "rg",
    "ag",
    "ack",
    "uname",
    "id",
    "whoami",
    "who",
    "w",
    "last",
    "lastb",
    "lastlog",
    "users",
    "groups",
    "wc",
    "sort",
    "uniq",
    "cut",
    "tr",
    "column",
    "nl",
    "fold",
    "fmt",
    "expand",
    "unexpand",
    "paste",
    "join",
    "comm",
    "cmp",
    "diff",
    "diff3",
    "sdiff",
    "stat",
    "file",
    "ss",
    "netstat",
    "lsblk",
    "lsof",
    "lscpu",
    "lsmod",
    "lspci",
    "lsusb",
    "lshw",
    "lsns",
    "lsattr",
    "findmnt",
    "blkid",
    "vmstat",
    "iostat",
    "mpstat",
    "sar",
    "pidstat",
    "nproc",
    "pwd",
    "which",
    "whereis",
    "type",
    "true",
    "false",
    "test",
    "[",
    "sleep",
    "basename",
    "dirname",
    "realpath",
    "readlink",
    "md5sum",
    "sha1sum",
    "sha224sum",
    "sha256sum",
    "sha384sum",
    "sha512sum",
    "b2sum",
    "cksum",
    "sum",
    "jq",
    "base64",
    "base32",
    "xxd",
    "od",
    "hexdump",
    "strings",
    "tree",
    "locate",
    "nslookup",
    "dig",
    "host",
    "ping",
    "ping6",
    "traceroute",
    "tracepath",
    "mtr",
    "whois",
    "tty",
    "seq",
    "yes",
    "expr",
    "bc",
    "dc",
    "arch",
    "getconf",
    "ulimit",
    "umask",
    "cd",
    "pushd",
    "popd",
    "dirs",
    ":",
    "exit",
    "return",
    "wait",
    "jobs",
    "shift",
    "pstree",
    "pgrep",
    "pidof",
    "getfacl",
    "getcap",
    "namei",
    "lsb_release",
    "cal",
    "logname",
    "dmidecode",
    "sensors",
    "nvidia-smi",
    "pvs",
    "vgs",
    "lvs",
    "pvdisplay",
    "vgdisplay",
    "lvdisplay",
    "systemd-analyze",
    "view",
    "xmllint",
    "rev",
    "shuf",
    "top",
    "htop",
    "atop",
    "iotop",
    "iftop",
    "nload",
    "numastat",
    "slabtop",
    "tput",
    "clear",
    "hostnamectl",
    "timedatectl",
    "loginctl",
    "localectl",
    "journalctl",
    "echo",
    "printf",
    "unalias",
    "shopt",
    "getopts",
    "let",
    "hash",
    "times",
    "trap",
    "help",
    "man",
    "info",
    "apropos",
    "whatis",
    "nstat",
    "lsipc",
    "ipcs",
    "free",
    "tload",
    "watch",
    "time",
    "zpool",
    "zfs",
    "smartctl",
    "mdadm",
    "ethtool",
    "iptables-save",
    "ip6tables-save",
    "ausearch",
    "aureport",
    "curl-config",
    "openssl",
    "gpg",
    "ldd",
    "nm",
    "objdump",
    "readelf",
    "size",
    "pmap",
    "iconv",
    "uuidgen",
    "mountpoint",
    "pwdx",
    "chage",
    "sha",
    "printf",
    "env",
    "set",
    "declare",
    "typeset",
    "export",
    "local",
    "readonly",
    "read",
    "mapfile",
    "readarray",
    "unset",
    "alias",
];

/// Commands that read or send the content of their file arguments: a
/// non-static argument could name a secret.
const READERS: &[&str] = &[
    "cat", "tac", "head", "tail", "less", "more", "most", "grep", "egrep", "fgrep", "zgrep", "zcat", "rg", "ag",
    "base64", "base32", "xxd", "od", "hexdump", "strings", "cp", "scp", "rsync", "tar", "zip", "gzip", "curl", "wget",
    "nc", "ncat", "netcat", "socat", "sed", "awk", "gawk", "cut", "sort", "uniq", "diff", "cmp", "openssl", "gpg",
    "dd", "vi", "vim", "nano", "jq", "yq", "view", "nl", "sftp", "mail", "install", "split",
];

/// Commands whose arguments we never treat as a secret read (metadata only,
/// or deletion).
const METADATA_ONLY: &[&str] = &[
    "rm",
    "rmdir",
    "unlink",
    "shred",
    "chown",
    "chgrp",
    "ls",
    "stat",
    "test",
    "[",
    "du",
    "namei",
    "realpath",
    "readlink",
    "basename",
    "dirname",
    "chmod",
    "touch",
    "mkdir",
    "file",
    "find",
    "kubectl",
    "helm",
    "which",
    "type",
    "getfacl",
    "lsattr",
    "mountpoint",
];

/// Commands that print or send their arguments: an environment variable
/// among them may be a secret being revealed.
const EMITTERS: &[&str] = &[
    "echo", "printf", "curl", "wget", "nc", "ncat", "netcat", "socat", "ssh", "scp", "mail", "logger", "tee", "http",
    "telnet", "ftp", "sftp",
];

const PACKAGE_VERBS: &[&str] = &[
    "install",
    "remove",
    "purge",
    "upgrade",
    "update",
    "dist-upgrade",
    "full-upgrade",
    "autoremove",
    "reinstall",
    "build-dep",
    "erase",
    "downgrade",
    "groupinstall",
    "groupremove",
    "localinstall",
    "in",
    "rm",
    "up",
    "dup",
    "patch",
    "add",
    "del",
    "fix",
    "uninstall",
    "i",
    "ci",
    "un",
    "refresh",
    "revert",
    "swap",
    "distro-sync",
    "sync",
    "link",
    "unlink",
    "mark",
];

/// Index of the first operand at or after `i`, skipping options. `takes`
/// lists short options that take a value; `long_takes` long options taking
/// a value as a separate argument (`--opt value`).
pub(crate) fn skip_options(args: &[Arg], mut i: usize, takes: &str, long_takes: &[&str]) -> usize {
    while i < args.len() {
        let a = args[i].s();
        if a == "--" {
            return i + 1;
        }
        if let Some(long) = a.strip_prefix("--") {
            let needs = !long.contains('=') && long_takes.contains(&long);
            i += if needs { 2 } else { 1 };
            continue;
        }
        if let Some(short) = a.strip_prefix('-') {
            if short.is_empty() {
                return i;
            }
            let mut next = 1;
            for (k, c) in short.char_indices() {
                if takes.contains(c) {
                    if k + c.len_utf8() == short.len() {
                        next = 2;
                    }
                    break;
                }
            }
            i += next;
            continue;
        }
        return i;
    }
    args.len()
}

/// Non-option operands (everything after `--` counts as an operand).
fn operands(args: &[Arg]) -> Vec<&Arg> {
    let mut out = Vec::new();
    let mut after_dd = false;
    for a in args.iter().skip(1) {
        let s = a.s();
        if !after_dd && s == "--" {
            after_dd = true;
            continue;
        }
        if after_dd || !s.starts_with('-') || s == "-" {
            out.push(a);
        }
    }
    out
}

fn has_flag(args: &[Arg], short: char, long: &[&str]) -> bool {
    args.iter().skip(1).any(|a| {
        let s = a.s();
        if let Some(l) = s.strip_prefix("--") {
            let l = l.split('=').next().unwrap_or(l);
            long.contains(&l)
        } else if let Some(sh) = s.strip_prefix('-') {
            sh.chars().all(|c| c.is_ascii_alphanumeric()) && sh.contains(short)
        } else {
            false
        }
    })
}

/// Runs `args[i..]` as a command of its own.
fn run_rest(w: &mut Walker, args: &[Arg], i: usize, depth: usize, stdin: &Stdin) -> Option<String> {
    if i < args.len() { w.command(&args[i..], depth + 1, stdin) } else { None }
}

/// Parses literal code (joined arguments) as a script; non-static code is
/// `RemoteCode` when downloaded, otherwise `Unparsed`.
fn run_code(w: &mut Walker, parts: &[&Arg], depth: usize, stdin: &Stdin, what: &str) {
    if parts.iter().any(|a| a.downloaded) {
        w.add(C::RemoteCode);
        return;
    }
    let mut code = String::new();
    for (k, a) in parts.iter().enumerate() {
        match a.plain() {
            Some(l) if !a.procsub => {
                if k > 0 {
                    code.push(' ');
                }
                code.push_str(l);
            }
            _ => {
                w.unparsed(format!("{what} runs code that is not static: `{}`", a.text));
                return;
            }
        }
    }
    w.script(&code, depth + 1, stdin);
}

/// Code read from stdin by a shell or interpreter.
fn stdin_code(w: &mut Walker, depth: usize, stdin: &Stdin, shell: bool, who: &str) {
    match stdin {
        Stdin::Literal(code) => {
            if shell {
                w.script(code, depth + 1, &Stdin::None);
            } else {
                inline_code(w, code);
            }
        }
        Stdin::Downloaded => w.add(C::RemoteCode),
        Stdin::Opaque => w.unparsed(format!("{who} reads code from a source we cannot see")),
        Stdin::None => w.add(C::Other),
    }
}

/// Script-file operand of a shell or interpreter.
fn script_operand(w: &mut Walker, a: &Arg, who: &str) {
    if a.downloaded {
        w.add(C::RemoteCode);
    } else if a.procsub {
        w.unparsed(format!("{who} runs a script from a process substitution"));
    } else if a.plain().is_some_and(|p| w.is_downloaded_file(p)) {
        w.add(C::RemoteCode);
    } else {
        w.add(C::Other);
    }
}

/// Inline code of another language: we look for fetches, process spawning
/// and secret access; anything else is `Other`.
fn inline_code(w: &mut Walker, code: &str) {
    const FETCH: &[&str] = &[
        "urllib",
        "requests.",
        "http.client",
        "urlopen",
        "http://",
        "https://",
        "lwp::",
        "lwp-",
        "http::tiny",
        "net::http",
        "open-uri",
        "uri.open",
        "fetch(",
        "http.get",
        "https.get",
        "socket",
        "wget",
        "curl",
        "httpx",
        "aiohttp",
    ];
    const SPAWN: &[&str] = &[
        "os.system",
        "subprocess",
        "popen",
        "os.exec",
        "spawn",
        "pty.",
        "exec(",
        "eval(",
        "system(",
        "`",
        "child_process",
        "execsync",
        "kernel.",
        "%x",
        "shell_exec",
        "passthru",
        "proc_open",
        "__import__",
        "rmtree",
        "unlink",
        "remove(",
        "os.rm",
        "truncate",
        "shutil",
        "compile(",
        "ctypes",
        "io.popen",
        "os.execute",
        "exec ",
        "qx",
    ];
    const SECRETS: &[&str] = &[
        "environ",
        "getenv",
        "env[",
        "process.env",
        "$env",
        "/etc/shadow",
        ".ssh/",
        ".aws/",
        ".kube/",
        "_history",
        ".env",
    ];
    let lower = code.to_lowercase();
    if SECRETS.iter().any(|p| lower.contains(p)) {
        w.add(C::CredentialAccess);
    }
    if FETCH.iter().any(|p| lower.contains(p)) {
        // Fetching is the dominant fact: whatever else the code does, it
        // can run what it downloaded.
        w.add(C::RemoteCode);
    } else if SPAWN.iter().any(|p| lower.contains(p)) {
        w.unparsed("inline interpreter code spawns processes or deletes files".to_string());
    } else {
        w.add(C::Other);
    }
}

/// Redirection or argument that is written to.
pub(crate) fn write_target(w: &mut Walker, a: &Arg) {
    let Some(p) = a.plain() else {
        if a.glob && paths::is_block_device(&a.text) {
            w.add(C::DestructiveFile);
        }
        w.add(C::FileWrite);
        return;
    };
    let n = paths::normalize(p);
    if paths::is_null_sink(&n) || paths::is_null_sink(p) {
        return;
    }
    if n.starts_with("/dev/tcp/") || n.starts_with("/dev/udp/") {
        w.add(C::NetworkExfiltration);
    } else if paths::is_block_device(&n) {
        w.add(C::DestructiveFile);
    } else if n == "/proc/sysrq-trigger" {
        w.add(C::PowerState);
    } else if paths::is_privilege_file(&n) {
        w.add(C::Privilege);
        w.add(C::FileWrite);
    } else {
        w.add(C::FileWrite);
    }
}

/// Redirection or argument that is read from.
pub(crate) fn check_read_path(w: &mut Walker, a: &Arg) {
    match a.plain() {
        Some(p) => {
            let n = paths::normalize(p);
            if n.starts_with("/dev/tcp/") || n.starts_with("/dev/udp/") {
                w.add(C::NetworkExfiltration);
            }
            if paths::is_secret_path(p) {
                w.add(C::CredentialAccess);
            }
        }
        None => {
            if paths::glob_may_match_secret(&a.text) {
                w.add(C::CredentialAccess);
            }
        }
    }
}

/// Argument-independent checks applied to every command: secret paths and
/// secret environment variables in its arguments.
fn generic_checks(w: &mut Walker, name: &str, args: &[Arg]) {
    let metadata = METADATA_ONLY.contains(&name);
    let reader = READERS.contains(&name);
    let emitter = EMITTERS.contains(&name);
    for a in args.iter().skip(1) {
        for r in &a.env_refs {
            let up = r.to_uppercase();
            let secretish = [
                "SECRET", "TOKEN", "PASSWORD", "PASSWD", "PASS", "KEY", "CRED", "AUTH", "PRIVATE", "SESSION", "COOKIE",
            ]
            .iter()
            .any(|s| up.contains(s));
            if emitter || secretish {
                w.add(C::CredentialAccess);
            }
        }
        if metadata {
            continue;
        }
        match a.plain() {
            Some(l) => {
                let mut cands = vec![l];
                if let Some((_, v)) = l.split_once('=') {
                    cands.push(v);
                }
                if let Some(v) = l.strip_prefix('@') {
                    cands.push(v);
                }
                if let Some(v) = l.strip_prefix("file://") {
                    cands.push(v);
                }
                if cands.iter().any(|c| paths::is_secret_path(c)) {
                    w.add(C::CredentialAccess);
                }
            }
            None => {
                if (a.glob || reader) && !a.procsub && paths::glob_may_match_secret(&a.text) {
                    w.add(C::CredentialAccess);
                }
            }
        }
    }
}

/// Classifies a resolved command. Returns its output when statically known.
pub(crate) fn classify(
    w: &mut Walker,
    name: &str,
    raw: &str,
    args: &[Arg],
    depth: usize,
    stdin: &Stdin,
) -> Option<String> {
    generic_checks(w, name, args);
    let ops = operands(args);
    let op_str = |k: usize| ops.get(k).map(|a| a.s()).unwrap_or("");

    if raw.starts_with("/etc/init.d/") || raw.starts_with("/etc/rc.d/") {
        service_verb(w, args.get(1).map(|a| a.s()).unwrap_or(""));
        return None;
    }
    if SHELLS.contains(&name) {
        shell(w, name, args, depth, stdin);
        return None;
    }
    if let Some(flags) = interpreter_code_flags(name) {
        interpreter(w, name, flags, args, depth, stdin);
        return None;
    }

    match name {
        // ---- wrappers that run their arguments as a command ----
        "sudo" => {
            w.add(C::Privilege);
            if has_flag(args, 'e', &["edit"]) {
                w.add(C::FileWrite);
                return None;
            }
            let mut i = skip_options(
                args,
                1,
                "ugCDprtTUh",
                &[
                    "user",
                    "group",
                    "close-from",
                    "chdir",
                    "prompt",
                    "role",
                    "type",
                    "other-user",
                    "host",
                    "command-timeout",
                ],
            );
            i = skip_assignments(w, args, i);
            return run_rest(w, args, i, depth, stdin);
        }
        "sudoedit" => {
            w.add(C::Privilege);
            w.add(C::FileWrite);
        }
        "doas" => {
            w.add(C::Privilege);
            let i = skip_options(args, 1, "uC", &[]);
            return run_rest(w, args, i, depth, stdin);
        }
        "pkexec" => {
            w.add(C::Privilege);
            let i = skip_options(args, 1, "", &["user"]);
            return run_rest(w, args, i, depth, stdin);
        }
        "su" | "runuser" => {
            w.add(C::Privilege);
            let mut k = 1;
            let mut ran = false;
            while k < args.len() {
                let s = args[k].s();
                if s == "-c" || s == "--command" {
                    if let Some(code) = args.get(k + 1) {
                        run_code(w, &[code], depth, &Stdin::None, name);
                        ran = true;
                    }
                    k += 2;
                    continue;
                }
                if let Some(code) = s.strip_prefix("--command=") {
                    w.script(code, depth + 1, &Stdin::None);
                    ran = true;
                }
                if s == "--" && name == "runuser" && !ran {
                    return run_rest(w, args, k + 1, depth, stdin);
                }
                k += 1;
            }
        }
        "env" => return env_cmd(w, args, depth, stdin),
        "nohup" | "builtin" | "setsid" | "unbuffer" | "catchsegv" | "proxychains" | "proxychains4" | "torsocks"
        | "firejail" | "faketime" => {
            let i = skip_options(args, 1, "", &[]);
            let i = if name == "faketime" { i + 1 } else { i };
            return run_rest(w, args, i, depth, stdin);
        }
        "command" => {
            if has_flag(args, 'v', &[]) || has_flag(args, 'V', &[]) {
                w.add(C::ReadOnly);
                return None;
            }
            let i = skip_options(args, 1, "", &[]);
            return run_rest(w, args, i, depth, stdin);
        }
        "exec" => {
            let i = skip_options(args, 1, "a", &[]);
            if i >= args.len() {
                w.add(C::ReadOnly);
                return None;
            }
            return run_rest(w, args, i, depth, stdin);
        }
        "time" if args.len() > 1 => {
            let i = skip_options(args, 1, "fo", &["format", "output"]);
            return run_rest(w, args, i, depth, stdin);
        }
        "nice" => {
            let mut i = 1;
            while i < args.len() {
                let s = args[i].s();
                if s == "-n" || s == "--adjustment" {
                    i += 2;
                } else if s.starts_with('-') && s != "--" {
                    i += 1;
                } else {
                    if s == "--" {
                        i += 1;
                    }
                    break;
                }
            }
            if i >= args.len() {
                w.add(C::ReadOnly);
            }
            return run_rest(w, args, i, depth, stdin);
        }
        "ionice" => {
            if has_flag(args, 'p', &["pid", "pgid", "uid"]) {
                w.add(C::Other);
                return None;
            }
            let i = skip_options(args, 1, "cnP", &["class", "classdata"]);
            if i >= args.len() {
                w.add(C::ReadOnly);
            }
            return run_rest(w, args, i, depth, stdin);
        }
        "stdbuf" => {
            let i = skip_options(args, 1, "ioe", &["input", "output", "error"]);
            return run_rest(w, args, i, depth, stdin);
        }
        "timeout" => {
            let i = skip_options(args, 1, "sk", &["signal", "kill-after"]);
            return run_rest(w, args, i + 1, depth, stdin);
        }
        "strace" | "ltrace" => {
            if has_flag(args, 'p', &["attach"]) {
                w.add(C::Other);
                return None;
            }
            let i = skip_options(args, 1, "oeEsSuaIOPXbUn", &["output", "trace", "signal"]);
            if i >= args.len() {
                w.add(C::Other);
            }
            return run_rest(w, args, i, depth, stdin);
        }
        "chroot" => {
            let i = skip_options(args, 1, "", &["userspec", "groups"]);
            if i + 1 >= args.len() {
                // Interactive shell in the new root.
                w.add(C::Other);
                return None;
            }
            return run_rest(w, args, i + 1, depth, stdin);
        }
        "flock" => {
            let i = skip_options(args, 1, "wE", &["timeout", "wait", "conflict-exit-code"]);
            let mut k = i + 1;
            while k < args.len() {
                let s = args[k].s();
                if s == "-c" || s == "--command" {
                    if let Some(code) = args.get(k + 1) {
                        run_code(w, &[code], depth, &Stdin::None, "flock -c");
                    }
                    return None;
                }
                if s.starts_with('-') && s != "--" {
                    k += 1;
                    continue;
                }
                if s == "--" {
                    k += 1;
                }
                break;
            }
            if k >= args.len() {
                w.add(C::ReadOnly);
                return None;
            }
            return run_rest(w, args, k, depth, stdin);
        }
        "xargs" => {
            let i = skip_options(
                args,
                1,
                "adEeIiLlnPs",
                &[
                    "arg-file",
                    "delimiter",
                    "eof",
                    "replace",
                    "max-lines",
                    "max-args",
                    "max-procs",
                    "max-chars",
                    "process-slot-var",
                ],
            );
            // The arguments come from stdin: one unknown argument stands
            // for them, so `xargs rm` is treated like `rm $UNKNOWN`.
            let mut inner: Vec<Arg> = if i < args.len() { args[i..].to_vec() } else { vec![Arg::literal("echo")] };
            inner.push(Arg {
                lit: None,
                text: "*".to_string(),
                downloaded: matches!(stdin, Stdin::Downloaded),
                ..Arg::default()
            });
            return w.command(&inner, depth + 1, &Stdin::None);
        }
        "watch" => {
            let i = skip_options(args, 1, "nqg", &["interval", "chgexit"]);
            if has_flag(args, 'x', &["exec"]) {
                return run_rest(w, args, i, depth, stdin);
            }
            let parts: Vec<&Arg> = args[i.min(args.len())..].iter().collect();
            if !parts.is_empty() {
                run_code(w, &parts, depth, &Stdin::None, "watch");
            }
            w.add(C::ReadOnly);
        }
        "busybox" | "toybox" => {
            if args.len() < 2 || args[1].s().starts_with('-') {
                w.add(C::ReadOnly);
                return None;
            }
            return run_rest(w, args, 1, depth, stdin);
        }
        "ssh" => ssh(w, args, depth, stdin),
        "at" | "batch" => {
            // Jobs read from stdin (or -f FILE) are shell code run later.
            if has_flag(args, 'f', &[]) {
                w.unparsed("`at -f` schedules a file whose content is unknown".to_string());
            } else if has_flag(args, 'l', &[]) || has_flag(args, 'c', &[]) {
                w.add(C::ReadOnly);
            } else {
                w.add(C::Other);
                stdin_code(w, depth, stdin, true, name);
            }
        }
        "systemd-run" => {
            let i = skip_options(
                args,
                1,
                "pEuMH",
                &[
                    "unit",
                    "property",
                    "setenv",
                    "description",
                    "slice",
                    "uid",
                    "gid",
                    "machine",
                    "host",
                    "working-directory",
                    "on-calendar",
                    "on-active",
                ],
            );
            w.add(C::Other);
            return run_rest(w, args, i, depth, stdin);
        }
        "unshare" | "nsenter" => {
            let i = skip_options(args, 1, "tSGwR", &["target", "setuid", "setgid", "wd", "root"]);
            w.add(C::Privilege);
            return run_rest(w, args, i, depth, stdin);
        }
        "script" => {
            let mut ran = false;
            for (k, a) in args.iter().enumerate() {
                if (a.s() == "-c" || a.s() == "--command")
                    && let Some(code) = args.get(k + 1)
                {
                    run_code(w, &[code], depth, &Stdin::None, "script -c");
                    ran = true;
                }
            }
            if !ran {
                w.add(C::Other);
            }
        }
        "tmux" | "screen" | "parallel" | "expect" | "byobu" | "dtach" | "socat-exec" => {
            let lists = args.len() == 1
                || args
                    .iter()
                    .skip(1)
                    .all(|a| matches!(a.s(), "ls" | "list-sessions" | "-ls" | "-list" | "--version" | "-V"));
            if lists {
                w.add(C::ReadOnly);
            } else {
                w.unparsed(format!("`{name}` runs commands we do not model"));
            }
        }
        "eval" => {
            let parts: Vec<&Arg> = args.iter().skip(1).collect();
            run_code(w, &parts, depth, stdin, "eval");
        }
        "source" | "." => {
            match args.get(1) {
                Some(a) if a.downloaded => w.add(C::RemoteCode),
                Some(a) if a.plain().is_some_and(|p| w.is_downloaded_file(p)) => {
                    w.add(C::RemoteCode);
                }
                _ => {}
            }
            w.unparsed(format!("`{name}` runs a file whose content is unknown"));
        }
        "alias" => {
            if args.iter().skip(1).any(|a| a.s().contains('=') || a.is_dynamic()) {
                w.unparsed("alias definitions change what command names mean".to_string());
            } else {
                w.add(C::ReadOnly);
            }
        }
        "enable" if args.len() > 1 => {
            w.unparsed("`enable` changes builtins".to_string());
        }
        "hash" if has_flag(args, 'p', &[]) => {
            w.unparsed("`hash -p` changes what command names mean".to_string());
        }
        "trap" if args.len() > 2 => {
            // The handler is code.
            if let Some(code) = args.get(1) {
                run_code(w, &[code], depth, &Stdin::None, "trap");
            }
        }

        // ---- environment and variables ----
        "printenv" | "history" | "compgen" => w.add(C::CredentialAccess),
        "set" => {
            if args.len() == 1 {
                w.add(C::CredentialAccess);
            } else {
                w.add(C::ReadOnly);
            }
        }
        "export" | "declare" | "typeset" | "readonly" | "local" => {
            for a in args.iter().skip(1) {
                let s = a.s();
                if let Some((n, v)) = s.split_once('=') {
                    let v = if a.is_dynamic() { None } else { Some(v) };
                    if dangerous_assignment(n.trim_end_matches('+'), v) {
                        w.unparsed(format!("assignment to {n} changes how commands resolve"));
                    }
                }
            }
            let names = args.iter().skip(1).filter(|a| !a.s().starts_with('-') && !a.s().starts_with('+')).count();
            let lists_funcs = has_flag(args, 'f', &[]) || has_flag(args, 'F', &[]);
            if names == 0 && !lists_funcs && name != "local" {
                w.add(C::CredentialAccess);
            } else {
                w.add(C::ReadOnly);
            }
        }
        "read" | "mapfile" | "readarray" | "unset" | "getopts" => {
            for a in ops {
                if let Some(n) = a.plain() {
                    w.record_assign(n, None);
                }
            }
            w.add(C::ReadOnly);
        }
        "echo" => {
            w.add(C::ReadOnly);
            return echo_output(args);
        }
        "printf" => {
            w.add(C::ReadOnly);
            if let Some(k) = args.iter().position(|a| a.s() == "-v") {
                if let Some(n) = args.get(k + 1).and_then(|a| a.plain()) {
                    w.record_assign(n, None);
                }
                return None;
            }
            let fmt = args.get(1)?.plain()?;
            if args.len() == 2 && !fmt.contains('%') && !fmt.contains('\\') {
                return Some(fmt.to_string());
            }
        }

        // ---- find, sed, awk ----
        "find" => find(w, args, depth),
        "sed" => sed(w, args),
        "awk" | "gawk" | "mawk" | "nawk" | "busybox-awk" => awk(w, args),

        // ---- destructive ----
        "rm" => rm(w, args),
        "rmdir" | "unlink" => {
            if ops.iter().any(|a| a.is_dynamic() && paths::is_system_path(&a.text))
                || ops.iter().any(|a| a.plain().is_some_and(paths::is_system_path))
            {
                w.add(C::DestructiveFile);
            } else {
                w.add(C::FileWrite);
            }
        }
        "shred" | "wipefs" | "mkswap" | "mke2fs" | "mkdosfs" | "mkntfs" | "blkdiscard" | "zerofree" | "srm"
        | "wipe" => w.add(C::DestructiveFile),
        n if n.starts_with("mkfs") => w.add(C::DestructiveFile),
        "fdisk" | "sfdisk" | "parted" | "gdisk" | "sgdisk" | "cfdisk" => {
            if has_flag(args, 'l', &["list"])
                || args.iter().any(|a| a.s() == "print")
                || has_flag(args, 'p', &["print"]) && name != "parted"
            {
                w.add(C::ReadOnly);
            } else {
                w.add(C::DestructiveFile);
            }
        }
        "dd" => dd(w, args),
        "truncate" => {
            let zero = args.iter().enumerate().any(|(k, a)| {
                let s = a.s();
                s == "-s0"
                    || s == "--size=0"
                    || (s == "-s" || s == "--size") && args.get(k + 1).is_some_and(|v| v.s() == "0")
            });
            let targets: Vec<&&Arg> = ops.iter().filter(|a| a.s() != "0").collect();
            if zero && targets.iter().any(|a| a.is_dynamic() || a.plain().is_some_and(paths::is_system_path)) {
                w.add(C::DestructiveFile);
            } else {
                w.add(C::FileWrite);
            }
            for t in targets {
                if t.plain().is_some_and(paths::is_privilege_file) {
                    w.add(C::Privilege);
                }
            }
        }
        "crontab" => {
            if has_flag(args, 'r', &[]) {
                w.add(C::DestructiveFile);
            } else if has_flag(args, 'l', &[]) {
                w.add(C::ReadOnly);
            } else {
                w.add(C::FileWrite);
            }
        }

        // ---- file writes ----
        "cp" | "mv" | "install" | "ln" => copy_like(w, name, args),
        "tee" => {
            let targets: Vec<&Arg> = ops.clone();
            if targets.is_empty() {
                w.add(C::ReadOnly);
            }
            for t in targets {
                write_target(w, t);
            }
        }
        "touch" | "mkdir" | "mktemp" | "mkfifo" | "patch" | "split" | "csplit" | "dos2unix" | "unix2dos" | "bzip2"
        | "bunzip2" | "xz" | "unxz" | "zip" | "7z" | "7za" | "zstd" | "unzstd" | "ed" | "logrotate" | "git-lfs"
        | "sponge" | "rename" | "mknod" | "chattr" | "fallocate" | "restorecon" | "ex" => {
            if name == "mknod" || name == "chattr" {
                w.add(C::Privilege);
            }
            for t in &ops {
                if t.plain().is_some_and(paths::is_privilege_file) {
                    w.add(C::Privilege);
                }
            }
            w.add(C::FileWrite);
        }
        "gzip" | "gunzip" | "unzip" => {
            if has_flag(args, 'c', &["stdout", "to-stdout"])
                || has_flag(args, 'l', &["list"])
                || has_flag(args, 't', &["test"])
            {
                w.add(C::ReadOnly);
            } else {
                w.add(C::FileWrite);
            }
        }
        "tar" | "bsdtar" => tar(w, args),
        "vi" | "vim" | "nvim" | "nano" | "emacs" | "pico" | "joe" | "mcedit" | "micro" => {
            if args.iter().any(|a| {
                let s = a.s();
                s == "-c" || s.starts_with('+') || s == "--cmd" || s == "-S"
            }) {
                w.unparsed(format!("{name} runs editor commands"));
            }
            for t in &ops {
                if t.plain().is_some_and(paths::is_privilege_file) {
                    w.add(C::Privilege);
                }
            }
            w.add(C::FileWrite);
        }
        "yq" => {
            if has_flag(args, 'i', &["inplace"]) {
                w.add(C::FileWrite);
            } else {
                w.add(C::ReadOnly);
            }
        }

        // ---- power state ----
        "shutdown" | "reboot" | "halt" | "poweroff" | "init" | "telinit" | "killall" | "killall5" | "pkill"
        | "kexec" => w.add(C::PowerState),
        "kill" => kill(w, args),
        "systemctl" => systemctl(w, args),
        "service" => {
            if has_flag(args, 'x', &["status-all"]) || args.len() == 2 && args[1].s() == "--status-all" {
                w.add(C::ReadOnly);
            } else {
                service_verb(w, op_str(1));
            }
        }
        "fuser" => {
            if has_flag(args, 'k', &["kill"]) {
                w.add(C::PowerState);
            } else {
                w.add(C::ReadOnly);
            }
        }

        // ---- privilege ----
        "chmod" => chmod(w, args),
        "chown" | "chgrp" | "setfacl" | "visudo" | "passwd" | "chpasswd" | "useradd" | "adduser" | "usermod"
        | "userdel" | "deluser" | "groupadd" | "groupdel" | "groupmod" | "gpasswd" | "addgroup" | "delgroup"
        | "newgrp" | "setcap" | "vipw" | "vigr" | "sg" | "chsh" | "chfn" | "newusers" | "setpriv" | "capsh"
        | "usermod.real" => {
            w.add(C::Privilege);
        }

        // ---- packages ----
        "apt" | "apt-get" | "aptitude" | "yum" | "dnf" | "microdnf" | "zypper" | "apk" | "snap" | "flatpak"
        | "brew" | "port" | "pkg" | "conda" | "mamba" | "gem" | "yarn" | "pnpm" | "npm" | "cargo" | "go" | "pip"
        | "pip2" | "pip3" | "pipx" | "poetry" | "uv" | "composer" | "cpan" | "cpanm" | "emerge" | "nix-env"
        | "guix" | "opkg" | "xbps-install" | "eopkg" | "swupd" | "apt-mark" => packages(w, name, args),
        "pacman" | "yay" | "paru" => {
            let mutates = args.iter().skip(1).any(|a| {
                let s = a.s();
                (s.starts_with("-S") && !s.contains('s') && !s.contains('i') && !s.contains('l'))
                    || s.starts_with("-R")
                    || s.starts_with("-U")
                    || matches!(s, "--sync" | "--remove" | "--upgrade")
            });
            w.add(if mutates { C::PackageChange } else { C::ReadOnly });
        }
        "dpkg" => {
            let mutates = args.iter().skip(1).any(|a| {
                matches!(
                    a.s(),
                    "-i" | "--install"
                        | "-r"
                        | "--remove"
                        | "-P"
                        | "--purge"
                        | "--configure"
                        | "--unpack"
                        | "-x"
                        | "--extract"
                        | "--set-selections"
                )
            });
            w.add(if mutates { C::PackageChange } else { C::ReadOnly });
        }
        "rpm" => {
            let mutates = args.iter().skip(1).any(|a| {
                let s = a.s();
                (s.starts_with('-')
                    && !s.starts_with("--")
                    && (s.contains('i') || s.contains('U') || s.contains('e') || s.contains('F'))
                    && !s.starts_with("-q"))
                    || matches!(s, "--install" | "--upgrade" | "--erase" | "--freshen")
            });
            w.add(if mutates { C::PackageChange } else { C::ReadOnly });
        }
        "make" => {
            if ops.iter().any(|a| matches!(a.s(), "install" | "uninstall")) {
                w.add(C::PackageChange);
            } else {
                w.add(C::Other);
            }
        }

        // ---- git ----
        "git" => git(w, args),

        // ---- kubernetes & containers ----
        "kubectl" | "oc" | "k" | "microk8s.kubectl" => return kubectl(w, args, depth, stdin),
        "helm" => helm(w, args),
        "docker" | "podman" | "nerdctl" | "crictl" => return docker(w, args, depth, stdin),

        // ---- network ----
        "curl" => curl(w, args),
        "wget" => wget(w, args),
        "nc" | "ncat" | "netcat" | "socat" | "telnet" | "ftp" | "sftp" | "tftp" | "lftp" | "rsh" | "rlogin" | "rcp"
        | "mail" | "mailx" | "mutt" | "sendmail" | "s3cmd" | "rclone" | "croc" | "nc.traditional" | "nc.openbsd" => {
            w.add(C::NetworkExfiltration);
        }
        "scp" => {
            let ops: Vec<&Arg> = {
                let i = skip_options(args, 1, "cFiJlmoPSDX", &[]);
                args[i.min(args.len())..].iter().collect()
            };
            remote_copy(w, &ops, false);
        }
        "rsync" => {
            let i = skip_options(
                args,
                1,
                "eTfB",
                &[
                    "rsh",
                    "exclude",
                    "include",
                    "exclude-from",
                    "include-from",
                    "files-from",
                    "filter",
                    "port",
                    "password-file",
                    "log-file",
                    "temp-dir",
                    "compare-dest",
                    "link-dest",
                    "backup-dir",
                    "suffix",
                    "rsync-path",
                    "chmod",
                    "chown",
                ],
            );
            let ops: Vec<&Arg> = args[i.min(args.len())..].iter().filter(|a| !a.s().starts_with('-')).collect();
            let delete = args.iter().any(|a| a.s().starts_with("--delete") || a.s() == "--remove-source-files");
            remote_copy(w, &ops, delete);
        }
        "aws" | "gsutil" | "az" | "gcloud" => {
            let copies = args.iter().any(|a| matches!(a.s(), "cp" | "sync" | "mv" | "upload" | "upload-batch"));
            let last_remote = args.last().is_some_and(|a| {
                let s = a.s();
                s.starts_with("s3://") || s.starts_with("gs://") || s.contains("://")
            });
            if copies && last_remote {
                w.add(C::NetworkExfiltration);
            } else {
                w.add(C::Other);
            }
        }

        // ---- read-only with arguments that change things ----
        "ip" => {
            let verbs = ["add", "del", "delete", "set", "flush", "change", "replace", "append", "prepend", "exec"];
            if args.iter().skip(1).any(|a| verbs.contains(&a.s())) {
                if args.iter().any(|a| a.s() == "netns") && args.iter().any(|a| a.s() == "exec") {
                    // `ip netns exec NS cmd`
                    if let Some(k) = args.iter().position(|a| a.s() == "exec") {
                        return run_rest(w, args, k + 2, depth, stdin);
                    }
                }
                w.add(C::Other);
            } else {
                w.add(C::ReadOnly);
            }
        }
        "ifconfig" | "route" | "arp" | "mount" | "swapon" | "swapoff" => {
            let changes = ops.len() > usize::from(name == "ifconfig")
                || (name == "swapoff" || name == "swapon") && !has_flag(args, 's', &["show", "summary"]);
            w.add(if changes { C::Other } else { C::ReadOnly });
        }
        "iptables" | "ip6tables" | "nft" | "ufw" | "firewall-cmd" => {
            let reads = has_flag(args, 'L', &["list", "list-rules"])
                || has_flag(args, 'S', &[])
                || args.iter().any(|a| matches!(a.s(), "list" | "status" | "--list-all" | "--state"));
            w.add(if reads { C::ReadOnly } else { C::Other });
        }
        "sysctl" => {
            let writes = has_flag(args, 'w', &["write", "load", "system"])
                || has_flag(args, 'p', &[])
                || ops.iter().any(|a| a.s().contains('='));
            w.add(if writes { C::Other } else { C::ReadOnly });
        }
        "date" => {
            let sets = has_flag(args, 's', &["set"]);
            w.add(if sets { C::Other } else { C::ReadOnly });
        }
        "hostname" => {
            w.add(if ops.is_empty() && !has_flag(args, 'F', &["file"]) { C::ReadOnly } else { C::Other });
        }
        "dmesg" => {
            let clears = has_flag(args, 'c', &["clear", "read-clear"])
                || has_flag(args, 'C', &[])
                || has_flag(args, 'D', &["console-off"]);
            w.add(if clears { C::Other } else { C::ReadOnly });
        }
        "journalctl" => {
            let writes = args.iter().any(|a| {
                let s = a.s();
                s.starts_with("--vacuum")
                    || matches!(s, "--rotate" | "--flush" | "--sync" | "--relinquish-var" | "--setup-keys")
            });
            w.add(if writes { C::Other } else { C::ReadOnly });
        }
        "getent" => {
            if ops.iter().any(|a| matches!(a.s(), "shadow" | "gshadow")) {
                w.add(C::CredentialAccess);
            }
            w.add(C::ReadOnly);
        }
        "top" => w.add(C::ReadOnly),

        n if READ_ONLY.contains(&n) => w.add(C::ReadOnly),
        _ => w.add(C::Other),
    }
    None
}

fn skip_assignments(w: &mut Walker, args: &[Arg], mut i: usize) -> usize {
    while i < args.len() {
        let s = args[i].s();
        match s.split_once('=') {
            Some((n, v)) if is_var_name(n) => {
                let v = if args[i].is_dynamic() { None } else { Some(v) };
                if dangerous_assignment(n, v) {
                    w.unparsed(format!("assignment to {n} changes how commands resolve"));
                }
                i += 1;
            }
            _ => break,
        }
    }
    i
}

fn is_var_name(n: &str) -> bool {
    !n.is_empty()
        && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !n.starts_with(|c: char| c.is_ascii_digit())
}

fn env_cmd(w: &mut Walker, args: &[Arg], depth: usize, stdin: &Stdin) -> Option<String> {
    let mut i = 1;
    while i < args.len() {
        let s = args[i].s();
        if s == "--" {
            i += 1;
            break;
        }
        if s == "-S" || s == "--split-string" {
            if let Some(code) = args.get(i + 1) {
                run_code(w, &[code], depth, stdin, "env -S");
            }
            return None;
        }
        if let Some(code) = s.strip_prefix("--split-string=") {
            w.script(code, depth + 1, stdin);
            return None;
        }
        if matches!(s, "-u" | "--unset" | "-C" | "--chdir") {
            i += 2;
            continue;
        }
        if s.starts_with('-') && s.len() > 1 {
            i += 1;
            continue;
        }
        break;
    }
    let i = skip_assignments(w, args, i);
    if i >= args.len() {
        // `env` alone dumps the environment.
        w.add(C::CredentialAccess);
        return None;
    }
    run_rest(w, args, i, depth, stdin)
}

fn shell(w: &mut Walker, name: &str, args: &[Arg], depth: usize, stdin: &Stdin) {
    let mut has_c = false;
    let mut from_stdin = false;
    let mut i = 1;
    while i < args.len() {
        let s = args[i].s();
        if s == "--" || s == "-" {
            i += 1;
            break;
        }
        if let Some(long) = s.strip_prefix("--") {
            i += if matches!(long, "rcfile" | "init-file") { 2 } else { 1 };
            continue;
        }
        if let Some(short) = s.strip_prefix('-').or_else(|| s.strip_prefix('+')) {
            if short.contains('c') {
                has_c = true;
            }
            if short.contains('s') && s.starts_with('-') {
                // `-s`: commands come from stdin, operands are arguments.
                from_stdin = true;
            }
            i += if short.ends_with('o') || short.ends_with('O') { 2 } else { 1 };
            continue;
        }
        break;
    }
    if has_c {
        match args.get(i) {
            Some(code) => run_code(w, &[code], depth, &Stdin::None, name),
            None => w.add(C::Other),
        }
    } else if let Some(script) = args.get(i).filter(|_| !from_stdin) {
        script_operand(w, script, name);
    } else {
        stdin_code(w, depth, stdin, true, name);
    }
}

fn interpreter(w: &mut Walker, name: &str, flags: &[&str], args: &[Arg], depth: usize, stdin: &Stdin) {
    let mut i = 1;
    while i < args.len() {
        let s = args[i].s();
        if flags.contains(&s)
            || (s.starts_with('-')
                && !s.starts_with("--")
                && flags.iter().any(|f| f.len() == 2 && s.ends_with(&f[1..]) && s.len() > 2 && !s.contains('m')))
        {
            match args.get(i + 1) {
                Some(code) => {
                    if code.downloaded {
                        w.add(C::RemoteCode);
                    } else if let Some(c) = code.plain() {
                        inline_code(w, c);
                    } else {
                        w.unparsed(format!("{name} runs code that is not static"));
                    }
                }
                None => w.add(C::Other),
            }
            return;
        }
        if s == "-m" {
            let module = args.get(i + 1).map(|a| a.s()).unwrap_or("");
            if module == "pip" || module == "ensurepip" {
                packages(w, "pip", &args[i + 1..]);
            } else if matches!(module, "json.tool" | "platform" | "site" | "sysconfig") {
                w.add(C::ReadOnly);
            } else if module == "http.server" || module == "SimpleHTTPServer" {
                w.add(C::NetworkExfiltration);
            } else {
                w.add(C::Other);
            }
            return;
        }
        if s == "-V" || s == "--version" || s == "-v" && name.starts_with("node") {
            w.add(C::ReadOnly);
            return;
        }
        if s == "-" {
            stdin_code(w, depth, stdin, false, name);
            return;
        }
        if s.starts_with('-') {
            i += if matches!(s, "-W" | "-X" | "-I" | "-r" | "--require") && name != "php" { 2 } else { 1 };
            continue;
        }
        script_operand(w, &args[i], name);
        return;
    }
    stdin_code(w, depth, stdin, false, name);
}

fn ssh(w: &mut Walker, args: &[Arg], depth: usize, stdin: &Stdin) {
    let i = skip_options(args, 1, "BbcDEeFIiJLlmOoPpQRSWw", &[]);
    if args.iter().skip(1).any(|a| {
        let s = a.s();
        s.starts_with("-R") || s.starts_with("-D") || s.starts_with("-L") || s.starts_with("-w")
    }) {
        w.add(C::Other);
    }
    if i >= args.len() {
        w.add(C::Other);
        return;
    }
    let remote: Vec<&Arg> = args[i + 1..].iter().collect();
    if remote.is_empty() {
        // Interactive session (or commands from stdin).
        match stdin {
            Stdin::None => w.add(C::Other),
            _ => stdin_code(w, depth, stdin, true, "ssh"),
        }
        return;
    }
    run_code(w, &remote, depth, stdin, "ssh");
}

fn echo_output(args: &[Arg]) -> Option<String> {
    let mut out = String::new();
    let mut first = true;
    let mut opts = true;
    for a in args.iter().skip(1) {
        let l = a.plain()?;
        if opts && matches!(l, "-n" | "-e" | "-E" | "-ne" | "-en") {
            if l.contains('e') {
                // Escapes would be interpreted: we do not model that.
                return None;
            }
            continue;
        }
        opts = false;
        if !first {
            out.push(' ');
        }
        first = false;
        out.push_str(l);
    }
    if out.contains('\\') {
        // Some `sh` implementations interpret escapes in echo.
        return None;
    }
    Some(out)
}

fn find(w: &mut Walker, args: &[Arg], depth: usize) {
    let mut k = 1;
    let mut writes = false;
    while k < args.len() {
        let s = args[k].s();
        match s {
            "-exec" | "-execdir" | "-ok" | "-okdir" => {
                let start = k + 1;
                let mut end = start;
                while end < args.len() && !matches!(args[end].s(), ";" | "+") {
                    end += 1;
                }
                if start < end {
                    let inner: Vec<Arg> = args[start..end]
                        .iter()
                        .map(|a| {
                            if a.s() == "{}" {
                                // The found path: unknown.
                                Arg { lit: None, text: "*".to_string(), ..Arg::default() }
                            } else if a.s().contains("{}") {
                                // Embedded in a larger word (often `sh -c`
                                // code): keep the word parseable.
                                Arg::literal(&a.s().replace("{}", "__found_path__"))
                            } else {
                                a.clone()
                            }
                        })
                        .collect();
                    w.command(&inner, depth + 1, &Stdin::None);
                }
                k = end + 1;
                continue;
            }
            "-delete" => w.add(C::DestructiveFile),
            "-fprint" | "-fprint0" | "-fprintf" | "-fls" => writes = true,
            _ => {}
        }
        k += 1;
    }
    if writes {
        w.add(C::FileWrite);
    }
    w.add(C::ReadOnly);
}

fn sed(w: &mut Walker, args: &[Arg]) {
    let in_place = args.iter().skip(1).any(|a| {
        let s = a.s();
        s.starts_with("--in-place")
            || (s.starts_with('-')
                && !s.starts_with("--")
                && s[1..].starts_with(|c: char| c != 'e' && c != 'f')
                && s.contains('i')
                && !s.contains('e')
                || s.starts_with("-i"))
    });
    // Scripts: -e values, or the first operand when there is no -e.
    let mut scripts = Vec::new();
    let mut files = Vec::new();
    let mut k = 1;
    let mut has_e = false;
    while k < args.len() {
        let s = args[k].s();
        if s == "-e" || s == "--expression" {
            has_e = true;
            if let Some(v) = args.get(k + 1) {
                scripts.push(v.s().to_string());
            }
            k += 2;
            continue;
        }
        if let Some(v) = s.strip_prefix("--expression=") {
            has_e = true;
            scripts.push(v.to_string());
        } else if s == "-f" || s == "--file" {
            w.add(C::Other);
            k += 2;
            continue;
        } else if !s.starts_with('-') || s == "-" {
            files.push(&args[k]);
        }
        k += 1;
    }
    if !has_e && !files.is_empty() {
        scripts.push(files.remove(0).s().to_string());
    }
    for sc in &scripts {
        sed_script(w, sc);
    }
    if in_place {
        w.add(C::FileWrite);
        for f in &files {
            if f.plain().is_some_and(paths::is_privilege_file) {
                w.add(C::Privilege);
            }
            if f.plain().is_some_and(paths::is_secret_path) {
                w.add(C::CredentialAccess);
            }
        }
    } else {
        w.add(C::ReadOnly);
    }
}

/// GNU sed can run commands (`e`, `s///e`) and write files (`w`).
fn sed_script(w: &mut Walker, script: &str) {
    for cmd in script.split([';', '\n']) {
        let c = cmd.trim_start_matches(|ch: char| {
            ch.is_ascii_digit() || ch.is_whitespace() || matches!(ch, '$' | ',' | '!' | '{' | '}')
        });
        if c == "e" || c.starts_with("e ") {
            w.unparsed("sed `e` command runs shell code".to_string());
        }
        if c.starts_with("w ") || c.starts_with("W ") {
            w.add(C::FileWrite);
        }
        if let Some(rest) = c.strip_prefix('s')
            && let Some(flags) = sed_s_flags(rest)
        {
            if flags.contains('e') {
                w.unparsed("sed `s///e` runs shell code".to_string());
            }
            if flags.contains('w') {
                w.add(C::FileWrite);
            }
        }
    }
}

/// Flags of an `s` command (text after the third unescaped delimiter).
fn sed_s_flags(rest: &str) -> Option<String> {
    let mut chars = rest.chars();
    let delim = chars.next()?;
    if delim == '\\' || delim.is_whitespace() {
        return None;
    }
    let mut seen = 0;
    let mut escaped = false;
    let mut flags = String::new();
    for ch in chars {
        if seen == 2 {
            if ch.is_whitespace() || ch == '}' {
                break;
            }
            flags.push(ch);
            continue;
        }
        if escaped {
            escaped = false;
        } else if ch == '\\' {
            escaped = true;
        } else if ch == delim {
            seen += 1;
        }
    }
    (seen == 2).then_some(flags)
}

fn awk(w: &mut Walker, args: &[Arg]) {
    let i = skip_options(args, 1, "Fvf", &["field-separator", "assign", "file"]);
    if has_flag(args, 'f', &["file"]) {
        w.add(C::Other);
        return;
    }
    let Some(prog) = args.get(i) else {
        w.add(C::ReadOnly);
        return;
    };
    let Some(p) = prog.plain() else {
        w.unparsed("awk program is not static".to_string());
        return;
    };
    if p.contains("system") || p.contains('|') {
        w.unparsed("awk program runs commands".to_string());
    }
    if p.contains("> \"") || p.contains(">\"") || p.contains(">> \"") {
        w.add(C::FileWrite);
    }
    if p.contains("ENVIRON") {
        w.add(C::CredentialAccess);
    }
    w.add(C::ReadOnly);
}

fn rm(w: &mut Walker, args: &[Arg]) {
    let mut destructive = false;
    let mut after_dd = false;
    for a in args.iter().skip(1) {
        let s = a.s();
        if !after_dd && s == "--" {
            after_dd = true;
            continue;
        }
        if !after_dd && s.starts_with("--") {
            if matches!(s, "--recursive" | "--no-preserve-root") {
                destructive = true;
            }
            continue;
        }
        if !after_dd && s.starts_with('-') && s.len() > 1 && a.plain().is_some() {
            if s.contains('r') || s.contains('R') {
                destructive = true;
            }
            continue;
        }
        // An operand.
        match a.plain() {
            Some(p) => {
                if paths::is_system_path(p) {
                    destructive = true;
                }
            }
            None => {
                // A glob or an unknown value: could be anything.
                if !a.glob || paths::is_system_path(&a.text) {
                    destructive = true;
                }
            }
        }
    }
    w.add(if destructive { C::DestructiveFile } else { C::FileWrite });
}

fn dd(w: &mut Walker, args: &[Arg]) {
    let mut wrote = false;
    for a in args.iter().skip(1) {
        let s = a.s();
        if let Some(v) = s.strip_prefix("of=") {
            wrote = true;
            let t = if a.is_dynamic() {
                Arg { lit: None, text: v.to_string(), glob: a.glob, ..Arg::default() }
            } else {
                Arg::literal(v)
            };
            write_target(w, &t);
        }
        if let Some(v) = s.strip_prefix("if=")
            && paths::is_secret_path(v)
        {
            w.add(C::CredentialAccess);
        }
    }
    if !wrote {
        w.add(C::ReadOnly);
    }
}

fn copy_like(w: &mut Walker, name: &str, args: &[Arg]) {
    let takes = if name == "install" { "mogtS" } else { "tS" };
    let i = skip_options(args, 1, takes, &["target-directory", "suffix", "mode", "owner", "group"]);
    let ops: Vec<&Arg> = args[i.min(args.len())..].iter().filter(|a| !a.s().starts_with('-')).collect();
    let target_dir = args.iter().enumerate().find_map(|(k, a)| {
        let s = a.s();
        if s == "-t" || s == "--target-directory" { args.get(k + 1) } else { None }
    });
    let dest = target_dir.or_else(|| ops.last().copied());
    w.add(C::FileWrite);
    if let Some(d) = dest {
        if name == "mv" && d.plain().is_some_and(|p| p == "/dev/null") {
            w.add(C::DestructiveFile);
        } else {
            write_target(w, d);
        }
        if name == "mv" || name == "ln" {
            // Moving a system path away (or replacing one with a link).
            let sources = if target_dir.is_some() { &ops[..] } else { &ops[..ops.len().saturating_sub(1)] };
            if sources.iter().any(|a| a.plain().is_some_and(paths::is_system_path)) && name == "mv" {
                w.add(C::DestructiveFile);
            }
        }
    }
}

fn tar(w: &mut Walker, args: &[Arg]) {
    let runs = args.iter().skip(1).any(|a| {
        let s = a.s();
        s.starts_with("--to-command")
            || s.starts_with("--use-compress-program")
            || s.starts_with("--checkpoint-action")
            || s.starts_with("--info-script")
            || s.starts_with("--new-volume-script")
            || s.starts_with("--rsh-command")
            || s == "-I"
            || s == "-F"
    });
    if runs {
        w.unparsed("tar option runs a command".to_string());
    }
    let mode_arg = args.get(1).map(|a| a.s()).unwrap_or("");
    let clusters: Vec<&str> = args
        .iter()
        .skip(1)
        .map(|a| a.s())
        .filter(|s| s.starts_with('-') && !s.starts_with("--"))
        .chain(if mode_arg.starts_with('-') { None } else { Some(mode_arg) })
        .collect();
    let has = |c: char, long: &str| clusters.iter().any(|s| s.contains(c)) || args.iter().any(|a| a.s() == long);
    let to_file = has('f', "--file");
    if has('x', "--extract") || has('r', "--append") || has('u', "--update") || has('A', "--catenate") {
        w.add(C::FileWrite);
    } else if has('c', "--create") && to_file {
        let stdout =
            args.iter().any(|a| a.s() == "-" || a.s() == "/dev/null") || clusters.iter().any(|s| s.ends_with("f-"));
        w.add(if stdout { C::ReadOnly } else { C::FileWrite });
    } else if has('t', "--list") || has('c', "--create") {
        w.add(C::ReadOnly);
    } else {
        w.add(C::Other);
    }
    if args.iter().any(|a| a.s() == "--delete") {
        w.add(C::FileWrite);
    }
}

fn kill(w: &mut Walker, args: &[Arg]) {
    if has_flag(args, 'l', &["list", "table"]) || has_flag(args, 'L', &[]) {
        w.add(C::ReadOnly);
        return;
    }
    let mut k = 1;
    let mut pids = Vec::new();
    while k < args.len() {
        let s = args[k].s();
        if matches!(s, "-s" | "-n" | "--signal") {
            k += 2;
            continue;
        }
        if s == "--" {
            pids.extend(args[k + 1..].iter());
            break;
        }
        if s.starts_with('-') && s != "-1" && !s.starts_with("-1 ") {
            k += 1;
            continue;
        }
        pids.push(&args[k]);
        k += 1;
    }
    if pids.iter().any(|p| matches!(p.s(), "1" | "-1")) {
        w.add(C::PowerState);
    } else {
        w.add(C::Other);
    }
}

fn systemctl(w: &mut Walker, args: &[Arg]) {
    let i = skip_options(
        args,
        1,
        "tpHMnosPS",
        &["type", "property", "host", "machine", "lines", "output", "signal", "state", "root", "kill-whom", "job-mode"],
    );
    let verb = args.get(i).map(|a| a.s()).unwrap_or("list-units");
    match verb {
        "stop"
        | "restart"
        | "try-restart"
        | "reload-or-restart"
        | "try-reload-or-restart"
        | "condrestart"
        | "force-reload"
        | "disable"
        | "mask"
        | "kill"
        | "poweroff"
        | "reboot"
        | "halt"
        | "kexec"
        | "suspend"
        | "hibernate"
        | "hybrid-sleep"
        | "suspend-then-hibernate"
        | "isolate"
        | "rescue"
        | "emergency"
        | "default"
        | "soft-reboot"
        | "exit"
        | "switch-root"
        | "freeze"
        | "clean" => w.add(C::PowerState),
        "status" | "show" | "list-units" | "list-unit-files" | "list-timers" | "list-sockets" | "list-jobs"
        | "list-dependencies" | "list-machines" | "list-paths" | "list-automounts" | "is-active" | "is-enabled"
        | "is-failed" | "is-system-running" | "cat" | "get-default" | "help" | "show-environment" | "--version"
        | "version" | "--help" => w.add(C::ReadOnly),
        _ => w.add(C::Other),
    }
}

fn service_verb(w: &mut Walker, verb: &str) {
    match verb {
        "stop" | "restart" | "force-stop" | "force-reload" | "try-restart" | "condrestart" | "kill" | "zap" => {
            w.add(C::PowerState)
        }
        "status" | "" => w.add(C::ReadOnly),
        _ => w.add(C::Other),
    }
}

fn chmod(w: &mut Walker, args: &[Arg]) {
    let i = skip_options(args, 1, "", &["reference"]);
    let Some(mode) = args.get(i) else {
        w.add(C::FileWrite);
        return;
    };
    let Some(m) = mode.plain() else {
        w.add(C::Privilege);
        return;
    };
    let dangerous = if m.chars().all(|c| c.is_digit(8)) && !m.is_empty() {
        match u32::from_str_radix(m, 8) {
            // setuid/setgid, or writable by everyone.
            Ok(v) => v & 0o6000 != 0 || v & 0o002 != 0,
            Err(_) => true,
        }
    } else {
        m.split(',').any(|clause| {
            let who: String = clause.chars().take_while(|c| "ugoa".contains(*c)).collect();
            let rest = &clause[who.len()..];
            let adds = rest.starts_with('+') || rest.starts_with('=');
            let perms = rest.trim_start_matches(['+', '-', '=']);
            adds && (perms.contains('s') || (perms.contains('w') && (who.contains('a') || who.contains('o'))))
        })
    };
    let targets = &args[(i + 1).min(args.len())..];
    if dangerous || targets.iter().any(|t| t.plain().is_some_and(paths::is_privilege_file)) {
        w.add(C::Privilege);
    } else {
        w.add(C::FileWrite);
    }
}

fn packages(w: &mut Walker, name: &str, args: &[Arg]) {
    let i = skip_options(
        args,
        1,
        "ocCtnrxe",
        &[
            "option",
            "config",
            "target",
            "prefix",
            "root",
            "installroot",
            "releasever",
            "repo",
            "enablerepo",
            "disablerepo",
            "index-url",
        ],
    );
    let verb = args.get(i).map(|a| a.s()).unwrap_or("");
    let mutates = match name {
        "go" => matches!(verb, "install" | "get"),
        "cargo" => matches!(verb, "install" | "uninstall"),
        "npm" | "pnpm" => matches!(
            verb,
            "install" | "i" | "ci" | "uninstall" | "un" | "remove" | "rm" | "update" | "up" | "add" | "link"
        ),
        "yarn" => matches!(verb, "add" | "remove" | "install" | "upgrade" | "global" | "") && args.len() > 1,
        "apt-mark" => matches!(verb, "hold" | "unhold" | "auto" | "manual"),
        _ => PACKAGE_VERBS.contains(&verb),
    };
    w.add(if mutates {
        C::PackageChange
    } else if matches!(
        verb,
        "list"
            | "show"
            | "search"
            | "info"
            | "policy"
            | "madison"
            | "depends"
            | "rdepends"
            | "check-update"
            | "freeze"
            | "outdated"
            | "ls"
            | "view"
            | "--version"
            | "-v"
            | "version"
            | "help"
            | "config"
            | "doctor"
            | "env"
            | "which"
            | "provides"
            | "whatprovides"
            | "repolist"
            | "history"
            | "audit"
            | "check"
            | "tree"
            | "why"
            | "query"
            | "changelog"
    ) {
        C::ReadOnly
    } else {
        C::Other
    });
}

fn git(w: &mut Walker, args: &[Arg]) {
    let mut i = 1;
    while i < args.len() {
        let s = args[i].s();
        if s == "-c" {
            if let Some(kv) = args.get(i + 1) {
                let key = kv.s().split('=').next().unwrap_or("").to_lowercase();
                if key.starts_with("alias.")
                    || matches!(
                        key.as_str(),
                        "core.sshcommand"
                            | "core.pager"
                            | "core.editor"
                            | "core.fsmonitor"
                            | "core.hookspath"
                            | "core.gitproxy"
                            | "diff.external"
                            | "credential.helper"
                            | "sequence.editor"
                            | "uploadpack.packobjectshook"
                    )
                    || key.starts_with("filter.")
                    || key.starts_with("diff.")
                    || key.starts_with("merge.")
                    || kv.is_dynamic()
                {
                    w.unparsed(format!("git -c {key} can run arbitrary commands"));
                }
            }
            i += 2;
            continue;
        }
        if matches!(s, "-C" | "--git-dir" | "--work-tree" | "--namespace" | "--exec-path" | "--super-prefix") {
            i += 2;
            continue;
        }
        if s.starts_with('-') {
            i += 1;
            continue;
        }
        break;
    }
    let Some(sub) = args.get(i).map(|a| a.s()) else {
        w.add(C::ReadOnly);
        return;
    };
    let rest = &args[i + 1..];
    let rest_has = |f: &dyn Fn(&str) -> bool| rest.iter().any(|a| f(a.s()));
    match sub {
        "push" => {
            let force = rest_has(&|s| {
                matches!(s, "--force" | "--mirror" | "--force-if-includes")
                    || s.starts_with("--force-with-lease")
                    || (s.starts_with('-') && !s.starts_with("--") && s.contains('f'))
                    || (s.starts_with('+') && s.len() > 1)
                    || s.contains(":+")
            });
            w.add(if force { C::ForcePush } else { C::Other });
        }
        "clean" => {
            let force =
                rest_has(&|s| s == "--force" || (s.starts_with('-') && !s.starts_with("--") && s.contains('f')));
            let dry =
                rest_has(&|s| s == "--dry-run" || (s.starts_with('-') && !s.starts_with("--") && s.contains('n')));
            w.add(if force && !dry { C::DestructiveFile } else { C::ReadOnly });
        }
        "config" => {
            let value_runs = rest.iter().any(|a| a.s().starts_with('!'))
                || rest.iter().any(|a| {
                    let k = a.s().to_lowercase();
                    k.starts_with("alias.")
                        || k == "core.sshcommand"
                        || k == "core.pager"
                        || k == "core.hookspath"
                        || k == "core.fsmonitor"
                });
            let reads =
                rest_has(&|s| matches!(s, "--get" | "--get-all" | "--list" | "-l" | "--get-regexp" | "get" | "list"))
                    || rest.iter().filter(|a| !a.s().starts_with('-')).count() <= 1;
            if value_runs && !reads {
                w.unparsed("git config sets a value that runs commands".to_string());
            }
            w.add(if reads { C::ReadOnly } else { C::FileWrite });
        }
        "status" | "log" | "diff" | "show" | "rev-parse" | "describe" | "blame" | "shortlog" | "ls-files"
        | "ls-remote" | "ls-tree" | "grep" | "reflog" | "version" | "help" | "cat-file" | "rev-list" | "show-ref"
        | "count-objects" | "fsck" | "whatchanged" | "name-rev" | "merge-base" | "var" | "check-ignore" | "cherry"
        | "range-diff" => {
            w.add(C::ReadOnly);
        }
        "branch" | "tag" | "remote" | "stash" | "worktree" | "submodule" | "notes" => {
            let lists = rest.iter().all(|a| {
                let s = a.s();
                matches!(
                    s,
                    "-v" | "-vv"
                        | "-a"
                        | "-r"
                        | "--list"
                        | "-l"
                        | "list"
                        | "show"
                        | "--all"
                        | "--show-current"
                        | "status"
                        | "--verbose"
                ) || s.starts_with("--format")
                    || s.starts_with("--sort")
                    || s.starts_with("--contains")
                    || s.starts_with("--merged")
            });
            w.add(if lists { C::ReadOnly } else { C::FileWrite });
        }
        _ => w.add(C::FileWrite),
    }
}

fn kubectl(w: &mut Walker, args: &[Arg], depth: usize, stdin: &Stdin) -> Option<String> {
    let long = [
        "namespace",
        "context",
        "cluster",
        "kubeconfig",
        "user",
        "server",
        "token",
        "as",
        "as-group",
        "certificate-authority",
        "client-certificate",
        "client-key",
        "request-timeout",
        "tls-server-name",
        "cache-dir",
        "v",
        "log-file",
    ];
    let i = skip_options(args, 1, "nsv", &long);
    let Some(verb) = args.get(i).map(|a| a.s()) else {
        w.add(C::ReadOnly);
        return None;
    };
    let rest = &args[i + 1..];
    match verb {
        "delete" | "drain" => w.add(C::KubectlDelete),
        "exec" => {
            if let Some(k) = rest.iter().position(|a| a.s() == "--") {
                if k + 1 < rest.len() {
                    return w.command(&rest[k + 1..], depth + 1, stdin);
                }
            } else {
                w.unparsed("kubectl exec without `--`: the remote command is ambiguous".to_string());
            }
        }
        "get" | "describe" => {
            let secret =
                rest.iter().any(|a| a.s().to_lowercase().split([',', '/']).any(|r| matches!(r, "secret" | "secrets")));
            if secret && verb == "get" {
                w.add(C::CredentialAccess);
            }
            w.add(C::ReadOnly);
        }
        "logs" | "top" | "version" | "api-resources" | "api-versions" | "explain" | "cluster-info" | "events"
        | "diff" | "wait" | "auth" | "completion" => {
            w.add(C::ReadOnly);
        }
        "config" => {
            let raw = rest.iter().any(|a| matches!(a.s(), "--raw" | "--flatten"));
            let view = rest.first().is_some_and(|a| {
                matches!(a.s(), "view" | "get-contexts" | "current-context" | "get-clusters" | "get-users")
            });
            if raw {
                w.add(C::CredentialAccess);
            }
            w.add(if view { C::ReadOnly } else { C::Other });
        }
        "rollout" => {
            let reads = rest.first().is_some_and(|a| matches!(a.s(), "status" | "history"));
            w.add(if reads { C::ReadOnly } else { C::Other });
        }
        _ => w.add(C::Other),
    }
    None
}

fn helm(w: &mut Walker, args: &[Arg]) {
    let i = skip_options(args, 1, "n", &["namespace", "kube-context", "kubeconfig"]);
    let verb = args.get(i).map(|a| a.s()).unwrap_or("");
    match verb {
        "uninstall" | "delete" | "del" | "un" => w.add(C::KubectlDelete),
        "list" | "ls" | "status" | "get" | "history" | "hist" | "show" | "inspect" | "search" | "version"
        | "template" | "lint" | "env" | "verify" | "" => w.add(C::ReadOnly),
        "repo" | "dependency" | "plugin" => {
            let lists = args.get(i + 1).is_some_and(|a| matches!(a.s(), "list" | "ls"));
            w.add(if lists { C::ReadOnly } else { C::Other });
        }
        _ => w.add(C::Other),
    }
}

fn docker(w: &mut Walker, args: &[Arg], depth: usize, stdin: &Stdin) -> Option<String> {
    let i = skip_options(args, 1, "HcL", &["host", "context", "config", "log-level"]);
    let mut verb = args.get(i).map(|a| a.s()).unwrap_or("");
    let mut j = i;
    if matches!(verb, "container" | "image" | "volume" | "network" | "system" | "compose")
        && let Some(v) = args.get(i + 1)
    {
        verb = v.s();
        j = i + 1;
    }
    let group = args.get(i).map(|a| a.s()).unwrap_or("");
    if args.iter().any(|a| a.s() == "--privileged" || a.s().starts_with("-v/:") || a.s() == "--pid=host")
        || args.windows(2).any(|p| matches!(p[0].s(), "-v" | "--volume") && p[1].s().starts_with("/:"))
    {
        w.add(C::Privilege);
    }
    match verb {
        "ps" | "images" | "logs" | "inspect" | "stats" | "top" | "version" | "info" | "port" | "diff" | "history"
        | "events" | "ls" | "df" | "config" => w.add(C::ReadOnly),
        "exec" => {
            let k = skip_options(args, j + 1, "eouwd", &["env", "env-file", "user", "workdir", "detach-keys"]);
            // k is the container; the command follows it.
            return run_rest(w, args, k + 1, depth, stdin);
        }
        "rm" | "prune" | "rmi" if matches!(group, "volume" | "system") => w.add(C::DestructiveFile),
        _ => w.add(C::Other),
    }
    None
}

fn curl(w: &mut Walker, args: &[Arg]) {
    // Short options taking a value.
    const TAKES: &str = "dFTooXHuAebcKxwmrEyYzCQtUPD";
    let mut k = 1;
    let mut class = C::ReadOnly;
    let bump = |c: C, cur: &mut C| {
        let rank = |c: C| match c {
            C::NetworkExfiltration => 3,
            C::Other => 2,
            C::FileWrite => 1,
            _ => 0,
        };
        if rank(c) > rank(*cur) {
            *cur = c;
        }
    };
    let mut urls = Vec::new();
    let mut remote_name = false;
    while k < args.len() {
        let s = args[k].s().to_string();
        let (opt, value, used_next): (String, Option<String>, bool) = if let Some(l) = s.strip_prefix("--") {
            match l.split_once('=') {
                Some((n, v)) => (n.to_string(), Some(v.to_string()), false),
                None => {
                    let takes = matches!(
                        l,
                        "data"
                            | "data-binary"
                            | "data-raw"
                            | "data-ascii"
                            | "data-urlencode"
                            | "json"
                            | "form"
                            | "form-string"
                            | "upload-file"
                            | "output"
                            | "request"
                            | "header"
                            | "user"
                            | "user-agent"
                            | "referer"
                            | "cookie"
                            | "cookie-jar"
                            | "config"
                            | "proxy"
                            | "write-out"
                            | "max-time"
                            | "connect-timeout"
                            | "retry"
                            | "cacert"
                            | "cert"
                            | "key"
                            | "resolve"
                            | "url"
                            | "output-dir"
                            | "dump-header"
                            | "trace"
                            | "trace-ascii"
                            | "stderr"
                    );
                    if takes {
                        (l.to_string(), args.get(k + 1).map(|a| a.s().to_string()), true)
                    } else {
                        (l.to_string(), None, false)
                    }
                }
            }
        } else if let Some(sh) = s.strip_prefix('-').filter(|x| !x.is_empty()) {
            let mut found = None;
            for (idx, c) in sh.char_indices() {
                if c == 'O' {
                    remote_name = true;
                }
                if TAKES.contains(c) {
                    let attached = &sh[idx + c.len_utf8()..];
                    found = Some(if attached.is_empty() {
                        (c.to_string(), args.get(k + 1).map(|a| a.s().to_string()), true)
                    } else {
                        (c.to_string(), Some(attached.to_string()), false)
                    });
                    break;
                }
            }
            found.unwrap_or_else(|| (String::new(), None, false))
        } else {
            urls.push(s.clone());
            (String::new(), None, false)
        };
        let v = value.clone().unwrap_or_default();
        match opt.as_str() {
            "d" | "data" | "data-binary" | "data-ascii" | "data-urlencode" | "json" => {
                let file = v
                    .strip_prefix('@')
                    .or_else(|| v.split_once("@").filter(|_| opt == "data-urlencode").map(|(_, f)| f));
                if let Some(f) = file {
                    bump(C::NetworkExfiltration, &mut class);
                    if paths::is_secret_path(f) {
                        w.add(C::CredentialAccess);
                    }
                } else {
                    bump(C::Other, &mut class);
                }
            }
            "data-raw" | "form-string" => bump(C::Other, &mut class),
            "F" | "form" => {
                if v.contains("=@") || v.contains("=<") {
                    bump(C::NetworkExfiltration, &mut class);
                    if let Some((_, f)) = v.split_once(['@', '<'])
                        && paths::is_secret_path(f.split(';').next().unwrap_or(f))
                    {
                        w.add(C::CredentialAccess);
                    }
                } else {
                    bump(C::Other, &mut class);
                }
            }
            "T" | "upload-file" => {
                bump(C::NetworkExfiltration, &mut class);
                if paths::is_secret_path(&v) {
                    w.add(C::CredentialAccess);
                }
            }
            "o" | "output" | "c" | "cookie-jar" | "D" | "dump-header" | "output-dir" if !paths::is_null_sink(&v) => {
                bump(C::FileWrite, &mut class);
                if opt == "o" || opt == "output" {
                    w.note_download(&v);
                }
                if paths::is_privilege_file(&v) {
                    w.add(C::Privilege);
                }
            }
            "X" | "request" if !matches!(v.to_uppercase().as_str(), "GET" | "HEAD" | "OPTIONS") => {
                bump(C::Other, &mut class);
            }
            "K" | "config" => bump(C::Other, &mut class),
            "remote-name" | "remote-name-all" => remote_name = true,
            _ => {}
        }
        k += if used_next { 2 } else { 1 };
    }
    if remote_name {
        bump(C::FileWrite, &mut class);
        for u in &urls {
            w.note_download(u);
        }
    }
    w.add(class);
}

fn wget(w: &mut Walker, args: &[Arg]) {
    let mut k = 1;
    let mut out: Option<String> = None;
    let mut class = C::FileWrite;
    let mut urls = Vec::new();
    let mut spider = false;
    while k < args.len() {
        let s = args[k].s().to_string();
        let next = args.get(k + 1).map(|a| a.s().to_string());
        if let Some(l) = s.strip_prefix("--") {
            let (n, v, used) = match l.split_once('=') {
                Some((n, v)) => (n.to_string(), Some(v.to_string()), false),
                None => {
                    let takes = matches!(
                        l,
                        "output-document"
                            | "output-file"
                            | "post-data"
                            | "post-file"
                            | "body-data"
                            | "body-file"
                            | "method"
                            | "header"
                            | "directory-prefix"
                            | "user-agent"
                            | "input-file"
                            | "execute"
                            | "tries"
                            | "timeout"
                            | "user"
                            | "password"
                    );
                    (l.to_string(), if takes { next.clone() } else { None }, takes)
                }
            };
            match n.as_str() {
                "post-file" | "body-file" => {
                    class = C::NetworkExfiltration;
                    if v.as_deref().is_some_and(paths::is_secret_path) {
                        w.add(C::CredentialAccess);
                    }
                }
                "post-data" | "body-data" | "method" if class != C::NetworkExfiltration => {
                    w.add(C::Other);
                }
                "output-document" => out = v,
                "spider" => spider = true,
                "execute" => w.add(C::Other),
                _ => {}
            }
            k += if used { 2 } else { 1 };
            continue;
        }
        if let Some(sh) = s.strip_prefix('-').filter(|x| !x.is_empty()) {
            let mut used = false;
            for (idx, c) in sh.char_indices() {
                if "OoPeUtTiaY".contains(c) {
                    let attached = &sh[idx + c.len_utf8()..];
                    let v = if attached.is_empty() {
                        used = true;
                        next.clone()
                    } else {
                        Some(attached.to_string())
                    };
                    if c == 'O' {
                        out = v;
                    }
                    break;
                }
            }
            k += if used { 2 } else { 1 };
            continue;
        }
        urls.push(s);
        k += 1;
    }
    if class == C::NetworkExfiltration {
        w.add(class);
        return;
    }
    if spider {
        w.add(C::ReadOnly);
        return;
    }
    match out.as_deref() {
        Some("-") | Some("/dev/null") | Some("/dev/stdout") => w.add(C::ReadOnly),
        Some(f) => {
            w.note_download(f);
            write_target(w, &Arg::literal(f));
        }
        None => {
            for u in &urls {
                w.note_download(u);
            }
            w.add(C::FileWrite);
        }
    }
}

fn remote_copy(w: &mut Walker, ops: &[&Arg], delete: bool) {
    let Some((dest, sources)) = ops.split_last() else {
        w.add(C::Other);
        return;
    };
    if paths::is_remote_spec(dest.s()) {
        w.add(C::NetworkExfiltration);
    } else {
        write_target(w, dest);
        if sources.is_empty() {
            w.add(C::ReadOnly);
        }
    }
    if delete {
        w.add(C::DestructiveFile);
    }
}
