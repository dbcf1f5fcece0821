//! SSH hosts: `ssh_run` executes a command line on the host with russh (ring crypto).
//!
//! * **Pinned host key.** The connection's `host_key` (a known_hosts key or a `SHA256:` fingerprint) is the
//!   only key accepted; any other key ends the handshake before authentication, so no credential and no
//!   command ever reaches an impostor.
//! * **Credentials** (private key or password) come from the vault and never leave this module.
//! * **Reuse.** One authenticated connection per target is kept and each call opens a new channel on it,
//!   which saves the key exchange and authentication (several round trips) on every call. A dead connection
//!   is replaced transparently; a refused channel (the host's `MaxSessions`) gets a connection of its own.
//! * **Streaming with caps.** Output is forwarded as it arrives; once `max_output_bytes` is reached, or the
//!   time limit passes, the channel is closed, which ends the remote command (SIGPIPE / hang-up) and stops
//!   the reading, so memory stays bounded whatever the command prints.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use russh::ChannelMsg;
use russh::client::{self, Handle};
use russh::keys::PublicKeyOrCertificate;
use russh::keys::{HashAlg, PrivateKey, PrivateKeyWithHashAlg, PublicKey};

use super::{Chunk, ChunkSender, Connector, Execution, ExitInfo, Output, OutputBudget, Stream};
use crate::config::{ConnectionConfig, Limits};
use crate::error::{Error, Result};
use crate::vault::Secret;

const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The host key a connection accepts.
#[derive(Clone)]
enum HostKeyPin {
    Key(PublicKey),
    Fingerprint(String),
}

impl HostKeyPin {
    fn parse(text: &str) -> std::result::Result<Self, String> {
        let text = text.trim();
        if let Some(fp) = text.strip_prefix("SHA256:") {
            return Ok(HostKeyPin::Fingerprint(format!("SHA256:{}", fp.trim_end_matches('='))));
        }
        // `ssh-ed25519 AAAA… [comment]` or a whole known_hosts line (`host ssh-ed25519 AAAA…`).
        let tokens: Vec<&str> = text.split_whitespace().collect();
        let at = tokens
            .iter()
            .position(|t| t.starts_with("ssh-") || t.starts_with("ecdsa-") || t.starts_with("sk-"))
            .ok_or_else(|| "host_key: no key type (ssh-ed25519, ecdsa-…, ssh-rsa) found".to_owned())?;
        let blob = tokens.get(at + 1).ok_or_else(|| "host_key: the key's base64 is missing".to_owned())?;
        russh::keys::parse_public_key_base64(blob)
            .map(HostKeyPin::Key)
            .map_err(|e| format!("host_key: not a valid public key: {e}"))
    }

    fn accepts(&self, key: &PublicKey) -> bool {
        match self {
            HostKeyPin::Key(pinned) => pinned.key_data() == key.key_data(),
            HostKeyPin::Fingerprint(fp) => fingerprint(key) == *fp,
        }
    }

    fn describe(&self) -> String {
        match self {
            HostKeyPin::Key(k) => fingerprint(k),
            HostKeyPin::Fingerprint(fp) => fp.clone(),
        }
    }
}

fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string().trim_end_matches('=').to_owned()
}

enum Auth {
    Key(Arc<PrivateKey>),
    Password(Secret),
}

/// russh callbacks: only the host key check matters here.
struct Verifier {
    pin: HostKeyPin,
    /// The key a refused host presented, for the error message.
    refused: Arc<Mutex<Option<String>>>,
}

impl client::Handler for Verifier {
    type Error = russh::Error;

    async fn check_server_key(&mut self, presented: &PublicKeyOrCertificate) -> std::result::Result<bool, Self::Error> {
        // Host certificates are not trusted by pin: only the plain key that was pinned.
        let key = match presented {
            PublicKeyOrCertificate::PublicKey { key, .. } => key,
            PublicKeyOrCertificate::Certificate(_) => {
                if let Ok(mut slot) = self.refused.lock() {
                    *slot = Some("a host certificate".to_owned());
                }
                return Ok(false);
            }
        };
        if self.pin.accepts(key) {
            return Ok(true);
        }
        if let Ok(mut slot) = self.refused.lock() {
            *slot = Some(fingerprint(key));
        }
        Ok(false)
    }
}

