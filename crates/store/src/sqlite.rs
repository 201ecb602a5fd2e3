//! The embedded SQLite backend (WAL, `synchronous=FULL`): one writer connection used only by
//! the group-commit thread, one reader connection for point reads, and a fresh connection per
//! [`Snapshot`] so long scans see one consistent state without blocking either.
//!
//! Schema (version 2):
//!
//! - `records(idx INTEGER PRIMARY KEY, agent TEXT, leaf BLOB(32), nodes BLOB, data BLOB,
//!   kind TEXT)`:
//!   canonical bytes, the RFC 6962 leaf hash (the tree's level 0), and the perfect interior
//!   nodes that appending this leaf completed (levels 1, 2, ... in order, 32 bytes each; one
//!   node per record on average). Node `(level, index)` is therefore stored in the row of record
//!   `((index + 1) << level) - 1`: a proof reads at most `2 * log2(size)` rows by primary key,
//!   never rebuilds the tree, and an append writes one row per record and nothing else.
//! - `checkpoints(size INTEGER PRIMARY KEY, note TEXT)`: every signed checkpoint, one per batch.
//!
//! - index `records_agent(agent, idx)`: one agent's records (the score, the oracle, bundle
//!   export) are a range read instead of a scan of the whole log. It costs appends one more
//!   B-tree insert per record; agents append in index order, so each agent's insertion point is
//!   the end of its own range and stays in the page cache.
//!
//! Version 1 databases (no `kind` column, no index) are migrated at open, in one transaction:
//! the column is added, filled from each record's JSON, and the index built.

use crate::{AgentQuery, CommitBatch, RecordVisitor, Snapshot, Storage, StoreError};
use ledger::merkle::Hash;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS records (
    idx INTEGER PRIMARY KEY,
    agent TEXT NOT NULL,
    leaf BLOB NOT NULL,
    nodes BLOB NOT NULL,
    data BLOB NOT NULL,
    kind TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS checkpoints (
    size INTEGER PRIMARY KEY,
    note TEXT NOT NULL
);
";

/// Schema version written by this code (`PRAGMA user_version`).
const SCHEMA_VERSION: i64 = 2;

/// Brings a database of any earlier version to [`SCHEMA_VERSION`], in one transaction: a crash
/// midway leaves the old schema, and the next open starts over.
fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let version: i64 = tx.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    if version >= SCHEMA_VERSION {
        return Ok(());
    }
    let has_kind = tx
        .prepare("SELECT 1 FROM pragma_table_info('records') WHERE name = 'kind'")?
        .exists([])?;
    if !has_kind {
        tx.execute_batch(
            "ALTER TABLE records ADD COLUMN kind TEXT NOT NULL DEFAULT '';
             UPDATE records SET kind = coalesce(json_extract(CAST(data AS TEXT), '$.kind'), '');",
        )?;
    }
    tx.execute_batch(&format!(
        "CREATE INDEX IF NOT EXISTS records_agent ON records (agent, idx);
         PRAGMA user_version = {SCHEMA_VERSION};"
    ))?;
    tx.commit()?;
    Ok(())
}

/// Page cache per connection, in KiB (negative `cache_size` is KiB in SQLite); bounds memory
/// whatever the log's size.
const CACHE_KIB: i64 = 16 * 1024;

/// The record row that stores node `(level, index)`: the last leaf of its subtree.
fn node_row(level: u32, index: u64) -> Option<u64> {
    index
        .checked_add(1)?
        .checked_mul(1u64.checked_shl(level)?)?
        .checked_sub(1)
        .filter(|row| *row <= i64::MAX as u64)
}

fn hash_from_blob(blob: Vec<u8>) -> Result<Hash, StoreError> {
    blob.try_into()
        .map_err(|_| StoreError::Corrupt("stored hash is not 32 bytes".into()))
}

/// The SQLite implementation of [`Storage`].
pub struct SqliteStorage {
    path: PathBuf,
    writer: Mutex<Connection>,
    reader: Mutex<Connection>,
    /// Dropping it stops the WAL checkpointer thread.
    checkpointer_stop: Option<std::sync::mpsc::Sender<()>>,
    checkpointer: Option<std::thread::JoinHandle<()>>,
}

/// How often the background thread copies the WAL into the database file.
const WAL_CHECKPOINT_INTERVAL_MS: u64 = 100;
/// WAL pages after which a commit checkpoints by itself (a safety net if the background
/// thread falls behind); 64 Ki pages of 4 KiB = 256 MiB.
const WAL_AUTOCHECKPOINT_PAGES: i64 = 64 * 1024;

impl Drop for SqliteStorage {
    fn drop(&mut self) {
        self.checkpointer_stop.take();
        if let Some(handle) = self.checkpointer.take() {
            let _ = handle.join();
        }
    }
}

