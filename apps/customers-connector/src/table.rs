//! The source table reader: table `customers` of a SQLite database, read as
//! [`Customer`] records in id order, and the demo database made from
//! `seed/customers.sql`.
//!
//! The connector never writes to the source database it reads: it opens it read-only
//! (with a busy timeout, so that a writer holding the lock delays a read instead of
//! failing it). Each read is one statement, so one consistent snapshot of the table.
//!
//! SQLite's columns are dynamically typed: a value that is not text is published as its
//! text form, a NULL as the empty string, and a NULL `level` as `bronze` (the Avro
//! schema's default).

use std::path::{Path, PathBuf};
use std::time::Duration;

use orders_platform::records::Customer;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};

/// The table read.
pub const TABLE: &str = "customers";

/// The demo database's schema and its nine customers.
pub const SEED_SQL: &str = include_str!("../seed/customers.sql");

/// The level of a customer whose `level` is NULL (the schema's default).
pub const DEFAULT_LEVEL: &str = "bronze";

/// How long a read waits for a writer's lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The query of every read: all columns, in id order.
const SELECT: &str =
    "SELECT id, firstName, lastName, email, address, level FROM customers ORDER BY id";

/// Why the table could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    /// SQLite failed.
    #[error("{what} ({path}): {source}")]
    Sqlite {
        /// What was being done.
        what: &'static str,
        /// The database.
        path: PathBuf,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// The database file is not there.
    #[error("no database at {0} (set CONNECTOR_DB, or let the connector create the demo database with CONNECTOR_DEMO_DB=true)")]
    Missing(PathBuf),
    /// The database has no table `customers` with the expected columns.
    #[error(
        "{path} has no table customers(id, firstName, lastName, email, address, level): {source}"
    )]
    Schema {
        /// The database.
        path: PathBuf,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// Creating the demo database's file failed.
    #[error("creating the demo database {path}: {source}")]
    Io {
        /// The database.
        path: PathBuf,
        /// The file system's error.
        #[source]
        source: std::io::Error,
    },
}

/// Creates the demo database at `path` from [`SEED_SQL`] unless a file is there;
/// returns whether it created it. The database is written under a temporary name and
/// renamed into place, so a crash never leaves a half-seeded database behind.
pub fn create_demo_database(path: &Path) -> Result<bool, TableError> {
    if path.exists() {
        return Ok(false);
    }
    let io = |source| TableError::Io {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(format!(".{}.tmp", std::process::id()));
    let temporary = PathBuf::from(temporary);
    let _ = std::fs::remove_file(&temporary);
    let sqlite = |what| {
        let temporary = temporary.clone();
        move |source| TableError::Sqlite {
            what,
            path: temporary,
            source,
        }
    };
    {
        let connection = Connection::open(&temporary).map_err(sqlite("creating the database"))?;
        connection
            .execute_batch(&format!("BEGIN;\n{SEED_SQL}\nCOMMIT;"))
            .map_err(sqlite("seeding the demo customers"))?;
        connection
            .close()
            .map_err(|(_, e)| e)
            .map_err(sqlite("closing the database"))?;
    }
    std::fs::rename(&temporary, path).map_err(io)?;
    Ok(true)
}

/// Table `customers` of one SQLite database, opened read-only.
pub struct CustomerTable {
    connection: Connection,
    path: PathBuf,
}

impl std::fmt::Debug for CustomerTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CustomerTable")
            .field("path", &self.path)
            .finish()
    }
}

