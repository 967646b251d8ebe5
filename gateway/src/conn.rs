//! Connection limits of the accept loop (`crate::tls`, with TLS or plain HTTP): how many
//! connections and TLS handshakes one client and all clients together may hold, how long a connection may sit
//! idle or stall a write, the process's descriptor limit, and the trace every refused
//! connection leaves (a self-metric by reason through [`RefusalHook`], and an aggregated log
//! line at most every [`LOG_INTERVAL`]).
//!
//! A client is its address, IPv6 by its /64 ([`crate::policy::client::ip_key`], the same
//! key as the per-IP request limit): one host usually holds a whole /64, so per-address
//! caps would be free to rotate around.
//!
//! Changes take effect on restart (a reload keeps the limits in force).
//!
//! ```toml
//! [server.connections]            # every key optional; these are the defaults
//! max = 4096                      # open connections, all clients (lowered to fit RLIMIT_NOFILE)
//! max_per_client = 64             # open connections from one address (IPv6: one /64)
//! max_handshakes = 1024           # TLS handshakes in progress, all clients
//! max_handshakes_per_client = 8   # TLS handshakes in progress from one client
//! handshake_timeout_seconds = 10
//! idle_timeout_seconds = 30       # no request in flight and no byte moved
//! write_timeout_seconds = 10      # an answer's write makes no progress
//! ```

use crate::policy::client::ip_key;
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// At most one aggregated log line of refused connections per this interval.
pub const LOG_INTERVAL: Duration = Duration::from_secs(10);

/// Descriptors kept for everything but client connections (listeners, the audit log, key
/// and certificate files, connections to Slurm and to identity providers).
pub const FD_RESERVE: usize = 256;

/// `[server.connections]`: see the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectionsConfig {
    #[serde(default = "d_max")]
    pub max: usize,
    #[serde(default = "d_max_per_client")]
    pub max_per_client: usize,
    #[serde(default = "d_max_handshakes")]
    pub max_handshakes: usize,
    #[serde(default = "d_max_handshakes_per_client")]
    pub max_handshakes_per_client: usize,
    #[serde(default = "d_handshake_timeout")]
    pub handshake_timeout_seconds: u64,
    #[serde(default = "d_idle_timeout")]
    pub idle_timeout_seconds: u64,
    #[serde(default = "d_write_timeout")]
    pub write_timeout_seconds: u64,
}

fn d_max() -> usize {
    4096
}
fn d_max_per_client() -> usize {
    64
}
fn d_max_handshakes() -> usize {
    1024
}
fn d_max_handshakes_per_client() -> usize {
    8
}
fn d_handshake_timeout() -> u64 {
    10
}
fn d_idle_timeout() -> u64 {
    30
}
fn d_write_timeout() -> u64 {
    10
}

impl Default for ConnectionsConfig {
    fn default() -> Self {
        ConnectionsConfig {
            max: d_max(),
            max_per_client: d_max_per_client(),
            max_handshakes: d_max_handshakes(),
            max_handshakes_per_client: d_max_handshakes_per_client(),
            handshake_timeout_seconds: d_handshake_timeout(),
            idle_timeout_seconds: d_idle_timeout(),
            write_timeout_seconds: d_write_timeout(),
        }
    }
}

