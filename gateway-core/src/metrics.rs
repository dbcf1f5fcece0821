//! Prometheus metrics: what the gateway did, counted in memory and rendered in the text exposition format
//! (version 0.0.4) on `/metrics`.
//!
//! Counters and histograms are per process (Prometheus sums replicas); the pending-approvals gauge is read from
//! the store at scrape time, so every replica reports the same, true number. Label values come from a small,
//! fixed vocabulary (tool names, statuses, rule names from policy files, detector names, approval outcomes):
//! nothing an agent types becomes a label, so a hostile caller cannot blow up the series count.
//!
//! Recording takes one uncontended mutex per observation, a few hundred nanoseconds: far below a call's cost.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

use crate::mask::MaskCounts;

/// Upper bounds (seconds) of the policy decision histogram: classification plus decision take microseconds.
const DECISION_BUCKETS: &[f64] = &[0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.005, 0.01];
/// End-to-end tool call latency, as the agent sees it (including the target's own time).
const CALL_BUCKETS: &[f64] =
    &[0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];
/// From an approval request to its decision.
const APPROVAL_BUCKETS: &[f64] = &[1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0];

#[derive(Debug, Clone)]
struct Histogram {
    bounds: &'static [f64],
    /// Count per bucket (not cumulative; made cumulative when rendered).
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Self { bounds, counts: vec![0; bounds.len()], sum: 0.0, count: 0 }
    }

    fn observe(&mut self, seconds: f64) {
        if let Some(i) = self.bounds.iter().position(|b| seconds <= *b) {
            self.counts[i] += 1;
        }
        self.sum += seconds;
        self.count += 1;
    }
}

#[derive(Debug, Default)]
struct State {
    calls: BTreeMap<(String, String, String), u64>,
    call_seconds: BTreeMap<String, Histogram>,
    decision_seconds: Option<Histogram>,
    approval_seconds: BTreeMap<String, Histogram>,
    masked: BTreeMap<String, u64>,
}

/// The gateway's metrics.
#[derive(Debug, Default)]
pub struct Metrics {
    state: Mutex<State>,
}

/// Values read from the store when `/metrics` is scraped.
#[derive(Debug, Clone, Default)]
pub struct StoreGauges {
    pub approvals_pending: i64,
    /// Undelivered audit events per sink.
    pub outbox_backlog: Vec<(String, i64)>,
}

// === impl Metrics ===