/// An SSH host.
pub struct SshConnector {
    name: String,
    host: String,
    port: u16,
    user: String,
    auth: Auth,
    pin: HostKeyPin,
    connect_timeout: Duration,
    config: Arc<client::Config>,
    cached: tokio::sync::Mutex<Option<Arc<Handle<Verifier>>>>,
}

impl SshConnector {
    /// Build from configuration; `password` / `private_key` are the resolved credentials. Nothing connects
    /// until the first call. Errors name the key at fault.
    pub fn new(
        name: &str,
        c: &ConnectionConfig,
        password: Option<&Secret>,
        private_key: Option<&Secret>,
    ) -> Result<Self> {
        let bad = |key: &str, message: String| Error::Config {
            file: "airlock.toml".into(),
            key: format!("connections.{name}.{key}"),
            message,
        };
        let url = url::Url::parse(&c.url).map_err(|e| bad("url", e.to_string()))?;
        let host = match url.host() {
            Some(url::Host::Domain(d)) => d.to_owned(),
            Some(url::Host::Ipv4(ip)) => ip.to_string(),
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            None => return Err(bad("url", "no host".into())),
        };
        let user = percent_decode(url.username());
        if user.is_empty() {
            return Err(bad("url", "no user: ssh://USER@HOST".into()));
        }
        let pin = HostKeyPin::parse(c.host_key.as_deref().unwrap_or_default()).map_err(|m| bad("host_key", m))?;
        let auth = match (private_key, password) {
            (Some(k), _) => Auth::Key(Arc::new(
                russh::keys::decode_secret_key(k.expose(), None)
                    .map_err(|e| bad("private_key", format!("not a usable private key: {e}")))?,
            )),
            (None, Some(p)) => Auth::Password(p.clone()),
            (None, None) => return Err(bad("private_key", "needs private_key or password".into())),
        };
        let config = client::Config {
            // Idle cached connections are probed so a silently dropped one is noticed and replaced.
            keepalive_interval: Some(Duration::from_secs(30)),
            keepalive_max: 3,
            nodelay: true,
            ..Default::default()
        };
        Ok(Self {
            name: name.to_owned(),
            host,
            port: url.port().unwrap_or(22),
            user,
            auth,
            pin,
            connect_timeout: c.connect_timeout.map_or(DEFAULT_CONNECT_TIMEOUT, |d| d.0),
            config: Arc::new(config),
            cached: tokio::sync::Mutex::new(None),
        })
    }

    fn target_err(&self, message: impl Into<String>) -> Error {
        Error::Target { connection: self.name.clone(), message: message.into() }
    }

    /// Connect and authenticate, within the connect timeout.
    async fn connect(&self) -> Result<Handle<Verifier>> {
        let refused = Arc::new(Mutex::new(None));
        let verifier = Verifier { pin: self.pin.clone(), refused: refused.clone() };
        let attempt = async {
            let connected = client::connect(self.config.clone(), (self.host.as_str(), self.port), verifier)
                .await
                .map_err(|e| match refused.lock().ok().and_then(|mut s| s.take()) {
                    Some(presented) => {
                        Error::HostKeyMismatch { connection: self.name.clone(), presented, pinned: self.pin.describe() }
                    }
                    None => self.target_err(format!("cannot connect to {}:{}: {e}", self.host, self.port)),
                });
            let mut handle = connected?;
            let auth = match &self.auth {
                Auth::Key(key) => {
                    // RSA keys sign with the best hash the server offers; other key types ignore it.
                    let hash = if key.algorithm().is_rsa() {
                        handle.best_supported_rsa_hash().await.ok().flatten().flatten()
                    } else {
                        None
                    };
                    handle.authenticate_publickey(&self.user, PrivateKeyWithHashAlg::new(key.clone(), hash)).await
                }
                Auth::Password(p) => handle.authenticate_password(&self.user, p.expose()).await,
            }
            .map_err(|e| self.target_err(format!("authentication failed: {e}")))?;
            if !auth.success() {
                return Err(self.target_err(format!("authentication as {:?} was refused by the host", self.user)));
            }
            Ok(handle)
        };
        match tokio::time::timeout(self.connect_timeout, attempt).await {
            Ok(r) => r,
            Err(_) => Err(self.target_err(format!(
                "connecting to {}:{} timed out after {} s",
                self.host,
                self.port,
                self.connect_timeout.as_secs()
            ))),
        }
    }

