//! The embedded default: a private PostgreSQL cluster under `database.data_dir`.
//!
//! Layout of the data directory:
//! - `pg/`      the cluster (PGDATA), owned by the user that runs PostgreSQL;
//! - `socket/`  the Unix socket directory (no TCP port is ever opened);
//! - `postgres.log` the server's own log;
//! - `serve.lock` held (flock) by the one `hygrocast serve` using this directory.
//!
//! PostgreSQL refuses to run as root. When hygrocast runs as root, `initdb` and `postgres`
//! run as an unprivileged user (`database.embedded_user`) who owns `pg/` and `socket/`;
//! root can still connect to the socket.
//!
//! Everything here is blocking (std::process): it runs once at start-up and shutdown.

use std::fs::{self, File};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::io::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Superuser role created by `initdb` in a private cluster.
pub const SUPERUSER: &str = "hygrocast";
/// Name of the socket file's port; nothing listens on TCP.
pub const SOCKET_PORT: u16 = 5432;

#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    #[error(
        "no PostgreSQL server binaries (initdb, pg_ctl, postgres) found on PATH, via `pg_config --bindir` \
         or under /usr/lib/postgresql/*/bin. Install them (Debian/Ubuntu: `apt-get install postgresql`, \
         Fedora: `dnf install postgresql-server`, macOS: `brew install postgresql`) or point hygrocast \
         at an existing server with database.url (HYGROCAST_DATABASE__URL=postgres://user@host/db)"
    )]
    BinariesNotFound,
    #[error("embedded PostgreSQL: {0}")]
    Io(String),
    #[error(
        "the private PostgreSQL cluster in {dir} was created by PostgreSQL {major}, and no \
         PostgreSQL {major} server binaries are installed (found: {found}); a server cannot \
         open another major version's data directory. Install PostgreSQL {major} again \
         (Debian/Ubuntu: `apt-get install postgresql-{major}`). To move to a newer version: \
         `hygrocast backup --out FILE` with {major} installed, then point database.data_dir at \
         a new directory and run `hygrocast restore --from FILE`"
    )]
    NoServerForCluster {
        dir: PathBuf,
        major: String,
        found: String,
    },
    #[error("embedded PostgreSQL: `{cmd}` failed: {detail}")]
    Command { cmd: String, detail: String },
    #[error(
        "another `hygrocast serve` (pid {pid}) is already using the data directory {dir}; \
         stop it first or give this one its own database.data_dir"
    )]
    AlreadyServing { pid: String, dir: PathBuf },
    #[error("embedded PostgreSQL: user `{0}` does not exist (database.embedded_user)")]
    NoSuchUser(String),
    #[error(
        "embedded PostgreSQL runs as user `{user}`, who cannot reach {dir} (a parent directory \
         is not searchable by it): set database.data_dir to a path it can reach, e.g. /var/lib/hygrocast"
    )]
    Unreachable { user: String, dir: PathBuf },
    #[error("embedded PostgreSQL: socket path {0} is longer than the 107 bytes Unix sockets allow; use a shorter database.data_dir")]
    SocketPathTooLong(PathBuf),
}

fn io_err(what: &str, path: &Path, e: std::io::Error) -> EmbeddedError {
    EmbeddedError::Io(format!("{what} {}: {e}", path.display()))
}

/// The directory holding `initdb`, `pg_ctl` and `postgres` for a new cluster: the first
/// on PATH, else the newest installed.
pub fn find_bindir() -> Result<PathBuf, EmbeddedError> {
    server_bindirs()
        .into_iter()
        .next()
        .ok_or(EmbeddedError::BinariesNotFound)
}

/// Directories holding all of `initdb`, `pg_ctl` and `postgres`, in order of preference:
/// PATH first, then [`installed_bindirs`].
fn server_bindirs() -> Vec<PathBuf> {
    let has_all = |dir: &Path| {
        ["initdb", "pg_ctl", "postgres"]
            .iter()
            .all(|b| dir.join(b).is_file())
    };
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    let mut dirs: Vec<PathBuf> = Vec::new();
    for dir in on_path.into_iter().chain(installed_bindirs()) {
        if has_all(&dir) && !dirs.contains(&dir) {
            dirs.push(dir);
        }
    }
    dirs
}

