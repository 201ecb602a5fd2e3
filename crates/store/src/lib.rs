//! Persistence: the evidence log on embedded SQLite (WAL) with group commit.
//!
//! [`Log::open`] opens (or creates) a log in a data directory: `ledger.sqlite` holds records,
//! tree nodes and checkpoints; `ledger.key` holds the Ed25519 signing key (created on first use,
//! mode 0600, never printed or logged).
//!
//! Appends go through one writer thread. It drains every request waiting in its queue (up to
//! [`LogConfig::batch_records_max`] records), assigns indexes, extends the tree, signs one
//! checkpoint, and writes records, new interior nodes and the checkpoint in one transaction with
//! one fsync. Only then does each caller get its indexes back: an acknowledged append is
//! durable. Proofs read stored nodes (at most `2 * log2(size)` rows), so memory stays flat in
//! the log's size.
//!
//! The [`Storage`] trait is the backend boundary; SQLite ([`sqlite::SqliteStorage`]) is the
//! default and a PostgreSQL backend can implement the same trait.

pub mod keyfile;
pub mod sqlite;
mod verify;

pub use verify::{VerifyProblem, VerifyReport};

use ledger::bundle::{Bundle, BundleEntry, EntryReason, Selection, BUNDLE_FORMAT};
use ledger::checkpoint::Checkpoint;
use ledger::merkle::{self, Hash, MerkleError, TreeBuilder};
use ledger::note::{SignerKey, VerifierKey};
use ledger::record::{Record, RecordRef};
use ledger::tlog_proof::TlogProof;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;

/// File name of the SQLite database inside the data directory.
pub const DB_FILE: &str = "ledger.sqlite";
/// File name of the signing key inside the data directory.
pub const KEY_FILE: &str = "ledger.key";

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite failed.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A file operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The key file is unusable.
    #[error("key file `{path}`: {reason}")]
    Key {
        /// The key file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The stored data is inconsistent.
    #[error("corrupt log: {0}")]
    Corrupt(String),
    /// No record at this index.
    #[error("no record at index {index} (log size {size})")]
    NotFound {
        /// The index asked for.
        index: u64,
        /// The log size.
        size: u64,
    },
    /// A record refers to an index that is not before it.
    #[error("record {position} of the append refers to index {target}, which is not an earlier record (it would be index {index})")]
    BadReference {
        /// Position of the record in the append call.
        position: usize,
        /// The referenced index.
        target: u64,
        /// The index the record would get.
        index: u64,
    },
    /// An append had more records than fit in one batch.
    #[error("append of {n_records} records is over the limit of {batch_records_max} per call")]
    TooManyRecords {
        /// Records in the call.
        n_records: usize,
        /// The limit.
        batch_records_max: usize,
    },
    /// Another process appended to the same log.
    #[error("another writer appended to the log (expected size {expected}, found {found})")]
    Conflict {
        /// Size this writer expected.
        expected: u64,
        /// Size found.
        found: u64,
    },
    /// Proof construction failed.
    #[error(transparent)]
    Merkle(#[from] MerkleError),
    /// A ledger format error.
    #[error("{0}")]
    Format(String),
    /// The log is empty: nothing to sign or export.
    #[error("the log is empty")]
    Empty,
    /// The writer thread stopped (after a storage failure); reopen the log.
    #[error("the log writer has stopped: {0}")]
    WriterStopped(String),
    /// A lock was poisoned by a panic.
    #[error("internal lock poisoned")]
    Poisoned,
}

/// One record ready to store.
#[derive(Debug, Clone)]
pub struct StoredRecord {
    /// Agent id (indexed with the record's index).
    pub agent: String,
    /// Record kind (stored beside the agent so one agent's records can be read by kind).
    pub kind: String,
    /// RFC 6962 leaf hash of `data`.
    pub leaf: Hash,
    /// The perfect interior nodes this leaf completed, levels 1, 2, ... (32 bytes each).
    pub nodes: Vec<u8>,
    /// Canonical bytes.
    pub data: Vec<u8>,
}

/// Everything one group commit writes.
#[derive(Debug, Clone)]
pub struct CommitBatch {
    /// Index of the first record.
    pub first_index: u64,
    /// The records, in index order.
    pub records: Vec<StoredRecord>,
    /// Size covered by the checkpoint (`first_index + records.len()`).
    pub checkpoint_size: u64,
    /// The signed checkpoint note.
    pub checkpoint: String,
}

/// The backend boundary. Implementations must make [`Storage::commit`] atomic and durable
/// before returning, and refuse it with [`StoreError::Conflict`] if the log's size is not
/// `first_index`.
pub trait Storage: Send + Sync + 'static {
    /// Number of records.
    fn size(&self) -> Result<u64, StoreError>;
    /// A node read through the writer's view (used to resume the tree at open).
    fn frontier_node(&self, level: u32, index: u64) -> Result<Option<Hash>, StoreError>;
    /// Perfect nodes (level 0 is a leaf hash), read from one consistent view; `None` where a
    /// node is not stored.
    fn nodes(&self, wanted: &[(u32, u64)]) -> Result<Vec<Option<Hash>>, StoreError>;
    /// A record's canonical bytes.
    fn record(&self, index: u64) -> Result<Option<Vec<u8>>, StoreError>;
    /// The checkpoint with the largest size, with its size.
    fn latest_checkpoint(&self) -> Result<Option<(u64, String)>, StoreError>;
    /// Indexes of records of `agent` below `below`, ascending.
    fn indexes_by_agent(&self, agent: &str, below: u64) -> Result<Vec<u64>, StoreError>;
    /// Records of `agent` selected by `query`, ascending by index, through the agent index.
    fn agent_records(
        &self,
        agent: &str,
        query: &AgentQuery<'_>,
    ) -> Result<Vec<(u64, Vec<u8>)>, StoreError>;
    /// Writes a batch atomically and durably.
    fn commit(&self, batch: &CommitBatch) -> Result<(), StoreError>;
    /// A consistent read-only view for long scans.
    fn snapshot(&self) -> Result<Box<dyn Snapshot>, StoreError>;
}

