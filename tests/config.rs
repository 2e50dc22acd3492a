//! Configuration: defaults, the file, environment overrides and the error messages.

use std::io::Write;
use std::path::Path;

use hygrocast::config::{ConfigError, LogFormat, Settings};

fn file_with(text: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::Builder::new()
        .suffix(".toml")
        .tempfile()
        .expect("temp file");
    f.write_all(text.as_bytes()).expect("write");
    f
}

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn load_err(text: &str, vars: &[(&str, &str)]) -> String {
    let f = file_with(text);
    Settings::load(Some(f.path()), env(vars))
        .expect_err("must fail")
        .to_string()
}

#[test]
fn the_shipped_config_toml_equals_the_built_in_defaults() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config.toml");
    let loaded = Settings::load(Some(&path), Vec::new()).expect("config.toml loads");
    assert_eq!(loaded, Settings::default());
}

#[test]
fn no_file_gives_defaults() {
    let dir = tempfile::tempdir().expect("dir");
    let missing = dir.path().join("nope.toml");
    let err =
        Settings::load(Some(&missing), Vec::new()).expect_err("explicit missing file is an error");
    assert!(matches!(err, ConfigError::Read { .. }), "{err}");
    assert!(err.to_string().contains("nope.toml"));
}

#[test]
fn file_values_override_defaults() {
    let f = file_with("[server]\nbind = \"127.0.0.1:9999\"\n[log]\nformat = \"json\"\n");
    let s = Settings::load(Some(f.path()), Vec::new()).expect("load");
    assert_eq!(s.server.bind, "127.0.0.1:9999");
    assert_eq!(s.log.format, LogFormat::Json);
    assert_eq!(
        s.database.pool_size, 16,
        "untouched keys keep their default"
    );
}

#[test]
fn environment_overrides_the_file() {
    let f = file_with("[server]\nbind = \"127.0.0.1:9999\"\n");
    let s = Settings::load(
        Some(f.path()),
        env(&[
            ("HYGROCAST_SERVER__BIND", "0.0.0.0:7000"),
            (
                "HYGROCAST_DATABASE__URL",
                "postgres://u:p@db.example:5432/hg",
            ),
            ("HYGROCAST_DATABASE__POOL_SIZE", "4"),
            ("HYGROCAST_SCHEDULER__RETRAIN_ENABLED", "false"),
            ("UNRELATED", "x"),
        ]),
    )
    .expect("load");
    assert_eq!(s.server.bind, "0.0.0.0:7000");
    assert_eq!(s.database.url, "postgres://u:p@db.example:5432/hg");
    assert_eq!(s.database.pool_size, 4);
    assert!(!s.scheduler.retrain_enabled);
}

#[test]
fn unknown_key_in_file_names_key_and_file() {
    let f = file_with("[server]\nbnid = \"127.0.0.1:1\"\n");
    let err = Settings::load(Some(f.path()), Vec::new())
        .expect_err("unknown key")
        .to_string();
    assert!(err.contains("bnid"), "{err}");
    assert!(err.contains(&f.path().display().to_string()), "{err}");
}

#[test]
fn unknown_section_in_file_is_refused() {
    let err = load_err("[sever]\nbind = \"x\"\n", &[]);
    assert!(err.contains("sever"), "{err}");
}

#[test]
fn unknown_env_key_names_the_variable() {
    let err = load_err("", &[("HYGROCAST_SERVER__BINDD", "1")]);
    assert!(err.contains("HYGROCAST_SERVER__BINDD"), "{err}");
    assert!(err.contains("server.bindd"), "{err}");
}

#[test]
fn env_value_of_wrong_type_is_refused() {
    let err = load_err("", &[("HYGROCAST_DATABASE__POOL_SIZE", "many")]);
    assert!(
        err.contains("HYGROCAST_DATABASE__POOL_SIZE") && err.contains("not an integer"),
        "{err}"
    );
}

#[test]
fn malformed_bind_address_names_key_and_file() {
    let f = file_with("[server]\nbind = \"localhost-8080\"\n");
    let err = Settings::load(Some(f.path()), Vec::new())
        .expect_err("bad bind")
        .to_string();
    assert!(err.contains("server.bind"), "{err}");
    assert!(err.contains("localhost-8080"), "{err}");
    assert!(err.contains(&f.path().display().to_string()), "{err}");
}

#[test]
fn malformed_address_from_env_names_the_variable() {
    let err = load_err("", &[("HYGROCAST_SERVER__BIND", "nonsense")]);
    assert!(
        err.contains("server.bind") && err.contains("HYGROCAST_SERVER__BIND"),
        "{err}"
    );
}