/// The server binaries for an existing cluster of major version `major` (the contents
/// of its `PG_VERSION`): a server never opens another major version's data directory, and
/// an upgrade of the operating system installs a newer PostgreSQL beside the old one.
fn bindir_for_major(dir: &Path, major: &str) -> Result<PathBuf, EmbeddedError> {
    let mut found = Vec::new();
    for bindir in server_bindirs() {
        match server_major(&bindir) {
            Some(v) if v == major => return Ok(bindir),
            Some(v) => found.push(format!("{v} in {}", bindir.display())),
            None => {}
        }
    }
    Err(EmbeddedError::NoServerForCluster {
        dir: dir.to_path_buf(),
        major: major.to_string(),
        found: if found.is_empty() {
            "none".into()
        } else {
            found.join(", ")
        },
    })
}

/// The major version of the `postgres` in `bindir`, as `PG_VERSION` spells it.
fn server_major(bindir: &Path) -> Option<String> {
    let out = Command::new(bindir.join("postgres"))
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .ok()?;
    major_of_version_output(&String::from_utf8_lossy(&out.stdout))
}

/// `postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)` → `15`; before version 10 the
/// major version had two parts: `9.6.24` → `9.6`.
fn major_of_version_output(text: &str) -> Option<String> {
    let version = text
        .split("(PostgreSQL)")
        .nth(1)?
        .split_whitespace()
        .next()?;
    // Leading digits only: a pre-release reads `18beta1` or `9.6rc1`.
    let number = |part: &str| -> Option<u32> {
        let digits: String = part.chars().take_while(char::is_ascii_digit).collect();
        digits.parse().ok()
    };
    let mut parts = version.split('.');
    let first = number(parts.next()?)?;
    if first >= 10 {
        return Some(first.to_string());
    }
    let second = number(parts.next()?)?;
    Some(format!("{first}.{second}"))
}

/// The newest installed PostgreSQL bin directory (see [`installed_bindirs`]) holding
/// `program`.
pub fn newest_bindir_with(program: &str) -> Option<PathBuf> {
    installed_bindirs()
        .into_iter()
        .find(|d| d.join(program).is_file())
}

/// PostgreSQL bin directories off PATH: `pg_config --bindir`, then
/// /usr/lib/postgresql/*/bin, newest major version first.
fn installed_bindirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        if out.status.success() {
            dirs.push(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()));
        }
    }
    // Newest major version first: /usr/lib/postgresql/15 before /usr/lib/postgresql/9.6.
    let mut versions: Vec<(Vec<u32>, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().to_string();
            let key = name
                .split('.')
                .map(|p| p.parse().ok())
                .collect::<Option<Vec<u32>>>()?;
            Some((key, entry.path().join("bin")))
        })
        .collect();
    versions.sort();
    dirs.extend(versions.into_iter().rev().map(|(_, dir)| dir));
    dirs
}

/// Who runs the cluster: ourselves, or (as root) an unprivileged user.
#[derive(Debug, Clone)]
struct RunAs {
    name: String,
    uid: u32,
    gid: u32,
}

fn lookup_user(name: &str) -> Option<RunAs> {
    let cname = std::ffi::CString::new(name).ok()?;
    // SAFETY: getpwnam returns a pointer to static storage or null; we copy out at once.
    let pw = unsafe { libc::getpwnam(cname.as_ptr()) };
    if pw.is_null() {
        return None;
    }
    // SAFETY: pw is non-null and points to a valid passwd struct.
    let (uid, gid) = unsafe { ((*pw).pw_uid, (*pw).pw_gid) };
    Some(RunAs {
        name: name.to_string(),
        uid,
        gid,
    })
}

