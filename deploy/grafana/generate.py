#!/usr/bin/env python3
"""Generates the five operator dashboards of deploy/grafana/ from the tables below.

    python3 deploy/grafana/generate.py          # rewrite the JSON files
    python3 deploy/grafana/generate.py --check  # exit 1 when a file differs from its output

Python 3 standard library only. The panels are data (title, description, queries, unit,
thresholds, size); this script turns them into Grafana 10/11 JSON models (schemaVersion 39)
with the same variables, data source and layout rules everywhere, so the five stay
consistent. Edit the tables here, not the JSON. tests/tests/grafana.rs checks the output
offline; tests/tests/dashboards_data.rs runs every query against Prometheus scraping the
gateway in front of the Slurm lab.

Conventions (the ones README.md documents):
- `cluster`, `partition`, `account` (and `qos` where it is used) are multi-value variables
  whose All value is `.*`, always used as `=~"$name"`;
- counters only under rate()/increase(); "in range" panels total the dashboard's time range
  with increase(...[$__range]); forecasts extrapolate the trend over the time range
  (predict_linear(...[$__range], ...)), so widen the range for a longer trend;
- only metric names of METRICS.md.
"""

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
DS = {"type": "prometheus", "uid": "${datasource}"}

C = 'cluster=~"$cluster"'
P = 'partition=~"$partition"'
A = 'account=~"$account"'
Q = 'qos=~"$qos"'
FAILED = 'state=~"failed|timeout|out_of_memory|node_fail|boot_fail|deadline"'
# Per-job start times of running jobs only: a pending job's start time is Slurm's estimate.
STARTED = (f'(slurm_job_start_time_seconds{{{C}, {P}, {A}}} and ignoring (state, qos) '
           f'slurm_job_state_info{{{C}, {P}, {A}, state="running"}})')


# ------------------------------------------------------------------ building blocks

def steps(*pairs):
    """Threshold steps: ("green", None), ("orange", 0.8), ..."""
    return {"mode": "absolute", "steps": [{"color": c, "value": v} for c, v in pairs]}


NEUTRAL = steps(("blue", None))
UTIL = steps(("green", None), ("orange", 0.8), ("red", 0.95))
BAD_IF_ANY = steps(("green", None), ("red", 1))
LIMIT = steps(("green", None), ("orange", 0.8), ("red", 0.95))
TIME_LEFT = steps(("red", None), ("orange", 7 * 86400), ("green", 30 * 86400))


def q(expr, legend="__auto", table=False):
    return {"expr": expr, "legend": legend, "table": table}


def panel(kind, title, desc, queries, unit="short", thresholds=NEUTRAL, w=6, h=8,
          stack=False, minv=None, maxv=None, decimals=None, sort_desc=True):
    return {
        "kind": kind, "title": title, "desc": desc, "queries": queries, "unit": unit,
        "thresholds": thresholds, "w": w, "h": h, "stack": stack, "min": minv, "max": maxv,
        "decimals": decimals, "sort_desc": sort_desc,
    }


def stat(title, desc, expr, unit="short", thresholds=NEUTRAL, w=4, **kw):
    return panel("stat", title, desc, [q(expr)], unit, thresholds, w=w, h=4, **kw)


def ts(title, desc, queries, unit="short", w=12, **kw):
    return panel("timeseries", title, desc, queries, unit, kw.pop("thresholds", NEUTRAL), w=w, **kw)


def bars(title, desc, queries, unit="short", thresholds=NEUTRAL, w=8, **kw):
    return panel("bargauge", title, desc, queries, unit, thresholds, w=w, **kw)


def table(title, desc, queries, unit="short", thresholds=NEUTRAL, w=12, **kw):
    return panel("table", title, desc, [dict(x, table=True) for x in queries], unit,
                 thresholds, w=w, **kw)


def row(title):
    return {"kind": "row", "title": title}


def variable(name, label, definition, desc):
    return {
        "name": name, "label": label, "description": desc, "type": "query",
        "datasource": DS, "definition": definition,
        "query": {"qryType": 1, "query": definition,
                  "refId": "PrometheusVariableQueryEditor-VariableQuery"},
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "hide": 0, "includeAll": True, "multi": True, "options": [], "refresh": 2,
        "regex": "", "skipUrlSync": False, "sort": 1, "allValue": ".*",
    }


DATASOURCE_VAR = {
    "name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus",
    "current": {}, "hide": 0, "includeAll": False, "multi": False, "options": [],
    "refresh": 1, "regex": "", "skipUrlSync": False,
}
CLUSTER_VAR = variable(
    "cluster", "Cluster", "label_values(slurm_cluster_nodes_configured, cluster)",
    "Series carry a cluster label only when one exporter serves several clusters; with one "
    "cluster this list is empty and All (.*) matches every series.")
PARTITION_VAR = variable(
    "partition", "Partition", f"label_values(slurm_partition_info{{{C}}}, partition)",
    "Partitions of the selected clusters.")
ACCOUNT_VAR = variable(
    "account", "Account", f"label_values(slurm_account_jobs{{{C}}}, account)",
    "Accounts with active jobs in the selected clusters (slurm_account_jobs).")
QOS_VAR = variable(
    "qos", "QOS", f"label_values(slurm_qos_info{{{C}}}, qos)", "QOS of the selected clusters.")


def ratio(label_value, num, den, label="limit"):
    """num / den tagged with a label, so that several ratios can be `or`-ed into one table."""
    return f'label_replace({num} / {den}, "{label}", "{label_value}", "", "")'


# ------------------------------------------------------------------ Cluster Overview