/// Copies the WAL into the database in the background (PASSIVE: never blocks the writer or
/// readers), so commits do not pay for it and acknowledgement latency stays flat.
fn spawn_checkpointer(
    path: &Path,
) -> Result<(std::sync::mpsc::Sender<()>, std::thread::JoinHandle<()>), StoreError> {
    let conn = open_connection(path, false)?;
    let (stop, stopped) = std::sync::mpsc::channel::<()>();
    let handle = std::thread::Builder::new()
        .name("ledger-wal-checkpoint".into())
        .spawn(move || loop {
            match stopped.recv_timeout(std::time::Duration::from_millis(WAL_CHECKPOINT_INTERVAL_MS))
            {
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    // Busy or partial checkpoints are fine: the next round continues.
                    let _ = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
                }
                _ => return,
            }
        })
        .map_err(|source| StoreError::Io {
            context: "spawning the WAL checkpoint thread".into(),
            source,
        })?;
    Ok((stop, handle))
}

fn open_connection(path: &Path, read_only: bool) -> Result<Connection, StoreError> {
    let flags = if read_only {
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
    } else {
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
    };
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.pragma_update(None, "cache_size", -CACHE_KIB)?;
    Ok(conn)
}

impl SqliteStorage {
    /// Opens or creates the database at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let writer = open_connection(path, false)?;
        let mode: String = writer.query_row("PRAGMA journal_mode=WAL", [], |row| row.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Corrupt(format!(
                "could not enable WAL mode (got `{mode}`)"
            )));
        }
        // FULL: the WAL is fsynced at every commit, so a committed batch survives power loss.
        writer.pragma_update(None, "synchronous", "FULL")?;
        writer.pragma_update(None, "wal_autocheckpoint", WAL_AUTOCHECKPOINT_PAGES)?;
        let mut writer = writer;
        writer.execute_batch(SCHEMA)?;
        migrate(&mut writer)?;
        let reader = open_connection(path, true)?;
        let (stop, checkpointer) = spawn_checkpointer(path)?;
        Ok(Self {
            path: path.to_owned(),
            writer: Mutex::new(writer),
            reader: Mutex::new(reader),
            checkpointer_stop: Some(stop),
            checkpointer: Some(checkpointer),
        })
    }

    fn with_reader<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let conn = self.reader.lock().map_err(|_| StoreError::Poisoned)?;
        f(&conn)
    }
}

fn read_size(conn: &Connection) -> Result<u64, StoreError> {
    let max: Option<i64> = conn.query_row("SELECT max(idx) FROM records", [], |row| row.get(0))?;
    Ok(max.map_or(0, |m| m as u64 + 1))
}

fn read_node(conn: &Connection, level: u32, index: u64) -> Result<Option<Hash>, StoreError> {
    let Some(row) = node_row(level, index) else {
        return Ok(None);
    };
    if level == 0 {
        let blob: Option<Vec<u8>> = conn
            .prepare_cached("SELECT leaf FROM records WHERE idx = ?1")?
            .query_row([row as i64], |r| r.get(0))
            .optional()?;
        return blob.map(hash_from_blob).transpose();
    }
    let mut stmt = conn.prepare_cached("SELECT nodes FROM records WHERE idx = ?1")?;
    let mut rows = stmt.query([row as i64])?;
    let Some(found) = rows.next()? else {
        return Ok(None);
    };
    let nodes = found.get_ref(0)?.as_blob().map_err(rusqlite::Error::from)?;
    let start = (level as usize - 1) * 32;
    nodes
        .get(start..start + 32)
        .map(|bytes| hash_from_blob(bytes.to_vec()))
        .transpose()
}

fn read_latest_checkpoint(conn: &Connection) -> Result<Option<(u64, String)>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT size, note FROM checkpoints ORDER BY size DESC LIMIT 1")?
        .query_row([], |row| Ok((row.get::<_, i64>(0)? as u64, row.get(1)?)))
        .optional()?)
}

impl Storage for SqliteStorage {
    fn size(&self) -> Result<u64, StoreError> {
        let conn = self.writer.lock().map_err(|_| StoreError::Poisoned)?;
        read_size(&conn)
    }

    fn frontier_node(&self, level: u32, index: u64) -> Result<Option<Hash>, StoreError> {
        let conn = self.writer.lock().map_err(|_| StoreError::Poisoned)?;
        read_node(&conn, level, index)
    }

    fn nodes(&self, wanted: &[(u32, u64)]) -> Result<Vec<Option<Hash>>, StoreError> {
        self.with_reader(|conn| {
            // One read transaction: one WAL read lock instead of one per node.
            conn.execute_batch("BEGIN")?;
            let found: Result<Vec<_>, StoreError> = wanted
                .iter()
                .map(|(level, index)| read_node(conn, *level, *index))
                .collect();
            conn.execute_batch("COMMIT")?;
            found
        })
    }

    fn record(&self, index: u64) -> Result<Option<Vec<u8>>, StoreError> {
        self.with_reader(|conn| {
            Ok(conn
                .prepare_cached("SELECT data FROM records WHERE idx = ?1")?
                .query_row([index as i64], |row| row.get(0))
                .optional()?)
        })
    }

    fn latest_checkpoint(&self) -> Result<Option<(u64, String)>, StoreError> {
        self.with_reader(read_latest_checkpoint)
    }