impl CustomerTable {
    /// Opens the database at `path` read-only and checks that it has the table and its
    /// columns.
    pub fn open(path: &Path) -> Result<Self, TableError> {
        if !path.exists() {
            return Err(TableError::Missing(path.to_path_buf()));
        }
        let sqlite = |what| {
            move |source| TableError::Sqlite {
                what,
                path: path.to_path_buf(),
                source,
            }
        };
        let connection = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(sqlite("opening the database"))?;
        connection
            .busy_timeout(BUSY_TIMEOUT)
            .map_err(sqlite("setting the busy timeout"))?;
        connection
            .prepare_cached(SELECT)
            .map_err(|source| TableError::Schema {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(CustomerTable {
            connection,
            path: path.to_path_buf(),
        })
    }

    /// The database's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every row, in id order, as one snapshot.
    pub fn read_all(&self) -> Result<Vec<Customer>, TableError> {
        let sqlite = |source| TableError::Sqlite {
            what: "reading table customers",
            path: self.path.clone(),
            source,
        };
        let mut statement = self.connection.prepare_cached(SELECT).map_err(sqlite)?;
        let rows = statement
            .query_map([], |row| {
                Ok(Customer {
                    id: row.get(0)?,
                    first_name: text(row.get_ref(1)?).unwrap_or_default(),
                    last_name: text(row.get_ref(2)?).unwrap_or_default(),
                    email: text(row.get_ref(3)?).unwrap_or_default(),
                    address: text(row.get_ref(4)?).unwrap_or_default(),
                    level: text(row.get_ref(5)?).unwrap_or_else(|| DEFAULT_LEVEL.to_string()),
                })
            })
            .map_err(sqlite)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(sqlite)
    }
}

/// A column's value as text; `None` for NULL.
fn text(value: ValueRef<'_>) -> Option<String> {
    match value {
        ValueRef::Null => None,
        ValueRef::Integer(i) => Some(i.to_string()),
        ValueRef::Real(r) => Some(r.to_string()),
        ValueRef::Text(t) | ValueRef::Blob(t) => Some(String::from_utf8_lossy(t).into_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, sql: &str) {
        Connection::open(path).unwrap().execute_batch(sql).unwrap();
    }

    #[test]
    fn the_demo_database_holds_the_nine_customers_with_their_levels() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/customers.db");
        assert!(create_demo_database(&path).unwrap());
        assert!(
            !create_demo_database(&path).unwrap(),
            "an existing database is left alone"
        );
        let leftovers: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers, vec![std::ffi::OsString::from("customers.db")]);

        let customers = CustomerTable::open(&path).unwrap().read_all().unwrap();
        let ids: Vec<i64> = customers.iter().map(|c| c.id).collect();
        assert_eq!(ids, (1..=9).collect::<Vec<_>>());
        let levels: Vec<&str> = customers.iter().map(|c| c.level.as_str()).collect();
        assert_eq!(
            levels,
            [
                "platinum", "platinum", "platinum", "bronze", "gold", "silver", "gold", "silver",
                "bronze"
            ]
        );
        for customer in &customers {
            assert!(!customer.first_name.is_empty(), "{customer:?}");
            assert!(!customer.last_name.is_empty(), "{customer:?}");
            assert!(customer.email.contains('@'), "{customer:?}");
            assert!(!customer.address.is_empty(), "{customer:?}");
        }
    }

    #[test]
    fn reads_see_later_writes_in_id_order_and_nulls_become_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.db");
        write(
            &path,
            "CREATE TABLE customers (id INTEGER PRIMARY KEY, firstName TEXT, lastName TEXT,
                 email TEXT, address TEXT, level TEXT);
             INSERT INTO customers VALUES (20, 'B', 'Two', 'b@x', 'here', 'gold');",
        );
        let table = CustomerTable::open(&path).unwrap();
        assert_eq!(table.read_all().unwrap().len(), 1);

        write(
            &path,
            "INSERT INTO customers VALUES (3, 'A', NULL, 'a@x', 42, NULL);
             UPDATE customers SET level = 'silver' WHERE id = 20;",
        );
        let customers = table.read_all().unwrap();
        assert_eq!(
            customers,
            vec![
                Customer {
                    id: 3,
                    first_name: "A".into(),
                    last_name: String::new(),
                    email: "a@x".into(),
                    address: "42".into(),
                    level: "bronze".into(),
                },
                Customer {
                    id: 20,
                    first_name: "B".into(),
                    last_name: "Two".into(),
                    email: "b@x".into(),
                    address: "here".into(),
                    level: "silver".into(),
                },
            ]
        );
    }

    #[test]
    fn a_missing_database_or_table_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("absent.db");
        let error = CustomerTable::open(&missing).unwrap_err();
        assert!(matches!(error, TableError::Missing(_)), "{error}");
        assert!(!missing.exists(), "opening never creates the database");

        let other = dir.path().join("other.db");
        write(
            &other,
            "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT);",
        );
        let error = CustomerTable::open(&other).unwrap_err();
        assert!(matches!(error, TableError::Schema { .. }), "{error}");
        assert!(error.to_string().contains("firstName"), "{error}");
    }

    #[test]
    fn the_table_is_never_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.db");
        create_demo_database(&path).unwrap();
        let table = CustomerTable::open(&path).unwrap();
        let error = table
            .connection
            .execute("DELETE FROM customers", [])
            .unwrap_err();
        assert!(error.to_string().contains("readonly"), "{error}");
    }
}