/// Which of one agent's records to read: indexes `since..below`, of the given kinds (all kinds
/// when empty), at most `limit` of them (the oldest first).
#[derive(Debug, Clone, Copy)]
pub struct AgentQuery<'a> {
    /// First index to consider.
    pub since: u64,
    /// Indexes from here on are not read (e.g. a checkpoint's size).
    pub below: u64,
    /// Only these kinds; empty means every kind.
    pub kinds: &'a [&'a str],
    /// Most records returned.
    pub limit: usize,
}

impl Default for AgentQuery<'_> {
    fn default() -> Self {
        Self {
            since: 0,
            below: u64::MAX,
            kinds: &[],
            limit: usize::MAX,
        }
    }
}

/// Called per record by [`Snapshot::scan_records`] with `(index, data, stored leaf hash,
/// stored interior nodes)`; returns `false` to stop.
pub type RecordVisitor<'a> = dyn FnMut(u64, &[u8], &[u8], &[u8]) -> Result<bool, StoreError> + 'a;

/// A consistent read-only view of the stored log.
pub trait Snapshot {
    /// Number of records (largest index + 1).
    fn size(&self) -> Result<u64, StoreError>;
    /// Visits records `from..to` in index order; stops early when `visit` returns `false`.
    fn scan_records(
        &self,
        from: u64,
        to: u64,
        visit: &mut RecordVisitor<'_>,
    ) -> Result<(), StoreError>;
    /// The first checkpoint whose size is larger than `after_size`.
    fn next_checkpoint(&self, after_size: u64) -> Result<Option<(u64, String)>, StoreError>;
}

/// Tuning for a [`Log`].
#[derive(Debug, Clone)]
pub struct LogConfig {
    /// Most records written in one group commit.
    pub batch_records_max: usize,
    /// Most append calls waiting for the writer; further callers block (backpressure).
    pub queue_requests_max: usize,
    /// Key name (the checkpoint origin) used when the key is created. Default:
    /// `pactum.local/ledger-<8 random hex digits>`.
    pub origin: Option<String>,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            batch_records_max: 4096,
            queue_requests_max: 16 * 1024,
            origin: None,
        }
    }
}

