//! `slurm-exporter audit ...`: the auditor's commands over a copied log directory. They
//! read only files (no server, no network), so an auditor runs them on their own machine
//! with the log, the public key and, for export, the keyring.

use std::io::Write;
use std::path::Path;

/// `audit verify`: Ok with the report's summary when intact; Err with the first bad
/// record's sequence number and the reason. `published` is a file whose last line is a
/// checkpoint; `witness` a witness URL or file, whose newest checkpoint the log must hold.
pub async fn verify(
    dir: &Path,
    public_key: Option<&Path>,
    published: Option<&Path>,
    keyring: Option<&Path>,
    witness: Option<&str>,
    witness_ca: Option<&Path>,
) -> Result<String, String> {
    let key = public_key
        .map(|p| audit::load_public_key(p).map_err(|e| e.to_string()))
        .transpose()?;
    let ring = keyring
        .map(|p| audit::Keyring::load(p).map_err(|e| e.to_string()))
        .transpose()?;
    let published = match published {
        Some(p) => {
            let line = crate::audit_publish::last_line(p)
                .map_err(|e| format!("{}: {e}", p.display()))?
                .unwrap_or_default();
            Some(
                audit::Checkpoint::from_json_line(&line)
                    .map_err(|e| format!("{}: {e}", p.display()))?,
            )
        }
        None => None,
    };
    let witnessed = match witness {
        Some(w) => Some(crate::witness::newest(w, witness_ca).await?),
        None => None,
    };
    let mut summary = String::new();
    let against: Vec<Option<&audit::Checkpoint>> = match (&published, &witnessed) {
        (None, None) => vec![None],
        (p, w) => [p.as_ref(), w.as_ref()]
            .into_iter()
            .filter(Option::is_some)
            .collect(),
    };
    for p in against {
        let opts = audit::VerifyOptions {
            public_key: key.as_ref(),
            keyring: ring.as_ref(),
            published: p,
        };
        let report = audit::verify_with(dir, &opts)
            .map_err(|e| format!("audit log {}: NOT intact: {e}", dir.display()))?;
        if summary.is_empty() {
            summary = report.summary();
        }
    }
    if let Some(w) = &witnessed {
        summary.push_str(&format!(
            "the witness's newest checkpoint (record {}, {}) is in the log\n",
            w.seq,
            audit::format_rfc3339_us(w.time_us)
        ));
    }
    Ok(summary)
}

/// `audit export`: decrypted records as JSON lines on stdout.
pub fn export(
    dir: &Path,
    key_file: &Path,
    from: Option<&str>,
    to: Option<&str>,
    tenant: Option<&str>,
) -> Result<(), String> {
    let ring = audit::Keyring::load(key_file).map_err(|e| e.to_string())?;
    let from = from
        .map(audit::parse_time)
        .transpose()
        .map_err(|e| format!("--from: {e}"))?;
    let to = to
        .map(audit::parse_time)
        .transpose()
        .map_err(|e| format!("--to: {e}"))?;
    let mut out = std::io::stdout().lock();
    for item in audit::export(dir, &ring, from, to, tenant) {
        let v = item.map_err(|e| e.to_string())?;
        writeln!(out, "{v}").map_err(|e| format!("stdout: {e}"))?;
    }
    Ok(())
}

/// `audit checkpoints`: every signed checkpoint, one JSON line each (publish the last one
/// somewhere the writer cannot change it: it proves the log's length at that time).
pub fn checkpoints(dir: &Path) -> Result<(), String> {
    let cps = audit::checkpoints(dir).map_err(|e| e.to_string())?;
    let mut out = std::io::stdout().lock();
    for cp in cps {
        writeln!(out, "{}", cp.to_json_line()).map_err(|e| format!("stdout: {e}"))?;
    }
    Ok(())
}

/// `audit rotate-key`: a new active key in the keyring; old records stay readable.
pub fn rotate_key(key_file: &Path) -> Result<String, String> {
    audit::rotate_key(key_file)
        .map(|id| {
            format!(
                "{}: new active key {id:?}; restart or SIGHUP the gateway to use it",
                key_file.display()
            )
        })
        .map_err(|e| e.to_string())
}
