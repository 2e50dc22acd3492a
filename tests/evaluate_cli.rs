//! `hygrocast evaluate` as a person or another tool runs it: the real binary on a CSV file,
//! with no database, its JSON read as the contract says.

use std::path::PathBuf;
use std::process::{Command, Output};

use hygrocast::forecast::synthetic::{generate_readings, SyntheticSpec};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_hygrocast");

/// A synthetic humidity CSV of `days` days in its own directory; returns its path and the
/// number of data rows.
fn csv_file(name: &str, days: usize) -> (PathBuf, usize) {
    let dir =
        std::env::temp_dir().join(format!("hygro-evaluate-cli-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let readings = generate_readings(&SyntheticSpec {
        days,
        ..SyntheticSpec::default()
    });
    let mut body = String::from("ts,value\n");
    for (ts, v) in &readings {
        body.push_str(&format!("{},{v}\n", ts.to_rfc3339()));
    }
    let path = dir.join("series.csv");
    std::fs::write(&path, body).expect("write");
    (path, readings.len())
}

fn evaluate(args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("evaluate")
        .args(args)
        .env_remove("RUST_LOG")
        .env("HYGROCAST_LOG__LEVEL", "warn")
        .output()
        .expect("run hygrocast")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = v
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    k.sort_unstable();
    k
}

#[test]
fn the_json_has_the_contract_shape_and_the_same_scores_with_one_thread_or_two() {
    let (path, rows) = csv_file("contract", 30);
    let path = path.to_str().expect("utf-8 path");
    let run = |jobs: &str| -> Value {
        let out = evaluate(&[
            "--csv",
            path,
            "--json",
            "--horizon",
            "24",
            "--window-days",
            "5",
            "--models",
            "naive,seasonal_naive,ridge",
            "--jobs",
            jobs,
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
        serde_json::from_slice(&out.stdout).expect("stdout is JSON alone")
    };
    let one = run("1");
    let two = run("2");

    assert_eq!(keys(&one), ["chosen", "models", "series"]);
    assert_eq!(keys(&one["series"]), ["first", "last", "rows"]);
    assert_eq!(one["series"]["rows"].as_u64(), Some(rows as u64));
    let models = one["models"].as_array().expect("models");
    let names: Vec<&str> = models.iter().filter_map(|m| m["model"].as_str()).collect();
    assert_eq!(names, ["naive", "seasonal_naive", "ridge"]);
    for m in models {
        assert_eq!(
            keys(m),
            [
                "coverage_80",
                "coverage_95",
                "fit_seconds",
                "mae_1_120",
                "mae_1_24",
                "mase_1_120",
                "mase_1_24",
                "model",
                "rmse_1_24"
            ]
        );
        assert!(m["mase_1_24"].as_f64().is_some_and(|x| x > 0.0), "{m}");
    }
    let chosen = one["chosen"].as_str().expect("chosen");
    assert!(names.contains(&chosen), "{chosen}");

    // The two halves of the work are independent: running them side by side changes
    // nothing but the time taken.
    assert_eq!(one["chosen"], two["chosen"]);
    for (a, b) in models.iter().zip(two["models"].as_array().expect("models")) {
        for key in [
            "model",
            "mase_1_24",
            "mase_1_120",
            "mae_1_24",
            "coverage_80",
            "coverage_95",
        ] {
            assert_eq!(a[key], b[key], "{key}");
        }
    }
}

#[test]
fn bad_arguments_and_files_are_refused_with_a_message_that_names_them() {
    let (path, _) = csv_file("refused", 20);
    let path = path.to_str().expect("utf-8 path");
    let cases: [(&[&str], &str); 3] = [
        (&["--csv", path, "--jobs", "0"], "--jobs"),
        (&["--csv", path, "--models", "ridge,prophet"], "prophet"),
        (&["--csv", "/nonexistent/rh.csv"], "/nonexistent/rh.csv"),
    ];
    for (args, named) in cases {
        let out = evaluate(args);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(out.stdout.is_empty(), "{args:?}");
        assert!(stderr(&out).contains(named), "{args:?}: {}", stderr(&out));
    }
}
