//! Rendered read-only pages, reused for a few seconds for readers who are not logged in.
//!
//! Readings arrive every minute or so, so a few seconds of staleness is invisible, while a
//! busy dashboard or sensor page costs one render per interval instead of one per request
//! (`ui.page_cache_secs`; 0 turns it off). When a page expires, the first request to see
//! it renders it again while the others keep getting the previous rendering: there is no
//! moment at which every reader waits for a render at once. Per process, like the forecast
//! cache: it only saves work and holds no state of its own.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::web::Bytes;

/// Most pages kept; past it, expired entries are dropped (all of them if none expired).
const MAX_ENTRIES: usize = 512;
/// A stale page is handed out while its refresh is in flight only up to this many
/// intervals old; past that (a refresh stuck on a slow database) readers render it again.
const MAX_STALE_INTERVALS: u32 = 12;

struct Entry {
    rendered_at: Instant,
    body: Bytes,
    refreshing: bool,
}

/// What the cache says about a page.
pub enum Lookup {
    /// Use this rendering.
    Hit(Bytes),
    /// Render the page and hand the result to the ticket (it is the only refresh).
    Render(Ticket),
}

/// The right (and duty) to refresh one page. Dropped without `complete` (the render
/// failed, or the request was cancelled), it frees the page for the next reader to refresh.
pub struct Ticket {
    cache: Arc<PageCache>,
    key: Option<String>,
}

impl Ticket {
    pub fn complete(mut self, body: Bytes) {
        if let Some(key) = self.key.take() {
            self.cache.put(key, body);
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            if let Ok(mut entries) = self.cache.entries.lock() {
                if let Some(entry) = entries.get_mut(&key) {
                    entry.refreshing = false;
                }
            }
        }
    }
}

pub struct PageCache {
    ttl: Duration,
    entries: Mutex<HashMap<String, Entry>>,
}

impl PageCache {
    pub fn new(ttl_secs: u64) -> Self {
        Self {
            ttl: Duration::from_secs(ttl_secs),
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The page under `key`: a rendering young enough, the previous one while another
    /// request refreshes it, or a ticket to render it.
    pub fn lookup(self: &Arc<Self>, key: &str) -> Lookup {
        let render = |key: Option<String>| {
            Lookup::Render(Ticket {
                cache: Arc::clone(self),
                key,
            })
        };
        if self.ttl.is_zero() {
            return render(None);
        }
        let Ok(mut entries) = self.entries.lock() else {
            return render(None);
        };
        match entries.get_mut(key) {
            Some(e) if e.rendered_at.elapsed() < self.ttl => Lookup::Hit(e.body.clone()),
            Some(e) if e.refreshing && e.rendered_at.elapsed() < self.ttl * MAX_STALE_INTERVALS => {
                Lookup::Hit(e.body.clone())
            }
            Some(e) => {
                e.refreshing = true;
                render(Some(key.to_owned()))
            }
            // Not rendered yet: concurrent first readers each render (nothing to serve).
            None => render(Some(key.to_owned())),
        }
    }

    fn put(&self, key: String, body: Bytes) {
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if entries.len() >= MAX_ENTRIES && !entries.contains_key(&key) {
            entries.retain(|_, e| e.rendered_at.elapsed() < self.ttl);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(
            key,
            Entry {
                rendered_at: Instant::now(),
                body,
                refreshing: false,
            },
        );
    }

    #[cfg(test)]
    fn age(&self, key: &str, by: Duration) {
        if let Ok(mut entries) = self.entries.lock() {
            if let Some(e) = entries.get_mut(key) {
                e.rendered_at -= by;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(l: Lookup) -> Option<Bytes> {
        match l {
            Lookup::Hit(b) => Some(b),
            Lookup::Render(_) => None,
        }
    }

    fn ticket(l: Lookup) -> Ticket {
        match l {
            Lookup::Render(t) => t,
            Lookup::Hit(_) => panic!("expected a render ticket"),
        }
    }

    #[test]
    fn a_fresh_page_is_reused_and_an_expired_one_is_refreshed_by_one_reader_only() {
        let cache = Arc::new(PageCache::new(5));
        ticket(cache.lookup("/")).complete(Bytes::from_static(b"v1"));
        assert_eq!(hit(cache.lookup("/")).as_deref(), Some(&b"v1"[..]));

        cache.age("/", Duration::from_secs(6));
        let refresher = ticket(cache.lookup("/"));
        // While it renders, everyone else gets the previous page.
        assert_eq!(hit(cache.lookup("/")).as_deref(), Some(&b"v1"[..]));
        refresher.complete(Bytes::from_static(b"v2"));
        assert_eq!(hit(cache.lookup("/")).as_deref(), Some(&b"v2"[..]));
    }

    #[test]
    fn a_failed_refresh_lets_the_next_reader_try_and_a_stuck_one_is_bounded() {
        let cache = Arc::new(PageCache::new(5));
        ticket(cache.lookup("/")).complete(Bytes::from_static(b"v1"));
        cache.age("/", Duration::from_secs(6));
        drop(ticket(cache.lookup("/"))); // the render failed
        let _stuck = ticket(cache.lookup("/"));
        assert!(hit(cache.lookup("/")).is_some(), "stale while refreshing");
        cache.age("/", Duration::from_secs(5 * u64::from(MAX_STALE_INTERVALS)));
        assert!(
            hit(cache.lookup("/")).is_none(),
            "too old to hand out even while a refresh runs"
        );
    }

    #[test]
    fn zero_seconds_never_stores_anything() {
        let cache = Arc::new(PageCache::new(0));
        ticket(cache.lookup("/")).complete(Bytes::from_static(b"v1"));
        assert!(hit(cache.lookup("/")).is_none());
    }
}