impl ConnectionsConfig {
    /// Every value at least 1, and the per-client caps within the global ones.
    pub fn validate(&self) -> Result<(), String> {
        let at_least_one = [
            ("max", self.max as u64),
            ("max_per_client", self.max_per_client as u64),
            ("max_handshakes", self.max_handshakes as u64),
            (
                "max_handshakes_per_client",
                self.max_handshakes_per_client as u64,
            ),
            ("handshake_timeout_seconds", self.handshake_timeout_seconds),
            ("idle_timeout_seconds", self.idle_timeout_seconds),
            ("write_timeout_seconds", self.write_timeout_seconds),
        ];
        if let Some((k, _)) = at_least_one.iter().find(|(_, v)| *v == 0) {
            return Err(format!("server.connections.{k}: at least 1"));
        }
        if self.max_per_client > self.max {
            return Err(format!(
                "server.connections.max_per_client = {} is over max = {}",
                self.max_per_client, self.max
            ));
        }
        if self.max_handshakes_per_client > self.max_per_client.min(self.max_handshakes) {
            return Err(format!(
                "server.connections.max_handshakes_per_client = {} is over max_per_client or max_handshakes",
                self.max_handshakes_per_client
            ));
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// Refusals

/// Why a connection was refused or cut before or outside any HTTP request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Refusal {
    /// Every connection slot is taken.
    ConnectionLimit,
    /// The client holds `max_per_client` connections already.
    ClientConnectionLimit,
    /// The client has `max_handshakes_per_client` handshakes in progress already.
    ClientHandshakeLimit,
    /// The handshake did not finish within the handshake timeout.
    HandshakeTimeout,
    /// A client certificate that does not verify or whose SAN is not allowed.
    BadCertificate,
    /// No client certificate where one is required.
    NoCertificate,
    /// No protocol version, cipher suite or ALPN protocol in common.
    Protocol,
    /// A malformed or inconsistent SNI (no SNI is fine: clients scraping by IP send none).
    Sni,
    /// Anything else that is not TLS (plain HTTP on the TLS port, garbage, bad messages).
    Malformed,
    /// The client closed or reset the connection during the handshake.
    Aborted,
    /// An answer's write made no progress for `write_timeout_seconds`: the client stopped
    /// reading.
    WriteTimeout,
}

impl Refusal {
    /// Every reason, for metrics that start at zero.
    pub const ALL: [Refusal; 11] = [
        Refusal::ConnectionLimit,
        Refusal::ClientConnectionLimit,
        Refusal::ClientHandshakeLimit,
        Refusal::HandshakeTimeout,
        Refusal::BadCertificate,
        Refusal::NoCertificate,
        Refusal::Protocol,
        Refusal::Sni,
        Refusal::Malformed,
        Refusal::Aborted,
        Refusal::WriteTimeout,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::ConnectionLimit => "connection_limit",
            Refusal::ClientConnectionLimit => "client_connection_limit",
            Refusal::ClientHandshakeLimit => "client_handshake_limit",
            Refusal::HandshakeTimeout => "handshake_timeout",
            Refusal::BadCertificate => "bad_certificate",
            Refusal::NoCertificate => "no_certificate",
            Refusal::Protocol => "protocol",
            Refusal::Sni => "sni",
            Refusal::Malformed => "malformed",
            Refusal::Aborted => "aborted",
            Refusal::WriteTimeout => "write_timeout",
        }
    }

    /// The reason of a failed TLS handshake, from the error tokio-rustls returns.
    pub fn of_handshake_error(e: &io::Error) -> Refusal {
        use rustls::{Error as E, InvalidMessage, PeerMisbehaved as M};
        match e.get_ref().and_then(|i| i.downcast_ref::<E>()) {
            Some(E::NoCertificatesPresented) => Refusal::NoCertificate,
            Some(E::InvalidCertificate(_)) => Refusal::BadCertificate,
            Some(E::PeerIncompatible(_)) => Refusal::Protocol,
            Some(E::InvalidMessage(InvalidMessage::InvalidServerName))
            | Some(E::PeerMisbehaved(
                M::ServerNameMustContainOneHostName | M::ServerNameDifferedOnRetry,
            )) => Refusal::Sni,
            Some(_) => Refusal::Malformed,
            None => Refusal::Aborted,
        }
    }
}

/// Told about every refused connection, with the client's address: the self-metrics now,
/// aggregated audit records later. Called on the accept path: must not block.
pub trait RefusalHook: Send + Sync {
    fn on_refusal(&self, reason: Refusal, client: SocketAddr);
}

impl<F: Fn(Refusal, SocketAddr) + Send + Sync> RefusalHook for F {
    fn on_refusal(&self, reason: Refusal, client: SocketAddr) {
        self(reason, client)
    }
}

/// Reports refusals to the hook, each one, and to the log, aggregated: the first refusal
/// after a quiet [`LOG_INTERVAL`] is one line, the ones after it are counted into the next
/// line, so a flood of refusals is a line per interval, not a line per connection.
/// [`Refusal::Aborted`] alone never brings a line (TCP health checks would).
pub struct Refusals {
    hook: Option<Arc<dyn RefusalHook>>,
    interval: Duration,
    log: Mutex<LogState>,
}

struct LogState {
    last: Option<Instant>,
    counts: BTreeMap<Refusal, u64>,
    clients: HashMap<IpAddr, u64>,
}

/// Distinct clients one log line names at most, and counts per interval at most.
const LOG_CLIENTS: usize = 5;
const TRACKED_CLIENTS: usize = 1024;

impl Refusals {
    pub fn new(hook: Option<Arc<dyn RefusalHook>>) -> Refusals {
        Refusals::with_interval(hook, LOG_INTERVAL)
    }

