//! The compliance console's accounts (a name, a role, an argon2id hash)
//! and the chain entries reviewers leave: who read what, who exported
//! what. Adding or removing an account is itself a chain entry.

use std::str::FromStr;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use rusqlite::{OptionalExtension, params};

use super::schema::{Db, Hash};
use super::{ArchiveError, Store};
use crate::util::hex::encode as hex;

/// What an account may do in the console.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Search, read, decide held messages, export.
    Reviewer,
    /// And manage legal holds and accounts.
    Admin,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Reviewer => "reviewer",
            Role::Admin => "admin",
        }
    }
}

impl FromStr for Role {
    type Err = ArchiveError;
    fn from_str(s: &str) -> Result<Self, ArchiveError> {
        match s {
            "reviewer" => Ok(Role::Reviewer),
            "admin" => Ok(Role::Admin),
            other => Err(ArchiveError::BadAccount(format!(
                "unknown role `{other}` (reviewer, admin)"
            ))),
        }
    }
}

/// One console account.
#[derive(Clone, Debug, PartialEq)]
pub struct Account {
    pub name: String,
    pub role: Role,
    /// argon2id, as a PHC string.
    pub hash: String,
    pub created_ms: u64,
    pub created_by: String,
}

/// The shortest password an account may have.
pub const MIN_PASSWORD_CHARS: usize = 12;

/// Checks an account name: 1 to 64 of `a-z 0-9 . _ @ -`, so it reads the
/// same in the chain, a log line and a page.
///
/// # Errors
/// Why the name is refused.
pub fn check_name(name: &str) -> Result<(), ArchiveError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._@-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(ArchiveError::BadAccount(format!(
            "`{name}` is not an account name: 1 to 64 of a-z, 0-9, `.`, `_`, `@`, `-`"
        )))
    }
}

/// An argon2id hash (the crate's defaults: 19 MiB, 2 passes, OWASP's
/// minimum) of `password` under a fresh salt.
///
/// # Errors
/// The password is too short.
pub fn hash_password(password: &str) -> Result<String, ArchiveError> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(ArchiveError::BadAccount(format!(
            "a password needs at least {MIN_PASSWORD_CHARS} characters"
        )));
    }
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| ArchiveError::BadAccount(e.to_string()))?;
    let salt =
        SaltString::encode_b64(&salt).map_err(|e| ArchiveError::BadAccount(e.to_string()))?;
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| ArchiveError::BadAccount(e.to_string()))
}

/// Whether `password` is the one `hash` was made from. A malformed hash
/// matches nothing.
pub fn password_matches(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

fn account_of(row: &rusqlite::Row<'_>) -> rusqlite::Result<(String, String, String, i64, String)> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
    ))
}

pub(super) fn account(
    (name, role, hash, created_ms, created_by): (String, String, String, i64, String),
) -> Result<Account, ArchiveError> {
    Ok(Account {
        role: role.parse()?,
        name,
        hash,
        created_ms: created_ms as u64,
        created_by,
    })
}

pub(super) const ACCOUNT_COLUMNS: &str = "name, role, hash, created_ms, created_by";

impl Store {
    /// The account called `name`.
    ///
    /// # Errors
    /// The database cannot be read.
    pub fn account(&self, name: &str) -> Result<Option<Account>, ArchiveError> {
        match &self.db {
            Db::Sqlite(conn) => conn
                .query_row(
                    &format!("SELECT {ACCOUNT_COLUMNS} FROM console_users WHERE name = ?1"),
                    [name],
                    account_of,
                )
                .optional()?
                .map(account)
                .transpose(),
            Db::Postgres(pg) => pg.run(super::postgres::account(pg, name)),
        }
    }

    /// Every account, by name.
    ///
    /// # Errors
    /// The database cannot be read.
    pub fn accounts(&self) -> Result<Vec<Account>, ArchiveError> {
        match &self.db {
            Db::Sqlite(conn) => {
                let mut stmt = conn.prepare(&format!(
                    "SELECT {ACCOUNT_COLUMNS} FROM console_users ORDER BY name"
                ))?;
                let rows = stmt.query_map([], account_of)?;
                rows.map(|r| account(r?)).collect()
            }
            Db::Postgres(pg) => pg.run(super::postgres::accounts(pg)),
        }
    }

    /// Adds an account; the chain records who added whom with which role.
    ///
    /// # Errors
    /// A bad name, an account of that name exists, or the database failed.
    pub fn account_add(
        &mut self,
        name: &str,
        role: Role,
        hash: &str,
        by: &str,
        now_ms: u64,
    ) -> Result<u64, ArchiveError> {
        check_name(name)?;
        let details = serde_json::json!({"name": name, "role": role.name()});
        let conn = match &mut self.db {
            Db::Sqlite(conn) => conn,
            Db::Postgres(pg) => {
                return pg.run(super::postgres::account_add(
                    pg, name, role, hash, by, now_ms, details,
                ));
            }
        };
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let inserted = tx.execute(
            "INSERT OR IGNORE INTO console_users (name, role, hash, created_ms, created_by) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![name, role.name(), hash, now_ms as i64, by],
        )?;
        if inserted == 0 {
            return Err(ArchiveError::AccountExists(name.to_owned()));
        }
        let (seq, _) = Store::audit(&tx, "user-add", by, now_ms, details)?;
        tx.commit()?;
        Ok(seq)
    }

