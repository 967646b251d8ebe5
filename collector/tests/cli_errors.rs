//! The CLI source against fake Slurm commands (shell scripts in a temporary `bin_dir`):
//! `--json` with Slurm's `errors` and no data fails the poll even when the command exits 0;
//! errors beside data are counted; a failing exit status is an `exit` error.

use collector::source::cli::{CliConfig, CliSource};
use collector::source::{Extras, Source};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

const META: &str = r#""meta":{"plugin":{"type":"","data_parser":"data_parser/v0.0.42"},"slurm":{"version":{"major":"24","minor":"11","micro":"5"},"release":"24.11.5"}}"#;

fn script(dir: &Path, name: &str, body: &str) {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("write script");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

/// A bin dir whose `squeue` prints `squeue`, with a working `sinfo` and `scontrol`.
fn commands(squeue: &str) -> (tempfile::TempDir, CliSource) {
    let dir = tempfile::tempdir().expect("tempdir");
    script(dir.path(), "squeue", squeue);
    script(
        dir.path(),
        "sinfo",
        &format!(
            "echo '{{{META},\"errors\":[],\"nodes\":[{{\"name\":\"n1\",\"state\":[\"IDLE\"],\"cpus\":4,\"partitions\":[\"p\"]}}]}}'"
        ),
    );
    script(
        dir.path(),
        "scontrol",
        "echo 'PartitionName=p Nodes=n1 State=UP TotalCPUs=4 TotalNodes=1'",
    );
    let src = CliSource {
        config: CliConfig {
            bin_dir: Some(dir.path().to_owned()),
            slurm_conf: None,
            timeout: Duration::from_secs(10),
        },
        extras: Extras::none(),
    };
    (dir, src)
}

#[tokio::test]
async fn json_errors_without_data_fail_the_poll_though_the_command_exits_0() {
    let (_dir, src) = commands(&format!(
        "echo '{{{META},\"errors\":[{{\"description\":\"Protocol authentication error\",\"error_number\":1007}}],\"jobs\":[]}}'"
    ));
    let err = src.poll().await.expect_err("an error reply");
    assert_eq!(err.kind(), "slurm", "{err}");
    assert!(
        err.to_string().contains("Protocol authentication error"),
        "{err}"
    );
}

#[tokio::test]
async fn json_errors_beside_data_are_counted_and_the_data_used() {
    let (_dir, src) = commands(&format!(
        "echo '{{{META},\"errors\":[{{\"description\":\"Unable to resolve user 4242\"}}],\"warnings\":[],\"jobs\":[{{\"job_id\":1,\"job_state\":[\"RUNNING\"],\"partition\":\"p\"}}]}}'"
    ));
    let parts = src.poll().await.expect("data beside errors is data");
    assert_eq!(parts.jobs.as_ref().map(Vec::len), Some(1));
    let kinds: Vec<&str> = parts.warnings.iter().map(|w| w.kind()).collect();
    assert_eq!(kinds, ["slurm_partial"]);
    assert_eq!(parts.meta.source, "cli");
    assert_eq!(parts.meta.openapi, "v0.0.42");
    assert_eq!(parts.meta.release, "24.11.5");
}

#[tokio::test]
async fn a_failing_exit_status_is_an_exit_error() {
    let (_dir, src) = commands("echo 'squeue: error: Invalid user' >&2; exit 1");
    let err = src.poll().await.expect_err("exit 1");
    assert_eq!(err.kind(), "exit", "{err}");
    assert!(err.to_string().contains("Invalid user"), "{err}");
}
