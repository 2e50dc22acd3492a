//! The standard `process_*` metrics (the names every Prometheus client library exports, so
//! the usual dashboards and alerts work): resident memory, CPU time, open files, threads,
//! start time. Read from `/proc/self` at scrape time; on a system without it they are left
//! out.

use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::{Registry, Unit};

/// What `/proc/self` says about this process now.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct ProcessStats {
    pub cpu_seconds: f64,
    pub resident_bytes: f64,
    pub virtual_bytes: f64,
    pub start_time_seconds: f64,
    pub threads: f64,
    pub open_fds: Option<f64>,
    pub max_fds: Option<f64>,
}

impl ProcessStats {
    pub fn read() -> Option<Self> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        let boot_time = boot_time()?;
        // SAFETY: sysconf has no preconditions.
        let (ticks, page) = unsafe {
            (
                libc::sysconf(libc::_SC_CLK_TCK),
                libc::sysconf(libc::_SC_PAGESIZE),
            )
        };
        if ticks <= 0 || page <= 0 {
            return None;
        }
        let mut stats = parse_stat(&stat, ticks as f64, page as f64, boot_time)?;
        stats.open_fds = std::fs::read_dir("/proc/self/fd")
            .ok()
            .map(|d| d.count() as f64);
        stats.max_fds = std::fs::read_to_string("/proc/self/limits")
            .ok()
            .and_then(|l| parse_max_open_files(&l));
        Some(stats)
    }

    pub fn register(self, registry: &mut Registry) {
        registry.register_with_unit(
            "process_cpu",
            "Total user and system CPU time spent",
            Unit::Seconds,
            ConstCounter::new(self.cpu_seconds),
        );
        registry.register_with_unit(
            "process_resident_memory",
            "Resident memory size",
            Unit::Bytes,
            ConstGauge::new(self.resident_bytes),
        );
        registry.register_with_unit(
            "process_virtual_memory",
            "Virtual memory size",
            Unit::Bytes,
            ConstGauge::new(self.virtual_bytes),
        );
        registry.register_with_unit(
            "process_start_time",
            "Start time of the process since the Unix epoch",
            Unit::Seconds,
            ConstGauge::new(self.start_time_seconds),
        );
        registry.register(
            "process_threads",
            "Operating system threads of the process",
            ConstGauge::new(self.threads),
        );
        if let Some(n) = self.open_fds {
            registry.register(
                "process_open_fds",
                "Open file descriptors",
                ConstGauge::new(n),
            );
        }
        if let Some(n) = self.max_fds {
            registry.register(
                "process_max_fds",
                "Most open file descriptors allowed",
                ConstGauge::new(n),
            );
        }
    }
}

/// When the system booted (unix seconds): fixed while the process lives, so `/proc/stat`,
/// a file that grows with the number of CPUs, is read once and not on every scrape.
fn boot_time() -> Option<f64> {
    static BOOT_TIME: std::sync::OnceLock<Option<f64>> = std::sync::OnceLock::new();
    *BOOT_TIME.get_or_init(|| {
        std::fs::read_to_string("/proc/stat")
            .ok()?
            .lines()
            .find_map(|l| l.strip_prefix("btime "))?
            .trim()
            .parse::<f64>()
            .ok()
    })
}

/// Parses `/proc/<pid>/stat` (proc(5)). The command name (field 2) is in parentheses and
/// may itself hold spaces and parentheses, so fields are counted from its last `)`.
fn parse_stat(stat: &str, ticks: f64, page: f64, boot_time: f64) -> Option<ProcessStats> {
    let rest = &stat[stat.rfind(')')? + 1..];
    // After the name: field 3 (state) is index 0.
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| -> Option<f64> { fields.get(n - 3)?.parse().ok() };
    Some(ProcessStats {
        cpu_seconds: (field(14)? + field(15)?) / ticks,
        threads: field(20)?,
        start_time_seconds: boot_time + field(22)? / ticks,
        virtual_bytes: field(23)?,
        resident_bytes: field(24)? * page,
        open_fds: None,
        max_fds: None,
    })
}

/// The soft limit of "Max open files" in `/proc/<pid>/limits`.
fn parse_max_open_files(limits: &str) -> Option<f64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let soft = line["Max open files".len()..].split_whitespace().next()?;
    soft.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_a_command_name_with_spaces_and_parentheses() {
        // proc(5) fields 1..=24 with made-up values; the name holds ") (" to trip a naive split.
        let stat = "4242 (hgc) (x) y) S 1 4242 4242 0 -1 4194560 100 0 0 0 \
                    250 50 0 0 20 0 7 0 1000 123456789 3000 18446744073709551615";
        let s = parse_stat(stat, 100.0, 4096.0, 1_700_000_000.0).expect("parsed");
        assert_eq!(s.cpu_seconds, 3.0); // (250 + 50) ticks / 100
        assert_eq!(s.threads, 7.0);
        assert_eq!(s.start_time_seconds, 1_700_000_010.0); // boot + 1000 / 100
        assert_eq!(s.virtual_bytes, 123_456_789.0);
        assert_eq!(s.resident_bytes, 3000.0 * 4096.0);
        assert!(parse_stat("4242 (truncated", 100.0, 4096.0, 0.0).is_none());
    }

    #[test]
    fn the_soft_open_files_limit_is_read() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
                      Max cpu time              unlimited            unlimited            seconds   \n\
                      Max open files            1024                 524288               files     \n";
        assert_eq!(parse_max_open_files(limits), Some(1024.0));
    }

    #[test]
    fn this_process_is_read_from_proc() {
        let s = ProcessStats::read().expect("/proc/self");
        assert!(s.resident_bytes > 0.0 && s.threads >= 1.0, "{s:?}");
        assert!(s.open_fds.is_some_and(|n| n >= 3.0), "{s:?}");
    }
}
