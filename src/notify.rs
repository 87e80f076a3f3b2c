//! Telling someone how a run went: a JSON summary POSTed to `--notify` URLs, and healthcheck
//! pings (`--ping URL`: `URL/start`, `URL`, `URL/fail`, as healthchecks.io and Uptime Kuma push
//! monitors expect). Delivery is best effort with short timeouts: a notification that cannot be
//! delivered is a warning, never a failed run. No credentials travel: user information in any
//! URL of the summary is removed.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::output;

/// How long one notification may take, connection included.
const TIMEOUT: Duration = Duration::from_secs(5);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Where to report a run, resolved from the flags.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// The command (`save`, `prune`, ...).
    pub command: String,
    /// What it works on: volumes, a project, a container.
    pub what: Vec<String>,
    /// Where the results go: files, directories, `s3://` URLs.
    pub r#where: Vec<String>,
    pub notify: Vec<String>,
    /// Post only when the run fails.
    pub failure_only: bool,
    pub ping: Option<String>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.notify.is_empty() && self.ping.is_none()
    }
}

/// One thing a run wrote, as the summary lists it.
#[derive(Debug, Clone, Serialize)]
pub struct Item {
    /// The volume it holds (for `db-dump`, the database container).
    pub volume: String,
    pub location: Option<String>,
    pub size: Option<u64>,
    pub seconds: f64,
}

/// What the run wrote, collected as it goes (operations add to it).
#[derive(Debug, Clone, Default)]
pub struct Report(Arc<Mutex<Vec<Item>>>);

impl Report {
    pub fn add(&self, item: Item) {
        if let Ok(mut items) = self.0.lock() {
            items.push(item);
        }
    }

    fn items(&self) -> Vec<Item> {
        self.0.lock().map(|i| i.clone()).unwrap_or_default()
    }
}

/// The JSON a `--notify` URL receives.
#[derive(Debug, Serialize)]
pub struct Summary {
    pub tool: &'static str,
    pub version: &'static str,
    pub command: String,
    pub ok: bool,
    pub error: Option<String>,
    pub host: String,
    pub engine: Option<String>,
    pub what: Vec<String>,
    pub r#where: Vec<String>,
    pub outputs: Vec<Item>,
    pub total_bytes: u64,
    pub started: DateTime<Utc>,
    pub finished: DateTime<Utc>,
    pub duration_seconds: f64,
}

/// A run being reported: ping `/start` when it begins, then [`Run::finish`].
pub struct Run {
    plan: Plan,
    client: Option<reqwest::Client>,
    started: DateTime<Utc>,
    clock: std::time::Instant,
}

impl Run {
    pub async fn start(plan: Plan) -> Run {
        let client = if plan.is_empty() {
            None
        } else {
            reqwest::Client::builder()
                .timeout(TIMEOUT)
                .connect_timeout(CONNECT_TIMEOUT)
                .user_agent(concat!("docker-volume-backup/", env!("CARGO_PKG_VERSION")))
                .build()
                .map_err(|e| output::warn(&format!("notifications are off: {}", e.without_url())))
                .ok()
        };
        let run = Run {
            plan,
            client,
            started: Utc::now(),
            clock: std::time::Instant::now(),
        };
        if let Some(ping) = &run.plan.ping {
            run.get(&ping_url(ping, "start")).await;
        }
        run
    }

    /// Reports the outcome: pings `URL` or `URL/fail`, posts the summary.
    pub async fn finish(self, engine: Option<String>, report: &Report, error: Option<String>) {
        let Some(client) = &self.client else {
            return;
        };
        let ok = error.is_none();
        if let Some(ping) = &self.plan.ping {
            let url = if ok {
                ping.clone()
            } else {
                ping_url(ping, "fail")
            };
            self.get(&url).await;
        }
        if self.plan.notify.is_empty() || (ok && self.plan.failure_only) {
            return;
        }
        let outputs: Vec<Item> = report
            .items()
            .into_iter()
            .map(|mut i| {
                i.location = i.location.map(|l| crate::url::strip_in_text(&l));
                i
            })
            .collect();
        let summary = Summary {
            tool: env!("CARGO_PKG_NAME"),
            version: env!("CARGO_PKG_VERSION"),
            command: self.plan.command.clone(),
            ok,
            error: error.map(|e| crate::url::strip_in_text(&e)),
            host: hostname(),
            engine: engine.map(|e| crate::url::strip_in_text(&e)),
            what: self.plan.what.clone(),
            r#where: self
                .plan
                .r#where
                .iter()
                .map(|w| crate::url::strip_in_text(w))
                .collect(),
            total_bytes: outputs.iter().filter_map(|i| i.size).sum(),
            outputs,
            started: self.started,
            finished: Utc::now(),
            duration_seconds: self.clock.elapsed().as_secs_f64(),
        };
        let body = match serde_json::to_vec(&summary) {
            Ok(b) => b,
            Err(e) => return output::warn(&format!("cannot write the notification: {e}")),
        };
        // All at once: a URL that hangs costs its timeout once, not once per URL.
        let posts = self.plan.notify.iter().map(|url| {
            let request = client
                .post(url)
                .header("content-type", "application/json")
                .body(body.clone());
            self.send(url, request)
        });
        futures_util::future::join_all(posts).await;
    }

    async fn get(&self, url: &str) {
        if let Some(c) = &self.client {
            self.send(url, c.get(url)).await;
        }
    }

    async fn send(&self, url: &str, request: reqwest::RequestBuilder) {
        match request.send().await {
            Ok(r) if r.status().is_success() => {}
            Ok(r) => output::warn(&format!(
                "notification to {} not delivered: HTTP {}",
                crate::url::strip_in_text(url),
                r.status()
            )),
            Err(e) => output::warn(&format!(
                "notification to {} not delivered: {}",
                crate::url::strip_in_text(url),
                error_chain(&e.without_url())
            )),
        }
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// `URL/suffix`, before any query string (Uptime Kuma's push URLs carry one).
pub fn ping_url(url: &str, suffix: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let mut out = format!("{}/{suffix}", base.trim_end_matches('/'));
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ping_paths() {
        assert_eq!(
            ping_url("https://hc.example/abc/", "start"),
            "https://hc.example/abc/start"
        );
        assert_eq!(
            ping_url("https://kuma/api/push/T?status=up", "fail"),
            "https://kuma/api/push/T/fail?status=up"
        );
    }
}