    fn with_interval(hook: Option<Arc<dyn RefusalHook>>, interval: Duration) -> Refusals {
        Refusals {
            hook,
            interval,
            log: Mutex::new(LogState {
                last: None,
                counts: BTreeMap::new(),
                clients: HashMap::new(),
            }),
        }
    }

    pub fn report(&self, reason: Refusal, client: SocketAddr) {
        if let Some(h) = &self.hook {
            h.on_refusal(reason, client);
        }
        if let Some(line) = self.aggregate(reason, client) {
            tracing::info!(
                reasons = %line.reasons,
                clients = %line.clients,
                distinct_clients = line.distinct_clients,
                "connections refused since the last such line (at most one per 10 s)"
            );
        }
    }

    /// Counts the refusal; returns the line to log when one is due.
    fn aggregate(&self, reason: Refusal, client: SocketAddr) -> Option<LogLine> {
        let mut st = self.log.lock().unwrap_or_else(|e| e.into_inner());
        *st.counts.entry(reason).or_default() += 1;
        let key = ip_key(client.ip());
        if st.clients.len() < TRACKED_CLIENTS || st.clients.contains_key(&key) {
            *st.clients.entry(key).or_default() += 1;
        }
        // A client closing mid-handshake is what TCP health checks do: counted, and logged
        // only with the next line another reason brings.
        if reason == Refusal::Aborted || st.last.is_some_and(|t| t.elapsed() < self.interval) {
            return None;
        }
        st.last = Some(Instant::now());
        let counts = std::mem::take(&mut st.counts);
        let mut clients: Vec<(IpAddr, u64)> = std::mem::take(&mut st.clients).into_iter().collect();
        clients.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        Some(LogLine {
            reasons: counts
                .iter()
                .map(|(r, n)| format!("{}={n}", r.as_str()))
                .collect::<Vec<_>>()
                .join(" "),
            clients: clients
                .iter()
                .take(LOG_CLIENTS)
                .map(|(ip, n)| format!("{ip}={n}"))
                .collect::<Vec<_>>()
                .join(" "),
            distinct_clients: clients.len(),
        })
    }
}

/// One aggregated log line: counts by reason, the busiest clients.
#[derive(Debug, PartialEq, Eq)]
struct LogLine {
    reasons: String,
    clients: String,
    distinct_clients: usize,
}

// ---------------------------------------------------------------------------------------
// Slots

/// Counted slots: at most `total` over all clients and `per_client` per client key. Entries
/// leave the map when their count drops to zero, so it never holds more than `total`.
#[derive(Clone)]
pub struct Slots {
    total: usize,
    per_client: usize,
    over_total: Refusal,
    over_client: Refusal,
    state: Arc<Mutex<SlotState>>,
}

#[derive(Default)]
struct SlotState {
    taken: usize,
    per_client: HashMap<IpAddr, usize>,
}

/// One taken slot, given back when dropped.
pub struct Slot {
    key: IpAddr,
    state: Arc<Mutex<SlotState>>,
}

impl Slots {
    /// Connections: `max` in all, `max_per_client` per client.
    pub fn connections(max: usize, max_per_client: usize) -> Slots {
        Slots::new(
            max,
            max_per_client,
            Refusal::ConnectionLimit,
            Refusal::ClientConnectionLimit,
        )
    }

    /// Handshakes per client (the global handshake cap is a semaphore the accept loop waits
    /// on before accepting).
    pub fn handshakes_per_client(max_per_client: usize) -> Slots {
        Slots::new(
            usize::MAX,
            max_per_client,
            Refusal::ClientHandshakeLimit,
            Refusal::ClientHandshakeLimit,
        )
    }

    fn new(total: usize, per_client: usize, over_total: Refusal, over_client: Refusal) -> Slots {
        Slots {
            total: total.max(1),
            per_client: per_client.max(1),
            over_total,
            over_client,
            state: Arc::default(),
        }
    }