    /// Removes an account; the chain records who removed it.
    ///
    /// # Errors
    /// No such account, or the database failed.
    pub fn account_remove(
        &mut self,
        name: &str,
        by: &str,
        now_ms: u64,
    ) -> Result<Account, ArchiveError> {
        let conn = match &mut self.db {
            Db::Sqlite(conn) => conn,
            Db::Postgres(pg) => {
                return pg.run(super::postgres::account_remove(pg, name, by, now_ms));
            }
        };
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let found = tx
            .query_row(
                &format!("SELECT {ACCOUNT_COLUMNS} FROM console_users WHERE name = ?1"),
                [name],
                account_of,
            )
            .optional()?
            .ok_or_else(|| ArchiveError::NoAccount(name.to_owned()))?;
        let found = account(found)?;
        tx.execute("DELETE FROM console_users WHERE name = ?1", [name])?;
        Store::audit(
            &tx,
            "user-remove",
            by,
            now_ms,
            serde_json::json!({"name": name, "role": found.role.name()}),
        )?;
        tx.commit()?;
        Ok(found)
    }

    /// Appends an entry about what someone did with the archive (`view`,
    /// `export`, `verify`): its number and hash.
    ///
    /// # Errors
    /// The database failed.
    pub fn note(
        &mut self,
        entry: &str,
        by: &str,
        now_ms: u64,
        details: serde_json::Value,
    ) -> Result<(u64, String), ArchiveError> {
        let (seq, hash): (u64, Hash) = match &mut self.db {
            Db::Sqlite(conn) => {
                let tx =
                    conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                let out = Store::audit(&tx, entry, by, now_ms, details)?;
                tx.commit()?;
                out
            }
            Db::Postgres(pg) => pg.run(super::postgres::note(pg, entry, by, now_ms, details))?,
        };
        Ok((seq, hex(&hash)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::{Entry, Filter};

    #[test]
    fn accounts_are_added_listed_and_removed_each_in_the_chain() {
        let (_dir, mut store) = crate::archive::testing::store_with(2);
        let hash = hash_password("correct horse battery").unwrap();
        store
            .account_add("carol", Role::Admin, &hash, "cli", 1)
            .unwrap();
        store
            .account_add("rita", Role::Reviewer, &hash, "carol", 2)
            .unwrap();
        assert!(matches!(
            store.account_add("rita", Role::Admin, &hash, "carol", 3),
            Err(ArchiveError::AccountExists(_))
        ));
        let names: Vec<_> = store
            .accounts()
            .unwrap()
            .into_iter()
            .map(|a| (a.name, a.role))
            .collect();
        assert_eq!(
            names,
            [
                ("carol".into(), Role::Admin),
                ("rita".into(), Role::Reviewer)
            ]
        );
        let carol = store.account("carol").unwrap().unwrap();
        assert!(password_matches(&carol.hash, "correct horse battery"));
        assert!(!password_matches(&carol.hash, "correct horse batterY"));
        assert!(!password_matches("not a hash", "correct horse battery"));
        assert_eq!(
            store.account_remove("rita", "carol", 4).unwrap().role,
            Role::Reviewer
        );
        assert!(matches!(
            store.account_remove("rita", "carol", 5),
            Err(ArchiveError::NoAccount(_))
        ));
        let (seq, _) = store
            .note("view", "carol", 6, serde_json::json!({"page": "search"}))
            .unwrap();
        assert_eq!(seq, 6, "2 records, 2 adds, 1 remove, then the view");
        let entries = store
            .search(&Filter {
                kind: Some("audit:user-add".into()),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(entries.len(), 2);
        let Entry::Audit(first) = &entries[0] else {
            panic!("{entries:?}")
        };
        assert_eq!(
            (first.by.as_str(), &first.details["name"]),
            ("cli", &serde_json::json!("carol"))
        );
        assert!(
            first.details.get("hash").is_none(),
            "the hash stays out of the chain"
        );
        store.verify().unwrap();
    }

    #[test]
    fn names_and_passwords_are_checked() {
        for bad in ["", "Carol", "carol smith", "<b>", &"a".repeat(65)] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
        check_name("carol.smith@corp-1_x").unwrap();
        assert!(hash_password("short").is_err());
        let a = hash_password("twelve chars").unwrap();
        let b = hash_password("twelve chars").unwrap();
        assert_ne!(a, b, "each hash has its own salt");
        assert!(a.starts_with("$argon2id$"), "{a}");
    }
}