OVERVIEW = {
    "file": "slurm-overview.json", "uid": "slurm-exporter-overview",
    "title": "Slurm / Cluster Overview",
    "desc": "Executive health of the cluster (operator view): capacity, utilization, "
            "availability, queue and incidents at a glance.",
    "vars": [CLUSTER_VAR, PARTITION_VAR],
    "panels": [
        row("Health now"),
        stat("Controllers responding",
             "slurmctld controllers that answered ping (slurm_controllers_responding); 0 means "
             "no working controller.",
             f"sum(slurm_controllers_responding{{{C}}})",
             thresholds=steps(("red", None), ("green", 1))),
        stat("Exporter sources up",
             "Share of the exporter's sources whose last poll succeeded with fresh data.",
             f"avg(slurm_exporter_source_up{{{C}}})", unit="percentunit",
             thresholds=steps(("red", None), ("orange", 0.5), ("green", 1)), minv=0, maxv=1),
        stat("Node availability",
             "Nodes neither down, in error, unknown nor drained, over the configured nodes. "
             "A node both down and drained counts twice, so this is a lower bound.",
             f"clamp_min(1 - (sum(slurm_cluster_nodes{{{C}, state=~\"down|error|unknown\"}}) "
             f"+ sum(slurm_cluster_node_flags{{{C}, flag=\"drain\"}})) "
             f"/ sum(slurm_cluster_nodes_configured{{{C}}}), 0)",
             unit="percentunit", thresholds=steps(("red", None), ("orange", 0.8), ("green", 0.9)),
             minv=0, maxv=1),
        stat("CPU utilization", "Allocated CPUs over all configured CPUs.",
             f"sum(slurm_cluster_cpus{{{C}, state=\"allocated\"}}) "
             f"/ sum(slurm_cluster_cpus_configured{{{C}}})",
             unit="percentunit", thresholds=UTIL, minv=0, maxv=1),
        stat("GPU utilization", "Allocated GPUs over all configured GPUs (no value without GPUs).",
             f"sum(slurm_cluster_gpus{{{C}, state=\"allocated\"}}) "
             f"/ sum(slurm_cluster_gpus_configured{{{C}}})",
             unit="percentunit", thresholds=UTIL, minv=0, maxv=1),
        stat("Memory allocated", "Memory allocated to jobs over all configured memory.",
             f"sum(slurm_cluster_memory_bytes{{{C}, state=\"allocated\"}}) "
             f"/ sum(slurm_cluster_memory_configured_bytes{{{C}}})",
             unit="percentunit", thresholds=UTIL, minv=0, maxv=1),
        stat("Running jobs", "Jobs running now (array tasks counted).",
             f"sum(slurm_cluster_jobs{{{C}, state=\"running\"}})"),
        stat("Pending jobs", "Jobs waiting in the queue now (array tasks counted).",
             f"sum(slurm_cluster_jobs{{{C}, state=\"pending\"}})"),
        stat("Nodes down or drained", "Nodes down, in error or unknown, plus nodes drained or "
             "draining.",
             f"sum(slurm_cluster_nodes{{{C}, state=~\"down|error|unknown\"}}) "
             f"+ sum(slurm_cluster_node_flags{{{C}, flag=\"drain\"}})",
             thresholds=steps(("green", None), ("orange", 1), ("red", 10))),
        stat("Users running jobs", "Distinct users with at least one running job.",
             f"sum(slurm_cluster_users_running{{{C}}})"),
        stat("Alerts firing", "Slurm alerts of deploy/prometheus/alerts.yml firing now "
             "(Prometheus's ALERTS series; 0 when none, or when the rules are not loaded).",
             f"count(ALERTS{{{C}, alertstate=\"firing\"}}) or vector(0)",
             thresholds=BAD_IF_ANY),
        stat("Data age", "Seconds since the exporter last fetched the data it serves.",
             f"time() - max(slurm_exporter_snapshot_timestamp_seconds{{{C}}})", unit="s",
             thresholds=steps(("green", None), ("orange", 120), ("red", 900))),
        row("Capacity and utilization"),
        ts("CPUs by state", "Allocated, idle (usable now) and other (on nodes that cannot run "
           "jobs); the stack is the configured total.",
           [q(f"sum by (state) (slurm_cluster_cpus{{{C}}})", "{{state}}")], stack=True, w=8),
        ts("GPUs by state", "Allocated, idle and other GPUs; the stack is the configured total.",
           [q(f"sum by (state) (slurm_cluster_gpus{{{C}}})", "{{state}}")], stack=True, w=8),
        ts("Nodes by state", "Base state of every node; the stack is the node count.",
           [q(f"sum by (state) (slurm_cluster_nodes{{{C}}})", "{{state}}")], stack=True, w=8),
        ts("CPU utilization per partition", "Allocated over configured CPUs of each partition.",
           [q(f"sum by (partition) (slurm_partition_cpus{{{C}, {P}, state=\"allocated\"}}) "
              f"/ sum by (partition) (slurm_partition_cpus_configured{{{C}, {P}}})",
              "{{partition}}")], unit="percentunit", minv=0, maxv=1),
        ts("Partition availability", "Nodes of each partition not down, error or unknown, over "
           "its nodes.",
           [q(f"1 - sum by (partition) (slurm_partition_nodes{{{C}, {P}, "
              f"state=~\"down|error|unknown\"}}) / sum by (partition) "
              f"(slurm_partition_nodes_configured{{{C}, {P}}})", "{{partition}}")],
           unit="percentunit", minv=0, maxv=1),
        row("Queue"),
        ts("Running and pending jobs", "Jobs by state over time.",
           [q(f"sum by (state) (slurm_cluster_jobs{{{C}, state=~\"running|pending\"}})",
              "{{state}}")], w=8),
        bars("Pending reasons", "Pending jobs of the selected partitions by the reason Slurm "
             "gives (top 10).",
             [q(f"topk(10, sum by (reason) (slurm_jobs_pending_reason{{{C}, {P}}}))",
                "{{reason}}")]),
        ts("Oldest pending job per partition", "Age of each partition's oldest pending job.",
           [q(f"max by (partition) (slurm_partition_pending_max_age_seconds{{{C}, {P}}})",
              "{{partition}}")], unit="s", w=8),
        ts("Jobs finished per hour", "Finished jobs by final state, per hour (from the "
           "accounting ledger).",
           [q(f"sum by (state) (rate(slurm_cluster_jobs_finished_total{{{C}}}"
              f"[$__rate_interval])) * 3600", "{{state}}")], w=12),
        ts("Jobs started and submitted per hour", "From slurmctld's statistics (sdiag).",
           [q(f"sum(rate(slurm_scheduler_jobs_started_total{{{C}}}[$__rate_interval])) * 3600",
              "started"),
            q(f"sum(rate(slurm_scheduler_jobs_submitted_total{{{C}}}[$__rate_interval])) * 3600",
              "submitted")], w=12),
        row("Incidents"),
        table("Alerts firing or pending", "Prometheus's ALERTS series of the selected "
              "clusters: what is wrong now (needs deploy/prometheus/alerts.yml loaded).",
              [q(f"ALERTS{{{C}}}")]),
        table("Nodes with a reason", "Nodes down or drained and the reason the admin or Slurm "
              "gave (sinfo -R).", [q(f"slurm_node_reason_info{{{C}}}")]),
    ],
}

