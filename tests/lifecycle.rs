//! The binary as an operator uses it: `hygrocast serve` on the embedded default, Ctrl-C,
//! restart, a second serve refused, admin commands sharing the running server.
//! Runs as whatever user runs the tests; as root (CI) the cluster runs unprivileged.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_hygrocast");

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

struct Workdir(PathBuf);

impl Workdir {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("hgc-life-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("workdir");
        Self(dir)
    }
    fn data(&self) -> PathBuf {
        self.0.join("data")
    }
}

impl Drop for Workdir {
    fn drop(&mut self) {
        // Stop anything a failed test left running before deleting the directory.
        let pg = self.data().join("pg");
        if pg.join("postmaster.pid").exists() {
            let _ = Command::new("sh")
                .arg("-c")
                .arg(format!(
                    "kill -INT $(head -1 {}/postmaster.pid)",
                    pg.display()
                ))
                .status();
            std::thread::sleep(Duration::from_millis(500));
        }
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn hygrocast(dir: &Path, port: u16) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir)
        .env_remove("RUST_LOG")
        .env("HYGROCAST_SERVER__BIND", format!("127.0.0.1:{port}"))
        .env("HYGROCAST_SERVER__SHUTDOWN_TIMEOUT_SECS", "5");
    cmd
}

/// `hygrocast migrate` in `dir`, with `PATH` replaced when given.
fn migrate(dir: &Path, path: Option<&str>) -> Output {
    let mut cmd = hygrocast(dir, free_port());
    if let Some(path) = path {
        cmd.env("PATH", path);
    }
    cmd.arg("migrate").output().expect("migrate")
}

fn spawn_serve(dir: &Path, port: u16) -> Child {
    hygrocast(dir, port)
        .arg("serve")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn serve")
}

fn readyz(port: u16) -> Option<u16> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .ok()?;
    rt.block_on(async {
        let res = reqwest::Client::new()
            .get(format!("http://127.0.0.1:{port}/readyz"))
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .ok()?;
        Some(res.status().as_u16())
    })
}

fn wait_ready(port: u16, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if readyz(port) == Some(200) {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("serve exited early with {status}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("serve did not become ready");
}

fn interrupt_and_wait(child: Child) -> Output {
    // SAFETY: sending SIGINT to our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    child.wait_with_output().expect("wait for serve")
}

fn postmaster_pid(data: &Path) -> Option<i32> {
    let text = std::fs::read_to_string(data.join("pg/postmaster.pid")).ok()?;
    text.lines().next()?.trim().parse().ok()
}

/// Alive and not a zombie (in a container, nobody may reap the daemonised postmaster).
fn alive(pid: i32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next());
    !matches!(state, Some("Z") | Some("X") | None)
}

#[test]
fn serve_runs_its_own_postgres_stops_it_on_ctrl_c_and_reuses_the_data() {
    let work = Workdir::new();
    let port = free_port();

    let mut serve = spawn_serve(&work.0, port);
    wait_ready(port, &mut serve);
    let pg_pid = postmaster_pid(&work.data()).expect("the private cluster is running");
    assert!(alive(pg_pid));
    // Unix socket only: nothing listens on PostgreSQL's TCP port for this cluster.
    assert!(work.data().join("socket/.s.PGSQL.5432").exists());

    // A second serve on the same data directory refuses with a clear message.
    let second = hygrocast(&work.0, free_port())
        .arg("serve")
        .output()
        .expect("second serve");
    assert!(!second.status.success());
    let msg = String::from_utf8_lossy(&second.stderr);
    assert!(msg.contains("already using the data directory"), "{msg}");

    // An admin command while serve is up uses serve's cluster and leaves it running.
    let migrate = hygrocast(&work.0, port)
        .arg("migrate")
        .output()
        .expect("migrate");
    assert!(
        migrate.status.success(),
        "{}",
        String::from_utf8_lossy(&migrate.stderr)
    );
    assert!(String::from_utf8_lossy(&migrate.stdout).contains("up to date"));
    assert_eq!(postmaster_pid(&work.data()), Some(pg_pid));
    assert_eq!(readyz(port), Some(200));

    let out = interrupt_and_wait(serve);
    assert!(out.status.success(), "serve exit: {:?}", out.status);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("creating private PostgreSQL cluster"), "{log}");
    // pg_ctl stop returns once the postmaster removed its pid file, a moment before the
    // process itself is gone; on a busy machine that moment can be long.
    let deadline = Instant::now() + Duration::from_secs(10);
    while alive(pg_pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!alive(pg_pid), "postgres still running after Ctrl-C");
    assert!(postmaster_pid(&work.data()).is_none());

    // Second start reuses the cluster: no initdb, no migration applied again.
    let mut serve = spawn_serve(&work.0, port);
    wait_ready(port, &mut serve);
    let out = interrupt_and_wait(serve);
    assert!(out.status.success());
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        !log.contains("creating private PostgreSQL cluster"),
        "{log}"
    );
    assert!(!log.contains("applying migration"), "{log}");
}

#[test]
fn a_command_without_serve_starts_the_cluster_for_its_duration_only() {
    let work = Workdir::new();
    let out = migrate(&work.0, None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("applied migrations"));
    assert!(
        postmaster_pid(&work.data()).is_none(),
        "cluster left running"
    );
}

