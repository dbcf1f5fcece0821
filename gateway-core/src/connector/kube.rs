//! Kubernetes: `kube_exec` runs an argv in a pod's container through the API server's exec WebSocket
//! (kube-rs; `v5.channel.k8s.io`, falling back to `v4.channel.k8s.io`).
//!
//! The API server URL, its CA and the credential (bearer token or client certificate) come from the
//! connection's configuration and the vault; agents only name namespace, pod and container. Output streams
//! are forwarded as they arrive under the same caps as SSH; the exit status comes from the status channel.

use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use globset::GlobSet;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, AttachParams};
use tokio::io::AsyncReadExt;

use super::{Chunk, ChunkSender, Connector, Execution, ExitInfo, Output, OutputBudget, Stream};
use crate::config::{ConnectionConfig, Limits};
use crate::error::{Error, Result};
use crate::vault::Secret;

const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A Kubernetes cluster.
pub struct KubeConnector {
    name: String,
    client: kube::Client,
    namespaces: Option<GlobSet>,
}

impl KubeConnector {
    /// Build from configuration with the resolved credentials. Must run inside the Tokio runtime. Nothing
    /// connects until the first call.
    pub fn new(name: &str, c: &ConnectionConfig, token: Option<&Secret>, client_key: Option<&Secret>) -> Result<Self> {
        let bad = |key: &str, message: String| Error::Config {
            file: "airlock.toml".into(),
            key: format!("connections.{name}.{key}"),
            message,
        };
        let uri: http::Uri = c.url.parse().map_err(|e| bad("url", format!("{e}")))?;
        let mut config = kube::Config::new(uri);
        config.connect_timeout = Some(c.connect_timeout.map_or(DEFAULT_CONNECT_TIMEOUT, |d| d.0));
        // Exec streams can be quiet for a long time; the call's own time limit bounds them instead.
        config.read_timeout = None;
        if let Some(ca) = &c.ca_cert {
            if !ca.is_file() {
                return Err(bad("ca_cert", format!("{} is not a readable file", ca.display())));
            }
            // kube re-reads the file periodically, so a rotated CA is picked up without a restart.
            config.root_cert_file = Some(ca.clone());
        }
        config.auth_info.token = token.map(|t| secrecy::SecretString::from(t.expose().to_owned()));
        if let Some(cert) = &c.client_cert {
            config.auth_info.client_certificate = Some(cert.display().to_string());
        }
        if let Some(key) = client_key {
            let encoded = base64::engine::general_purpose::STANDARD.encode(key.expose());
            config.auth_info.client_key_data = Some(secrecy::SecretString::from(encoded));
        }
        let client = kube::Client::try_from(config).map_err(|e| bad("url", format!("cannot build a client: {e}")))?;
        let namespaces = if c.namespaces.is_empty() {
            None
        } else {
            let mut b = globset::GlobSetBuilder::new();
            for ns in &c.namespaces {
                b.add(crate::policy::compile_glob(ns).map_err(|e| bad("namespaces", e.to_string()))?);
            }
            Some(b.build().map_err(|e| bad("namespaces", e.to_string()))?)
        };
        Ok(Self { name: name.to_owned(), client, namespaces })
    }

    /// Whether the connection lets agents exec in `namespace` at all.
    pub fn namespace_allowed(&self, namespace: &str) -> bool {
        self.namespaces.as_ref().is_none_or(|g| g.is_match(namespace))
    }

    fn target_err(&self, message: impl Into<String>) -> Error {
        Error::Target { connection: self.name.clone(), message: message.into() }
    }

    async fn run(
        &self,
        namespace: &str,
        pod: &str,
        container: Option<&str>,
        argv: &[String],
        limits: &Limits,
        output: ChunkSender,
    ) -> Result<ExitInfo> {
        let api: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        let mut params = AttachParams::default().stdin(false).stdout(true).stderr(true);
        if let Some(c) = container {
            params = params.container(c);
        }
        let mut attached = api.exec(pod, argv.to_vec(), &params).await.map_err(|e| self.exec_error(e))?;
        let (Some(mut stdout), Some(mut stderr), Some(status)) =
            (attached.stdout(), attached.stderr(), attached.take_status())
        else {
            return Err(self.target_err("the exec session did not open its streams"));
        };
        let mut budget = OutputBudget::new(limits.max_output_bytes);
        let mut exit = ExitInfo::default();
        let (mut out_open, mut err_open) = (true, true);
        let (mut out_buf, mut err_buf) = (vec![0u8; 32 * 1024], vec![0u8; 32 * 1024]);
        while out_open || err_open {
            let (stream, n) = tokio::select! {
                r = stdout.read(&mut out_buf), if out_open => (Stream::Stdout, r),
                r = stderr.read(&mut err_buf), if err_open => (Stream::Stderr, r),
            };
            let n = match n {
                Ok(0) | Err(_) => {
                    match stream {
                        Stream::Stdout => out_open = false,
                        Stream::Stderr => err_open = false,
                    }
                    continue;
                }
                Ok(n) => n,
            };
            let data = match stream {
                Stream::Stdout => &out_buf[..n],
                Stream::Stderr => &err_buf[..n],
            };
            let kept = budget.take(data);
            if !kept.is_empty() && output.send(Chunk { stream, data: kept.to_vec() }).await.is_err() {
                break;
            }
            if budget.exhausted() {
                exit.truncated = true;
                break;
            }
        }
        if exit.truncated {
            // Dropping the session closes the WebSocket; the API server ends the process's streams.
            attached.abort();
            return Ok(exit);
        }
        match status.await {
            Some(s) if s.status.as_deref() == Some("Success") => exit.exit_code = Some(0),
            Some(s) => {
                // A non-zero exit is `Failure` / `NonZeroExitCode` with the code in the `ExitCode` cause.
                let code = s
                    .details
                    .as_ref()
                    .and_then(|d| d.causes.as_ref())
                    .and_then(|causes| causes.iter().find(|c| c.reason.as_deref() == Some("ExitCode")))
                    .and_then(|c| c.message.as_deref())
                    .and_then(|m| m.parse::<i64>().ok());
                match code {
                    Some(code) => exit.exit_code = Some(code),
                    None => {
                        return Err(self.target_err(format!(
                            "exec failed: {} {}",
                            s.reason.unwrap_or_default(),
                            s.message.unwrap_or_default()
                        )));
                    }
                }
            }
            None => return Err(self.target_err("the exec stream ended without an exit status")),
        }
        Ok(exit)
    }

    fn exec_error(&self, e: kube::Error) -> Error {
        match e {
            kube::Error::Api(s) => self.target_err(format!("{} ({}): {}", s.reason, s.code, s.message)),
            other => self.target_err(format!("exec failed: {other}")),
        }
    }
}

#[async_trait]
impl Connector for KubeConnector {
    async fn execute(&self, execution: &Execution, limits: &Limits, output: ChunkSender) -> Result<Output> {
        let Execution::Kube { namespace, pod, container, argv, timeout } = execution else {
            return Err(Error::InvalidRequest(format!("{} is a kubernetes connection; use kube_exec", self.name)));
        };
        let run = self.run(namespace, pod, container.as_deref(), argv, limits, output);
        match tokio::time::timeout(*timeout, run).await {
            Ok(r) => r.map(Output::Exec),
            // Dropping the future drops the exec session, which closes the WebSocket.
            Err(_) => Ok(Output::Exec(ExitInfo { timed_out: true, ..Default::default() })),
        }
    }
}