# ------------------------------------------------------------------ Job Analytics

JOBS = {
    "file": "slurm-jobs.json", "uid": "slurm-exporter-jobs",
    "title": "Slurm / Job Analytics",
    "desc": "Throughput, queue wait, runtimes, failures and efficiency of jobs, per partition, "
            "QOS and account (operator view). Finished-job figures come from the exporter's "
            "accounting ledger.",
    "vars": [CLUSTER_VAR, PARTITION_VAR, ACCOUNT_VAR, QOS_VAR],
    "panels": [
        row("Throughput"),
        stat("Jobs finished per hour", "Jobs of the selected partitions that finished, any "
             "final state, per hour.",
             f"sum(rate(slurm_partition_jobs_finished_total{{{C}, {P}}}[$__rate_interval])) * 3600",
             w=6),
        stat("Jobs finished in range", "Jobs of the selected partitions that finished in the "
             "dashboard's time range.",
             f"sum(increase(slurm_partition_jobs_finished_total{{{C}, {P}}}[$__range]))", w=6),
        stat("Failed share in range", "Jobs that ended failed, timeout, out_of_memory, "
             "node_fail, boot_fail or deadline, over all finished jobs in range.",
             f"sum(increase(slurm_partition_jobs_finished_total{{{C}, {P}, {FAILED}}}[$__range])) "
             f"/ sum(increase(slurm_partition_jobs_finished_total{{{C}, {P}}}[$__range]))",
             unit="percentunit", thresholds=steps(("green", None), ("orange", 0.1), ("red", 0.25)),
             w=6),
        stat("Median wait of started jobs", "Median time from submission to start of the "
             "started jobs slurmctld still knows.",
             f"histogram_quantile(0.5, sum by (le) "
             f"(slurm_partition_job_wait_seconds_bucket{{{C}, {P}}}))", unit="s",
             thresholds=steps(("green", None), ("orange", 3600), ("red", 86400)), w=6),
        ts("Finished jobs per hour by final state", "Completed, failed, timeout, cancelled, "
           "out_of_memory, node_fail, preempted... per hour.",
           [q(f"sum by (state) (rate(slurm_partition_jobs_finished_total{{{C}, {P}}}"
              f"[$__rate_interval])) * 3600", "{{state}}")], stack=True),
        ts("Jobs by QOS and state", "Active jobs per QOS.",
           [q(f"sum by (qos, state) (slurm_qos_jobs{{{C}, {Q}}})", "{{qos}} {{state}}")]),
        row("Queue wait"),
        ts("Wait-time quantiles per partition", "p50 and p90 of the time from submission to "
           "start of the started jobs slurmctld still knows (slurm_partition_job_wait_seconds).",
           [q(f"histogram_quantile(0.5, sum by (partition, le) "
              f"(slurm_partition_job_wait_seconds_bucket{{{C}, {P}}}))", "{{partition}} p50"),
            q(f"histogram_quantile(0.9, sum by (partition, le) "
              f"(slurm_partition_job_wait_seconds_bucket{{{C}, {P}}}))", "{{partition}} p90")],
           unit="s"),
        ts("Age of pending jobs per partition", "p50 and p90 of how long pending jobs have "
           "waited so far.",
           [q(f"histogram_quantile(0.5, sum by (partition, le) "
              f"(slurm_partition_pending_age_seconds_bucket{{{C}, {P}}}))", "{{partition}} p50"),
            q(f"histogram_quantile(0.9, sum by (partition, le) "
              f"(slurm_partition_pending_age_seconds_bucket{{{C}, {P}}}))", "{{partition}} p90")],
           unit="s"),
        bars("Mean wait of finished jobs per QOS (in range)", "Queue seconds of the jobs that "
             "finished in range over their number, per QOS. There are no per-QOS wait "
             "histograms, so this is a mean. No value when no job finished.",
             [q(f"sum by (qos) (increase(slurm_qos_wait_seconds_total{{{C}, {Q}}}[$__range])) "
                f"/ sum by (qos) (increase(slurm_qos_jobs_finished_total{{{C}, {Q}}}[$__range]))",
                "{{qos}}")], unit="s", w=12),
        bars("Mean wait of finished jobs per partition (in range)", "Queue seconds of the jobs "
             "that finished in range over their number, per partition.",
             [q(f"sum by (partition) (increase(slurm_partition_wait_seconds_total{{{C}, {P}}}"
                f"[$__range])) / sum by (partition) (increase("
                f"slurm_partition_jobs_finished_total{{{C}, {P}}}[$__range]))", "{{partition}}")],
             unit="s", w=12),
        row("Runtimes"),
        ts("Elapsed time of running jobs", "p50 and max of how long the running jobs have run, "
           "per partition. Needs the per-job series (collectors.per_job = true).",
           [q(f"quantile by (partition) (0.5, time() - {STARTED})", "{{partition}} p50"),
            q(f"max by (partition) (time() - {STARTED})", "{{partition}} max")], unit="s"),
        ts("Share of the time limit used by running jobs", "Median elapsed time over time limit "
           "of running jobs per partition: low values mean users ask for far more time than "
           "they use, which hurts backfill. Needs collectors.per_job = true.",
           [q(f"quantile by (partition) (0.5, (time() - {STARTED}) "
              f"/ slurm_job_time_limit_seconds{{{C}, {P}, {A}}})", "{{partition}}")],
           unit="percentunit", minv=0),
        row("Failures"),
        bars("Failed share per partition (in range)", "Failed, timeout, out_of_memory, "
             "node_fail, boot_fail and deadline over all jobs finished in range, per partition.",
             [q(f"sum by (partition) (increase(slurm_partition_jobs_finished_total{{{C}, {P}, "
                f"{FAILED}}}[$__range])) / sum by (partition) (increase("
                f"slurm_partition_jobs_finished_total{{{C}, {P}}}[$__range]))", "{{partition}}")],
             unit="percentunit", thresholds=steps(("green", None), ("orange", 0.1), ("red", 0.25)),
             minv=0, maxv=1),
        bars("Failed share per account (in range)", "The same per account.",
             [q(f"sum by (account) (increase(slurm_account_jobs_finished_total{{{C}, {A}, "
                f"{FAILED}}}[$__range])) / sum by (account) (increase("
                f"slurm_account_jobs_finished_total{{{C}, {A}}}[$__range]))", "{{account}}")],
             unit="percentunit", thresholds=steps(("green", None), ("orange", 0.1), ("red", 0.25)),
             minv=0, maxv=1),
        table("Final states per partition (in range)", "Jobs that finished in range by "
              "partition and final state (the exit reason as Slurm records it).",
              [q(f"sum by (partition, state) (increase(slurm_partition_jobs_finished_total"
                 f"{{{C}, {P}}}[$__range]))")], w=8),
        table("Exit codes per account (in range)", "Finished jobs by exit code as a shell "
              "reports it (128+N for signal N: 137 killed, 143 terminated).",
              [q(f"sum by (account, exit_code) (increase(slurm_jobs_exit_code_total{{{C}, {A}}}"
                 f"[$__range]))")], w=12),
        ts("Failures per hour by account", "Failed, timeout, out_of_memory... jobs per hour.",
           [q(f"sum by (account, state) (rate(slurm_account_jobs_finished_total{{{C}, {A}, "
              f"{FAILED}}}[$__rate_interval])) * 3600", "{{account}} {{state}}")], w=12),
        ts("Jobs slurmd failed (scheduler)", "Jobs slurmctld counts as failed by slurmd or "
           "internal problems, per hour (sdiag).",
           [q(f"sum(rate(slurm_scheduler_jobs_failed_total{{{C}}}[$__rate_interval])) * 3600",
              "failed")], w=12),
        row("Efficiency"),
        ts("Load over allocated CPUs per partition", "Sum of the 1-minute load average over "
           "the allocated CPUs of each partition: far below 100% means allocated cores sit "
           "idle. A node-level proxy: per-job CPU efficiency needs the cgroup agent.",
           [q(f"sum by (partition) (slurm_partition_cpu_load{{{C}, {P}}}) / sum by (partition) "
              f"(slurm_partition_cpus{{{C}, {P}, state=\"allocated\"}})", "{{partition}}")],
           unit="percentunit", minv=0),
        ts("Memory in use over memory allocated", "Memory the nodes' OS reports used (configured "
           "minus free, responding nodes) over the memory allocated to jobs.",
           [q(f"(sum(slurm_cluster_memory_configured_bytes{{{C}}}) "
              f"- sum(slurm_cluster_memory_free_bytes{{{C}}})) "
              f"/ sum(slurm_cluster_memory_bytes{{{C}, state=\"allocated\"}})", "used / allocated")],
           unit="percentunit", minv=0),
    ],
}