fn run_as(configured: &str) -> Result<Option<RunAs>, EmbeddedError> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(None);
    }
    if !configured.is_empty() {
        return lookup_user(configured)
            .map(Some)
            .ok_or_else(|| EmbeddedError::NoSuchUser(configured.to_string()));
    }
    Ok(lookup_user("postgres").or_else(|| lookup_user("nobody")))
}

/// A private cluster in a data directory; [`EmbeddedCluster::ensure_running`] makes it
/// answer on its socket. Whether to stop it afterwards is the owner's decision.
#[derive(Debug)]
pub struct EmbeddedCluster {
    dir: PathBuf,
    bindir: PathBuf,
    user: Option<RunAs>,
    /// True when this process started the server (so it may stop it).
    started_here: bool,
}

impl EmbeddedCluster {
    pub fn new(data_dir: &Path, embedded_user: &str) -> Result<Self, EmbeddedError> {
        let user = run_as(embedded_user)?;
        fs::create_dir_all(data_dir).map_err(|e| io_err("cannot create", data_dir, e))?;
        let dir = fs::canonicalize(data_dir).map_err(|e| io_err("cannot resolve", data_dir, e))?;
        // An existing cluster needs the binaries of the version that created it; a new one
        // gets the first on PATH or the newest installed.
        let bindir = match fs::read_to_string(dir.join("pg").join("PG_VERSION")) {
            Ok(major) => bindir_for_major(&dir, major.trim())?,
            Err(_) => find_bindir()?,
        };
        let socket = dir.join("socket").join(format!(".s.PGSQL.{SOCKET_PORT}"));
        if socket.as_os_str().len() > 107 {
            return Err(EmbeddedError::SocketPathTooLong(socket));
        }
        Ok(Self {
            dir,
            bindir,
            user,
            started_here: false,
        })
    }

    pub fn data_dir(&self) -> &Path {
        &self.dir
    }

    /// The server binaries' directory, where the client tools of the same version are.
    pub fn bindir(&self) -> &Path {
        &self.bindir
    }

    fn pgdata(&self) -> PathBuf {
        self.dir.join("pg")
    }

    pub fn socket_dir(&self) -> PathBuf {
        self.dir.join("socket")
    }

