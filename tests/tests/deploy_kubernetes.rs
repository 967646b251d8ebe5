//! The Kubernetes manifests (`deploy/kubernetes/`), checked offline: every resource against
//! the Kubernetes 1.37 schemas (`kubernetes-validate --strict`, from PyPI, installed by
//! deploy/test-deps.sh), the shipped config accepted by `slurm-exporter check-config` with the
//! files it names in place, the policies ConfigMap equal to `policies/`, and the probes, ports
//! and ServiceMonitors consistent with each other.
#![allow(clippy::disallowed_methods)] // runs dpkg, rpm, systemd-analyze, python3 and the exporter

use e2e::{exporter_bin, run, workspace_path};
use serde_json::Value;
use std::process::Command;
use std::time::Duration;

const DIR: &str = "deploy/kubernetes";

fn manifests() -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(workspace_path(DIR))
        .expect("deploy/kubernetes")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    v.sort();
    assert!(v.len() >= 6, "manifests: {v:?}");
    v
}

/// Every document of a YAML file, as JSON (PyYAML, which kubernetes-validate brings).
fn documents(path: &std::path::Path) -> Vec<Value> {
    let r = run(
        Command::new("python3")
            .args([
                "-c",
                "import sys,yaml,json; print(json.dumps([d for d in yaml.safe_load_all(open(sys.argv[1])) if d]))",
            ])
            .arg(path),
        None,
        Duration::from_secs(60),
    )
    .expect("python3");
    assert!(r.status.success(), "{}: {}", path.display(), r.stderr);
    serde_json::from_slice(&r.stdout).expect("JSON")
}

fn all_documents() -> Vec<Value> {
    manifests().iter().flat_map(|p| documents(p)).collect()
}

fn find<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

#[test]
fn every_manifest_passes_the_kubernetes_schemas() {
    let files: Vec<_> = manifests()
        .into_iter()
        // A CRD of prometheus-operator: no schema is bundled; checked below instead.
        .filter(|p| !p.ends_with("servicemonitor.yaml"))
        .collect();
    let r = run(
        Command::new("python3")
            .args(["-m", "kubernetes_validate", "--strict", "-k", "1.30.0"])
            .args(&files),
        None,
        Duration::from_secs(120),
    )
    .expect("kubernetes-validate (bash deploy/test-deps.sh installs it)");
    let out = format!("{}{}", r.stdout_text(), r.stderr);
    assert!(r.status.success(), "{out}");
    assert!(!out.contains("WARN") && !out.contains("ERROR"), "{out}");
    let passed = out.matches(" passed for resource ").count();
    assert!(passed >= 8, "only {passed} resources validated:\n{out}");
}

#[test]
fn the_shipped_config_passes_check_config() {
    let docs = all_documents();
    let config = find(&docs, "ConfigMap", "slurm-exporter")["data"]["slurm-exporter.toml"]
        .as_str()
        .expect("the config")
        .to_owned();
    // The files the config names, where the pod mounts them, made under a temp root.
    let root = tempfile::tempdir().expect("temp dir");
    let etc = root.path().join("etc");
    let var = root.path().join("var");
    for d in ["config", "tls", "secrets", "policies"] {
        std::fs::create_dir_all(etc.join(d)).expect("mkdir");
    }
    std::fs::create_dir_all(&var).expect("mkdir");
    let certs = root.path().join("certs");
    let made = run(
        Command::new(exporter_bin())
            .arg("dev-certs")
            .arg("--out")
            .arg(&certs),
        None,
        Duration::from_secs(60),
    )
    .expect("dev-certs");
    assert!(made.status.success(), "dev-certs: {}", made.stderr);
    for (from, to) in [
        ("server.pem", "tls.crt"),
        ("server-key.pem", "tls.key"),
        ("ca.pem", "ca.crt"),
    ] {
        std::fs::copy(certs.join(from), etc.join("tls").join(to)).expect("copy cert");
    }
    for f in ["model.conf", "policy.csv"] {
        std::fs::copy(
            workspace_path("policies").join(f),
            etc.join("policies").join(f),
        )
        .expect("copy policy");
    }
    std::fs::write(
        etc.join("secrets/slurm.jwt"),
        "eyJhbGciOiJIUzI1NiJ9.e30.x\n",
    )
    .expect("jwt");
    std::fs::write(etc.join("secrets/pii.key"), [7u8; 32]).expect("pii key");
    let text = config
        .replace("/etc/slurm-exporter/", &format!("{}/", etc.display()))
        .replace("/var/lib/slurm-exporter/", &format!("{}/", var.display()));
    assert_ne!(text, config, "the config names no mounted path");
    let file = etc.join("config/slurm-exporter.toml");
    std::fs::write(&file, text).expect("config");
    let r = run(
        Command::new(exporter_bin())
            .arg("check-config")
            .arg("--config")
            .arg(&file),
        None,
        Duration::from_secs(60),
    )
    .expect("check-config");
    assert!(
        r.status.success(),
        "check-config: {}{}",
        r.stdout_text(),
        r.stderr
    );
}

#[test]
fn the_policies_configmap_is_the_repository_policies() {
    let docs = all_documents();
    let data = &find(&docs, "ConfigMap", "slurm-exporter-policies")["data"];
    for f in ["model.conf", "policy.csv"] {
        let repo =
            std::fs::read_to_string(workspace_path("policies").join(f)).expect("policy file");
        assert_eq!(
            data[f].as_str(),
            Some(repo.as_str()),
            "{f} drifted from policies/{f}"
        );
    }
}

#[test]
fn probes_ports_and_service_monitors_agree() {
    let docs = all_documents();
    let sts = find(&docs, "StatefulSet", "slurm-exporter");
    let pod = &sts["spec"]["template"]["spec"];
    let c = &pod["containers"][0];
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert!(
        pod["affinity"]["podAntiAffinity"].is_object(),
        "replicas must spread over nodes"
    );
    let config = find(&docs, "ConfigMap", "slurm-exporter")["data"]["slurm-exporter.toml"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let ports: Vec<(String, i64)> = c["ports"]
        .as_array()
        .expect("ports")
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap_or("").to_owned(),
                p["containerPort"].as_i64().unwrap_or(0),
            )
        })
        .collect();
    for (name, port) in &ports {
        assert!(
            config.contains(&format!(":{port}\"")),
            "container port {name} {port} is not a listener of the config"
        );
    }
    let service_ports: Vec<String> = docs
        .iter()
        .filter(|d| d["kind"] == "Service")
        .flat_map(|d| d["spec"]["ports"].as_array().cloned().unwrap_or_default())
        .filter_map(|p| p["name"].as_str().map(str::to_owned))
        .collect();
    let monitors: Vec<&Value> = docs
        .iter()
        .filter(|d| d["kind"] == "ServiceMonitor")
        .collect();
    assert!(!monitors.is_empty(), "no ServiceMonitor");
    for m in monitors {
        assert_eq!(m["apiVersion"], "monitoring.coreos.com/v1");
        for ep in m["spec"]["endpoints"].as_array().expect("endpoints") {
            let port = ep["port"].as_str().expect("endpoint port");
            assert!(
                service_ports.iter().any(|p| p == port),
                "ServiceMonitor port {port} is no Service port"
            );
            assert_eq!(ep["path"], "/metrics");
        }
    }
}
