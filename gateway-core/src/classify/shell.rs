//! Static classification of shell command lines (`ssh_run`) and argv vectors
//! (`kube_exec`) for the policy engine.
//!
//! # Approach
//!
//! The line is parsed with [`brush_parser`] (the bash parser of the brush
//! shell) into a full AST: lists (`;` `&&` `||` `&`), pipelines, subshells,
//! brace groups, `if`/`for`/`while`/`case`, functions, redirections and
//! here-documents. Every word is then split into its expansion pieces (quotes,
//! escapes, ANSI-C `$'..'` strings, parameter expansions, `$(..)` and
//! backtick substitutions, arithmetic), so a command name is *resolved* the way
//! the shell would resolve it: `r''m`, `"r"m`, `\rm`, `$'\x72m'` and
//! `/usr/bin/../bin/rm` all become `rm`. We never split on whitespace
//! ourselves.
//!
//! The walker visits every command that would run: each element of every
//! list and pipeline, command and process substitutions (also inside
//! double quotes, assignments, redirection targets, here-documents and
//! parameter-expansion defaults), and the payload of anything that runs its
//! arguments as code: `sh -c`/`bash -c`/..., here-docs and here-strings fed to
//! a shell, `eval` with literal arguments, `sudo`, `doas`, `su -c`, `env`,
//! `nohup`, `timeout`, `nice`, `ionice`, `stdbuf`, `time`, `command`,
//! `builtin`, `exec`, `xargs`, `find -exec`, `watch`, `strace`, `chroot`,
//! `setsid`, `flock`, `ssh host CMD`, `kubectl exec -- CMD`, `docker exec`,
//! `busybox APPLET`. Recursion is bounded ([`MAX_DEPTH`]); beyond it the line
//! is `unparsed`.
//!
//! # Fail closed
//!
//! Whatever cannot be resolved statically adds [`ShellClass::Unparsed`]:
//! syntax errors, a command name that contains a variable, a command
//! substitution, a glob or a brace expansion (`$CMD`, `$(echo rm)`,
//! `/bin/r?`, `{rm,-rf,/}`), `eval` of non-literal text, `source`/`.`,
//! `alias` definitions, assignments to variables that change how later
//! command names resolve (`PATH`, `LD_PRELOAD`, `BASH_ENV`, `IFS`, ...), code
//! fed to a shell from an unknown source (`cat x | sh`, `bash < file`),
//! inline interpreter code that spawns processes (`python -c 'os.system(..)'`),
//! NUL bytes, carriage returns, here-documents without a terminating line,
//! input over [`MAX_COMMAND_BYTES`], nesting deeper than the parser can take
//! safely (a cheap pre-scan bounds the parser's recursion, so 10,000 nested
//! `$(` cannot overflow the stack). The parser is third-party code with
//! internal `unwrap`s: it runs under `catch_unwind`, and a panic inside it
//! becomes `Unparsed` (the panic hook still logs it). Other classes found on the same line are kept, so a
//! policy sees both `unparsed` and e.g. `destructive_file`.
//!
//! # Class rules (for policy authors)
//!
//! * A line gets exactly `{read_only}` iff every command on it is read-only.
//!   `read_only` is dropped as soon as any other class is present, so a
//!   policy can simply test `classes == {read_only}`.
//!   An empty line, a comment or pure assignments (`X=1`) count as read-only.
//! * Unknown command names (including scripts such as `./deploy.sh` or
//!   `bash deploy.sh`, whose content we cannot see) are `other`.
//! * `rm` of plain files is `file_write`; `rm -r`/`-R`/`--recursive` (any path),
//!   `rm` of a system path (`/`, `/etc`, `/usr/...`, `/boot/...`, a glob that
//!   can match one) or of a path that is not static (`rm $X`) is
//!   `destructive_file`. So are `shred`, `mkfs*`, `wipefs`, `dd of=/dev/..`,
//!   writes to block devices, `find -delete`, `rsync --delete`,
//!   `truncate -s 0` of a system file, `git clean -f`, `crontab -r`.
//! * `kubectl delete`, `kubectl drain` and `helm uninstall|delete` are
//!   `kubectl_delete`. `kubectl cordon`/`uncordon` are *not* (reversible,
//!   evict nothing): they are `other`. `kubectl get secret(s)` and
//!   `kubectl config view --raw` are `credential_access`.
//! * `kill` is `power_state` only for PID 1 or -1 (everything); killing
//!   another PID is `other`. `killall` and `pkill` are always `power_state`.
//!   `systemctl start|enable|reload` are `other`, `stop|restart|disable|
//!   mask|kill|isolate|poweroff|reboot|halt` are `power_state`.
//! * Plain `curl URL` / `wget -O- URL` are `read_only` (diagnostics such as
//!   health checks); `wget URL` and `curl -o F` are `file_write`; uploads
//!   (`-d @file`, `--data-binary @`, `-F x=@f`, `-T`, `--upload-file`,
//!   `--post-file`) are `network_exfiltration`; other requests with a body
//!   or a method (`-d x`, `-X POST`) are `other`. A downloaded payload that
//!   reaches a shell or interpreter (pipe, `<(..)`, `$(..)`, here-string,
//!   or a file downloaded earlier on the same line and then executed) is
//!   `remote_code`.
//! * `credential_access` is added for any command whose literal argument or
//!   redirection names a secret path (`~/.ssh/id_*`, `/etc/shadow`,
//!   `~/.aws/credentials`, `~/.kube/config`, `.env`, `/proc/*/environ`,
//!   history files, service-account tokens, ...), including globs that can
//!   match one (`/etc/sha*`, `.*`) and, for commands that read or send file
//!   contents (`cat`, `base64`, `cp`, `curl`, ...), arguments that are not
//!   static. Dumping the environment (`env`, `printenv`, `set`, `export -p`,
//!   `declare -x`, `history`) and printing or sending an environment variable
//!   not assigned on the line (`echo $AWS_SECRET_ACCESS_KEY`) count too.
//! * `sudo`, `doas`, `su`, `pkexec`, `chown`, `chgrp`, `chmod` with 777 /
//!   `a+rwx` / setuid or setgid bits, `setcap`, user and group management,
//!   `visudo` and any write to `/etc/sudoers*`, `/etc/passwd`, `/etc/shadow`,
//!   `/etc/group` are `privilege`; other `chmod` is `file_write`.
//! * `git push` with `-f`, `--force`, `--force-with-lease`,
//!   `--force-if-includes` or a `+refspec` is `force_push`.
//!
//! Known over-approximations (fail closed, may need approval where a human
//! would not): a non-static argument of a command that reads file content
//! (`cat $(ls -t *.log | head -1)`, `xargs cat`) counts as
//! `credential_access`; `rm` of a non-static path is `destructive_file`;
//! `cat *` counts as `credential_access` (the glob could match a secret).
//!
//! `commands` lists every command name that would run (basename,
//! lower-case), in order of appearance, without duplicates, wrappers
//! included (`sudo rm x` → `["sudo", "rm"]`).