    /// A session channel, on the cached connection when it is alive.
    async fn channel(&self) -> Result<(russh::Channel<client::Msg>, Option<Handle<Verifier>>)> {
        let mut cached = self.cached.lock().await;
        if let Some(handle) = cached.as_ref().filter(|h| !h.is_closed()).cloned() {
            drop(cached);
            match handle.channel_open_session().await {
                Ok(ch) => return Ok((ch, None)),
                Err(e) if !handle.is_closed() => {
                    // Alive but refusing more channels (MaxSessions): this call gets a connection of its own.
                    tracing::debug!(connection = %self.name, error = %e, "channel refused; opening a dedicated connection");
                    let own = self.connect().await?;
                    let ch = own.channel_open_session().await.map_err(|e| self.target_err(e.to_string()))?;
                    return Ok((ch, Some(own)));
                }
                Err(_) => cached = self.cached.lock().await,
            }
        }
        // No connection yet, or it died: reconnect (once) and cache it.
        let handle = Arc::new(self.connect().await?);
        let ch = handle.channel_open_session().await.map_err(|e| self.target_err(e.to_string()))?;
        *cached = Some(handle);
        Ok((ch, None))
    }

    async fn run(&self, command: &str, timeout: Duration, limits: &Limits, output: ChunkSender) -> Result<ExitInfo> {
        let (mut channel, _dedicated) = self.channel().await?;
        channel.exec(true, command).await.map_err(|e| self.target_err(format!("exec failed: {e}")))?;
        let mut budget = OutputBudget::new(limits.max_output_bytes);
        let mut exit = ExitInfo::default();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let msg = match tokio::time::timeout_at(deadline, channel.wait()).await {
                Ok(Some(m)) => m,
                Ok(None) => break,
                Err(_) => {
                    exit.timed_out = true;
                    break;
                }
            };
            let (stream, data) = match msg {
                ChannelMsg::Data { data } => (Stream::Stdout, data),
                ChannelMsg::ExtendedData { data, ext: 1 } => (Stream::Stderr, data),
                ChannelMsg::ExitStatus { exit_status } => {
                    exit.exit_code = Some(i64::from(exit_status));
                    continue;
                }
                ChannelMsg::ExitSignal { signal_name, .. } => {
                    exit.signal = Some(format!("{signal_name:?}"));
                    continue;
                }
                ChannelMsg::Close => break,
                _ => continue,
            };
            let kept = budget.take(&data);
            if !kept.is_empty() && output.send(Chunk { stream, data: kept.to_vec() }).await.is_err() {
                break; // the pipeline stopped listening
            }
            if budget.exhausted() {
                exit.truncated = true;
                break;
            }
        }
        if exit.truncated || exit.timed_out {
            // Closing the channel hangs up on the command: it is not left running on the host.
            let _ = channel.close().await;
        }
        Ok(exit)
    }
}

#[async_trait]
impl Connector for SshConnector {
    async fn execute(&self, execution: &Execution, limits: &Limits, output: ChunkSender) -> Result<Output> {
        let Execution::Ssh { command, timeout } = execution else {
            return Err(Error::InvalidRequest(format!("{} is an ssh connection; use ssh_run", self.name)));
        };
        self.run(command, *timeout, limits, output).await.map(Output::Exec)
    }
}

/// URL user names are percent-encoded (`deploy%40corp`); invalid escapes stay as written.
fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIJdD7y3aLq454yWBdwLWbieU1ebz9/cu7/QEXn9OIeZJ";

    #[test]
    fn host_key_pins_parse_from_every_usual_form() {
        for text in [
            format!("ssh-ed25519 {KEY}"),
            format!("ssh-ed25519 {KEY} root@web-1"),
            format!("[web-1]:2222 ssh-ed25519 {KEY}"),
        ] {
            let pin = HostKeyPin::parse(&text).expect("parses");
            let HostKeyPin::Key(k) = &pin else { panic!("a key pin") };
            assert!(pin.accepts(k));
            let fp = HostKeyPin::parse(&pin.describe()).expect("fingerprint parses");
            assert!(fp.accepts(k), "the fingerprint of a key accepts that key");
        }
        assert!(HostKeyPin::parse("web-1").is_err());
        assert!(HostKeyPin::parse("ssh-ed25519 notbase64!").is_err());
    }

    #[test]
    fn user_names_are_percent_decoded() {
        assert_eq!(percent_decode("deploy%40corp"), "deploy@corp");
        assert_eq!(percent_decode("plain"), "plain");
        assert_eq!(percent_decode("bad%zz"), "bad%zz");
    }
}