# ------------------------------------------------------------------ User Quotas

ACCOUNT_LIMITS = [
    ("GrpTRES cpu", "slurm_account_usage_cpus", "slurm_account_limit_grp_cpus"),
    ("GrpTRES gres/gpu", "slurm_account_usage_gpus", "slurm_account_limit_grp_gpus"),
    ("GrpTRES mem", "slurm_account_usage_memory_bytes", "slurm_account_limit_grp_memory_bytes"),
    ("GrpTRES node", "slurm_account_usage_nodes", "slurm_account_limit_grp_nodes"),
    ("GrpJobs", "slurm_account_usage_jobs", "slurm_account_limit_grp_jobs"),
    ("GrpSubmitJobs", "slurm_account_usage_submitted_jobs", "slurm_account_limit_grp_submit_jobs"),
    ("GrpTRESRunMins cpu", "slurm_account_usage_cpu_run_seconds",
     "slurm_account_limit_grp_cpu_run_seconds"),
]
USER_LIMITS = [
    ("MaxJobs", "slurm_user_usage_jobs", "slurm_user_limit_max_jobs"),
    ("MaxSubmitJobs", "slurm_user_usage_submitted_jobs", "slurm_user_limit_max_submit_jobs"),
    ("GrpTRES cpu", "slurm_user_usage_cpus", "slurm_user_limit_grp_cpus"),
    ("GrpTRES gres/gpu", "slurm_user_usage_gpus", "slurm_user_limit_grp_gpus"),
    ("GrpJobs", "slurm_user_usage_jobs", "slurm_user_limit_grp_jobs"),
]
QOS_PER_USER = [
    ("QOS MaxJobsPerUser", "slurm_user_qos_usage_jobs", "slurm_qos_limit_max_jobs_per_user"),
    ("QOS MaxSubmitJobsPerUser", "slurm_user_qos_usage_submitted_jobs",
     "slurm_qos_limit_max_submit_jobs_per_user"),
    ("QOS MaxTRESPerUser cpu", "slurm_user_qos_usage_cpus", "slurm_qos_limit_max_cpus_per_user"),
]
QOS_LIMITS = [
    ("QOS GrpTRES cpu", "slurm_qos_usage_cpus", "slurm_qos_limit_grp_cpus"),
    ("QOS GrpTRES gres/gpu", "slurm_qos_usage_gpus", "slurm_qos_limit_grp_gpus"),
    ("QOS GrpJobs", "slurm_qos_usage_jobs", "slurm_qos_limit_grp_jobs"),
    ("QOS GrpSubmitJobs", "slurm_qos_usage_submitted_jobs", "slurm_qos_limit_grp_submit_jobs"),
]