mod commands;
mod paths;

use std::collections::{BTreeSet, HashMap};

use brush_parser::ast;
use brush_parser::word::{self, WordPiece, WordPieceWithSource};

/// The class of effect a shell command can have. See the module docs for
/// the exact rules.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ShellClass {
    /// Diagnostics that change nothing.
    ReadOnly,
    /// Changes files, but not destructively by class.
    FileWrite,
    /// Recursive or system-path deletion, disk wiping.
    DestructiveFile,
    /// Shutdown, reboot, stopping services, killing init or everything.
    PowerState,
    /// Privilege escalation or changes to users and permissions.
    Privilege,
    /// Downloaded content executed as code.
    RemoteCode,
    /// Data sent off the host.
    NetworkExfiltration,
    /// Reading secrets or dumping the environment.
    CredentialAccess,
    /// Installing, removing or upgrading packages.
    PackageChange,
    /// Rewriting remote git history.
    ForcePush,
    /// Deleting Kubernetes resources or draining nodes.
    KubectlDelete,
    /// Could not be parsed or resolved statically (fail closed).
    Unparsed,
    /// Parsed and resolved, but in none of the classes above.
    Other,
}

/// Larger inputs are not parsed: they are `Unparsed`.
pub const MAX_COMMAND_BYTES: usize = 64 * 1024;

/// Maximum nesting of re-parsed code (`sh -c`, `$(..)`, `eval`, wrappers).
pub const MAX_DEPTH: usize = 16;

/// Maximum syntactic nesting (parentheses, braces, compound keywords) handed
/// to the parser: its recursive descent must not overflow the stack.
const MAX_SYNTAX_NESTING: usize = 48;

/// Upper bound on the number of commands and words visited for one input, so
/// that pathological inputs (e.g. many nested `eval`s) stay cheap.
const MAX_WORK: usize = 20_000;

/// Result of classifying one command line or argv.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct ShellClassification {
    /// The classes of every command that would run.
    pub classes: BTreeSet<ShellClass>,
    /// Every command name that would run (basename, lower-case), in order of
    /// appearance, without duplicates.
    pub commands: Vec<String>,
    /// Why the input is `Unparsed` (the first reason found).
    pub parse_error: Option<String>,
}

/// Classifies a shell command line, as sent by `ssh_run`.
pub fn classify_command_line(line: &str) -> ShellClassification {
    let mut w = Walker::default();
    if line.len() <= MAX_COMMAND_BYTES && line.contains('$') {
        // First pass: collect every assignment on the line, so that a
        // variable resolves only when all its assignments agree on one
        // static value (flow-insensitive, hence safe for loops and
        // conditionals).
        let mut first = Walker { collecting: true, ..Walker::default() };
        first.script(line, 0, &Stdin::None);
        w.vars = first.assigned;
    }
    if line.len() > MAX_COMMAND_BYTES {
        w.unparsed(format!("command is {} bytes, more than the {MAX_COMMAND_BYTES} allowed", line.len()));
    } else {
        w.script(line, 0, &Stdin::None);
    }
    w.finish()
}

/// Classifies an argv vector, as sent by `kube_exec`: `argv[0]` is the
/// program, run without a shell; `sh -c` payloads are parsed recursively.
pub fn classify_argv(argv: &[String]) -> ShellClassification {
    let mut w = Walker::default();
    let total: usize = argv.iter().map(|a| a.len() + 1).sum();
    if argv.is_empty() {
        w.unparsed("empty argv".to_string());
    } else if total > MAX_COMMAND_BYTES {
        w.unparsed(format!("argv is {total} bytes, more than the {MAX_COMMAND_BYTES} allowed"));
    } else if argv.iter().any(|a| a.contains('\0')) {
        w.unparsed("NUL byte in argv".to_string());
    } else {
        let args: Vec<Arg> = argv.iter().map(|a| Arg::literal(a)).collect();
        w.command(&args, 0, &Stdin::None);
    }
    w.finish()
}

/// One expanded word: its static value when it has one, plus what we could
/// learn about its dynamic parts.
#[derive(Debug, Clone, Default)]
pub(crate) struct Arg {
    /// The value, when it is fully static.
    pub lit: Option<String>,
    /// An approximation: dynamic parts replaced by `*`, `$HOME` by `~`.
    pub text: String,
    /// Contains an unquoted glob or brace-expansion character.
    pub glob: bool,
    /// Contains a command substitution or process substitution whose
    /// commands download something (`$(curl ..)`, `<(wget ..)`).
    pub downloaded: bool,
    /// This argument is a process substitution (`<(..)`).
    pub procsub: bool,
    /// Environment variables referenced that were not assigned on the line.
    pub env_refs: Vec<String>,
}