    pub fn try_take(&self, ip: IpAddr) -> Result<Slot, Refusal> {
        let key = ip_key(ip);
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if st.taken >= self.total {
            return Err(self.over_total);
        }
        let n = st.per_client.entry(key).or_insert(0);
        if *n >= self.per_client {
            return Err(self.over_client);
        }
        *n += 1;
        st.taken += 1;
        Ok(Slot {
            key,
            state: self.state.clone(),
        })
    }

    /// Slots taken now, over all clients.
    pub fn taken(&self) -> usize {
        self.state.lock().map_or(0, |s| s.taken)
    }

    /// Clients holding a slot now.
    pub fn clients(&self) -> usize {
        self.state.lock().map_or(0, |s| s.per_client.len())
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.taken = st.taken.saturating_sub(1);
        if let Some(n) = st.per_client.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                st.per_client.remove(&self.key);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Idle and write timeouts

/// What a connection did last, shared by its socket ([`Watched`]), its requests
/// ([`Activity::request`]) and its [`watchdog`].
pub struct Activity {
    start: Instant,
    /// Milliseconds since `start` of the last byte read or written.
    last_io_ms: AtomicU64,
    /// Milliseconds since `start` + 1 of the first write that is still waiting, 0 if none.
    write_stalled_since_ms: AtomicU64,
    in_flight: AtomicUsize,
}

impl Activity {
    pub fn new() -> Arc<Activity> {
        Arc::new(Activity {
            start: Instant::now(),
            last_io_ms: AtomicU64::new(0),
            write_stalled_since_ms: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
        })
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn moved(&self) {
        self.last_io_ms.store(self.now_ms(), Ordering::Relaxed);
    }

    /// A request is being handled until the guard drops: the idle timeout does not run.
    pub fn request(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(self.clone())
    }

    /// Why the connection should be closed now, if it should.
    fn expired(&self, idle: Duration, write: Duration) -> Option<Closed> {
        let now = self.now_ms();
        let stalled = self.write_stalled_since_ms.load(Ordering::Relaxed);
        if stalled != 0 && now.saturating_sub(stalled - 1) >= millis(write) {
            return Some(Closed::WriteTimeout);
        }
        let idle_for = now.saturating_sub(self.last_io_ms.load(Ordering::Relaxed));
        if stalled == 0 && self.in_flight.load(Ordering::Relaxed) == 0 && idle_for >= millis(idle) {
            return Some(Closed::Idle);
        }
        None
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A request in flight on its connection.
pub struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.0.moved();
    }
}

/// Why [`watchdog`] ended a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closed {
    /// No request in flight and no byte moved for the idle timeout.
    Idle,
    /// A write waited for the client for the write timeout.
    WriteTimeout,
}

/// Resolves when the connection behind `activity` has been idle for `idle` or a write of it
/// has made no progress for `write`; race it against the connection and drop the loser.
pub async fn watchdog(activity: Arc<Activity>, idle: Duration, write: Duration) -> Closed {
    let tick = (idle.min(write) / 4).clamp(Duration::from_millis(50), Duration::from_secs(1));
    let mut every = tokio::time::interval(tick);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        if let Some(why) = activity.expired(idle, write) {
            return why;
        }
    }
}

/// A socket that records its progress in an [`Activity`]: a read or write that moves bytes
/// is activity, a write that must wait starts the write-stall clock. Wrap the TCP stream,
/// under TLS, so the clocks see the network, not the TLS buffers.
pub struct Watched<T> {
    inner: T,
    activity: Arc<Activity>,
}

impl<T> Watched<T> {
    pub fn new(inner: T, activity: Arc<Activity>) -> Watched<T> {
        activity.moved();
        Watched { inner, activity }
    }