type AppendReply = Result<Vec<u64>, StoreError>;

/// Told the number of records in every committed group-commit batch (for metrics). It runs on
/// the writer thread, after the batch is durable: keep it cheap.
pub type BatchObserver = Arc<dyn Fn(usize) + Send + Sync>;

struct AppendRequest {
    records: Vec<Record>,
    reply: tokio::sync::oneshot::Sender<AppendReply>,
}

/// An open evidence log. Cheap to share behind an `Arc`; all methods take `&self`.
pub struct Log {
    node_cache: NodeCache,
    storage: Arc<dyn Storage>,
    signer_verifier: VerifierKey,
    queue: Option<mpsc::SyncSender<AppendRequest>>,
    writer: Option<JoinHandle<()>>,
    config: LogConfig,
    batch_observer: Arc<std::sync::OnceLock<BatchObserver>>,
}

/// Lowest tree level kept in the [`NodeCache`]: nodes there cover 256 records or more, so every
/// proof shares them and a log of 16 M records has fewer of them than the cache has slots.
const NODE_CACHE_LEVEL_MIN: u32 = 8;
/// Slots in the [`NodeCache`] (64 Ki slots of 48 bytes: 3 MiB, whatever the log's size).
const NODE_CACHE_SLOTS: usize = 64 * 1024;

/// A fixed-size, direct-mapped cache of upper tree nodes. Perfect nodes never change once
/// written, so entries never go stale; a proof then reads only its ~8 lowest nodes from
/// storage.
struct NodeCache {
    slots: std::sync::Mutex<Vec<Option<(u32, u64, Hash)>>>,
}

impl NodeCache {
    fn new() -> Self {
        Self {
            slots: std::sync::Mutex::new(vec![None; NODE_CACHE_SLOTS]),
        }
    }

    fn slot(level: u32, index: u64) -> usize {
        let key = (u64::from(level) << 58) ^ index.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        (key.rotate_left(17) as usize) % NODE_CACHE_SLOTS
    }

    fn get(&self, level: u32, index: u64) -> Option<Hash> {
        if level < NODE_CACHE_LEVEL_MIN {
            return None;
        }
        let slots = self.slots.lock().ok()?;
        match slots.get(Self::slot(level, index)) {
            Some(Some((l, i, hash))) if *l == level && *i == index => Some(*hash),
            _ => None,
        }
    }

    fn put(&self, level: u32, index: u64, hash: Hash) {
        if level < NODE_CACHE_LEVEL_MIN {
            return;
        }
        if let Ok(mut slots) = self.slots.lock() {
            if let Some(slot) = slots.get_mut(Self::slot(level, index)) {
                *slot = Some((level, index, hash));
            }
        }
    }
}

/// A checkpoint as stored: its size and signed note text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCheckpoint {
    /// Tree size.
    pub size: u64,
    /// The C2SP signed note.
    pub note: String,
}

