//! `slurm_account_fairshare_*` and `slurm_user_fairshare_*`: the fairshare tree as `sshare`
//! shows it (shares, decayed usage, fairshare factor, Fair Tree's level fairshare).
//!
//! Account series belong to the account, user series to the (account, user) pair. The
//! `root` account line is the whole cluster: its series are owned by the cluster, so no
//! tenant sees them. Partition-specific associations are left out (their label set would
//! repeat the account's).

use super::shared::Options;
use crate::model::accounts::Fairshare;
use crate::model::{Association, Name};
use crate::snapshot::Snapshot;
use crate::store::{Owner, Sink};
use std::collections::BTreeMap;

type Pick = fn(&Association, &Fairshare) -> Option<f64>;

/// (suffix, what it is, value).
const FIELDS: [(&str, &str, Pick); 7] = [
    (
        "raw_shares",
        "Raw shares assigned to the association (sacctmgr fairshare=N; absent when `parent`).",
        |a, _| a.shares_raw.map(|s| s as f64),
    ),
    (
        "normalized_shares",
        "Shares relative to the whole tree (sshare NormShares), 0 to 1.",
        |_, f| f.shares_normalized,
    ),
    (
        "raw_usage",
        "Decayed usage in TRES-billing-seconds (sshare RawUsage).",
        |_, f| f.usage_raw,
    ),
    (
        "normalized_usage",
        "Usage relative to the whole cluster (sshare NormUsage), 0 to 1.",
        |_, f| f.usage_normalized,
    ),
    (
        "effective_usage",
        "Usage relative to the parent, including the parent's (sshare EffectvUsage), 0 to 1.",
        |_, f| f.usage_effective,
    ),
    (
        "factor",
        "Fairshare factor (sshare FairShare), 0 to 1; higher means more priority.",
        |_, f| f.factor,
    ),
    (
        "level",
        "Fair Tree level fairshare (sshare LevelFS): shares over usage among siblings; above 1 is under-served, +Inf is no usage.",
        |_, f| f.level,
    ),
];

fn owner_of_account(account: &Name) -> Owner {
    if &**account == "root" {
        Owner::Cluster
    } else {
        Owner::Account(account.clone())
    }
}

pub fn collect(s: &Snapshot, _: &Options, out: &mut Sink) {
    let mut accounts: BTreeMap<&Name, (&Association, &Fairshare)> = BTreeMap::new();
    let mut users: BTreeMap<(&Name, &Name), (&Association, &Fairshare)> = BTreeMap::new();
    for a in s.associations.iter().filter(|a| a.partition.is_empty()) {
        let Some(f) = a.fairshare.as_ref() else {
            continue;
        };
        if a.is_account() {
            accounts.entry(&a.account).or_insert((a, f));
        } else {
            users.entry((&a.account, &a.user)).or_insert((a, f));
        }
    }
    for (suffix, help, pick) in FIELDS {
        let f = out.gauge(
            format!("slurm_account_fairshare_{suffix}"),
            format!("{help} Per account; `root` is the cluster."),
            &["account"],
        );
        for (acct, (a, fs)) in &accounts {
            if let Some(v) = pick(a, fs) {
                f.push(owner_of_account(acct), [(*acct).into()], v);
            }
        }
        let f = out.gauge(
            format!("slurm_user_fairshare_{suffix}"),
            format!("{help} Per user in the account."),
            &["user", "account"],
        );
        for ((acct, user), (a, fs)) in &users {
            if let Some(v) = pick(a, fs) {
                f.push(
                    Owner::User {
                        account: (*acct).clone(),
                        user: (*user).clone(),
                    },
                    [(*user).into(), (*acct).into()],
                    v,
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Interner;
    use crate::parse::associations::lab_associations;
    use crate::store::{encode, Format};
    use std::sync::Arc;

    fn lab() -> Snapshot {
        let mut n = Interner::default();
        let associations = lab_associations(&mut n);
        Snapshot {
            associations: Arc::new(associations),
            ..Snapshot::default()
        }
    }

    fn text(s: &Snapshot, visible: &dyn Fn(&Owner) -> bool) -> String {
        let mut sink = Sink::default();
        collect(s, &Options::default(), &mut sink);
        let mut out = Vec::new();
        encode(&sink.into_families(), Format::Text, visible, &mut out);
        String::from_utf8(out).expect("utf8")
    }

    #[test]
    fn sshare_values_become_series() {
        let t = text(&lab(), &|_| true);
        for line in [
            "slurm_user_fairshare_factor{user=\"alice\",account=\"physics\"} 0.142857\n",
            "slurm_user_fairshare_factor{user=\"carol\",account=\"chemistry\"} 0.714286\n",
            "slurm_user_fairshare_level{user=\"root\",account=\"root\"} +Inf\n",
            "slurm_user_fairshare_raw_usage{user=\"bob\",account=\"physics\"} 78577\n",
            "slurm_account_fairshare_raw_shares{account=\"biology\"} 100\n",
            "slurm_account_fairshare_level{account=\"biology\"} 2.154338\n",
            "slurm_account_fairshare_normalized_usage{account=\"physics\"} 0.685406\n",
            "slurm_account_fairshare_raw_usage{account=\"root\"} 298553\n",
            "# TYPE slurm_account_fairshare_effective_usage gauge\n",
        ] {
            assert!(t.contains(line), "missing {line:?} in\n{t}");
        }
        assert!(
            !t.contains("slurm_account_fairshare_factor{"),
            "sshare gives no factor for account lines"
        );
    }

    #[test]
    fn root_is_the_cluster_not_a_tenant() {
        let t = text(
            &lab(),
            &|o| matches!(o, Owner::Account(a) if &**a == "physics"),
        );
        assert!(t.contains("slurm_account_fairshare_level{account=\"physics\"} 0.484714\n"));
        assert!(!t.contains("account=\"root\""));
        assert!(!t.contains("account=\"biology\""));
        assert!(!t.contains("slurm_user_"), "user series belong to the user");
    }

    #[test]
    fn without_fairshare_data_nothing_is_shown() {
        let mut s = lab();
        let mut v = (*s.associations).clone();
        v.iter_mut().for_each(|a| a.fairshare = None);
        s.associations = Arc::new(v);
        assert_eq!(text(&s, &|_| true), "");
    }
}