def account_ratios():
    return " or ".join(ratio(n, f"{u}{{{C}, {A}}}", f"{l}{{{C}, {A}}}") for n, u, l in ACCOUNT_LIMITS)


def user_ratios():
    own = [ratio(n, f"{u}{{{C}, {A}}}", f"{l}{{{C}, {A}}}") for n, u, l in USER_LIMITS]
    per_qos = [ratio(n, f"{u}{{{C}, {A}}}", f"ignoring (user, account) group_left () {l}{{{C}}}")
               for n, u, l in QOS_PER_USER]
    return " or ".join(own + per_qos)


QUOTAS = {
    "file": "slurm-quotas.json", "uid": "slurm-exporter-quotas",
    "title": "Slurm / User Quotas",
    "desc": "Fairshare, association and QOS limits beside current usage, the headroom left, "
            "and who is near a limit (operator view). Limits that are not set (unlimited) have "
            "no series and show nothing.",
    "vars": [CLUSTER_VAR, ACCOUNT_VAR, QOS_VAR],
    "panels": [
        row("Near a limit"),
        stat("Associations at 90% of a limit", "Account and user associations using 90% or "
             "more of one of their limits (GrpTRES, GrpJobs, GrpSubmitJobs, MaxJobs, "
             "MaxSubmitJobs, QOS per-user limits).",
             f"count(({account_ratios()} or {user_ratios()}) >= 0.9) or vector(0)",
             thresholds=steps(("green", None), ("orange", 1), ("red", 5)), w=6),
        stat("Pending jobs held by limits", "Pending jobs whose reason is an association or QOS "
             "limit (Assoc*, QOS*, MaxJobs...).",
             f"sum(slurm_account_jobs_pending_reason{{{C}, {A}, reason=~\"(Assoc|QOS|Max).*\"}}) "
             f"or vector(0)", thresholds=steps(("green", None), ("orange", 1)), w=6),
        stat("Lowest user fairshare factor", "The smallest FairShare factor of any user "
             "association (0 to 1; low means the user has used more than their share).",
             f"min(slurm_user_fairshare_factor{{{C}, {A}}})", unit="percentunit",
             thresholds=steps(("red", None), ("orange", 0.1), ("green", 0.25)), w=6),
        stat("Accounts with active users", "Accounts of the selection with pending or running "
             "jobs.", f"count(slurm_account_users_active{{{C}, {A}}} > 0) or vector(0)", w=6),
        table("Accounts: usage over each limit", "Each account's usage over each limit set on "
              "its association (1 = at the limit). Limits not set show no row.",
              [q(f"sort_desc({account_ratios()})")], unit="percentunit", thresholds=LIMIT),
        table("Users: usage over each limit", "Each user's usage in an account over the limits "
              "of the user association and the per-user limits of their QOS.",
              [q(f"topk(25, {user_ratios()})")], unit="percentunit", thresholds=LIMIT),
        bars("Pending jobs held by limits, per account", "Pending jobs by account and the "
             "limit Slurm names as the reason.",
             [q(f"sum by (account, reason) (slurm_account_jobs_pending_reason{{{C}, {A}, "
                f"reason=~\"(Assoc|QOS|Max).*\"}})", "{{account}} {{reason}}")], w=12),
        table("QOS: usage over limits", "Usage of every QOS over its group limits.",
              [q(" or ".join(ratio(n, f"{u}{{{C}, {Q}}}", f"{l}{{{C}, {Q}}}")
                             for n, u, l in QOS_LIMITS))], unit="percentunit", thresholds=LIMIT),
        row("Usage beside limits"),
        ts("CPUs in use beside GrpTRES cpu", "CPUs held by the running jobs of each account "
           "(and its sub-accounts) beside its GrpTRES cpu limit.",
           [q(f"slurm_account_usage_cpus{{{C}, {A}}}", "{{account}} in use"),
            q(f"slurm_account_limit_grp_cpus{{{C}, {A}}}", "{{account}} limit")]),
        ts("Running jobs beside GrpJobs and MaxJobs", "Running jobs of each account beside its "
           "GrpJobs limit, and of each user beside MaxJobs.",
           [q(f"slurm_account_usage_jobs{{{C}, {A}}}", "{{account}} running"),
            q(f"slurm_account_limit_grp_jobs{{{C}, {A}}}", "{{account}} GrpJobs"),
            q(f"slurm_user_usage_jobs{{{C}, {A}}} and on (user, account) "
              f"slurm_user_limit_max_jobs{{{C}, {A}}}", "{{user}}/{{account}} running"),
            q(f"slurm_user_limit_max_jobs{{{C}, {A}}}", "{{user}}/{{account}} MaxJobs")]),
        table("Headroom per account", "What each account may still start under its limits: "
              "limit minus usage.",
              [q(" or ".join(f'label_replace({l}{{{C}, {A}}} - {u}{{{C}, {A}}}, "limit", "{n}", "", "")'
                             for n, u, l in ACCOUNT_LIMITS))]),
        ts("QOS usage per account", "CPUs held by running jobs per account and QOS, as counted "
           "against QOS limits.",
           [q(f"sum by (account, qos) (slurm_account_qos_usage_cpus{{{C}, {A}, {Q}}})",
              "{{account}} {{qos}}")]),
        row("Fairshare"),
        bars("Level fairshare per account", "Fair Tree LevelFS: shares over usage among "
             "siblings; above 1 is under-served, below 1 over-served.",
             [q(f"sort(slurm_account_fairshare_level{{{C}, {A}}})", "{{account}}")],
             thresholds=steps(("orange", None), ("green", 1))),
        ts("Usage against shares", "Normalized usage beside normalized shares of each account "
           "(0 to 1 of the whole tree).",
           [q(f"slurm_account_fairshare_normalized_usage{{{C}, {A}}}", "{{account}} usage"),
            q(f"slurm_account_fairshare_normalized_shares{{{C}, {A}}}", "{{account}} shares")],
           unit="percentunit", w=8),
        bars("Lowest user fairshare factors", "The ten users with the lowest FairShare factor: "
             "the next to lose priority.",
             [q(f"bottomk(10, slurm_user_fairshare_factor{{{C}, {A}}})", "{{user}}/{{account}}")],
             unit="percentunit", thresholds=steps(("red", None), ("orange", 0.1), ("green", 0.25)),
             minv=0, maxv=1),
    ],
}

