//! `imgate console user add|remove|list`: the compliance console's
//! accounts, kept in the store. Each change is a chain entry.

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;

use crate::archive::{Role, Store, hash_password};
use crate::config::Config;

use super::archive::fail;

fn open(config: &Path) -> Result<Store, String> {
    let loaded = Config::load(config).map_err(|e| e.to_string())?;
    let store = loaded
        .store
        .ok_or("the config has no [store] (or [archive] path): accounts live in the store")?;
    Store::connect(&store).map_err(|e| {
        format!(
            "cannot open the store {}: {e}",
            super::archive::named(&store)
        )
    })
}

/// One line from the terminal with echo off, or from a pipe as it is.
fn read_password(prompt: &str) -> std::io::Result<String> {
    let stdin = std::io::stdin();
    let tty = stdin.is_terminal();
    if tty {
        eprint!("{prompt}");
        std::io::stderr().flush()?;
    }
    let _quiet = tty.then(EchoOff::new).flatten();
    let mut line = String::new();
    stdin.lock().read_line(&mut line)?;
    if tty {
        eprintln!();
    }
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

/// Turns the terminal's echo off until dropped.
struct EchoOff(libc::termios);

impl EchoOff {
    fn new() -> Option<EchoOff> {
        // SAFETY: tcgetattr/tcsetattr on fd 0 with a termios we own.
        unsafe {
            let mut t: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(0, &mut t) != 0 {
                return None;
            }
            let saved = t;
            t.c_lflag &= !libc::ECHO;
            (libc::tcsetattr(0, libc::TCSANOW, &t) == 0).then_some(EchoOff(saved))
        }
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        // SAFETY: restores the settings read in `new`.
        unsafe {
            libc::tcsetattr(0, libc::TCSANOW, &self.0);
        }
    }
}

pub fn user_add(
    config: &Path,
    name: &str,
    role: &str,
    by: Option<String>,
) -> anyhow::Result<ExitCode> {
    let role: Role = match role.parse() {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    if let Err(e) = crate::archive::check_name(name) {
        return fail(e);
    }
    let password = match read_password(&format!("password for {name}: ")) {
        Ok(p) => p,
        Err(e) => return fail(format!("cannot read the password: {e}")),
    };
    if std::io::stdin().is_terminal() {
        match read_password("again: ") {
            Ok(again) if again == password => {}
            Ok(_) => return fail("the passwords differ"),
            Err(e) => return fail(format!("cannot read the password: {e}")),
        }
    }
    let hash = match hash_password(&password) {
        Ok(h) => h,
        Err(e) => return fail(e),
    };
    let mut store = match open(config) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    match store.account_add(
        name,
        role,
        &hash,
        &super::archive::who(by),
        crate::event::now_ms(),
    ) {
        Ok(seq) => {
            println!(
                "account {name} ({}) added; recorded as entry {seq}",
                role.name()
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => fail(e),
    }
}

pub fn user_remove(config: &Path, name: &str, by: Option<String>) -> anyhow::Result<ExitCode> {
    let mut store = match open(config) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    match store.account_remove(name, &super::archive::who(by), crate::event::now_ms()) {
        Ok(a) => {
            println!(
                "account {name} ({}) removed; its sessions end at their next request",
                a.role.name()
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => fail(e),
    }
}

pub fn user_list(config: &Path) -> anyhow::Result<ExitCode> {
    let store = match open(config) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    match store.accounts() {
        Ok(list) => {
            for a in &list {
                println!(
                    "{:<24} {:<8} added {} by {}",
                    a.name,
                    a.role.name(),
                    crate::archive::export::rfc3339(a.created_ms),
                    a.created_by
                );
            }
            println!("{} accounts", list.len());
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => fail(e),
    }
}
