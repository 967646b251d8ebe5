//! Names: the shared strings that repeat across thousands of records (partition, account,
//! user, state reason), deduplicated while parsing so a 100,000-job snapshot stays small and
//! grouping by them is cheap.

use std::collections::HashMap;
use std::sync::Arc;

/// Shared string; cheap to clone into label values.
pub type Name = Arc<str>;

/// Deduplicates repeated strings while parsing one document.
#[derive(Default, Debug)]
pub struct Interner {
    map: HashMap<Box<str>, Name>,
}

impl Interner {
    pub fn intern(&mut self, s: &str) -> Name {
        if let Some(n) = self.map.get(s) {
            return n.clone();
        }
        let n: Name = Arc::from(s);
        self.map.insert(Box::from(s), n.clone());
        n
    }
}