impl Arg {
    pub(crate) fn literal(s: &str) -> Self {
        Arg { lit: Some(s.to_string()), text: s.to_string(), ..Arg::default() }
    }

    /// The static value, if the word is static and contains no glob.
    pub(crate) fn plain(&self) -> Option<&str> {
        if self.glob { None } else { self.lit.as_deref() }
    }

    /// Best-effort text used for option matching (dynamic parts are `*`).
    pub(crate) fn s(&self) -> &str {
        self.lit.as_deref().unwrap_or(&self.text)
    }

    /// True if the value cannot be known statically (variable, substitution
    /// or glob).
    pub(crate) fn is_dynamic(&self) -> bool {
        self.lit.is_none() || self.glob
    }

    fn push_static(&mut self, s: &str) {
        if let Some(l) = self.lit.as_mut() {
            l.push_str(s);
        }
        self.text.push_str(s);
    }

    fn push_dynamic(&mut self, approx: &str) {
        self.lit = None;
        self.text.push_str(approx);
    }
}

/// Where a command's standard input comes from, when that input may be code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Stdin {
    /// Nothing we know of (terminal / inherited).
    None,
    /// Known text: a here-document, a here-string or `echo LITERAL |`.
    Literal(String),
    /// Output of a command that fetched something from the network.
    Downloaded,
    /// Anything else (a file, another command's output).
    Opaque,
}

/// Programs whose output is content fetched from elsewhere.
const DOWNLOADERS: &[&str] = &[
    "curl",
    "wget",
    "fetch",
    "aria2c",
    "http",
    "https",
    "lwp-request",
    "get",
    "nc",
    "ncat",
    "netcat",
    "socat",
    "ssh",
    "telnet",
    "openssl",
    "tftp",
];

/// Variables that change how later command names resolve or what a shell
/// runs at start-up: assigning them makes the rest unknowable.
const DANGEROUS_VARS: &[&str] = &[
    "PATH",
    "LD_PRELOAD",
    "LD_LIBRARY_PATH",
    "LD_AUDIT",
    "BASH_ENV",
    "ENV",
    "IFS",
    "SHELLOPTS",
    "BASHOPTS",
    "PROMPT_COMMAND",
    "PS4",
    "BASH_LOADABLES_PATH",
    "GIT_SSH_COMMAND",
    "GIT_EXEC_PATH",
    "PYTHONSTARTUP",
    "PERL5OPT",
    "NODE_OPTIONS",
];

/// Environment variables that are not secret, so printing them is harmless.
const HARMLESS_VARS: &[&str] = &[
    "HOME",
    "USER",
    "LOGNAME",
    "PWD",
    "OLDPWD",
    "SHELL",
    "HOSTNAME",
    "TERM",
    "LANG",
    "LC_ALL",
    "UID",
    "EUID",
    "PPID",
    "RANDOM",
    "SECONDS",
    "LINENO",
    "PATH",
    "TMPDIR",
    "TZ",
    "COLUMNS",
    "LINES",
    "BASH_VERSION",
    "HOSTTYPE",
    "OSTYPE",
    "MACHTYPE",
];

#[derive(Default)]
pub(crate) struct Walker {
    classes: BTreeSet<ShellClass>,
    commands: Vec<String>,
    /// How many downloader commands were visited so far, so callers can
    /// ask "did this sub-tree run a downloader?" in O(1).
    downloads: usize,
    error: Option<String>,
    /// Variables assigned on the line (from the first pass): `Some(value)`
    /// when every assignment gives the same static value.
    vars: HashMap<String, Option<String>>,
    /// Assignments seen during the first pass.
    assigned: HashMap<String, Option<String>>,
    collecting: bool,
    /// Files written by a downloader earlier on the line (`curl -o x.sh`).
    downloaded_files: Vec<String>,
    work: usize,
}

impl Walker {
    fn finish(mut self) -> ShellClassification {
        if self.classes.is_empty() {
            // Nothing ran but assignments or comments.
            self.classes.insert(ShellClass::ReadOnly);
        } else if self.classes.len() > 1 {
            self.classes.remove(&ShellClass::ReadOnly);
        }
        ShellClassification { classes: self.classes, commands: self.commands, parse_error: self.error }
    }

    pub(crate) fn add(&mut self, c: ShellClass) {
        self.classes.insert(c);
    }

    pub(crate) fn unparsed(&mut self, mut why: String) {
        self.classes.insert(ShellClass::Unparsed);
        if self.error.is_none() {
            // Messages quote input: keep them short.
            if why.len() > 200 {
                let mut cut = 200;
                while !why.is_char_boundary(cut) {
                    cut -= 1;
                }
                why.truncate(cut);
                why.push_str("...");
            }
            self.error = Some(why);
        }
    }

    pub(crate) fn push_cmd(&mut self, name: &str) {
        if DOWNLOADERS.contains(&name) {
            self.downloads += 1;
        }
        if !self.commands.iter().any(|c| c == name) {
            self.commands.push(name.to_string());
        }
    }

    pub(crate) fn record_assign(&mut self, name: &str, value: Option<String>) {
        if !self.collecting {
            return;
        }
        match self.assigned.get(name) {
            Some(prev) if *prev != value => {
                self.assigned.insert(name.to_string(), None);
            }
            Some(_) => {}
            None => {
                self.assigned.insert(name.to_string(), value);
            }
        }
    }

    pub(crate) fn note_download(&mut self, path: &str) {
        let base = paths::basename(path).to_string();
        if !base.is_empty() {
            self.downloaded_files.push(base);
        }
    }

    pub(crate) fn is_downloaded_file(&self, path: &str) -> bool {
        let base = paths::basename(path);
        self.downloaded_files.iter().any(|f| f == base)
    }

