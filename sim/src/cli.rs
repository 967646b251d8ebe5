//! The CLI text writers: what Slurm's commands print where slurmrestd 22.05 has no endpoint.

use crate::model::SimCluster;
use std::io::{self, BufWriter, Write};

impl SimCluster {
    /// `sshare -a -l -P`: the fairshare tree (22.05 has no `/shares` endpoint). Usage is a
    /// deterministic function of the names; shares, normalization, effective usage, the
    /// fair-tree factor (rank among siblings) and LevelFS follow Slurm's definitions.
    pub fn write_sshare(&self, w: &mut dyn Write) -> io::Result<()> {
        fn usage_of(name: &str) -> u64 {
            // FNV-1a: stable across runs and platforms.
            let h = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
            });
            h % 200_000
        }
        let mut w = BufWriter::with_capacity(1 << 16, w);
        writeln!(w, "Account|User|RawShares|NormShares|RawUsage|NormUsage|EffectvUsage|FairShare|LevelFS|GrpTRESMins|TRESRunMins")?;
        let users_of = |acct: u16| -> Vec<&str> {
            self.assocs
                .iter()
                .filter(|a| a.account == acct)
                .filter_map(|a| a.user.map(|u| self.users[usize::from(u)].name.as_str()))
                .collect()
        };
        let children = |acct: u16| -> Vec<u16> {
            (0..self.accounts.len() as u16)
                .filter(|&c| self.accounts[usize::from(c)].parent == Some(acct))
                .collect()
        };
        // Raw usage of an account is its users' plus its sub-accounts'.
        fn account_usage(this: &SimCluster, acct: u16, key: &dyn Fn(u16) -> Vec<u16>) -> u64 {
            let own: u64 = this
                .assocs
                .iter()
                .filter(|a| a.account == acct)
                .filter_map(|a| a.user)
                .map(|u| {
                    usage_of(&format!(
                        "{}/{}",
                        this.accounts[usize::from(acct)].name,
                        this.users[usize::from(u)].name
                    ))
                })
                .sum();
            own + key(acct)
                .into_iter()
                .map(|c| account_usage(this, c, key))
                .sum::<u64>()
        }
        let total = account_usage(self, 0, &children).max(1) as f64;
        writeln!(w, "root|||0.000000|{}||1.000000||||", total as u64)?;
        let mut stack: Vec<(u16, usize, f64)> = Vec::new();
        for c in children(0).into_iter().rev() {
            stack.push((c, 1, 1.0));
        }
        while let Some((acct, depth, parent_norm)) = stack.pop() {
            let a = &self.accounts[usize::from(acct)];
            let siblings = a.parent.map(&children).unwrap_or_default();
            let norm_shares = parent_norm / siblings.len().max(1) as f64;
            let raw = account_usage(self, acct, &children);
            let norm_usage = raw as f64 / total;
            let level = if norm_usage > 0.0 {
                norm_shares / norm_usage
            } else {
                f64::INFINITY
            };
            let pad = " ".repeat(depth);
            writeln!(
                w,
                "{pad}{}||100|{norm_shares:.6}|{raw}|{norm_usage:.6}|{norm_usage:.6}||{level:.6}||",
                a.name
            )?;
            let users = users_of(acct);
            let mut levels: Vec<(f64, &str, u64)> = users
                .iter()
                .map(|u| {
                    let r = usage_of(&format!("{}/{u}", a.name));
                    let eff = if raw > 0 { r as f64 / raw as f64 } else { 0.0 };
                    let lvl = if eff > 0.0 {
                        (1.0 / users.len() as f64) / eff
                    } else {
                        f64::INFINITY
                    };
                    (lvl, *u, r)
                })
                .collect();
            levels.sort_by(|x, y| x.0.total_cmp(&y.0));
            let n = levels.len().max(1) as f64;
            for (rank, (lvl, u, r)) in levels.iter().enumerate() {
                let eff = if raw > 0 { *r as f64 / raw as f64 } else { 0.0 };
                let fs = (rank + 1) as f64 / n;
                writeln!(
                    w,
                    "{pad} {}|{u}|1|{:.6}|{r}|{:.6}|{eff:.6}|{fs:.6}|{lvl:.6}||",
                    a.name,
                    1.0 / n,
                    *r as f64 / total
                )?;
            }
            for c in children(acct).into_iter().rev() {
                stack.push((c, depth + 1, norm_shares));
            }
        }
        w.flush()
    }
}