    fn write_result(&self, r: Poll<io::Result<usize>>) -> Poll<io::Result<usize>> {
        match &r {
            Poll::Pending => {
                let since = self.activity.now_ms() + 1;
                let _ = self.activity.write_stalled_since_ms.compare_exchange(
                    0,
                    since,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                );
            }
            Poll::Ready(done) => {
                self.activity
                    .write_stalled_since_ms
                    .store(0, Ordering::Relaxed);
                if done.as_ref().is_ok_and(|n| *n > 0) {
                    self.activity.moved();
                }
            }
        }
        r
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.moved();
        }
        r
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.write_result(r)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.write_result(r)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    // Flushing moves no bytes of its own (a TCP flush is a no-op; TLS flushes by writing,
    // which is counted there), and it is polled whenever the connection is: not activity.
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

// ---------------------------------------------------------------------------------------
// Descriptors

/// Raises the soft `RLIMIT_NOFILE` to the hard limit and returns `max_connections` fitted
/// to it: when the descriptors left after [`FD_RESERVE`] cannot hold `max_connections`,
/// warns and returns what they can hold, so the cap refuses connections before `accept`
/// runs out of descriptors.
pub fn fit_to_nofile(max_connections: usize) -> usize {
    let (soft, hard) = match raise_nofile_limit() {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read or raise RLIMIT_NOFILE");
            return max_connections;
        }
    };
    let room = usize::try_from(soft)
        .unwrap_or(usize::MAX)
        .saturating_sub(FD_RESERVE)
        .max(1);
    if room < max_connections {
        tracing::warn!(
            soft,
            hard,
            max_connections,
            effective = room,
            "RLIMIT_NOFILE is low for server.connections.max; serving at most {room} connections (raise the hard limit, e.g. LimitNOFILE= in the systemd unit)"
        );
        room
    } else {
        tracing::debug!(soft, hard, "RLIMIT_NOFILE raised to the hard limit");
        max_connections
    }
}

/// Sets the soft `RLIMIT_NOFILE` to the hard limit; returns (soft, hard) after.
pub fn raise_nofile_limit() -> io::Result<(u64, u64)> {
    rlimit::increase_nofile_limit(u64::MAX)?;
    rlimit::Resource::NOFILE.get()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_values_name_their_key() {
        // The figures README, SECURITY.md and config/gateway.toml give.
        let d = ConnectionsConfig::default();
        assert!(d.validate().is_ok());
        assert_eq!(
            (
                d.max,
                d.max_per_client,
                d.max_handshakes,
                d.max_handshakes_per_client
            ),
            (4096, 64, 1024, 8)
        );
        assert_eq!(
            (
                d.handshake_timeout_seconds,
                d.idle_timeout_seconds,
                d.write_timeout_seconds
            ),
            (10, 30, 10)
        );
        assert_eq!(LOG_INTERVAL, Duration::from_secs(10));
        let shipped = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../config/gateway.toml"
        ))
        .expect("config/gateway.toml");
        let section = shipped
            .split("[server.connections]")
            .nth(1)
            .and_then(|rest| rest.split("\n\n").next())
            .expect("config/gateway.toml has [server.connections]");
        let documented: ConnectionsConfig = toml::from_str(section).expect("parses");
        assert_eq!(documented, d, "config/gateway.toml shows the defaults");
        let bad = |f: fn(&mut ConnectionsConfig)| {
            let mut c = ConnectionsConfig::default();
            f(&mut c);
            c.validate().expect_err("refused")
        };
        assert!(bad(|c| c.max = 0).contains("server.connections.max:"));
        assert!(bad(|c| c.idle_timeout_seconds = 0).contains("idle_timeout_seconds"));
        assert!(bad(|c| c.max_per_client = c.max + 1).contains("max_per_client"));
        assert!(bad(|c| c.max_handshakes_per_client = 65).contains("max_handshakes_per_client"));
        let c: ConnectionsConfig = toml::from_str("max = 10\nmax_per_client = 2").expect("parses");
        assert_eq!(
            (c.max, c.max_per_client, c.idle_timeout_seconds),
            (10, 2, 30)
        );
        assert!(toml::from_str::<ConnectionsConfig>("maximum = 1").is_err());
    }

    #[test]
    fn slots_are_bounded_per_client_and_in_all_and_given_back() {
        let s = Slots::connections(3, 2);
        let a: IpAddr = [127, 0, 0, 2].into();
        let one = s.try_take(a).expect("first");
        let _two = s.try_take(a).expect("second");
        assert_eq!(s.try_take(a).err(), Some(Refusal::ClientConnectionLimit));
        let _b = s.try_take([127, 0, 0, 3].into()).expect("another client");
        assert_eq!(
            s.try_take([127, 0, 0, 4].into()).err(),
            Some(Refusal::ConnectionLimit)
        );
        drop(one);
        assert!(s.try_take(a).is_ok());
        assert_eq!(s.clients(), 2);
    }

