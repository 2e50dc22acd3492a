//! What the allocator holds: the bytes the program has allocated and not freed, and the
//! freed bytes the allocator keeps for reuse instead of returning them to the system.
//!
//! Resident memory alone cannot tell a leak from fragmentation: both make it creep. A leak
//! grows `allocated`; fragmentation grows resident memory while `allocated` stays flat.
//! Read from glibc's `mallinfo2` (summed over all its arenas) at scrape time; on other
//! allocators these metrics are left out.

use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::{Registry, Unit};

#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct HeapStats {
    /// In use by the program: arena chunks plus blocks mapped on their own.
    pub allocated_bytes: f64,
    /// Freed but kept in the arenas.
    pub free_bytes: f64,
}

impl HeapStats {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    pub fn read() -> Option<Self> {
        // Looked up at run time rather than linked: mallinfo2 is glibc 2.33's (2021), and a
        // build on an older glibc (Debian 11, Ubuntu 20.04) must still link and run, without
        // these metrics.
        type MallInfo2 = unsafe extern "C" fn() -> libc::mallinfo2;
        static MALLINFO2: std::sync::OnceLock<Option<MallInfo2>> = std::sync::OnceLock::new();
        let mallinfo2 = (*MALLINFO2.get_or_init(|| {
            // SAFETY: dlsym with RTLD_DEFAULT and a NUL-terminated name only looks a symbol up.
            let sym = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"mallinfo2".as_ptr()) };
            // SAFETY: glibc's mallinfo2 has exactly this signature.
            (!sym.is_null())
                .then(|| unsafe { std::mem::transmute::<*mut libc::c_void, MallInfo2>(sym) })
        }))?;
        // SAFETY: mallinfo2 has no preconditions; it takes each arena's lock while it reads.
        let info = unsafe { mallinfo2() };
        Some(HeapStats {
            allocated_bytes: (info.uordblks + info.hblkhd) as f64,
            free_bytes: info.fordblks as f64,
        })
    }

    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    pub fn read() -> Option<Self> {
        None
    }

    pub fn register(self, registry: &mut Registry) {
        registry.register_with_unit(
            "heap_allocated",
            "Bytes allocated by the process and not yet freed (glibc mallinfo2)",
            Unit::Bytes,
            ConstGauge::new(self.allocated_bytes),
        );
        registry.register_with_unit(
            "heap_free",
            "Bytes freed but kept by the allocator for reuse (glibc mallinfo2)",
            Unit::Bytes,
            ConstGauge::new(self.free_bytes),
        );
    }
}

#[cfg(all(test, target_os = "linux", target_env = "gnu"))]
mod tests {
    use super::*;

    #[test]
    fn a_held_allocation_counts_as_allocated() {
        let held = vec![1u8; 32 << 20];
        let stats = HeapStats::read().expect("glibc");
        assert!(
            stats.allocated_bytes >= held.len() as f64,
            "{stats:?} while holding {} bytes",
            held.len()
        );
        assert!(stats.free_bytes >= 0.0);
        drop(held);
    }
}