#[test]
fn malformed_database_url_is_refused() {
    let err = load_err("[database]\nurl = \"mysql://x@y/z\"\n", &[]);
    assert!(
        err.contains("database.url") && err.contains("mysql"),
        "{err}"
    );
    let err = load_err("[database]\nurl = \"postgres://u:secret@[bad/db\"\n", &[]);
    assert!(err.contains("database.url"), "{err}");
}

#[test]
fn bad_cron_expression_names_the_key() {
    let err = load_err("[scheduler]\nretrain_cron = \"0 3 * * *\"\n", &[]);
    assert!(err.contains("scheduler.retrain_cron"), "{err}");
    assert!(err.contains("0 3 * * *"), "{err}");
    let err = load_err("[scheduler]\nmonitor_cron = \"0 61 * * * *\"\n", &[]);
    assert!(err.contains("scheduler.monitor_cron"), "{err}");
}

#[test]
fn a_backtest_window_shorter_than_the_horizon_is_refused_at_load() {
    let err = load_err("[forecast]\nwindow_days = 3\n", &[]);
    assert!(err.contains("forecast.window_days"), "{err}");
    assert!(err.contains("use at least 5 days"), "{err}");
    // Five days hold exactly one 120-step horizon: accepted.
    let f = file_with("[forecast]\nwindow_days = 5\n");
    let s = Settings::load(Some(f.path()), env(&[])).expect("5 days hold one origin");
    assert_eq!(s.forecast.window_days, 5);
}

#[test]
fn bad_base_path_is_refused() {
    let err = load_err("[server]\nbase_path = \"hygrocast/\"\n", &[]);
    assert!(err.contains("server.base_path"), "{err}");
}

#[test]
fn toml_syntax_error_names_the_file() {
    let f = file_with("[server\nbind = 1\n");
    let err = Settings::load(Some(f.path()), Vec::new())
        .expect_err("syntax")
        .to_string();
    assert!(err.contains(&f.path().display().to_string()), "{err}");
}

#[test]
fn trusted_proxies_accept_addresses_and_networks_and_name_a_bad_entry() {
    let f = file_with("[server]\ntrusted_proxies = [\"10.0.0.0/8\", \"::1\", \"192.0.2.5\"]\n");
    let s = Settings::load(Some(f.path()), Vec::new()).expect("valid proxies");
    assert_eq!(s.server.trusted_proxies, ["10.0.0.0/8", "::1", "192.0.2.5"]);
    let err = load_err(
        "[server]\ntrusted_proxies = [\"127.0.0.1\", \"apache.lan\"]\n",
        &[],
    );
    assert!(
        err.contains("server.trusted_proxies") && err.contains("apache.lan"),
        "{err}"
    );
    let err = load_err(
        "",
        &[("HYGROCAST_SERVER__TRUSTED_PROXIES", "[\"10.0.0.0/40\"]")],
    );
    assert!(
        err.contains("HYGROCAST_SERVER__TRUSTED_PROXIES") && err.contains("10.0.0.0/40"),
        "{err}"
    );
    let s = Settings::load(None, env(&[("HYGROCAST_SERVER__TRUSTED_PROXIES", "[]")]))
        .expect("empty list");
    assert!(s.server.trusted_proxies.is_empty());
}

#[test]
fn ingest_settings_load_and_are_checked() {
    let f = file_with("[ingest]\nmax_body = 1024\nmax_batch = 10\nwriters = 2\n");
    let s = Settings::load(
        Some(f.path()),
        env(&[("HYGROCAST_INGEST__QUEUE_CAPACITY", "64")]),
    )
    .expect("load");
    assert_eq!(s.ingest.max_body, 1024);
    assert_eq!(s.ingest.max_batch, 10);
    assert_eq!(s.ingest.writers, 2);
    assert_eq!(s.ingest.queue_capacity, 64);
    assert_eq!(
        s.ingest.max_future_secs, 300,
        "untouched keys keep their default"
    );

    for (text, key) in [
        ("[ingest]\nwriters = 0\n", "ingest.writers"),
        ("[ingest]\nqueue_capacity = 0\n", "ingest.queue_capacity"),
        ("[ingest]\nmax_flush_rows = 0\n", "ingest.max_flush_rows"),
        ("[ingest]\nmax_body = 0\n", "ingest.max_body"),
        ("[ingest]\nmax_batch = 0\n", "ingest.max_batch"),
    ] {
        let err = load_err(text, &[]);
        assert!(err.contains(key) && err.contains("at least 1"), "{err}");
    }
    let err = load_err("[database]\npool_size = 4\n[ingest]\nwriters = 5\n", &[]);
    assert!(
        err.contains("ingest.writers") && err.contains("database.pool_size (4)"),
        "{err}"
    );
    let err = load_err("[ingest]\nmax_bdoy = 1\n", &[]);
    assert!(err.contains("max_bdoy"), "{err}");
}