    #[test]
    fn ipv6_clients_are_keyed_by_their_64() {
        let s = Slots::handshakes_per_client(2);
        let ip = |last: u16| IpAddr::from([0x2001, 0xdb8, 1, 2, 0, 0, 0, last]);
        let _a = s.try_take(ip(1)).expect("first");
        let _b = s.try_take(ip(2)).expect("another address, same /64");
        assert_eq!(s.try_take(ip(3)).err(), Some(Refusal::ClientHandshakeLimit));
        let other = IpAddr::from([0x2001, 0xdb8, 1, 3, 0, 0, 0, 1]);
        assert!(s.try_take(other).is_ok(), "another /64");
        // An IPv4-mapped address is its IPv4 client.
        let v4 = Slots::connections(10, 1);
        let _c = v4.try_take([10, 0, 0, 1].into()).expect("v4");
        let mapped = IpAddr::from(std::net::Ipv4Addr::new(10, 0, 0, 1).to_ipv6_mapped());
        assert_eq!(
            v4.try_take(mapped).err(),
            Some(Refusal::ClientConnectionLimit)
        );
    }

    #[test]
    fn every_reason_has_its_own_word() {
        let words: std::collections::BTreeSet<_> =
            Refusal::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(words.len(), Refusal::ALL.len());
        let io = |e: rustls::Error| io::Error::new(io::ErrorKind::InvalidData, e);
        assert_eq!(
            Refusal::of_handshake_error(&io(rustls::Error::NoCertificatesPresented)),
            Refusal::NoCertificate
        );
        assert_eq!(
            Refusal::of_handshake_error(&io(rustls::Error::InvalidMessage(
                rustls::InvalidMessage::InvalidServerName
            ))),
            Refusal::Sni
        );
        assert_eq!(
            Refusal::of_handshake_error(&io::Error::from(io::ErrorKind::UnexpectedEof)),
            Refusal::Aborted
        );
    }

    #[test]
    fn a_flood_of_refusals_is_one_log_line_per_interval_with_the_counts() {
        let r = Refusals::with_interval(None, Duration::from_millis(200));
        let peer = |last: u8| SocketAddr::from(([127, 0, 0, last], 4000));
        let first = r
            .aggregate(Refusal::HandshakeTimeout, peer(2))
            .expect("the first is logged");
        assert_eq!(first.reasons, "handshake_timeout=1");
        let mut lines = 0;
        for n in 0..1000u32 {
            let why = if n % 2 == 0 {
                Refusal::ClientHandshakeLimit
            } else {
                Refusal::Malformed
            };
            lines += usize::from(r.aggregate(why, peer(3 + (n % 7) as u8)).is_some());
        }
        assert_eq!(lines, 0, "nothing more within the interval");
        std::thread::sleep(Duration::from_millis(250));
        assert_eq!(r.aggregate(Refusal::Aborted, peer(2)), None, "not alone");
        let next = r
            .aggregate(Refusal::Sni, peer(2))
            .expect("the next interval's line");
        assert_eq!(
            next.reasons,
            "client_handshake_limit=500 sni=1 malformed=500 aborted=1"
        );
        assert_eq!(next.distinct_clients, 8);
        assert_eq!(next.clients.split(' ').count(), LOG_CLIENTS);
        assert!(
            next.clients.starts_with("127.0.0.3=143"),
            "{}",
            next.clients
        );
    }

    #[test]
    fn idle_and_stalled_writes_expire_in_flight_requests_do_not_idle() {
        let a = Activity::new();
        let (idle, write) = (Duration::from_millis(30), Duration::from_millis(30));
        assert_eq!(a.expired(idle, write), None);
        let req = a.request();
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(a.expired(idle, write), None, "a request is in flight");
        drop(req);
        assert_eq!(a.expired(idle, write), None, "the answer just moved");
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(a.expired(idle, write), Some(Closed::Idle));
        a.write_stalled_since_ms
            .store(a.now_ms() + 1, Ordering::Relaxed);
        assert_eq!(a.expired(idle, write), None, "a stalled write is not idle");
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(a.expired(idle, write), Some(Closed::WriteTimeout));
    }
}