    /// True if any command visited since `mark` fetches from the network.
    fn downloaded_since(&self, mark: usize) -> bool {
        self.downloads > mark
    }

    /// Counts work; false (and `Unparsed`) once the budget is exhausted.
    fn tick(&mut self) -> bool {
        self.work += 1;
        if self.work > MAX_WORK {
            self.unparsed("input too complex to analyse".to_string());
            false
        } else {
            true
        }
    }

    /// Parses and walks a piece of shell code.
    pub(crate) fn script(&mut self, src: &str, depth: usize, stdin: &Stdin) {
        if depth > MAX_DEPTH {
            self.unparsed(format!("code nested more than {MAX_DEPTH} levels deep"));
            return;
        }
        if src.contains('\0') {
            self.unparsed("NUL byte in command".to_string());
            return;
        }
        if src.len() > MAX_COMMAND_BYTES {
            self.unparsed("nested code too large".to_string());
            return;
        }
        if src.contains('\r') {
            // bash reads CR as part of a word, which hides what runs; and
            // the parser misbehaves on some CR sequences (unbounded memory
            // on `<<\r #`). Fail closed.
            self.unparsed("carriage return in command".to_string());
            return;
        }
        if let Some(why) = too_deep(src) {
            self.unparsed(why);
            return;
        }
        if !self.tick() {
            return;
        }
        let program = match parse_program(src) {
            Ok(p) => p,
            Err(e) => {
                self.unparsed(format!("syntax error: {e}"));
                return;
            }
        };
        for list in &program.complete_commands {
            self.compound_list(list, depth, stdin);
        }
    }

    fn compound_list(&mut self, list: &ast::CompoundList, depth: usize, stdin: &Stdin) {
        for item in &list.0 {
            self.and_or(&item.0, depth, stdin);
        }
    }

    fn and_or(&mut self, list: &ast::AndOrList, depth: usize, stdin: &Stdin) {
        self.pipeline(&list.first, depth, stdin);
        for next in &list.additional {
            match next {
                ast::AndOr::And(p) | ast::AndOr::Or(p) => self.pipeline(p, depth, stdin),
            }
        }
    }

    fn pipeline(&mut self, p: &ast::Pipeline, depth: usize, stdin: &Stdin) {
        let mark = self.downloads;
        let mut input = stdin.clone();
        for cmd in &p.seq {
            let literal_out = self.command_node(cmd, depth, &input);
            // What the next element reads: a downloader anywhere upstream
            // taints the stream; a literal `echo` passes its text on.
            input = if self.downloaded_since(mark) {
                Stdin::Downloaded
            } else if let Some(text) = literal_out {
                Stdin::Literal(text)
            } else {
                Stdin::Opaque
            };
        }
    }

    /// Walks one command; returns its output when it is statically known
    /// (`echo`/`printf` of literals), for `echo CODE | sh`.
    fn command_node(&mut self, cmd: &ast::Command, depth: usize, stdin: &Stdin) -> Option<String> {
        if !self.tick() {
            return None;
        }
        match cmd {
            ast::Command::Simple(sc) => self.simple(sc, depth, stdin),
            ast::Command::Compound(cc, redirs) => {
                let mut input = stdin.clone();
                if let Some(r) = redirs {
                    for r in &r.0 {
                        self.redirect(r, depth, &mut input);
                    }
                }
                self.compound(cc, depth, &input);
                None
            }
            ast::Command::Function(f) => {
                // The body runs whenever the function is called; a function
                // can shadow any command name, so its body always counts.
                self.compound(&f.body.0, depth, stdin);
                if let Some(r) = &f.body.1 {
                    let mut input = stdin.clone();
                    for r in &r.0 {
                        self.redirect(r, depth, &mut input);
                    }
                }
                None
            }
            ast::Command::ExtendedTest(t) => {
                self.ext_test(&t.expr, depth, 0);
                self.add(ShellClass::ReadOnly);
                None
            }
        }
    }

    fn ext_test(&mut self, e: &ast::ExtendedTestExpr, depth: usize, level: usize) {
        if level > MAX_SYNTAX_NESTING {
            self.unparsed("test expression nested too deep".to_string());
            return;
        }
        match e {
            ast::ExtendedTestExpr::And(a, b) | ast::ExtendedTestExpr::Or(a, b) => {
                self.ext_test(a, depth, level + 1);
                self.ext_test(b, depth, level + 1);
            }
            ast::ExtendedTestExpr::Not(a) | ast::ExtendedTestExpr::Parenthesized(a) => {
                self.ext_test(a, depth, level + 1);
            }
            ast::ExtendedTestExpr::UnaryTest(_, w) => {
                self.expand(&w.value, depth);
            }
            ast::ExtendedTestExpr::BinaryTest(_, a, b) => {
                self.expand(&a.value, depth);
                self.expand(&b.value, depth);
            }
        }
    }

