//! The command line: one clap struct per subcommand, parsed once in `main`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Airlock: the gateway between AI agents and your production databases.
///
/// Agents (AutoGen, any MCP client) call Airlock's MCP tools; every call is authenticated, classified, decided
/// by policy, executed with credentials the agent never sees, masked, and recorded in a verifiable session.
///
/// Quick start: `airlock demo` creates ./airlock-demo/ with a seeded shop database and prints how to connect.
#[derive(Debug, Parser)]
#[command(name = "airlock", version, about, long_about, propagate_version = true)]
pub struct Cli {
    /// Configuration file (airlock.toml). Every key can be overridden with AIRLOCK_<SECTION>__<KEY> variables.
    #[arg(long, global = true, env = "AIRLOCK_CONFIG", default_value = "airlock.toml", value_name = "PATH")]
    pub config: PathBuf,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve MCP over streamable HTTP on /mcp (bearer tokens required), with /healthz.
    Serve,
    /// Serve MCP to one client over stdin/stdout; the agent's token comes from AIRLOCK_TOKEN.
    Mcp(McpArgs),
    /// Create (or reuse) ./airlock-demo/ with a seeded shop database and an agent token, then serve it.
    Demo(DemoArgs),
    /// Create or upgrade Airlock's store (SQLite or Postgres) and exit.
    Migrate,
    /// Manage agent API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Validate policies, or see what a call would get.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Inspect recorded sessions.
    #[command(subcommand)]
    Sessions(SessionsCommand),
    /// Manage sign-in to the web UI for the `[[humans]]` of the configuration.
    #[command(subcommand)]
    Users(UsersCommand),
}

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Give a human a local password (replacing any old one and ending their web sessions). Without
    /// `--password-stdin` a random password is generated and printed once.
    Add {
        /// A `subject` from `[[humans]]`; their web role comes from its groups through `[web]`.
        subject: String,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Print a one-time login link for a human (valid for `web.login_link_lifetime`; only its hash is stored).
    LoginLink {
        /// A `subject` from `[[humans]]`.
        subject: String,
    },
}

#[derive(Debug, Args)]
pub struct McpArgs {
    /// Use the stdio transport (the only one `airlock mcp` offers; use `airlock serve` for HTTP).
    #[arg(long, required = true)]
    pub stdio: bool,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Directory of the demo (created on first run, reused afterwards).
    #[arg(long, default_value = "airlock-demo", value_name = "DIR")]
    pub dir: PathBuf,
    /// Prepare the directory and print the instructions, but do not start the server.
    #[arg(long)]
    pub no_serve: bool,
    /// Print the shop's seed SQL (portable: SQLite, Postgres, MySQL) and exit; compose.yaml seeds its demo
    /// Postgres with it.
    #[arg(long, hide = true)]
    pub print_seed_sql: bool,
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token and print it (once: only a hash is stored).
    Create {
        /// Name of the agent; it becomes the identity's subject in policies and records.
        #[arg(long)]
        name: String,
        /// Group of the agent (repeat for several); policies can match on groups.
        #[arg(long = "group", value_name = "GROUP")]
        groups: Vec<String>,
    },
    /// List tokens (never their secrets).
    List,
    /// Revoke a token by id or name; open sessions using it are cut off at their next call.
    Revoke {
        /// Token id or name.
        id_or_name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Write the effective policy (the policy files plus admin changes made with `/airlock policy set`) as one
    /// YAML file that `airlock policy check` accepts, for review in git.
    Export {
        /// Write to this file instead of standard output.
        #[arg(long)]
        output: Option<PathBuf>,
    },
    /// List the admin policy versions (who, when, command, diff), newest first.
    History {
        /// How many versions to show.
        #[arg(long, default_value_t = 20)]
        limit: i64,
    },
    /// Load and validate every policy file; exit non-zero with the first error.
    Check {
        /// Policy directory (default: `policy.dir` from the configuration).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Show the decision a call would get, without executing or recording it: `--sql` for a database,
    /// `--command` for an ssh host, `--namespace/--pod -- ARGV...` for a cluster.
    Test {
        /// Connection name from the configuration.
        #[arg(long)]
        connection: String,
        /// The SQL statement to judge (database connections).
        #[arg(long)]
        sql: Option<String>,
        /// The command line to judge (ssh connections).
        #[arg(long)]
        command: Option<String>,
        /// Namespace (kubernetes connections).
        #[arg(long)]
        namespace: Option<String>,
        /// Pod (kubernetes connections).
        #[arg(long)]
        pod: Option<String>,
        /// The argv to judge (kubernetes connections), after `--`.
        #[arg(last = true)]
        argv: Vec<String>,
        /// Subject of the caller (an agent token's name).
        #[arg(long, default_value = "policy-test")]
        subject: String,
        /// Group of the caller (repeat for several).
        #[arg(long = "group", value_name = "GROUP")]
        groups: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum SessionsCommand {
    /// Verify the hash chain of one session, of all of them, or of an exported file; exit non-zero when a chain is
    /// broken.
    Verify {
        /// Session id.
        #[arg(required_unless_present_any = ["all", "file"], conflicts_with_all = ["all", "file"])]
        id: Option<String>,
        /// Verify every session in the store.
        #[arg(long, conflicts_with = "file")]
        all: bool,
        /// Verify a file written by `airlock sessions export` (offline: the store is not opened).
        #[arg(long)]
        file: Option<PathBuf>,
    },
    /// Export a session: every event with its hashes and the chain head (JSON), or its command output as an
    /// asciicast v2 recording.
    Export {
        /// Session id.
        id: String,
        /// `json` (events and hashes, verifiable offline) or `asciicast` (SSH / kube output, for a terminal player).
        #[arg(long, default_value = "json", value_parser = ["json", "asciicast"])]
        format: String,
        /// Only this call's output (asciicast).
        #[arg(long)]
        call: Option<String>,
        /// Write to this file instead of standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Purge whole sessions past their retention (`retention.days`, `connections.*.retention_days`) now; each
    /// purge is recorded. `airlock serve` does this every `retention.purge_every`.
    Purge {
        /// Only list what would be purged.
        #[arg(long)]
        dry_run: bool,
    },
}