impl Metrics {
    fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        // A panic elsewhere while holding the lock leaves counts that are still valid numbers: keep counting.
        let mut guard = match self.state.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        f(&mut guard)
    }

    /// A tool call answered the agent (or an approved call ran): its status, deciding rule (`-` when none),
    /// how long it took and what was masked.
    pub fn call_finished(&self, tool: &str, status: &str, rule: Option<&str>, took: Duration, masked: &MaskCounts) {
        self.with(|s| {
            *s.calls.entry((tool.to_owned(), status.to_owned(), rule.unwrap_or("-").to_owned())).or_default() += 1;
            s.call_seconds
                .entry(tool.to_owned())
                .or_insert_with(|| Histogram::new(CALL_BUCKETS))
                .observe(took.as_secs_f64());
            for (detector, n) in &masked.0 {
                *s.masked.entry(detector.clone()).or_default() += n;
            }
        });
    }

    /// Classification plus policy decision took `took`.
    pub fn decided(&self, took: Duration) {
        self.with(|s| {
            s.decision_seconds.get_or_insert_with(|| Histogram::new(DECISION_BUCKETS)).observe(took.as_secs_f64())
        });
    }

    /// An approval was decided (`approved`, `denied`, `expired`) `waited` after it was requested.
    pub fn approval_decided(&self, outcome: &str, waited: Duration) {
        self.with(|s| {
            s.approval_seconds
                .entry(outcome.to_owned())
                .or_insert_with(|| Histogram::new(APPROVAL_BUCKETS))
                .observe(waited.as_secs_f64())
        });
    }

    /// The text exposition format, with the store's gauges.
    pub fn render(&self, store: &StoreGauges) -> String {
        let s = self.with(|s| State {
            calls: s.calls.clone(),
            call_seconds: s.call_seconds.clone(),
            decision_seconds: s.decision_seconds.clone(),
            approval_seconds: s.approval_seconds.clone(),
            masked: s.masked.clone(),
        });
        let mut out = String::with_capacity(4096);
        header(
            &mut out,
            "airlock_tool_calls_total",
            "counter",
            "Tool call outcomes by tool, status and deciding rule.",
        );
        for ((tool, status, rule), n) in &s.calls {
            let _ = writeln!(
                out,
                "airlock_tool_calls_total{{tool=\"{}\",status=\"{}\",rule=\"{}\"}} {n}",
                label(tool),
                label(status),
                label(rule)
            );
        }
        header(&mut out, "airlock_tool_call_duration_seconds", "histogram", "End-to-end tool call latency by tool.");
        for (tool, h) in &s.call_seconds {
            histogram(&mut out, "airlock_tool_call_duration_seconds", &format!("tool=\"{}\"", label(tool)), h);
        }
        header(
            &mut out,
            "airlock_policy_decision_seconds",
            "histogram",
            "Time to classify a call and decide it by policy.",
        );
        let empty = Histogram::new(DECISION_BUCKETS);
        histogram(&mut out, "airlock_policy_decision_seconds", "", s.decision_seconds.as_ref().unwrap_or(&empty));
        header(&mut out, "airlock_approvals_pending", "gauge", "Approvals waiting for a human (whole store).");
        let _ = writeln!(out, "airlock_approvals_pending {}", store.approvals_pending);
        header(
            &mut out,
            "airlock_approval_wait_seconds",
            "histogram",
            "Time from an approval request to its decision, by outcome.",
        );
        for (outcome, h) in &s.approval_seconds {
            histogram(&mut out, "airlock_approval_wait_seconds", &format!("outcome=\"{}\"", label(outcome)), h);
        }
        header(
            &mut out,
            "airlock_audit_outbox_backlog",
            "gauge",
            "Audit events not yet delivered, by sink (whole store).",
        );
        for (sink, n) in &store.outbox_backlog {
            let _ = writeln!(out, "airlock_audit_outbox_backlog{{sink=\"{}\"}} {n}", label(sink));
        }
        header(&mut out, "airlock_masked_values_total", "counter", "Values masked in results, by detector.");
        for (detector, n) in &s.masked {
            let _ = writeln!(out, "airlock_masked_values_total{{detector=\"{}\"}} {n}", label(detector));
        }
        out
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn histogram(out: &mut String, name: &str, labels: &str, h: &Histogram) {
    let sep = if labels.is_empty() { "" } else { "," };
    let mut cumulative = 0;
    for (bound, n) in h.bounds.iter().zip(&h.counts) {
        cumulative += n;
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {cumulative}");
    }
    let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}", h.count);
    let braces = if labels.is_empty() { String::new() } else { format!("{{{labels}}}") };
    let _ = writeln!(out, "{name}_sum{braces} {}", h.sum);
    let _ = writeln!(out, "{name}_count{braces} {}", h.count);
}

/// A label value escaped as the exposition format requires (backslash, double quote, newline).
fn label(value: &str) -> String {
    let mut s = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_and_histograms_render_in_the_text_format() {
        let m = Metrics::default();
        let mut masked = MaskCounts::default();
        masked.add("email", 2);
        m.call_finished("sql_query", "completed", Some("allow-reads"), Duration::from_millis(3), &masked);
        m.call_finished(
            "sql_query",
            "completed",
            Some("allow-reads"),
            Duration::from_millis(40),
            &MaskCounts::default(),
        );
        m.call_finished("ssh_run", "blocked", None, Duration::from_micros(200), &MaskCounts::default());
        m.decided(Duration::from_micros(30));
        m.approval_decided("approved", Duration::from_secs(20));
        let text = m.render(&StoreGauges { approvals_pending: 4, outbox_backlog: vec![("webhook:siem".into(), 7)] });
        for line in [
            "airlock_tool_calls_total{tool=\"sql_query\",status=\"completed\",rule=\"allow-reads\"} 2",
            "airlock_tool_calls_total{tool=\"ssh_run\",status=\"blocked\",rule=\"-\"} 1",
            "airlock_tool_call_duration_seconds_bucket{tool=\"sql_query\",le=\"0.0025\"} 0",
            "airlock_tool_call_duration_seconds_bucket{tool=\"sql_query\",le=\"0.005\"} 1",
            "airlock_tool_call_duration_seconds_bucket{tool=\"sql_query\",le=\"0.05\"} 2",
            "airlock_tool_call_duration_seconds_bucket{tool=\"sql_query\",le=\"+Inf\"} 2",
            "airlock_tool_call_duration_seconds_count{tool=\"sql_query\"} 2",
            "airlock_policy_decision_seconds_bucket{le=\"0.00005\"} 1",
            "airlock_policy_decision_seconds_count 1",
            "airlock_approvals_pending 4",
            "airlock_audit_outbox_backlog{sink=\"webhook:siem\"} 7",
            "airlock_approval_wait_seconds_bucket{outcome=\"approved\",le=\"15\"} 0",
            "airlock_approval_wait_seconds_bucket{outcome=\"approved\",le=\"30\"} 1",
            "airlock_masked_values_total{detector=\"email\"} 2",
            "# TYPE airlock_tool_calls_total counter",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in:\n{text}");
        }
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