    /// A tokio-postgres config for the cluster's socket.
    pub fn pg_config(&self, dbname: &str) -> tokio_postgres::Config {
        let mut cfg = tokio_postgres::Config::new();
        cfg.host_path(self.socket_dir())
            .port(SOCKET_PORT)
            .user(SUPERUSER)
            .dbname(dbname)
            .application_name("hygrocast");
        cfg
    }

    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(self.bindir.join(program));
        cmd.env("LC_ALL", "C")
            .env_remove("PGDATA")
            .current_dir(&self.dir);
        if let Some(u) = &self.user {
            // std drops supplementary groups too when switching from root.
            cmd.uid(u.uid).gid(u.gid);
        }
        cmd
    }

    fn run(&self, mut cmd: Command) -> Result<(), EmbeddedError> {
        let shown = format!("{cmd:?}");
        let out = cmd
            .stdin(Stdio::null())
            .output()
            .map_err(|e| EmbeddedError::Command {
                cmd: shown.clone(),
                detail: e.to_string(),
            })?;
        if out.status.success() {
            return Ok(());
        }
        let mut detail = String::from_utf8_lossy(&out.stderr).trim().to_string();
        if detail.is_empty() {
            detail = String::from_utf8_lossy(&out.stdout).trim().to_string();
        }
        Err(EmbeddedError::Command { cmd: shown, detail })
    }

    fn chown(&self, path: &Path) -> Result<(), EmbeddedError> {
        if let Some(u) = &self.user {
            std::os::unix::fs::chown(path, Some(u.uid), Some(u.gid))
                .map_err(|e| io_err("cannot chown", path, e))?;
        }
        Ok(())
    }

    /// Checks that the cluster's user can reach the data directory through its parents.
    fn check_reachable(&self) -> Result<(), EmbeddedError> {
        let Some(u) = &self.user else { return Ok(()) };
        let ok = Command::new("/bin/sh")
            .args(["-c", "test -x \"$1\" && test -r \"$1\"", "sh"])
            .arg(&self.dir)
            .uid(u.uid)
            .gid(u.gid)
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if ok {
            Ok(())
        } else {
            Err(EmbeddedError::Unreachable {
                user: u.name.clone(),
                dir: self.dir.clone(),
            })
        }
    }

    /// Creates the cluster on first use.
    fn init_if_needed(&self) -> Result<(), EmbeddedError> {
        let pgdata = self.pgdata();
        if pgdata.join("PG_VERSION").is_file() {
            return Ok(());
        }
        if self.user.is_some() {
            // The cluster's user needs to enter the data directory itself.
            let mut perms = fs::metadata(&self.dir)
                .map_err(|e| io_err("cannot stat", &self.dir, e))?
                .permissions();
            perms.set_mode(perms.mode() | 0o711);
            fs::set_permissions(&self.dir, perms)
                .map_err(|e| io_err("cannot chmod", &self.dir, e))?;
        }
        self.check_reachable()?;
        tracing::info!(dir = %pgdata.display(), "creating private PostgreSQL cluster (first start)");
        fs::create_dir_all(&pgdata).map_err(|e| io_err("cannot create", &pgdata, e))?;
        fs::set_permissions(&pgdata, fs::Permissions::from_mode(0o700))
            .map_err(|e| io_err("cannot chmod", &pgdata, e))?;
        self.chown(&pgdata)?;
        let mut cmd = self.command("initdb");
        cmd.arg("-D")
            .arg(&pgdata)
            .args(["-U", SUPERUSER, "-E", "UTF8", "--locale=C"])
            // Only the socket is reachable, and only by its owner (and root): trust is safe.
            .args([
                "--auth-local=trust",
                "--auth-host=reject",
                "--no-instructions",
            ]);
        self.run(cmd)
    }

    fn prepare_socket_dir(&self) -> Result<(), EmbeddedError> {
        let sock = self.socket_dir();
        fs::create_dir_all(&sock).map_err(|e| io_err("cannot create", &sock, e))?;
        fs::set_permissions(&sock, fs::Permissions::from_mode(0o700))
            .map_err(|e| io_err("cannot chmod", &sock, e))?;
        self.chown(&sock)
    }

    /// Is a postmaster for this cluster alive? Removes a pid file left by a crash.
    pub fn is_running(&self) -> bool {
        let pidfile = self.pgdata().join("postmaster.pid");
        let Ok(text) = fs::read_to_string(&pidfile) else {
            return false;
        };
        let Some(pid) = text
            .lines()
            .next()
            .and_then(|l| l.trim().parse::<i32>().ok())
        else {
            return false;
        };
        let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let is_postgres = String::from_utf8_lossy(&cmdline).contains("postgres");
        if is_postgres {
            return true;
        }
        // The pid is dead or now belongs to another program: the file is stale.
        tracing::warn!(pid, file = %pidfile.display(), "removing stale PostgreSQL pid file from an earlier crash");
        let _ = fs::remove_file(&pidfile);
        let _ = fs::remove_file(
            self.socket_dir()
                .join(format!(".s.PGSQL.{SOCKET_PORT}.lock")),
        );
        false
    }

    /// Makes sure the cluster exists and its server answers on the socket.
    pub fn ensure_running(&mut self) -> Result<(), EmbeddedError> {
        self.init_if_needed()?;
        if self.is_running() {
            self.wait_ready(Duration::from_secs(30))?;
            return Ok(());
        }
        self.prepare_socket_dir()?;
        let log = self.dir.join("postgres.log");
        if !log.exists() {
            File::create(&log).map_err(|e| io_err("cannot create", &log, e))?;
        }
        self.chown(&log)?;
        tracing::info!(dir = %self.dir.display(), "starting private PostgreSQL");
        let mut cmd = self.command("pg_ctl");
        cmd.arg("start")
            .arg("-D")
            .arg(self.pgdata())
            .arg("-l")
            .arg(&log)
            .args(["-w", "-t", "60", "-s", "-o"])
            .arg(format!(
                "-c listen_addresses='' -c unix_socket_directories='{}' -c unix_socket_permissions=0700 -p {SOCKET_PORT} -c max_connections=200 -c fsync=on",
                self.socket_dir().display()
            ));
        if let Err(e) = self.run(cmd) {
            let tail = fs::read_to_string(&log).unwrap_or_default();
            let tail: Vec<&str> = tail.lines().rev().take(5).collect();
            return Err(EmbeddedError::Command {
                cmd: "pg_ctl start".into(),
                detail: format!(
                    "{e}; last log lines: {}",
                    tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
                ),
            });
        }
        self.started_here = true;
        self.wait_ready(Duration::from_secs(30))
    }

    fn wait_ready(&self, timeout: Duration) -> Result<(), EmbeddedError> {
        let socket = self.socket_dir().join(format!(".s.PGSQL.{SOCKET_PORT}"));
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if std::os::unix::net::UnixStream::connect(&socket).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(EmbeddedError::Io(format!(
            "server did not open its socket {} within {timeout:?}",
            socket.display()
        )))
    }

    pub fn started_here(&self) -> bool {
        self.started_here
    }

    /// Stops the server (fast mode: sessions are ended, data is flushed).
    pub fn stop(&mut self) -> Result<(), EmbeddedError> {
        if !self.is_running() {
            return Ok(());
        }
        tracing::info!(dir = %self.dir.display(), "stopping private PostgreSQL");
        let mut cmd = self.command("pg_ctl");
        cmd.arg("stop")
            .arg("-D")
            .arg(self.pgdata())
            .args(["-m", "fast", "-w", "-t", "60", "-s"]);
        self.run(cmd)?;
        self.started_here = false;
        Ok(())
    }
}

