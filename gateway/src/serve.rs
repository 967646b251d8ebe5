//! Serving published generations over HTTP: content negotiation (`Accept`,
//! `Accept-Encoding`), the content types, gzip, and the per-view body cache. The collector
//! publishes generations and writes expositions; everything about how a body reaches a
//! scraper is here.

use crate::policy::view_key::ViewKey;
use axum::http::{header, HeaderMap};
use collector::store::{encode_filtered, Format, Generation, KeepFamily, Owner, Rewrite};
use std::collections::HashMap;
use std::io::Write as _;
use std::sync::{Arc, Mutex};

/// `Content-Type` of an exposition in `format`.
pub fn content_type(format: Format) -> &'static str {
    match format {
        Format::Text => TEXT_CONTENT_TYPE,
        Format::OpenMetrics => OPENMETRICS_CONTENT_TYPE,
    }
}

/// `Content-Type` of Prometheus text 0.0.4.
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// `Content-Type` of OpenMetrics 1.0.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The format an `Accept` header asks for: OpenMetrics only when the client asks for it, as
/// Prometheus does.
pub fn format_for(accept: Option<&str>) -> Format {
    let Some(accept) = accept else {
        return Format::Text;
    };
    let mut best = (Format::Text, 0.0f32);
    for part in accept.split(',') {
        let mut it = part.split(';').map(str::trim);
        let media = it.next().unwrap_or("").to_ascii_lowercase();
        let mut q = 1.0f32;
        for p in it {
            if let Some(v) = p.strip_prefix("q=") {
                q = v.parse().unwrap_or(0.0);
            }
        }
        let fmt = match media.as_str() {
            "application/openmetrics-text" => Format::OpenMetrics,
            _ => Format::Text,
        };
        // `*/*` expresses no preference; it never beats an explicit type.
        if q > best.1 && (fmt == Format::OpenMetrics || media != "*/*") {
            best = (fmt, q);
        }
    }
    best.0
}

/// Whether `Accept-Encoding` lets us send gzip (`q=0` refuses it).
pub fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|part| {
            let mut it = part.split(';').map(str::trim);
            let coding = it.next().unwrap_or("");
            let q = it
                .find_map(|p| p.strip_prefix("q="))
                .and_then(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0);
            (coding.eq_ignore_ascii_case("gzip") || coding == "*") && q > 0.0
        })
}

/// The exposition format and whether to gzip, from `Accept` and `Accept-Encoding`.
pub fn negotiate(headers: &HeaderMap) -> (Format, bool) {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    (format_for(accept), accepts_gzip(headers))
}

/// gzip at level 1: level 6 is ~10x slower for ~20% smaller bodies.
pub fn gzip_fast(raw: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(raw.len() / 6),
        flate2::Compression::fast(),
    );
    // Writing into a Vec cannot fail.
    let _ = enc.write_all(raw);
    enc.finish().unwrap_or_default()
}

/// What a cached body is: its view, format and whether it is gzipped.
type BodyKey = (ViewKey, Format, bool);

/// The bodies of one generation (its `seq`).
type Bodies = (u64, HashMap<BodyKey, Arc<[u8]>>);

/// How a view's body is made from a generation: which families (by index), which series
/// (by owner), and how label values are rewritten. Must be what the [`ViewKey`] names.
pub struct Recipe<'a> {
    pub keep: Option<KeepFamily<'a>>,
    pub visible: &'a dyn Fn(&Owner) -> bool,
    pub rewrite: Option<Rewrite<'a>>,
}

impl Recipe<'_> {
    /// Every series, names in clear.
    pub const ALL: Recipe<'static> = Recipe {
        keep: None,
        visible: &|_| true,
        rewrite: None,
    };
}

/// Encoded bodies of the newest generation asked for, by view, format and compression.
/// A body is encoded when its view is first scraped in a generation and shared by every
/// later scrape of that view; a newer generation's first scrape drops the older bodies. An
/// older generation still being served (a scrape that loaded it before a publish) is
/// encoded for that scrape and not cached.
#[derive(Debug, Default)]
pub struct BodyCache {
    bodies: Mutex<Bodies>,
}