# ------------------------------------------------------------------ Capacity Planning

TRES = [  # (name, allocated/idle gauge by state, configured gauge, unit)
    ("cpu", "slurm_partition_cpus", "slurm_partition_cpus_configured", "short"),
    ("gpu", "slurm_partition_gpus", "slurm_partition_gpus_configured", "short"),
    ("memory", "slurm_partition_memory_bytes", "slurm_partition_memory_configured_bytes", "bytes"),
]


def exhaustion():
    """Seconds until each partition's idle TRES is used up at the allocation trend over the
    time range: idle / growth per second; +Inf when allocation is flat or shrinking."""
    parts = []
    for name, by_state, _, _ in TRES:
        parts.append(
            f'label_replace(sum by (partition) ({by_state}{{{C}, {P}, state="idle"}}) '
            f'/ clamp_min(sum by (partition) (deriv({by_state}{{{C}, {P}, state="allocated"}}'
            f'[$__range])), 0), "tres", "{name}", "", "")')
    return " or ".join(parts)


CAPACITY = {
    "file": "slurm-capacity.json", "uid": "slurm-exporter-capacity",
    "title": "Slurm / Capacity Planning",
    "desc": "Utilization trends, linear forecasts and time to exhaustion per partition and "
            "TRES, and pending demand by resource (operator view). Forecasts extrapolate the "
            "trend over the dashboard's time range: pick 7 or 30 days for a planning view.",
    "vars": [CLUSTER_VAR, PARTITION_VAR],
    "panels": [
        row("Utilization trends"),
        *[ts(f"{n.upper() if n != 'memory' else 'Memory'} utilization per partition",
             f"Allocated over configured {n} of each partition (partitions without {n} show "
             f"nothing).",
             [q(f"sum by (partition) ({s}{{{C}, {P}, state=\"allocated\"}}) / (sum by (partition) "
                f"({c}{{{C}, {P}}}) > 0)", "{{partition}}")],
             unit="percentunit", minv=0, maxv=1, w=8) for n, s, c, _ in TRES],
        bars("Average CPU utilization in range", "Mean over the time range of each "
             "partition's allocated CPUs, over its configured CPUs.",
             [q(f"sum by (partition) (avg_over_time(slurm_partition_cpus{{{C}, {P}, "
                f"state=\"allocated\"}}[$__range])) / sum by (partition) "
                f"(slurm_partition_cpus_configured{{{C}, {P}}})", "{{partition}}")],
             unit="percentunit", thresholds=UTIL, minv=0, maxv=1, w=12),
        bars("Peak CPU utilization in range", "Highest allocated CPUs of each partition in the "
             "range, over its configured CPUs.",
             [q(f"sum by (partition) (max_over_time(slurm_partition_cpus{{{C}, {P}, "
                f"state=\"allocated\"}}[$__range])) / sum by (partition) "
                f"(slurm_partition_cpus_configured{{{C}, {P}}})", "{{partition}}")],
             unit="percentunit", thresholds=UTIL, minv=0, maxv=1, w=12),
        row("Forecasts"),
        *[ts(f"Allocated {n}: now and in 30 days", f"Allocated {n} per partition, the linear "
             f"forecast 30 days ahead (predict_linear over the time range) and the configured "
             f"total.",
             [q(f"sum by (partition) ({s}{{{C}, {P}, state=\"allocated\"}})", "{{partition}} now"),
              q(f"sum by (partition) (predict_linear({s}{{{C}, {P}, state=\"allocated\"}}"
                f"[$__range], 30 * 86400))", "{{partition}} in 30 d"),
              q(f"sum by (partition) ({c}{{{C}, {P}}}) > 0", "{{partition}} configured")],
             unit=u, w=8) for n, s, c, u in TRES],
        table("Time to exhaustion per partition and TRES", "Idle capacity over the growth of "
              "allocation per second over the time range: when the partition runs out at the "
              "current trend. Infinite when allocation is flat or shrinking.",
              [q(exhaustion())], unit="s", thresholds=TIME_LEFT, w=12),
        ts("Cluster CPUs: forecast 7 and 30 days", "Allocated CPUs of the whole cluster, the "
           "linear forecasts, and the configured total.",
           [q(f"sum(slurm_cluster_cpus{{{C}, state=\"allocated\"}})", "allocated"),
            q(f"sum(predict_linear(slurm_cluster_cpus{{{C}, state=\"allocated\"}}[$__range], "
              f"7 * 86400))", "in 7 d"),
            q(f"sum(predict_linear(slurm_cluster_cpus{{{C}, state=\"allocated\"}}[$__range], "
              f"30 * 86400))", "in 30 d"),
            q(f"sum(slurm_cluster_cpus_configured{{{C}}})", "configured")], w=12),
        row("Pending demand"),
        ts("Pending CPUs per partition", "CPUs requested by pending jobs.",
           [q(f"sum by (partition) (slurm_partition_job_cpus{{{C}, {P}, state=\"pending\"}})",
              "{{partition}}")], w=8),
        ts("Pending GPUs per partition", "GPUs requested by pending jobs.",
           [q(f"sum by (partition) (slurm_partition_job_gpus{{{C}, {P}, state=\"pending\"}})",
              "{{partition}}")], w=8),
        ts("Pending memory per partition", "Memory requested by pending jobs.",
           [q(f"sum by (partition) (slurm_partition_job_memory_bytes{{{C}, {P}, "
              f"state=\"pending\"}})", "{{partition}}")], unit="bytes", w=8),
        bars("Pending CPUs over idle CPUs", "How many times the idle CPUs of each partition "
             "the pending jobs ask for: above 1, the queue cannot start even with everything "
             "idle used.",
             [q(f"sum by (partition) (slurm_partition_job_cpus{{{C}, {P}, state=\"pending\"}}) "
                f"/ sum by (partition) (slurm_partition_cpus{{{C}, {P}, state=\"idle\"}})",
                "{{partition}}")], thresholds=steps(("green", None), ("orange", 1), ("red", 4)),
             w=12),
        ts("Nodes unavailable per partition", "Nodes down, in error or unknown: capacity lost.",
           [q(f"sum by (partition) (slurm_partition_nodes{{{C}, {P}, "
              f"state=~\"down|error|unknown\"}})", "{{partition}}")], w=12),
        bars("Licenses in use", "Licenses held by running jobs over the pool.",
             [q(f"slurm_license_used{{{C}}} / (slurm_license_configured{{{C}}} > 0)",
                "{{license}}")], unit="percentunit", thresholds=UTIL, minv=0, maxv=1, w=12),
        ts("GPUs by type", "Configured GPUs per type beside the allocated ones.",
           [q(f"sum by (type) (slurm_gpu_cluster{{{C}, state=\"allocated\"}})", "{{type}} allocated"),
            q(f"sum by (type) (slurm_gpu_cluster_configured{{{C}}})", "{{type}} configured")],
           w=12),
    ],
}