/// The exclusive claim of one `hygrocast serve` on a data directory (an flock held for
/// the process' lifetime; the kernel releases it if the process dies).
#[derive(Debug)]
pub struct ServeLock {
    _file: File,
}

impl ServeLock {
    pub fn acquire(data_dir: &Path) -> Result<Self, EmbeddedError> {
        fs::create_dir_all(data_dir).map_err(|e| io_err("cannot create", data_dir, e))?;
        let path = data_dir.join("serve.lock");
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| io_err("cannot open", &path, e))?;
        // SAFETY: flock on a valid open descriptor.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            let pid = fs::read_to_string(&path)
                .unwrap_or_default()
                .trim()
                .to_string();
            return Err(EmbeddedError::AlreadyServing {
                pid: if pid.is_empty() {
                    "unknown".into()
                } else {
                    pid
                },
                dir: data_dir.to_path_buf(),
            });
        }
        let _ = file.set_len(0);
        let _ = std::io::Write::write_all(&mut &file, std::process::id().to_string().as_bytes());
        Ok(Self { _file: file })
    }

    /// True when some `serve` currently holds the directory.
    pub fn is_held(data_dir: &Path) -> bool {
        let path = data_dir.join("serve.lock");
        let Ok(file) = File::open(&path) else {
            return false;
        };
        // SAFETY: flock on a valid open descriptor; released at once below.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_SH | libc::LOCK_NB) };
        if rc == 0 {
            // SAFETY: as above.
            unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_UN) };
            false
        } else {
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::major_of_version_output;

    #[test]
    fn the_major_version_is_read_as_pg_version_spells_it() {
        let major = |s: &str| major_of_version_output(s);
        assert_eq!(
            major("postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)\n").as_deref(),
            Some("15")
        );
        assert_eq!(major("postgres (PostgreSQL) 17.2").as_deref(), Some("17"));
        assert_eq!(
            major("postgres (PostgreSQL) 9.6.24").as_deref(),
            Some("9.6")
        );
        assert_eq!(
            major("postgres (PostgreSQL) 18beta1").as_deref(),
            Some("18")
        );
        assert_eq!(
            major("postgres (PostgreSQL) 9.6rc1").as_deref(),
            Some("9.6")
        );
        assert_eq!(major("something else 15.1").as_deref(), None);
    }
}
