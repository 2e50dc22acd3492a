//! `hygrocast admin set-password`: sets the password of the pages' admin login.
//!
//! The password is read from the terminal (asked twice, not echoed) or, when standard
//! input is not a terminal, from its first line — so scripts can pipe it in. Only its
//! Argon2id hash is written: printed as the config line to paste under `[ui]`, or with
//! `--write` put into the config file in place (other lines and comments untouched).

use std::io::{BufRead, IsTerminal};
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};

use super::CliError;
use crate::config::Settings;
use crate::web::pages::auth::hash_password;

/// Shortest password accepted: the login is exposed to whoever reaches the pages.
const MIN_PASSWORD_CHARS: usize = 10;

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Set the admin password of the web pages (ui.admin_password_hash).
    ///
    /// Reads the password from the terminal, or from the first line of standard input
    /// when it is not a terminal (`echo "$PW" | hygrocast admin set-password`). Prints the
    /// `admin_password_hash = "…"` line for the [ui] section of config.toml, or with
    /// --write updates the config file (--config PATH, else ./config.toml) in place.
    /// The server reads the hash at start-up: restart it afterwards.
    SetPassword(SetPasswordArgs),
}

#[derive(Debug, Args)]
pub struct SetPasswordArgs {
    /// Write the hash into the config file instead of printing it.
    #[arg(long)]
    pub write: bool,
}

pub fn run(cmd: AdminCommand, config: Option<&Path>) -> Result<(), CliError> {
    match cmd {
        AdminCommand::SetPassword(args) => set_password(args, config),
    }
}

fn read_password() -> Result<String, CliError> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        let first = rpassword::prompt_password("New admin password: ")?;
        let again = rpassword::prompt_password("Repeat it: ")?;
        if first != again {
            return Err(CliError::Other("the two passwords differ".into()));
        }
        Ok(first)
    } else {
        let mut line = String::new();
        stdin.lock().read_line(&mut line)?;
        Ok(line.trim_end_matches(['\r', '\n']).to_string())
    }
}

fn set_password(args: SetPasswordArgs, config: Option<&Path>) -> Result<(), CliError> {
    let password = read_password()?;
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(CliError::Other(format!(
            "the password must have at least {MIN_PASSWORD_CHARS} characters"
        )));
    }
    let hash = hash_password(&password).map_err(CliError::Other)?;
    let line = format!("admin_password_hash = \"{hash}\"");
    if !args.write {
        println!("[ui]\n{line}");
        eprintln!(
            "Put this line in the [ui] section of config.toml (or set HYGROCAST_UI__ADMIN_PASSWORD_HASH), \
             then restart hygrocast serve."
        );
        return Ok(());
    }
    let path = config.map_or_else(|| PathBuf::from("config.toml"), Path::to_path_buf);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => {
            return Err(CliError::Other(format!(
                "cannot read {}: {e}",
                path.display()
            )))
        }
    };
    let updated = with_hash_line(&text, &line);
    // Check the result loads before replacing the file, then replace it atomically.
    let tmp = path.with_extension("toml.tmp");
    std::fs::write(&tmp, &updated)?;
    if let Err(e) = Settings::load(Some(&tmp), Vec::new()) {
        let _ = std::fs::remove_file(&tmp);
        return Err(CliError::Other(format!(
            "not updating {}: the result would not load: {e}",
            path.display()
        )));
    }
    std::fs::rename(&tmp, &path)?;
    println!(
        "updated ui.admin_password_hash in {}; restart hygrocast serve to use it",
        path.display()
    );
    Ok(())
}

/// `text` with its `admin_password_hash` line replaced by `line`; added under `[ui]` (or
/// in a new `[ui]` section) when there is none.
fn with_hash_line(text: &str, line: &str) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut section = String::new();
    let mut done = false;
    for l in text.lines() {
        let t = l.trim();
        if t.starts_with('[') {
            section = t.to_string();
        }
        let is_key = t
            .split_once('=')
            .is_some_and(|(k, _)| k.trim() == "admin_password_hash");
        if section == "[ui]" && is_key && !done {
            out.push(line.to_string());
            done = true;
        } else {
            out.push(l.to_string());
        }
    }
    if !done {
        match out.iter().position(|l| l.trim() == "[ui]") {
            Some(i) => out.insert(i + 1, line.to_string()),
            None => {
                if out.last().is_some_and(|l| !l.trim().is_empty()) {
                    out.push(String::new());
                }
                out.push("[ui]".into());
                out.push(line.to_string());
            }
        }
    }
    let mut s = out.join("\n");
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_line_is_replaced_in_place_or_added() {
        let line = "admin_password_hash = \"$argon2id$x\"";
        let text = "[server]\nbind = \"1\"\n\n[ui]\n# the hash\nadmin_password_hash = \"\"\npublic = true\n";
        assert_eq!(
            with_hash_line(text, line),
            format!("[server]\nbind = \"1\"\n\n[ui]\n# the hash\n{line}\npublic = true\n")
        );
        assert_eq!(
            with_hash_line("[ui]\npublic = false\n", line),
            format!("[ui]\n{line}\npublic = false\n")
        );
        assert_eq!(
            with_hash_line("[log]\nlevel = \"info\"\n", line),
            format!("[log]\nlevel = \"info\"\n\n[ui]\n{line}\n")
        );
        assert_eq!(with_hash_line("", line), format!("[ui]\n{line}\n"));
    }
}