# ------------------------------------------------------------------ Cost Attribution

HOURS = [  # (label, account counter, divisor to hours of the unit)
    ("CPU-hours", "cpu_seconds_total", "3600"),
    ("GPU-hours", "gpu_seconds_total", "3600"),
    ("Node-hours", "node_seconds_total", "3600"),
    ("Memory GiB-hours", "memory_byte_seconds_total", "3600 / 1073741824"),
]

COST = {
    "file": "slurm-cost.json", "uid": "slurm-exporter-cost",
    "title": "Slurm / Cost Attribution",
    "desc": "Resource-hours of finished jobs per account, partition, QOS and user, from the "
            "exporter's accounting counters (slurm_*_seconds_total), for showback and "
            "chargeback (operator view). Multiply by your rates; no prices are built in.",
    "vars": [CLUSTER_VAR, PARTITION_VAR, ACCOUNT_VAR],
    "panels": [
        row("Totals in range"),
        *[stat(f"{label} in range", f"{label} of the selected accounts' jobs that finished in "
               f"the time range (allocated x elapsed).",
               f"sum(increase(slurm_account_{ctr}{{{C}, {A}}}[$__range])) / {div}", w=6,
               decimals=1)
          for label, ctr, div in HOURS],
        table("Usage per account (in range)", "CPU-, GPU-, node- and memory-hours and jobs "
              "finished per account in the time range.",
              [q(f"sum by (account) (increase(slurm_account_{ctr}{{{C}, {A}}}[$__range])) / {div}")
               for _, ctr, div in HOURS]
              + [q(f"sum by (account) (increase(slurm_account_jobs_finished_total{{{C}, {A}}}"
                   f"[$__range]))")], w=16),
        bars("Share of CPU-hours per account (in range)", "Each account's CPU-hours over the "
             "selection's total.",
             [q(f"sum by (account) (increase(slurm_account_cpu_seconds_total{{{C}, {A}}}[$__range])) "
                f"/ scalar(sum(increase(slurm_account_cpu_seconds_total{{{C}, {A}}}[$__range])))",
                "{{account}}")], unit="percentunit", minv=0, maxv=1),
        row("Over time"),
        ts("CPU-hours per hour by account", "CPU-hours of finished jobs booked per hour, by "
           "account (jobs are booked when they end).",
           [q(f"sum by (account) (rate(slurm_account_cpu_seconds_total{{{C}, {A}}}"
              f"[$__rate_interval]))", "{{account}}")], stack=True),
        ts("GPU-hours per hour by account", "GPU-hours of finished jobs booked per hour.",
           [q(f"sum by (account) (rate(slurm_account_gpu_seconds_total{{{C}, {A}}}"
              f"[$__rate_interval]))", "{{account}}")], stack=True),
        ts("Running now: CPUs and GPUs per account", "What is accruing now and will be booked "
           "when the jobs end: CPUs and GPUs held by running jobs.",
           [q(f"sum by (account) (slurm_account_cpus{{{C}, {A}, state=\"running\"}})",
              "{{account}} CPUs"),
            q(f"sum by (account) (slurm_account_gpus{{{C}, {A}, state=\"running\"}})",
              "{{account}} GPUs")]),
        ts("Queue hours per account", "Hours finished jobs spent waiting in the queue, booked "
           "per hour (a cost to users, not to the site).",
           [q(f"sum by (account) (rate(slurm_account_wait_seconds_total{{{C}, {A}}}"
              f"[$__rate_interval]))", "{{account}}")]),
        row("Breakdowns (in range)"),
        table("Per account and partition", "CPU-, GPU- and node-hours per account and "
              "partition in the time range.",
              [q(f"sum by (account, partition) (increase(slurm_account_partition_{ctr}{{{C}, {A}, {P}}}"
                 f"[$__range])) / {div}") for _, ctr, div in HOURS]),
        table("Per QOS", "CPU-, GPU-, node- and memory-hours and jobs per QOS in the time "
              "range (QOS usage factors are not applied).",
              [q(f"sum by (qos) (increase(slurm_qos_{ctr}{{{C}}}[$__range])) / {div}")
               for _, ctr, div in HOURS]
              + [q(f"sum by (qos) (increase(slurm_qos_jobs_finished_total{{{C}}}[$__range]))")]),
        bars("Top users by CPU-hours", "The ten users with the most CPU-hours in range.",
             [q(f"topk(10, sum by (user, account) (increase(slurm_user_cpu_seconds_total"
                f"{{{C}, {A}}}[$__range]))) / 3600", "{{user}}/{{account}}")], w=12),
        bars("CPU-hours per partition", "CPU-hours of the jobs that finished in each "
             "partition in range.",
             [q(f"sum by (partition) (increase(slurm_partition_cpu_seconds_total{{{C}, {P}}}"
                f"[$__range])) / 3600", "{{partition}}")], w=12),
    ],
}