    fn compound(&mut self, cc: &ast::CompoundCommand, depth: usize, stdin: &Stdin) {
        match cc {
            ast::CompoundCommand::Arithmetic(a) => {
                self.embedded(&a.expr.value, depth);
                self.add(ShellClass::ReadOnly);
            }
            ast::CompoundCommand::ArithmeticForClause(f) => {
                for e in [&f.initializer, &f.condition, &f.updater].into_iter().flatten() {
                    self.embedded(&e.value, depth);
                }
                self.compound_list(&f.body.list, depth, stdin);
            }
            ast::CompoundCommand::BraceGroup(b) => self.compound_list(&b.list, depth, stdin),
            ast::CompoundCommand::Subshell(s) => self.compound_list(&s.list, depth, stdin),
            ast::CompoundCommand::ForClause(f) => {
                if let Some(values) = &f.values {
                    for v in values {
                        self.expand(&v.value, depth);
                    }
                }
                // The loop variable's value is not tracked.
                self.record_assign(&f.variable_name, None);
                self.compound_list(&f.body.list, depth, stdin);
            }
            ast::CompoundCommand::CaseClause(c) => {
                self.expand(&c.value.value, depth);
                for item in &c.cases {
                    for p in &item.patterns {
                        self.expand(&p.value, depth);
                    }
                    if let Some(cmd) = &item.cmd {
                        self.compound_list(cmd, depth, stdin);
                    }
                }
            }
            ast::CompoundCommand::IfClause(i) => {
                self.compound_list(&i.condition, depth, stdin);
                self.compound_list(&i.then, depth, stdin);
                for e in i.elses.iter().flatten() {
                    if let Some(c) = &e.condition {
                        self.compound_list(c, depth, stdin);
                    }
                    self.compound_list(&e.body, depth, stdin);
                }
            }
            ast::CompoundCommand::WhileClause(w) | ast::CompoundCommand::UntilClause(w) => {
                self.compound_list(&w.0, depth, stdin);
                self.compound_list(&w.1.list, depth, stdin);
            }
        }
    }

    fn simple(&mut self, sc: &ast::SimpleCommand, depth: usize, stdin: &Stdin) -> Option<String> {
        let mut input = stdin.clone();
        let mut prefix_assigns: Vec<(String, Option<String>)> = Vec::new();
        if let Some(prefix) = &sc.prefix {
            for item in &prefix.0 {
                match item {
                    ast::CommandPrefixOrSuffixItem::IoRedirect(r) => {
                        self.redirect(r, depth, &mut input);
                    }
                    ast::CommandPrefixOrSuffixItem::AssignmentWord(a, _) => {
                        let v = self.assignment_value(a, depth);
                        prefix_assigns.push((assignment_name(a), v));
                    }
                    ast::CommandPrefixOrSuffixItem::Word(w) => {
                        self.expand(&w.value, depth);
                    }
                    ast::CommandPrefixOrSuffixItem::ProcessSubstitution(_, sub) => {
                        self.compound_list(&sub.list, depth + 1, &Stdin::None);
                    }
                }
            }
        }

        for (name, value) in &prefix_assigns {
            if dangerous_assignment(name, value.as_deref()) {
                self.unparsed(format!("assignment to {name} changes how commands resolve"));
            }
        }

        let Some(name_word) = &sc.word_or_name else {
            // Assignments only: they persist for the rest of the line.
            for (name, v) in prefix_assigns {
                self.record_assign(&name, v);
            }
            self.add(ShellClass::ReadOnly);
            return None;
        };

        let mut args = Vec::new();
        let name_arg = self.expand(&name_word.value, depth);
        if let Some(l) = name_arg.plain() {
            // Registered now so that `commands` follows the order of
            // appearance even when later arguments hold substitutions.
            let base = paths::command_basename(l);
            if !base.is_empty() {
                self.push_cmd(&base);
            }
        }
        args.push(name_arg);
        if let Some(suffix) = &sc.suffix {
            for item in &suffix.0 {
                match item {
                    ast::CommandPrefixOrSuffixItem::IoRedirect(r) => {
                        self.redirect(r, depth, &mut input);
                    }
                    ast::CommandPrefixOrSuffixItem::Word(w) => {
                        let a = self.expand(&w.value, depth);
                        args.push(a);
                    }
                    ast::CommandPrefixOrSuffixItem::AssignmentWord(a, w) => {
                        // `export X=..`, `declare X=..`, `local X=..`.
                        let v = self.assignment_value(a, depth);
                        self.record_assign(&assignment_name(a), v);
                        let mut arg = self.expand(&w.value, depth);
                        arg.env_refs.clear();
                        args.push(arg);
                    }
                    ast::CommandPrefixOrSuffixItem::ProcessSubstitution(_, sub) => {
                        let mark = self.downloads;
                        self.compound_list(&sub.list, depth + 1, &Stdin::None);
                        args.push(Arg {
                            lit: None,
                            text: "/dev/fd/*".to_string(),
                            downloaded: self.downloaded_since(mark),
                            procsub: true,
                            ..Arg::default()
                        });
                    }
                }
            }
        }
        self.command(&args, depth, &input)
    }

    fn assignment_value(&mut self, a: &ast::Assignment, depth: usize) -> Option<String> {
        match &a.value {
            ast::AssignmentValue::Scalar(w) => {
                let arg = self.expand(&w.value, depth);
                if a.append { None } else { arg.plain().map(str::to_string) }
            }
            ast::AssignmentValue::Array(items) => {
                for (k, v) in items {
                    if let Some(k) = k {
                        self.expand(&k.value, depth);
                    }
                    self.expand(&v.value, depth);
                }
                None
            }
        }
    }