impl Log {
    /// Opens the log in `dir` (created if missing) with the default configuration.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        Self::open_with(dir, LogConfig::default())
    }

    /// Opens the log in `dir` with `config`.
    pub fn open_with(dir: &Path, config: LogConfig) -> Result<Self, StoreError> {
        keyfile::create_private_dir(dir)?;
        let signer = keyfile::load_or_create(&dir.join(KEY_FILE), config.origin.as_deref())?;
        let storage: Arc<dyn Storage> = Arc::new(sqlite::SqliteStorage::open(&dir.join(DB_FILE))?);
        Self::with_storage(storage, signer, config)
    }

    /// Opens a log over any [`Storage`] backend.
    pub fn with_storage(
        storage: Arc<dyn Storage>,
        signer: SignerKey,
        config: LogConfig,
    ) -> Result<Self, StoreError> {
        let tree = load_tree(storage.as_ref())?;
        let (queue, receiver) = mpsc::sync_channel(config.queue_requests_max.max(1));
        let signer_verifier = signer.verifier();
        let writer_storage = Arc::clone(&storage);
        let batch_records_max = config.batch_records_max.max(1);
        let batch_observer: Arc<std::sync::OnceLock<BatchObserver>> = Arc::default();
        let writer_observer = Arc::clone(&batch_observer);
        let writer = std::thread::Builder::new()
            .name("ledger-writer".into())
            .spawn(move || {
                Writer {
                    storage: writer_storage,
                    signer,
                    tree,
                    batch_records_max,
                    batch_observer: writer_observer,
                }
                .run(receiver)
            })
            .map_err(|source| StoreError::Io {
                context: "spawning the ledger writer thread".into(),
                source,
            })?;
        Ok(Self {
            node_cache: NodeCache::new(),
            storage,
            signer_verifier,
            queue: Some(queue),
            writer: Some(writer),
            config,
            batch_observer,
        })
    }

    /// Registers the observer of group-commit batch sizes; only the first registration counts.
    /// Returns whether this one was registered.
    pub fn observe_batches(&self, observer: BatchObserver) -> bool {
        self.batch_observer.set(observer).is_ok()
    }

    /// The log's verifier key (its public key in signed-note format).
    pub fn verifier_key(&self) -> &VerifierKey {
        &self.signer_verifier
    }

    /// Queues `records` for the next group commit and returns a receiver that yields their
    /// indexes once the batch is durable. Await it from async code (tokio oneshot).
    pub fn append_async(
        &self,
        records: Vec<Record>,
    ) -> tokio::sync::oneshot::Receiver<AppendReply> {
        let (reply, receiver) = tokio::sync::oneshot::channel();
        if records.len() > self.config.batch_records_max {
            let _ = reply.send(Err(StoreError::TooManyRecords {
                n_records: records.len(),
                batch_records_max: self.config.batch_records_max,
            }));
            return receiver;
        }
        let request = AppendRequest { records, reply };
        match &self.queue {
            Some(queue) => {
                if let Err(mpsc::SendError(request)) = queue.send(request) {
                    let _ = request
                        .reply
                        .send(Err(StoreError::WriterStopped("queue closed".into())));
                }
            }
            None => {
                let _ = request
                    .reply
                    .send(Err(StoreError::WriterStopped("log closed".into())));
            }
        }
        receiver
    }

    /// Appends `records` (all or nothing) and returns their indexes after they are durable.
    /// Blocks the calling thread: do not call from inside an async runtime; use
    /// [`Log::append_async`] there.
    pub fn append(&self, records: Vec<Record>) -> Result<Vec<u64>, StoreError> {
        self.append_async(records)
            .blocking_recv()
            .map_err(|_| StoreError::WriterStopped("no reply".into()))?
    }

    /// Number of durable records.
    pub fn size(&self) -> Result<u64, StoreError> {
        Ok(self.latest_checkpoint()?.map_or(0, |c| c.size))
    }

    /// The canonical bytes of record `index`.
    pub fn get(&self, index: u64) -> Result<Vec<u8>, StoreError> {
        let size = self.size()?;
        if index >= size {
            return Err(StoreError::NotFound { index, size });
        }
        self.storage
            .record(index)?
            .ok_or_else(|| StoreError::Corrupt(format!("record {index} is missing")))
    }

    /// Hashes of leaf ranges, reading every node they need that is not cached in one storage
    /// call (one read transaction for SQLite, instead of one per node).
    fn range_hashes(&self, ranges: Vec<(u64, u64)>) -> Result<Vec<Hash>, StoreError> {
        // Cache hits are copied out first: a later insert may evict them.
        let mut known: Vec<((u32, u64), Hash)> = Vec::new();
        let mut wanted: Vec<(u32, u64)> = Vec::new();
        for (begin, end) in &ranges {
            for key in merkle::perfect_pieces(*begin, *end) {
                if known.iter().any(|(k, _)| *k == key) || wanted.contains(&key) {
                    continue;
                }
                match self.node_cache.get(key.0, key.1) {
                    Some(hash) => known.push((key, hash)),
                    None => wanted.push(key),
                }
            }
        }
        let fetched = self.storage.nodes(&wanted)?;
        for (key, hash) in wanted.iter().zip(fetched) {
            let (level, index) = *key;
            let hash = hash.ok_or_else(|| {
                StoreError::Corrupt(format!(
                    "tree node (level {level}, index {index}) is missing"
                ))
            })?;
            self.node_cache.put(level, index, hash);
            known.push((*key, hash));
        }
        let mut lookup = |level: u32, index: u64| -> Result<Hash, StoreError> {
            known
                .iter()
                .find(|(k, _)| *k == (level, index))
                .map(|(_, hash)| *hash)
                .ok_or_else(|| {
                    StoreError::Corrupt(format!(
                        "tree node (level {level}, index {index}) is missing"
                    ))
                })
        };
        ranges
            .into_iter()
            .map(|(begin, end)| merkle::subtree_hash(begin, end, &mut lookup))
            .collect()
    }

    fn check_size(&self, size: u64) -> Result<(), StoreError> {
        let log_size = self.size()?;
        if size > log_size {
            return Err(StoreError::NotFound {
                index: size,
                size: log_size,
            });
        }
        Ok(())
    }

    /// Root of the tree of the first `size` records.
    pub fn root(&self, size: u64) -> Result<Hash, StoreError> {
        self.check_size(size)?;
        if size == 0 {
            return Ok(merkle::empty_root());
        }
        let hashes = self.range_hashes(vec![(0, size)])?;
        hashes
            .first()
            .copied()
            .ok_or_else(|| StoreError::Corrupt("no root".into()))
    }

    /// Inclusion proof of record `index` in the tree of `size` records.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, StoreError> {
        self.check_size(size)?;
        self.range_hashes(merkle::inclusion_ranges(index, size)?)
    }

    /// Consistency proof from size `old` to size `new`.
    pub fn consistency_proof(&self, old: u64, new: u64) -> Result<Vec<Hash>, StoreError> {
        self.check_size(new)?;
        self.range_hashes(merkle::consistency_ranges(old, new)?)
    }

    /// The latest signed checkpoint, `None` for an empty log.
    pub fn latest_checkpoint(&self) -> Result<Option<SignedCheckpoint>, StoreError> {
        Ok(self
            .storage
            .latest_checkpoint()?
            .map(|(size, note)| SignedCheckpoint { size, note }))
    }

    /// A C2SP tlog-proof of record `index` against the latest checkpoint.
    pub fn tlog_proof(&self, index: u64) -> Result<TlogProof, StoreError> {
        let checkpoint = self.latest_checkpoint()?.ok_or(StoreError::Empty)?;
        if index >= checkpoint.size {
            return Err(StoreError::NotFound {
                index,
                size: checkpoint.size,
            });
        }
        Ok(TlogProof {
            extra: None,
            index,
            proof: self.inclusion_proof(index, checkpoint.size)?,
            checkpoint: checkpoint.note,
        })
    }

    /// Exports a bundle: the selected records, every record they reference by index, their
    /// proofs against the latest checkpoint, the checkpoint and the verifier key.
    pub fn export_bundle(&self, selection: Selection) -> Result<Bundle, StoreError> {
        let checkpoint = self.latest_checkpoint()?.ok_or(StoreError::Empty)?;
        let size = checkpoint.size;
        let selected: Vec<u64> = match &selection {
            Selection::Agent(agent) => self.storage.indexes_by_agent(agent, size)?,
            Selection::Range { from, to } => {
                if from > to || *to >= size {
                    return Err(StoreError::NotFound { index: *to, size });
                }
                (*from..=*to).collect()
            }
        };
        let mut entries = std::collections::BTreeMap::new();
        let mut referenced = std::collections::BTreeSet::new();
        for index in &selected {
            let data = self.get(*index)?;
            let record = Record::from_canonical_bytes(&data)
                .map_err(|err| StoreError::Corrupt(format!("record {index}: {err}")))?;
            for (_, target) in record.refs() {
                if let RecordRef::Index(target) = target {
                    referenced.insert(*target);
                }
            }
            entries.insert(*index, (EntryReason::Selected, data));
        }
        for index in referenced {
            if let std::collections::btree_map::Entry::Vacant(slot) = entries.entry(index) {
                slot.insert((EntryReason::Referenced, self.get(index)?));
            }
        }
        let mut bundle_entries = Vec::with_capacity(entries.len());
        for (index, (reason, data)) in entries {
            let proof = self.inclusion_proof(index, size)?;
            bundle_entries.push(BundleEntry::new(index, reason, &data, &proof));
        }
        Ok(Bundle {
            format: BUNDLE_FORMAT.to_owned(),
            verifier_key: self.signer_verifier.to_text(),
            checkpoint: checkpoint.note,
            selection,
            entries: bundle_entries,
        })
    }

    /// One agent's records `(index, canonical bytes)`, ascending, read through the agent index
    /// (never a scan of the log): indexes from `since_index`, at most `limit` of them, of the
    /// given `kinds` (every kind when empty).
    pub fn agent_records(
        &self,
        agent: &str,
        since_index: u64,
        kinds: &[&str],
        limit: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        self.storage.agent_records(
            agent,
            &AgentQuery {
                since: since_index,
                kinds,
                limit,
                ..AgentQuery::default()
            },
        )
    }

    /// Recomputes the whole tree from the stored records and checks every checkpoint and
    /// stored node; see [`VerifyReport`].
    pub fn verify(&self) -> Result<VerifyReport, StoreError> {
        verify::verify(self.storage.as_ref(), &self.signer_verifier, 0)
    }

    /// Like [`Log::verify`] for a log that an earlier full run verified up to a checkpoint of
    /// `verified_size`: every record is still rehashed and every checkpoint's root compared,
    /// but signatures of checkpoints below `verified_size` are not checked again. Tampering
    /// anywhere is still detected (the latest checkpoint's signed root covers every record);
    /// only its location may be reported less precisely.
    pub fn verify_since(&self, verified_size: u64) -> Result<VerifyReport, StoreError> {
        verify::verify(self.storage.as_ref(), &self.signer_verifier, verified_size)
    }
}