DASHBOARDS = [OVERVIEW, JOBS, QUOTAS, CAPACITY, COST]


# ------------------------------------------------------------------ rendering

def field_config(p):
    d = {"unit": p["unit"], "color": {"mode": "thresholds"}, "thresholds": p["thresholds"],
         "mappings": []}
    if p["kind"] == "timeseries":
        d["color"] = {"mode": "palette-classic"}
        d["custom"] = {
            "drawStyle": "line", "lineWidth": 1, "fillOpacity": 25 if p["stack"] else 10,
            "gradientMode": "none", "showPoints": "never", "spanNulls": False,
            "stacking": {"mode": "normal" if p["stack"] else "none", "group": "A"},
            "axisSoftMin": 0, "thresholdsStyle": {"mode": "off"},
        }
    for k in ("min", "max", "decimals"):
        if p[k] is not None:
            d[k] = p[k]
    return {"defaults": d, "overrides": []}


def options(p):
    if p["kind"] == "stat":
        return {"colorMode": "value", "graphMode": "area", "justifyMode": "auto",
                "orientation": "auto", "textMode": "auto", "wideLayout": True,
                "showPercentChange": False,
                "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}}
    if p["kind"] == "bargauge":
        return {"displayMode": "gradient", "orientation": "horizontal", "showUnfilled": True,
                "valueMode": "color", "namePlacement": "auto", "sizing": "auto",
                "minVizHeight": 16, "minVizWidth": 8, "maxVizHeight": 300,
                "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}}
    if p["kind"] == "table":
        return {"showHeader": True, "cellHeight": "sm", "footer": {"show": False}}
    return {"legend": {"calcs": ["lastNotNull", "max"], "displayMode": "table",
                       "placement": "bottom", "showLegend": True},
            "tooltip": {"mode": "multi", "sort": "desc"}}


def render_panel(p, pid, pos):
    targets = []
    for i, t in enumerate(p["queries"]):
        instant = t["table"] or p["kind"] == "bargauge"
        tgt = {"datasource": DS, "editorMode": "code", "expr": t["expr"],
               "legendFormat": t["legend"], "range": not instant, "instant": instant,
               "refId": chr(ord("A") + i)}
        if t["table"]:
            tgt["format"] = "table"
        targets.append(tgt)
    out = {"type": p["kind"], "title": p["title"], "description": p["desc"], "datasource": DS,
           "fieldConfig": field_config(p), "options": options(p), "targets": targets,
           "id": pid, "gridPos": pos}
    if p["kind"] == "table":
        out["transformations"] = [
            {"id": "merge", "options": {}},
            {"id": "organize", "options": {"excludeByName": {"Time": True, "__name__": True,
                                                             "instance": True, "job": True}}},
        ]
    return out


def render(d):
    panels, pid, x, y, line_h = [], 1, 0, 0, 0
    for p in d["panels"]:
        if p["kind"] == "row":
            if x:
                y, x, line_h = y + line_h, 0, 0
            panels.append({"type": "row", "id": pid, "title": p["title"], "collapsed": False,
                           "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}, "panels": []})
            pid, y = pid + 1, y + 1
            continue
        if x + p["w"] > 24:
            y, x, line_h = y + line_h, 0, 0
        panels.append(render_panel(p, pid, {"h": p["h"], "w": p["w"], "x": x, "y": y}))
        pid, x, line_h = pid + 1, x + p["w"], max(line_h, p["h"])
    return {
        "annotations": {"list": [{
            "builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"},
            "enable": True, "hide": True, "iconColor": "rgba(0, 211, 255, 1)",
            "name": "Annotations & Alerts", "type": "dashboard"}]},
        "description": d["desc"], "editable": True, "fiscalYearStartMonth": 0,
        "graphTooltip": 1, "id": None,
        "links": [{"type": "dashboards", "tags": ["slurm-exporter"], "asDropdown": True,
                   "title": "Slurm dashboards", "includeVars": True, "keepTime": True}],
        "panels": panels, "refresh": "1m", "schemaVersion": 39,
        "tags": ["slurm", "slurm-exporter", "hpc", "operator"],
        "templating": {"list": [DATASOURCE_VAR] + d["vars"]},
        "time": {"from": "now-24h", "to": "now"}, "timepicker": {}, "timezone": "",
        "title": d["title"], "uid": d["uid"], "version": 1, "weekStart": "",
    }


def main():
    check = "--check" in sys.argv[1:]
    stale = []
    for d in DASHBOARDS:
        text = json.dumps(render(d), indent=2, ensure_ascii=False) + "\n"
        path = HERE / d["file"]
        if check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(d["file"])
        else:
            path.write_text(text, encoding="utf-8")
        n = sum(1 for p in d["panels"] if p["kind"] != "row")
        print(f"{d['file']}: {n} panels")
    if stale:
        print(f"out of date (run deploy/grafana/generate.py): {', '.join(stale)}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