    fn indexes_by_agent(&self, agent: &str, below: u64) -> Result<Vec<u64>, StoreError> {
        self.with_reader(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT idx FROM records WHERE agent = ?1 AND idx < ?2 ORDER BY idx",
            )?;
            let rows = stmt.query_map(params![agent, below as i64], |row| row.get::<_, i64>(0))?;
            let mut out = Vec::new();
            for row in rows {
                out.push(row? as u64);
            }
            Ok(out)
        })
    }

    fn agent_records(
        &self,
        agent: &str,
        query: &AgentQuery<'_>,
    ) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        self.with_reader(|conn| {
            let below = query.below.min(i64::MAX as u64) as i64;
            let limit = query.limit.min(i64::MAX as usize) as i64;
            let mut out = Vec::new();
            let mut push = |row: &rusqlite::Row<'_>| -> Result<(), StoreError> {
                out.push((row.get::<_, i64>(0)? as u64, row.get(1)?));
                Ok(())
            };
            if query.kinds.is_empty() {
                let mut stmt = conn.prepare_cached(
                    "SELECT idx, data FROM records WHERE agent = ?1 AND idx >= ?2 AND idx < ?3 \
                     ORDER BY idx LIMIT ?4",
                )?;
                let mut rows = stmt.query(params![agent, query.since as i64, below, limit])?;
                while let Some(row) = rows.next()? {
                    push(row)?;
                }
            } else {
                // The kinds go in as one JSON array so the statement stays cached.
                let kinds = serde_json::to_string(query.kinds)
                    .map_err(|err| StoreError::Format(err.to_string()))?;
                let mut stmt = conn.prepare_cached(
                    "SELECT idx, data FROM records WHERE agent = ?1 AND idx >= ?2 AND idx < ?3 \
                     AND kind IN (SELECT value FROM json_each(?5)) ORDER BY idx LIMIT ?4",
                )?;
                let mut rows =
                    stmt.query(params![agent, query.since as i64, below, limit, kinds])?;
                while let Some(row) = rows.next()? {
                    push(row)?;
                }
            }
            Ok(out)
        })
    }

    fn commit(&self, batch: &CommitBatch) -> Result<(), StoreError> {
        let mut conn = self.writer.lock().map_err(|_| StoreError::Poisoned)?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        // Another process may have appended since this writer loaded its state: refuse rather
        // than fork the tree.
        let size = read_size(&tx)?;
        if size != batch.first_index {
            return Err(StoreError::Conflict {
                expected: batch.first_index,
                found: size,
            });
        }
        {
            let mut insert_record = tx.prepare_cached(
                "INSERT INTO records (idx, agent, leaf, nodes, data, kind) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            for (offset, record) in batch.records.iter().enumerate() {
                insert_record.execute(params![
                    (batch.first_index + offset as u64) as i64,
                    record.agent,
                    &record.leaf[..],
                    record.nodes,
                    record.data,
                    record.kind,
                ])?;
            }
            tx.prepare_cached("INSERT INTO checkpoints (size, note) VALUES (?1, ?2)")?
                .execute(params![batch.checkpoint_size as i64, batch.checkpoint])?;
        }
        tx.commit()?;
        Ok(())
    }

    fn snapshot(&self) -> Result<Box<dyn Snapshot>, StoreError> {
        let conn = open_connection(&self.path, true)?;
        // A read transaction pins one consistent view for the whole scan.
        conn.execute_batch("BEGIN")?;
        // The snapshot starts at the first read.
        read_size(&conn)?;
        Ok(Box::new(SqliteSnapshot { conn }))
    }
}

struct SqliteSnapshot {
    conn: Connection,
}

impl Snapshot for SqliteSnapshot {
    fn size(&self) -> Result<u64, StoreError> {
        read_size(&self.conn)
    }

    fn scan_records(
        &self,
        from: u64,
        to: u64,
        visit: &mut RecordVisitor<'_>,
    ) -> Result<(), StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT idx, leaf, nodes, data FROM records WHERE idx >= ?1 AND idx < ?2 ORDER BY idx",
        )?;
        let mut rows = stmt.query([from as i64, to as i64])?;
        while let Some(row) = rows.next()? {
            let index: i64 = row.get(0)?;
            let leaf = row.get_ref(1)?.as_blob().map_err(rusqlite::Error::from)?;
            let nodes = row.get_ref(2)?.as_blob().map_err(rusqlite::Error::from)?;
            let data = row.get_ref(3)?.as_blob().map_err(rusqlite::Error::from)?;
            if !visit(index as u64, data, leaf, nodes)? {
                break;
            }
        }
        Ok(())
    }

    fn next_checkpoint(&self, after_size: u64) -> Result<Option<(u64, String)>, StoreError> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT size, note FROM checkpoints WHERE size > ?1 ORDER BY size LIMIT 1",
            )?
            .query_row([after_size as i64], |row| {
                Ok((row.get::<_, i64>(0)? as u64, row.get(1)?))
            })
            .optional()?)
    }
}