    /// Handles one redirection; updates where stdin comes from.
    fn redirect(&mut self, r: &ast::IoRedirect, depth: usize, stdin: &mut Stdin) {
        match r {
            ast::IoRedirect::File(fd, kind, target) => match target {
                ast::IoFileRedirectTarget::Filename(w) => {
                    let a = self.expand(&w.value, depth);
                    match kind {
                        ast::IoFileRedirectKind::Read => {
                            commands::check_read_path(self, &a);
                            if fd.is_none() || *fd == Some(0) {
                                *stdin = if a.downloaded { Stdin::Downloaded } else { Stdin::Opaque };
                            }
                        }
                        ast::IoFileRedirectKind::DuplicateInput | ast::IoFileRedirectKind::DuplicateOutput => {
                            let s = a.s();
                            let is_fd = !s.is_empty() && s.trim_end_matches('-').chars().all(|c| c.is_ascii_digit());
                            if !is_fd {
                                commands::write_target(self, &a);
                            }
                        }
                        _ => commands::write_target(self, &a),
                    }
                }
                ast::IoFileRedirectTarget::Fd(_) => {}
                ast::IoFileRedirectTarget::Duplicate(w) => {
                    // `>&WORD`: a file descriptor, or (bash) a file name.
                    let a = self.expand(&w.value, depth);
                    let s = a.s();
                    let is_fd = !s.is_empty() && s.trim_end_matches('-').chars().all(|c| c.is_ascii_digit());
                    if !is_fd {
                        if matches!(kind, ast::IoFileRedirectKind::DuplicateInput) {
                            commands::check_read_path(self, &a);
                        } else {
                            commands::write_target(self, &a);
                        }
                    }
                }
                ast::IoFileRedirectTarget::ProcessSubstitution(k, sub) => {
                    let mark = self.downloads;
                    self.compound_list(&sub.list, depth + 1, &Stdin::None);
                    if matches!(k, ast::ProcessSubstitutionKind::Read) && matches!(kind, ast::IoFileRedirectKind::Read)
                    {
                        *stdin = if self.downloaded_since(mark) { Stdin::Downloaded } else { Stdin::Opaque };
                    }
                }
            },
            ast::IoRedirect::HereDocument(_, hd) => {
                let body = hd.doc.value.clone();
                if hd.requires_expansion && self.embedded(&body, depth) {
                    *stdin = Stdin::Downloaded;
                    return;
                }
                *stdin = Stdin::Literal(body);
            }
            ast::IoRedirect::HereString(_, w) => {
                let a = self.expand(&w.value, depth);
                *stdin = match a.plain() {
                    Some(l) => Stdin::Literal(l.to_string()),
                    None if a.downloaded => Stdin::Downloaded,
                    None => Stdin::Opaque,
                };
            }
            ast::IoRedirect::OutputAndError(w, _) => {
                let a = self.expand(&w.value, depth);
                commands::write_target(self, &a);
            }
        }
    }

    /// Walks the substitutions in text that undergoes expansion like a
    /// double-quoted string but is not a shell word (here-document bodies,
    /// arithmetic, operator words of `${..}`). Returns true if they
    /// download something.
    ///
    /// The text goes through the full parser as the argument of `:` rather
    /// than straight to the word parser: the tokenizer rejects malformed
    /// nesting quickly, while the word parser alone backtracks
    /// exponentially on inputs such as `$((<$((<$((<...`.
    fn embedded(&mut self, text: &str, depth: usize) -> bool {
        if !text.contains('$') && !text.contains('`') {
            return false;
        }
        let mark = self.downloads;
        let had_colon = self.commands.iter().any(|c| c == ":");
        let quoted = format!(": \"{}\"", text.replace('"', "\\\""));
        self.script(&quoted, depth + 1, &Stdin::None);
        if !had_colon {
            // `:` is our vehicle, not a command of the input.
            self.commands.retain(|c| c != ":");
        }
        self.downloaded_since(mark)
    }

    /// Expands one shell word into an [`Arg`], walking every command
    /// substitution inside it.
    pub(crate) fn expand(&mut self, word: &str, depth: usize) -> Arg {
        let mut arg = Arg { lit: Some(String::new()), ..Arg::default() };
        if !self.tick() {
            arg.lit = None;
            return arg;
        }
        match parse_word(word) {
            Ok(pieces) => self.pieces(word, &pieces, false, &mut arg, depth),
            Err(e) => {
                self.unparsed(format!("cannot parse word `{word}`: {e}"));
                arg.lit = None;
                arg.text = word.to_string();
            }
        }
        arg
    }

    fn pieces(&mut self, src: &str, pieces: &[WordPieceWithSource], quoted: bool, arg: &mut Arg, depth: usize) {
        for p in pieces {
            match &p.piece {
                WordPiece::Text(s) => {
                    if !quoted && has_glob(s) {
                        arg.glob = true;
                    }
                    arg.push_static(s);
                }
                WordPiece::SingleQuotedText(s) => arg.push_static(s),
                WordPiece::AnsiCQuotedText(s) => arg.push_static(&decode_ansi_c(s)),
                WordPiece::DoubleQuotedSequence(inner) | WordPiece::GettextDoubleQuotedSequence(inner) => {
                    self.pieces(src, inner, true, arg, depth);
                }
                WordPiece::TildePrefix(user) => {
                    arg.push_static("~");
                    arg.push_static(user);
                }
                WordPiece::EscapeSequence(s) => {
                    let rest = s.strip_prefix('\\').unwrap_or(s);
                    if rest == "\n" {
                        // Line continuation.
                    } else if quoted && !matches!(rest, "$" | "`" | "\"" | "\\") {
                        arg.push_static(s);
                    } else {
                        arg.push_static(rest);
                    }
                }
                WordPiece::ParameterExpansion(expr) => {
                    let raw = src.get(p.start_index..p.end_index).unwrap_or("");
                    self.parameter(expr, raw, arg, depth);
                }
                WordPiece::CommandSubstitution(code) => {
                    let mark = self.downloads;
                    self.script(code, depth + 1, &Stdin::None);
                    if self.downloaded_since(mark) {
                        arg.downloaded = true;
                    }
                    arg.push_dynamic("*");
                }
                WordPiece::BackquotedCommandSubstitution(code) => {
                    let mark = self.downloads;
                    let code = unescape_backticks(code);
                    self.script(&code, depth + 1, &Stdin::None);
                    if self.downloaded_since(mark) {
                        arg.downloaded = true;
                    }
                    arg.push_dynamic("*");
                }
                WordPiece::ArithmeticExpression(e) => {
                    self.embedded(&e.value, depth);
                    arg.push_dynamic("*");
                }
            }
        }
    }