impl Drop for Log {
    fn drop(&mut self) {
        // Closing the queue lets the writer finish pending batches and exit.
        self.queue.take();
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

/// Rebuilds the tree's frontier (one node per set bit of the size) from storage.
fn load_tree(storage: &dyn Storage) -> Result<TreeBuilder, StoreError> {
    let size = storage.size()?;
    let mut frontier = Vec::new();
    for (level, index) in merkle::perfect_pieces(0, size) {
        frontier.push(storage.frontier_node(level, index)?.ok_or_else(|| {
            StoreError::Corrupt(format!(
                "tree node (level {level}, index {index}) is missing"
            ))
        })?);
    }
    TreeBuilder::from_frontier(size, frontier)
        .ok_or_else(|| StoreError::Corrupt("tree frontier does not match the size".into()))
}

struct Writer {
    storage: Arc<dyn Storage>,
    signer: SignerKey,
    tree: TreeBuilder,
    batch_records_max: usize,
    batch_observer: Arc<std::sync::OnceLock<BatchObserver>>,
}

impl Writer {
    fn run(mut self, receiver: mpsc::Receiver<AppendRequest>) {
        let mut carry: Option<AppendRequest> = None;
        loop {
            let first = match carry.take() {
                Some(request) => request,
                None => match receiver.recv() {
                    Ok(request) => request,
                    Err(_) => return,
                },
            };
            let mut n_records = first.records.len();
            let mut batch = vec![first];
            while n_records < self.batch_records_max {
                match receiver.try_recv() {
                    Ok(request) => {
                        if n_records + request.records.len() > self.batch_records_max {
                            carry = Some(request);
                            break;
                        }
                        n_records += request.records.len();
                        batch.push(request);
                    }
                    Err(_) => break,
                }
            }
            if let Err(err) = self.commit(batch) {
                // Storage failed: the state on disk is unknown, so stop taking appends.
                let message = err.to_string();
                if let Some(request) = carry.take() {
                    let _ = request
                        .reply
                        .send(Err(StoreError::WriterStopped(message.clone())));
                }
                while let Ok(request) = receiver.try_recv() {
                    let _ = request
                        .reply
                        .send(Err(StoreError::WriterStopped(message.clone())));
                }
                return;
            }
        }
    }

    /// Commits one batch; replies to every request. Returns an error only when storage failed
    /// in a way that leaves the writer's state unknown.
    fn commit(&mut self, batch: Vec<AppendRequest>) -> Result<(), StoreError> {
        let mut attempt = 0;
        let mut batch = batch;
        loop {
            let (accepted, result) = self.try_commit(batch);
            match result {
                Ok(indexes) => {
                    // Observed before the replies, so a caller that has its answer also sees
                    // its batch counted.
                    if let Some(observer) = self.batch_observer.get() {
                        observer(indexes.iter().map(Vec::len).sum());
                    }
                    for (request, indexes) in accepted.into_iter().zip(indexes) {
                        let _ = request.reply.send(Ok(indexes));
                    }
                    return Ok(());
                }
                Err(StoreError::Conflict { .. }) if attempt < 3 => {
                    // Another process appended: reload the tree and retry.
                    attempt += 1;
                    self.tree = load_tree(self.storage.as_ref())?;
                    batch = accepted;
                }
                Err(err) => {
                    let message = err.to_string();
                    for request in accepted {
                        let _ = request
                            .reply
                            .send(Err(StoreError::WriterStopped(message.clone())));
                    }
                    return Err(err);
                }
            }
        }
    }

    fn try_commit(
        &mut self,
        batch: Vec<AppendRequest>,
    ) -> (Vec<AppendRequest>, Result<Vec<Vec<u64>>, StoreError>) {
        let saved_tree = self.tree.clone();
        let first_index = self.tree.size();
        let mut accepted = Vec::with_capacity(batch.len());
        let mut indexes_per_request = Vec::with_capacity(batch.len());
        let mut records = Vec::new();
        for request in batch {
            let base = self.tree.size();
            // References must point at earlier records; check before touching the tree.
            let bad_ref = request
                .records
                .iter()
                .enumerate()
                .find_map(|(position, r)| {
                    let index = base + position as u64;
                    r.max_ref_index()
                        .filter(|target| *target >= index)
                        .map(|target| StoreError::BadReference {
                            position,
                            target,
                            index,
                        })
                });
            if let Some(err) = bad_ref {
                let _ = request.reply.send(Err(err));
                continue;
            }
            let mut indexes = Vec::with_capacity(request.records.len());
            for record in &request.records {
                let leaf = merkle::leaf_hash(record.bytes());
                indexes.push(self.tree.size());
                let mut nodes = Vec::new();
                self.tree.push(leaf, |level, _, hash| {
                    if level > 0 {
                        nodes.extend_from_slice(hash);
                    }
                });
                records.push(StoredRecord {
                    agent: record.agent().to_owned(),
                    kind: record.kind().to_owned(),
                    leaf,
                    nodes,
                    data: record.bytes().to_vec(),
                });
            }
            indexes_per_request.push(indexes);
            accepted.push(request);
        }
        if records.is_empty() {
            return (accepted, Ok(indexes_per_request));
        }
        let checkpoint = Checkpoint {
            origin: self.signer.name().to_owned(),
            size: self.tree.size(),
            root: self.tree.root(),
        };
        let result = checkpoint
            .sign(&self.signer)
            .map_err(|err| StoreError::Format(err.to_string()))
            .and_then(|note| {
                self.storage.commit(&CommitBatch {
                    first_index,
                    records,
                    checkpoint_size: checkpoint.size,
                    checkpoint: note,
                })
            });
        match result {
            Ok(()) => (accepted, Ok(indexes_per_request)),
            Err(err) => {
                self.tree = saved_tree;
                (accepted, Err(err))
            }
        }
    }
}