#[test]
fn a_stale_pid_file_from_a_crash_is_handled() {
    let work = Workdir::new();
    let out = migrate(&work.0, None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Fake a crash: a pid file naming a process that does not exist.
    let pidfile = work.data().join("pg/postmaster.pid");
    std::fs::write(&pidfile, "999999\n/nowhere\n").expect("write stale pid file");
    let out = migrate(&work.0, None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("stale"));
}

#[test]
fn a_config_error_stops_start_up_with_one_clear_message() {
    let work = Workdir::new();
    std::fs::write(work.0.join("config.toml"), "[server]\nbind = \"nowhere\"\n").expect("config");
    let out = Command::new(BIN)
        .current_dir(&work.0)
        .env_remove("HYGROCAST_SERVER__BIND")
        .arg("serve")
        .output()
        .expect("serve");
    assert_eq!(out.status.code(), Some(2));
    let msg = String::from_utf8_lossy(&out.stderr);
    assert!(
        msg.contains("server.bind") && msg.contains("config.toml"),
        "{msg}"
    );
    assert_eq!(msg.trim().lines().count(), 1, "{msg}");
}

#[test]
fn with_database_url_no_private_cluster_is_started() {
    let work = Workdir::new();
    // Nothing listens on port 1: the command must fail to connect rather than start a cluster.
    let out = hygrocast(&work.0, free_port())
        .env(
            "HYGROCAST_DATABASE__URL",
            "postgres://nobody@127.0.0.1:1/none",
        )
        .env("HYGROCAST_DATABASE__CONNECT_TIMEOUT_SECS", "1")
        .arg("migrate")
        .output()
        .expect("migrate");
    assert!(!out.status.success());
    assert!(
        !work.data().exists(),
        "a private cluster directory was created"
    );
}

#[test]
fn a_backup_of_the_private_cluster_taken_while_serve_runs_restores_into_a_new_data_dir() {
    let work = Workdir::new();
    let port = free_port();
    let mut serve = spawn_serve(&work.0, port);
    wait_ready(port, &mut serve);
    let add = hygrocast(&work.0, port)
        .args(["sensor", "add", "--name", "museum-hall", "--quiet"])
        .output()
        .expect("sensor add");
    assert!(
        add.status.success(),
        "{}",
        String::from_utf8_lossy(&add.stderr)
    );

    let file = work.0.join("nightly.dump");
    let backup = hygrocast(&work.0, port)
        .arg("backup")
        .arg("--out")
        .arg(&file)
        .output()
        .expect("backup");
    assert!(
        backup.status.success(),
        "{}",
        String::from_utf8_lossy(&backup.stderr)
    );
    assert!(String::from_utf8_lossy(&backup.stdout).contains("1 sensors"));
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).expect("dump").permissions().mode();
        assert_eq!(mode & 0o077, 0, "the copy is readable by its owner only");
    }
    // Serve was never disturbed.
    assert_eq!(readyz(port), Some(200));
    let out = interrupt_and_wait(serve);
    assert!(out.status.success());

    let restored = work.0.join("restored");
    let restore = hygrocast(&work.0, port)
        .env("HYGROCAST_DATABASE__DATA_DIR", &restored)
        .arg("restore")
        .arg("--from")
        .arg(&file)
        .output()
        .expect("restore");
    assert!(
        restore.status.success(),
        "{}",
        String::from_utf8_lossy(&restore.stderr)
    );
    let list = hygrocast(&work.0, port)
        .env("HYGROCAST_DATABASE__DATA_DIR", &restored)
        .args(["sensor", "list"])
        .output()
        .expect("sensor list");
    assert!(
        String::from_utf8_lossy(&list.stdout).contains("museum-hall"),
        "{}",
        String::from_utf8_lossy(&list.stdout)
    );
    // The restore's cluster was started for the command only and stopped again.
    assert!(postmaster_pid(&restored).is_none());
}

#[test]
fn an_existing_cluster_is_run_by_the_postgres_version_that_created_it() {
    use std::os::unix::fs::PermissionsExt;
    let work = Workdir::new();
    // The cluster is created with what is installed now.
    let out = migrate(&work.0, None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Then an upgrade puts a newer PostgreSQL first on PATH. These stand-ins only answer
    // --version: asked to run anything, they fail.
    let newer = work.0.join("newer-bin");
    std::fs::create_dir_all(&newer).expect("mkdir");
    for tool in ["initdb", "pg_ctl", "postgres"] {
        let script = newer.join(tool);
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\n[ \"$1\" = --version ] && {{ echo '{tool} (PostgreSQL) 99.1'; exit 0; }}\n\
                 echo 'PostgreSQL 99 cannot open this cluster' >&2; exit 1\n"
            ),
        )
        .expect("write");
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let path = format!(
        "{}:{}",
        newer.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = migrate(&work.0, Some(&path));
    assert!(
        out.status.success(),
        "the cluster's own version runs it: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A cluster whose version is no longer installed is refused, saying what to do.
    let old = Workdir::new();
    std::fs::create_dir_all(old.data().join("pg")).expect("mkdir");
    std::fs::write(old.data().join("pg").join("PG_VERSION"), "9.4\n").expect("write");
    let out = migrate(&old.0, Some(&path));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    for needle in [
        "created by PostgreSQL 9.4",
        "99 in ",
        "apt-get install postgresql-9.4",
        "hygrocast backup",
    ] {
        assert!(stderr.contains(needle), "{needle}: {stderr}");
    }
}