    fn parameter(&mut self, expr: &word::ParameterExpr, raw: &str, arg: &mut Arg, depth: usize) {
        if let word::ParameterExpr::Parameter { parameter: word::Parameter::Named(name), indirect: false } = expr {
            match self.vars.get(name) {
                Some(Some(v)) => {
                    let v = v.clone();
                    arg.push_static(&v);
                }
                Some(None) => arg.push_dynamic("*"),
                None if name == "HOME" => arg.push_dynamic("~"),
                None => {
                    if !HARMLESS_VARS.contains(&name.as_str()) {
                        arg.env_refs.push(name.clone());
                    }
                    arg.push_dynamic("*");
                }
            }
            return;
        }
        // Operators such as `${x:-WORD}` carry words of their own that may
        // hold command substitutions: walk them by re-expanding the inner
        // text of the braces as a double-quoted string.
        if raw.contains("$(") || raw.contains('`') || raw.contains("<(") {
            let inner = raw.strip_prefix("${").and_then(|r| r.strip_suffix('}')).unwrap_or(raw);
            if self.embedded(inner, depth) {
                arg.downloaded = true;
            }
        }
        if let Some(name) = param_name(expr)
            && !self.vars.contains_key(&name)
            && !HARMLESS_VARS.contains(&name.as_str())
        {
            arg.env_refs.push(name);
        }
        arg.push_dynamic("*");
    }

    /// Classifies one resolved command (name + arguments).
    pub(crate) fn command(&mut self, args: &[Arg], depth: usize, stdin: &Stdin) -> Option<String> {
        if depth > MAX_DEPTH {
            self.unparsed(format!("commands nested more than {MAX_DEPTH} levels deep"));
            return None;
        }
        if !self.tick() {
            return None;
        }
        let first = args.first()?;
        if first.glob {
            self.unparsed(format!("command name `{}` contains a glob or brace expansion", first.text));
            return None;
        }
        let Some(raw) = first.lit.clone() else {
            if first.downloaded {
                self.add(ShellClass::RemoteCode);
            }
            self.unparsed(format!("command name `{}` is not static (variable or substitution)", first.text));
            return None;
        };
        let name = paths::command_basename(&raw);
        if name.is_empty() {
            self.unparsed("empty command name".to_string());
            return None;
        }
        self.push_cmd(&name);
        if raw.contains('/') && self.is_downloaded_file(&raw) {
            // Executing a file fetched earlier on the same line.
            self.add(ShellClass::RemoteCode);
            return None;
        }
        commands::classify(self, &name, &raw, args, depth, stdin)
    }
}

/// Does assigning `value` to `name` change how command names resolve?
/// `PATH` made only of the standard system directories is fine.
pub(crate) fn dangerous_assignment(name: &str, value: Option<&str>) -> bool {
    if !DANGEROUS_VARS.contains(&name) {
        return false;
    }
    if name != "PATH" {
        return true;
    }
    const STANDARD: &[&str] = &["/bin", "/sbin", "/usr/bin", "/usr/sbin", "/usr/local/bin", "/usr/local/sbin"];
    !value.is_some_and(|v| v.split(':').all(|d| STANDARD.contains(&d.trim_end_matches('/'))))
}

fn assignment_name(a: &ast::Assignment) -> String {
    match &a.name {
        ast::AssignmentName::VariableName(n) | ast::AssignmentName::ArrayElementName(n, _) => n.clone(),
    }
}

fn param_name(expr: &word::ParameterExpr) -> Option<String> {
    let p = match expr {
        word::ParameterExpr::Parameter { parameter, .. }
        | word::ParameterExpr::UseDefaultValues { parameter, .. }
        | word::ParameterExpr::AssignDefaultValues { parameter, .. }
        | word::ParameterExpr::IndicateErrorIfNullOrUnset { parameter, .. }
        | word::ParameterExpr::UseAlternativeValue { parameter, .. }
        | word::ParameterExpr::ParameterLength { parameter, .. } => parameter,
        _ => return None,
    };
    match p {
        word::Parameter::Named(n)
        | word::Parameter::NamedWithIndex { name: n, .. }
        | word::Parameter::NamedWithAllIndices { name: n, .. } => Some(n.clone()),
        _ => None,
    }
}

fn parser_options() -> brush_parser::ParserOptions {
    brush_parser::ParserOptions {
        enable_extended_globbing: true,
        posix_mode: false,
        sh_mode: false,
        // Keep `~` as written: we match paths such as `~/.ssh` ourselves.
        tilde_expansion: true,
    }
}

/// Runs the parser, turning any panic inside it into an error: the parser
/// is third-party code and the classifier must never take the gateway down.
fn parse_program(src: &str) -> Result<ast::Program, String> {
    let opts = parser_options();
    let info = brush_parser::SourceInfo::default();
    std::panic::catch_unwind(move || {
        let mut parser = brush_parser::Parser::new(std::io::Cursor::new(src), &opts, &info);
        parser.parse_program().map_err(|e| e.to_string())
    })
    .unwrap_or_else(|_| Err("parser failed".to_string()))
}

fn parse_word(word: &str) -> Result<Vec<WordPieceWithSource>, String> {
    let opts = parser_options();
    std::panic::catch_unwind(move || word::parse(word, &opts).map_err(|e| e.to_string()))
        .unwrap_or_else(|_| Err("word parser failed".to_string()))
}

