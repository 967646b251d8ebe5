//! The simulator as a collector source: its bytes go through a pipe into the same streaming
//! parsers the REST and CLI sources use, so the demo and the benchmark run the real parse path.

use crate::catalogue::NOW;
use crate::model::{SimCluster, SimSpec};
use std::io::{self, Write};

/// A [`collector::source::Source`] serving a [`SimCluster`]. With [`SimSource::evolving`],
/// every poll uses the next seed, so a demo's graphs move.
pub struct SimSource {
    spec: SimSpec,
    evolving: bool,
    polls: std::sync::atomic::AtomicU64,
}

impl SimSource {
    pub fn new(spec: SimSpec) -> SimSource {
        SimSource {
            spec,
            evolving: false,
            polls: std::sync::atomic::AtomicU64::new(0),
        }
    }

    pub fn evolving(mut self) -> SimSource {
        self.evolving = true;
        self
    }

    fn poll_blocking(
        spec: SimSpec,
    ) -> Result<collector::source::Parts, collector::source::SourceError> {
        use collector::model::Interner;
        use collector::parse::ParseError;
        let sim = std::sync::Arc::new(SimCluster::new(spec));
        let mut names = Interner::default();
        let io_err = |what: &str, e: io::Error| collector::source::SourceError::Io {
            what: format!("sim {what}"),
            msg: e.to_string(),
        };
        // Writer thread -> pipe -> streaming parser, as a socket or a child's stdout would.
        fn piped<T>(
            sim: &std::sync::Arc<SimCluster>,
            write: fn(&SimCluster, &mut dyn Write) -> io::Result<()>,
            parse: impl FnOnce(&mut dyn io::Read) -> Result<T, ParseError>,
        ) -> Result<(T, u64), io::Error> {
            let (reader, mut writer) = io::pipe()?;
            let sim = sim.clone();
            let producer = std::thread::spawn(move || write(&sim, &mut writer));
            let mut counted = collector::source::Counted {
                inner: reader,
                count: 0,
            };
            let parsed = parse(&mut counted);
            drop(counted.inner);
            let wrote = producer
                .join()
                .map_err(|_| io::Error::other("sim writer panicked"))?;
            let value = parsed.map_err(|e| io::Error::other(e.to_string()))?;
            wrote?;
            Ok((value, counted.count))
        }
        let ((env, nodes), nb) = piped(&sim, SimCluster::write_nodes, |r| {
            collector::parse::nodes::parse_nodes(r, &mut names)
        })
        .map_err(|e| io_err("nodes", e))?;
        let ((_, jobs), jb) = piped(&sim, SimCluster::write_jobs, |r| {
            collector::parse::jobs::parse_jobs(r, &mut names)
        })
        .map_err(|e| io_err("jobs", e))?;
        let mut buf = Vec::new();
        sim.write_partitions(&mut buf)
            .map_err(|e| io_err("partitions", e))?;
        let (_, partitions) = collector::parse::partitions::parse_partitions(&buf, &mut names)
            .map_err(|err| collector::source::SourceError::Parse {
                what: "sim partitions".into(),
                err,
            })?;
        // The small documents go through the same parsers as slurmrestd's answers.
        let mut small_bytes = 0u64;
        let mut small = |what: &str,
                         write: fn(&SimCluster, &mut dyn Write) -> io::Result<()>|
         -> Result<Vec<u8>, collector::source::SourceError> {
            let mut b = Vec::new();
            write(&sim, &mut b).map_err(|e| io_err(what, e))?;
            small_bytes += b.len() as u64;
            Ok(b)
        };
        let parse_err = |what: &str| {
            let what = format!("sim {what}");
            move |err| collector::source::SourceError::Parse { what, err }
        };
        use collector::parse::{associations, diag, licenses, ping, qos, reservations};
        let diag = diag::parse_diag_json(&small("diag", SimCluster::write_diag)?)
            .map_err(parse_err("diag"))?;
        let controllers = ping::parse_ping_json(&small("ping", SimCluster::write_ping)?)
            .map_err(parse_err("ping"))?;
        let license_list =
            licenses::parse_licenses_json(&small("licenses", SimCluster::write_licenses)?)
                .map_err(parse_err("licenses"))?;
        let resv = reservations::parse_reservations_json(
            &small("reservations", SimCluster::write_reservations)?,
            &mut names,
        )
        .map_err(parse_err("reservations"))?;
        let qos_list = qos::parse_qos_json(&small("qos", SimCluster::write_qos)?, &mut names)
            .map_err(parse_err("qos"))?;
        let limits = associations::parse_associations_json(
            &small("associations", SimCluster::write_associations)?,
            &mut names,
        )
        .map_err(parse_err("associations"))?;
        let mut sshare = Vec::new();
        sim.write_sshare(&mut sshare)
            .map_err(|e| io_err("sshare", e))?;
        small_bytes += sshare.len() as u64;
        let shares = associations::parse_sshare_text(&String::from_utf8_lossy(&sshare), &mut names)
            .map_err(parse_err("sshare"))?;
        let assoc = associations::merge(limits, shares);
        let (finished, fb) = piped(&sim, SimCluster::write_finished_jobs, |r| {
            collector::parse::sacct::parse_sacct_json(r, &mut Interner::default())
        })
        .map_err(|e| io_err("finished jobs", e))?;
        small_bytes += fb;
        Ok(collector::source::Parts {
            finished_jobs: Some(finished),
            diag: Some(diag),
            controllers: Some(controllers),
            licenses: Some(license_list),
            reservations: Some(resv),
            qos: Some(qos_list),
            associations: Some(assoc),
            meta: env.meta,
            cluster: Some(sim.cluster_name().to_owned()),
            nodes: Some(nodes),
            jobs: Some(jobs),
            partitions: Some(partitions),
            fetched_epoch: u64::from(NOW),
            bytes: nb + jb + buf.len() as u64 + small_bytes,
            not_modified: false,
            ..Default::default()
        })
    }
}

impl collector::source::Source for SimSource {
    fn name(&self) -> &str {
        "sim"
    }

    fn poll(&self) -> collector::source::PollFuture<'_> {
        let n = self
            .polls
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut spec = self.spec;
        if self.evolving {
            spec.seed = spec.seed.wrapping_add(n);
        }
        Box::pin(async move {
            tokio::task::spawn_blocking(move || SimSource::poll_blocking(spec))
                .await
                .map_err(|e| collector::source::SourceError::Io {
                    what: "sim poll".into(),
                    msg: e.to_string(),
                })?
        })
    }
}
