//! Volume sizes, as the engine reports them in `GET /system/df`. Engines before API 1.52 answer
//! with a `Volumes` list that bollard's newer types drop, so this asks with a plain HTTP GET on the
//! same endpoint (unix socket, TCP without TLS, or ssh) when bollard's answer has no sizes.

use std::collections::HashMap;
use std::time::Duration;

use bollard::query_parameters::DataUsageOptions;
use bollard::Docker;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

use super::context::{Endpoint, Host};
use crate::output::Printer;

/// Volume name to size in bytes, for the volumes the engine has measured. Empty when the engine
/// does not say within `limit` (measuring walks every volume) or cannot be asked.
pub async fn volume_sizes(
    docker: &Docker,
    endpoint: &Endpoint,
    out: Printer,
    limit: Duration,
) -> HashMap<String, u64> {
    tokio::time::timeout(limit, ask(docker, endpoint, out))
        .await
        .ok()
        .flatten()
        .unwrap_or_default()
}

async fn ask(docker: &Docker, endpoint: &Endpoint, out: Printer) -> Option<HashMap<String, u64>> {
    let options = DataUsageOptions {
        _type: Some(vec!["volume".into()]),
        ..Default::default()
    };
    if let Ok(df) = docker.df(Some(options)).await {
        if let Some(items) = df.volume_usage.and_then(|v| v.items) {
            return Some(sizes(&items));
        }
    }
    let version = docker.client_version();
    let path = format!(
        "/v{}.{}/system/df",
        version.major_version, version.minor_version
    );
    let body = match &endpoint.host {
        Host::Unix(socket) => {
            let client = Client::builder(TokioExecutor::new())
                .build::<_, Empty<Bytes>>(hyperlocal::UnixConnector);
            let uri: hyper::Uri = hyperlocal::Uri::new(socket, &path).into();
            fetch(client, uri).await?
        }
        Host::Tcp { host, port } if endpoint.tls.is_none() => {
            let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
            let host = if host.contains(':') {
                format!("[{host}]")
            } else {
                host.clone()
            };
            let uri: hyper::Uri = format!("http://{host}:{port}{path}").parse().ok()?;
            fetch(client, uri).await?
        }
        Host::Ssh { .. } => {
            let target = super::ssh::SshTarget::of(&endpoint.host)?;
            let uri: hyper::Uri = format!("http://docker.example.com{path}").parse().ok()?;
            // Sizes are a nicety: why this connection failed is of no interest later.
            let failures = super::ssh::FailureLog::default();
            fetch(super::ssh::http_client(&target, &failures, out), uri).await?
        }
        _ => return None,
    };
    let value: Value = serde_json::from_slice(&body).ok()?;
    Some(sizes(value.get("Volumes")?.as_array()?))
}

/// The body of a GET, or `None` on any failure (sizes are a nicety).
async fn fetch<C>(client: Client<C, Empty<Bytes>>, uri: hyper::Uri) -> Option<Bytes>
where
    C: hyper_util::client::legacy::connect::Connect + Clone + Send + Sync + 'static,
{
    let response = client.get(uri).await.ok()?;
    Some(response.into_body().collect().await.ok()?.to_bytes())
}

/// Sizes from a list of volume objects; the engine says -1 for "not measured".
fn sizes(volumes: &[Value]) -> HashMap<String, u64> {
    volumes
        .iter()
        .filter_map(|v| {
            let name = v.get("Name")?.as_str()?;
            let size = v.get("UsageData")?.get("Size")?.as_i64()?;
            Some((name.to_string(), u64::try_from(size).ok()?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unmeasured_volumes_have_no_size() {
        let list: Vec<Value> = serde_json::from_str(
            r#"[{"Name":"a","UsageData":{"Size":42,"RefCount":1}},
                {"Name":"b","UsageData":{"Size":-1,"RefCount":0}},
                {"Name":"c"}]"#,
        )
        .unwrap();
        assert_eq!(sizes(&list), HashMap::from([("a".to_string(), 42)]));
    }
}