/// Cheap pre-scan bounding the syntactic nesting the recursive-descent
/// parser would have to recurse through. Over-approximates (quotes are not
/// considered), which only makes extreme inputs `Unparsed`.
fn too_deep(src: &str) -> Option<String> {
    let bytes = src.as_bytes();
    let mut depth: usize = 0;
    let mut max: usize = 0;
    let mut bangs = 0usize;
    let mut prev_sep = true;
    let word_at = |i: usize, kw: &[u8]| {
        bytes[i..].starts_with(kw)
            && bytes.get(i + kw.len()).is_none_or(|c| c.is_ascii_whitespace() || matches!(c, b';' | b'&' | b'|' | b')'))
    };
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'(' | b'{' | b'[' => {
                depth += 1;
                max = max.max(depth);
            }
            b')' | b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
        if prev_sep {
            if [&b"if"[..], b"while", b"until", b"for", b"case", b"select"].iter().any(|kw| word_at(i, kw)) {
                depth += 1;
                max = max.max(depth);
            } else if [&b"fi"[..], b"done", b"esac"].iter().any(|kw| word_at(i, kw)) {
                depth = depth.saturating_sub(1);
            } else if word_at(i, b"!") {
                bangs += 1;
            }
        }
        prev_sep = b.is_ascii_whitespace() || matches!(b, b';' | b'&' | b'|' | b'(' | b'{' | b'`');
    }
    // A here-document operator must be followed by its delimiter word; the
    // parser can loop without bound on inputs such as `$(<< >$(` (bash
    // rejects them as syntax errors anyway). Quotes are ignored here: that
    // only over-rejects.
    let mut i = 0;
    while i + 1 < bytes.len() {
        if bytes[i] == b'\\' {
            // An escaped character is never part of an operator.
            i += 2;
            continue;
        }
        if bytes[i] == b'<' && bytes[i + 1] == b'<' {
            if bytes.get(i + 2) == Some(&b'<') {
                i += 3;
                continue;
            }
            let mut j = i + 2;
            if bytes.get(j) == Some(&b'-') {
                j += 1;
            }
            while matches!(bytes.get(j), Some(b' ' | b'\t')) {
                j += 1;
            }
            match bytes.get(j) {
                None => return Some("here-document without delimiter".to_string()),
                Some(c) if b"<>|&;()#\n\r".contains(c) => {
                    return Some("here-document without delimiter".to_string());
                }
                _ => {}
            }
            // The delimiter word, quotes removed; a line equal to it must
            // follow, or the parser may never terminate (e.g. `$(<< ''${`).
            let start = j;
            while j < bytes.len() && !b" \t\n<>|&;()".contains(&bytes[j]) {
                j += 1;
            }
            let delim: Vec<u8> =
                bytes[start..j].iter().copied().filter(|c| !matches!(c, b'\'' | b'"' | b'\\')).collect();
            let terminated = !delim.is_empty()
                && src[j..].split('\n').skip(1).any(|line| {
                    let line = line.trim_start_matches('\t');
                    line.as_bytes() == delim.as_slice()
                });
            if !terminated {
                return Some("unterminated here-document".to_string());
            }
            i = j;
            continue;
        }
        i += 1;
    }
    // The parser panics on file-descriptor numbers that overflow (`99999999999>x`).
    let mut run = 0usize;
    for &b in bytes {
        if b.is_ascii_digit() {
            run += 1;
        } else {
            if run > 9 && matches!(b, b'<' | b'>') {
                return Some("file descriptor number too large".to_string());
            }
            run = 0;
        }
    }
    if max > MAX_SYNTAX_NESTING {
        Some(format!("nesting deeper than {MAX_SYNTAX_NESTING} levels"))
    } else if bangs > MAX_SYNTAX_NESTING * 4 {
        Some("too many `!` operators".to_string())
    } else {
        None
    }
}

fn has_glob(s: &str) -> bool {
    // `[` alone (the test command) is not a pattern: it needs a `]` after it.
    let bracket = s.find('[').is_some_and(|i| s[i + 1..].contains(']'));
    s.contains(['*', '?'])
        || bracket
        || (s.contains('{') && s.contains('}') && (s.contains(',') || s.contains("..")))
        || s.contains("@(")
        || s.contains("!(")
        || s.contains("+(")
}

/// Inside backticks, `\\`, `` \` `` and `\$` stand for the bare character.
fn unescape_backticks(code: &str) -> String {
    let mut out = String::with_capacity(code.len());
    let mut chars = code.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\'
            && let Some(&n) = chars.peek()
            && matches!(n, '\\' | '`' | '$')
        {
            out.push(n);
            chars.next();
            continue;
        }
        out.push(c);
    }
    out
}

/// Decodes the body of `$'...'` the way bash does.
fn decode_ansi_c(s: &str) -> String {
    let body = s.strip_prefix("$'").and_then(|b| b.strip_suffix('\'')).unwrap_or(s);
    let chars: Vec<char> = body.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c != '\\' || i + 1 >= chars.len() {
            out.push(c);
            i += 1;
            continue;
        }
        let n = chars[i + 1];
        i += 2;
        let simple = match n {
            'a' => Some('\x07'),
            'b' => Some('\x08'),
            'e' | 'E' => Some('\x1b'),
            'f' => Some('\x0c'),
            'n' => Some('\n'),
            'r' => Some('\r'),
            't' => Some('\t'),
            'v' => Some('\x0b'),
            '\\' => Some('\\'),
            '\'' => Some('\''),
            '"' => Some('"'),
            '?' => Some('?'),
            _ => None,
        };
        if let Some(ch) = simple {
            out.push(ch);
            continue;
        }
        let (radix, max_len) = match n {
            'x' => (16, 2),
            'u' => (16, 4),
            'U' => (16, 8),
            '0'..='7' => {
                i -= 1;
                (8, 3)
            }
            'c' => {
                if let Some(&ctl) = chars.get(i) {
                    out.push(char::from((ctl as u8) & 0x1f));
                    i += 1;
                }
                continue;
            }
            other => {
                out.push('\\');
                out.push(other);
                continue;
            }
        };
        let mut j = i;
        while j < chars.len() && j - i < max_len && chars[j].is_digit(radix) {
            j += 1;
        }
        let digits: String = chars[i..j].iter().collect();
        match u32::from_str_radix(&digits, radix).ok().and_then(char::from_u32) {
            Some(ch) if !digits.is_empty() => out.push(ch),
            _ => {
                out.push('\\');
                out.push(n);
            }
        }
        i = j;
    }
    out
}

#[cfg(test)]
mod tests;
