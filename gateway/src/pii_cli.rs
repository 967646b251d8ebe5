//! `slurm-exporter pii lookup`: asks a running gateway to re-identify one pseudonym. The
//! gateway decides (policy object `pii-lookup`) and audits every lookup; this command only
//! carries the credential, so the key never leaves the server.

use std::path::Path;
use std::time::Duration;

pub struct LookupArgs<'a> {
    pub url: &'a str,
    pub ca_file: Option<&'a Path>,
    pub token_file: Option<&'a Path>,
    /// Client certificate and key (PEM), for operators who authenticate with mTLS.
    pub cert: Option<(&'a Path, &'a Path)>,
    pub tenant: Option<&'a str>,
    pub pseudonym: &'a str,
}

/// The clear value, or why not.
pub async fn lookup(a: LookupArgs<'_>) -> Result<String, String> {
    let base = reqwest::Url::parse(a.url).map_err(|e| format!("--url {}: {e}", a.url))?;
    let mut url = base
        .join("/admin/pii/lookup")
        .map_err(|e| format!("--url {}: {e}", a.url))?;
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("pseudonym", a.pseudonym);
        if let Some(t) = a.tenant {
            q.append_pair("tenant", t);
        }
    }
    let client = match a.cert {
        None => crate::layer::authn::http_client(Duration::from_secs(10), a.ca_file)
            .map_err(|e| e.to_string())?,
        Some((cert, key)) => {
            let mut pem = std::fs::read(cert).map_err(|e| format!("{}: {e}", cert.display()))?;
            pem.extend(std::fs::read(key).map_err(|e| format!("{}: {e}", key.display()))?);
            let id = reqwest::Identity::from_pem(&pem)
                .map_err(|e| format!("{} / {}: {e}", cert.display(), key.display()))?;
            crate::layer::authn::http_client_builder(Duration::from_secs(10), a.ca_file)
                .map_err(|e| e.to_string())?
                .identity(id)
                .build()
                .map_err(|e| format!("HTTP client: {e}"))?
        }
    };
    let mut req = client.get(url);
    if let Some(p) = a.token_file {
        let t = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
        req = req.bearer_auth(t.trim());
    }
    let res = req.send().await.map_err(|e| format!("{}: {e}", a.url))?;
    let status = res.status();
    let bytes = res.bytes().await.map_err(|e| format!("{}: {e}", a.url))?;
    let body: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| format!("{}: answer is not JSON: {e}", a.url))?;
    match (status.as_u16(), body.get("value").and_then(|v| v.as_str())) {
        (200, Some(v)) => Ok(v.to_owned()),
        _ => Err(format!(
            "pii lookup: {status}: {}",
            body.get("error")
                .and_then(|v| v.as_str())
                .unwrap_or("refused")
        )),
    }
}