impl BodyCache {
    /// The body of `view` in `g`, from the cache or made by `recipe` (and cached).
    pub fn body(
        &self,
        g: &Generation,
        view: &ViewKey,
        format: Format,
        gzip: bool,
        recipe: Recipe<'_>,
    ) -> Arc<[u8]> {
        let key = (view.clone(), format, gzip);
        if let Ok(c) = self.bodies.lock() {
            if c.0 == g.seq {
                if let Some(b) = c.1.get(&key) {
                    return b.clone();
                }
            }
        }
        let mut raw = Vec::with_capacity(g.series_count() * 64);
        encode_filtered(
            &g.families,
            format,
            recipe.keep,
            recipe.visible,
            recipe.rewrite,
            &mut raw,
        );
        let body: Arc<[u8]> = if gzip {
            gzip_fast(&raw).into()
        } else {
            raw.into()
        };
        if let Ok(mut c) = self.bodies.lock() {
            if c.0 < g.seq {
                c.0 = g.seq;
                c.1.clear();
            }
            if c.0 == g.seq {
                c.1.insert(key, body.clone());
            }
        }
        body
    }

    /// Bodies cached now (for tests and the curious).
    pub fn len(&self) -> usize {
        self.bodies.lock().map_or(0, |c| c.1.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::tenancy::TenantId;
    use crate::policy::view_key::{Names, TenantKey};
    use axum::http::HeaderValue;
    use collector::store::{Sink, Store};

    fn h(v: &str) -> HeaderMap {
        let mut m = HeaderMap::new();
        m.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_str(v).expect("valid"),
        );
        m
    }

    #[test]
    fn gzip_negotiation() {
        assert!(accepts_gzip(&h("gzip")));
        assert!(accepts_gzip(&h("br, gzip;q=0.5")));
        assert!(!accepts_gzip(&h("gzip;q=0")));
        assert!(!accepts_gzip(&h("identity")));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }

    #[test]
    fn accept_negotiation() {
        assert_eq!(format_for(None), Format::Text);
        assert_eq!(
            format_for(Some("application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1")),
            Format::OpenMetrics
        );
        assert_eq!(format_for(Some("text/plain")), Format::Text);
        assert_eq!(
            format_for(Some("text/plain;q=0.9,application/openmetrics-text;q=0.2")),
            Format::Text
        );
        assert_eq!(format_for(Some("*/*")), Format::Text);
        assert_eq!(content_type(Format::Text), TEXT_CONTENT_TYPE);
        assert_eq!(content_type(Format::OpenMetrics), OPENMETRICS_CONTENT_TYPE);
    }

    fn families(n: usize) -> Vec<collector::store::Family> {
        let mut sink = Sink::default();
        let f = sink.gauge("slurm_test_nodes", "Nodes", &["state"]);
        for i in 0..n {
            f.push(
                collector::store::Owner::Cluster,
                [format!("s{i}").into()],
                i as f64,
            );
        }
        sink.into_families()
    }

    #[test]
    fn bodies_are_made_once_per_generation_view_and_format() {
        let store = Store::default();
        let cache = BodyCache::default();
        let g = store.publish(families(3), 1.0);
        assert!(cache.is_empty(), "nothing is encoded before a scrape");
        let a = cache.body(&g, &ViewKey::All, Format::Text, false, Recipe::ALL);
        let b = cache.body(&g, &ViewKey::All, Format::Text, false, Recipe::ALL);
        assert!(Arc::ptr_eq(&a, &b));
        let z = cache.body(&g, &ViewKey::All, Format::Text, true, Recipe::ALL);
        let mut d = flate2::read::GzDecoder::new(&z[..]);
        let mut back = Vec::new();
        std::io::Read::read_to_end(&mut d, &mut back).expect("gunzip");
        assert_eq!(&back[..], &a[..]);
        let om = cache.body(&g, &ViewKey::All, Format::OpenMetrics, false, Recipe::ALL);
        assert!(om.ends_with(b"# EOF\n"));
        // Another view of the same generation is its own body.
        let tenant = ViewKey::Tenant(TenantKey {
            tenant: TenantId::parse("t").expect("valid"),
            names: Names::Clear,
            quota: 10,
        });
        let none = cache.body(
            &g,
            &tenant,
            Format::Text,
            false,
            Recipe {
                keep: None,
                visible: &|_| false,
                rewrite: None,
            },
        );
        assert!(none.is_empty());
        assert_eq!(cache.len(), 4);
        // A newer generation replaces the bodies; an older one is served, never cached.
        let g2 = store.publish(families(4), 2.0);
        let c = cache.body(&g2, &ViewKey::All, Format::Text, false, Recipe::ALL);
        assert_ne!(&c[..], &a[..]);
        assert_eq!(cache.len(), 1);
        let old = cache.body(&g, &ViewKey::All, Format::Text, false, Recipe::ALL);
        assert_eq!(&old[..], &a[..]);
        assert!(Arc::ptr_eq(
            &c,
            &cache.body(&g2, &ViewKey::All, Format::Text, false, Recipe::ALL)
        ));
    }
}
