//! The SQLite-backed log end to end: appends, proofs, checkpoints, group commit under
//! concurrency, reopening, bundles, and tamper detection by `verify`.

use ledger::bundle::{Bundle, Selection};
use ledger::checkpoint::Checkpoint;
use ledger::merkle;
use ledger::record::Record;
use rusqlite::Connection;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::sync::Arc;
use store::{Log, StoreError, DB_FILE, KEY_FILE};

fn record(agent: &str, n: u64) -> Record {
    Record::from_json_text(&format!(
        r#"{{"kind":"verdict","agent":"{agent}","ts":{n},"decision":"allow","n":{n}}}"#
    ))
    .unwrap()
}

fn open(dir: &Path) -> Log {
    Log::open(dir).unwrap()
}

#[test]
fn append_get_proofs_and_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    assert_eq!(log.size().unwrap(), 0);
    assert!(log.latest_checkpoint().unwrap().is_none());
    let mut all = Vec::new();
    for n in 0..37u64 {
        let batch: Vec<Record> = (0..(n % 4 + 1)).map(|i| record("a1", n * 10 + i)).collect();
        let indexes = log.append(batch.clone()).unwrap();
        assert_eq!(indexes.len(), batch.len());
        for (index, record) in indexes.iter().zip(batch) {
            assert_eq!(*index, all.len() as u64);
            all.push(record);
        }
    }
    let size = all.len() as u64;
    assert_eq!(log.size().unwrap(), size);
    let signed = log.latest_checkpoint().unwrap().unwrap();
    let checkpoint = Checkpoint::open(&signed.note, log.verifier_key()).unwrap();
    assert_eq!(checkpoint.size, size);
    let leaves: Vec<_> = all.iter().map(|r| merkle::leaf_hash(r.bytes())).collect();
    assert_eq!(checkpoint.root, merkle::root_from_leaf_hashes(&leaves));
    for (index, record) in all.iter().enumerate() {
        let index = index as u64;
        assert_eq!(log.get(index).unwrap(), record.bytes());
        let proof = log.tlog_proof(index).unwrap();
        proof.verify(record.bytes(), log.verifier_key()).unwrap();
        // Proofs against older sizes too.
        let old_size = index + 1;
        let old_proof = log.inclusion_proof(index, old_size).unwrap();
        let old_root = merkle::root_from_leaf_hashes(&leaves[..old_size as usize]);
        merkle::verify_inclusion(
            index,
            old_size,
            &leaves[index as usize],
            &old_proof,
            &old_root,
        )
        .unwrap();
        let consistency = log.consistency_proof(old_size, size).unwrap();
        merkle::verify_consistency(old_size, size, &consistency, &old_root, &checkpoint.root)
            .unwrap();
    }
    assert!(matches!(log.get(size), Err(StoreError::NotFound { .. })));
    let report = log.verify().unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.n_records, size);
    assert_eq!(report.n_checkpoints, 37);
}

#[test]
fn key_file_is_private_and_stable() {
    let dir = tempfile::tempdir().unwrap();
    let key_text = {
        let log = open(dir.path());
        log.append(vec![record("a", 1)]).unwrap();
        log.verifier_key().to_text()
    };
    let key_path = dir.path().join(KEY_FILE);
    let mode = std::fs::metadata(&key_path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let log = open(dir.path());
    assert_eq!(log.verifier_key().to_text(), key_text);
    drop(log);
    std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = Log::open(dir.path()).err().unwrap();
    assert!(
        err.to_string().contains("readable by group or others"),
        "{err}"
    );
}

#[test]
fn concurrent_appends_are_group_committed() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(open(dir.path()));
    let n_threads = 16;
    let n_per_thread = 50;
    let handles: Vec<_> = (0..n_threads)
        .map(|t| {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                (0..n_per_thread)
                    .map(|n| log.append(vec![record(&format!("agent-{t}"), n)]).unwrap()[0])
                    .collect::<Vec<u64>>()
            })
        })
        .collect();
    let mut indexes: Vec<u64> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    indexes.sort();
    let total = n_threads * n_per_thread;
    assert_eq!(indexes, (0..total).collect::<Vec<_>>());
    let report = log.verify().unwrap();
    assert!(report.is_ok(), "{report:?}");
    // Fewer checkpoints than records: batches held more than one record.
    assert!(report.n_checkpoints < total, "{report:?}");
}

#[test]
fn append_async_resolves_after_commit() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    let receivers: Vec<_> = (0..10)
        .map(|n| log.append_async(vec![record("a", n)]))
        .collect();
    let mut indexes: Vec<u64> = receivers
        .into_iter()
        .flat_map(|r| r.blocking_recv().unwrap().unwrap())
        .collect();
    indexes.sort();
    assert_eq!(indexes, (0..10).collect::<Vec<_>>());
}

#[test]
fn reopen_continues_the_same_tree() {
    let dir = tempfile::tempdir().unwrap();
    let first_root = {
        let log = open(dir.path());
        log.append((0..11).map(|n| record("a", n)).collect())
            .unwrap();
        log.root(11).unwrap()
    };
    let log = open(dir.path());
    assert_eq!(log.root(11).unwrap(), first_root);
    assert_eq!(log.append(vec![record("a", 11)]).unwrap(), vec![11]);
    let report = log.verify().unwrap();
    assert!(report.is_ok(), "{report:?}");
    let proof = log.consistency_proof(11, 12).unwrap();
    merkle::verify_consistency(11, 12, &proof, &first_root, &log.root(12).unwrap()).unwrap();
}

#[test]
fn references_must_point_backwards() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    log.append(vec![record("a", 0)]).unwrap();
    let forward = Record::from_json_text(
        r#"{"kind":"outcome","agent":"a","ts":2,"status":"executed","refs":[{"rel":"verdict","index":1}]}"#,
    )
    .unwrap();
    let err = log.append(vec![forward]).unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::BadReference {
                target: 1,
                index: 1,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(log.size().unwrap(), 1, "nothing appended");
    let backward = Record::from_json_text(
        r#"{"kind":"outcome","agent":"a","ts":2,"status":"executed","refs":[{"rel":"verdict","index":0}]}"#,
    )
    .unwrap();
    assert_eq!(log.append(vec![backward]).unwrap(), vec![1]);
}

#[test]
fn bundles_verify_and_detect_changes() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    let pact =
        Record::from_json_text(r#"{"kind":"pact","agent":"a1","ts":1,"version":3}"#).unwrap();
    log.append(vec![pact]).unwrap();
    for n in 0..5 {
        log.append(vec![record("a1", n), record("a2", n)]).unwrap();
    }
    let verdict = Record::from_json_text(
        r#"{"kind":"verdict","agent":"a3","ts":9,"decision":"allow","refs":[{"rel":"pact","index":0}]}"#,
    )
    .unwrap();
    let verdict_index = log.append(vec![verdict]).unwrap()[0];
    let outcome = Record::from_json_text(&format!(
        r#"{{"kind":"outcome","agent":"a3","ts":10,"status":"executed","refs":[{{"rel":"verdict","index":{verdict_index}}}]}}"#
    ))
    .unwrap();
    log.append(vec![outcome]).unwrap();

    let key = log.verifier_key().clone();
    let by_agent = log.export_bundle(Selection::Agent("a3".into())).unwrap();
    let summary = Bundle::from_json(by_agent.to_json().as_bytes())
        .unwrap()
        .verify(&key)
        .unwrap();
    assert_eq!(summary.n_selected, 2);
    assert_eq!(summary.n_referenced, 1, "the pact record is included");

    let by_range = log
        .export_bundle(Selection::Range { from: 2, to: 6 })
        .unwrap();
    let summary = by_range.verify(&key).unwrap();
    assert_eq!(summary.n_selected, 5);

    // Any changed byte anywhere in the file breaks it.
    let bytes = by_agent.to_json().into_bytes();
    for position in 0..bytes.len() {
        let mut changed = bytes.clone();
        changed[position] ^= 0x01;
        let result = Bundle::from_json(&changed).and_then(|bundle| bundle.verify(&key));
        assert!(
            result.is_err(),
            "byte {position} changed and the bundle still verifies"
        );
    }
    // A changed record text is reported as such.
    let json = by_agent.to_json();
    let tampered = json.replacen("\\\"executed\\\"", "\\\"failed\\\"", 1);
    assert_ne!(tampered, json);
    assert!(Bundle::from_json(tampered.as_bytes())
        .unwrap()
        .verify(&key)
        .is_err());
    // Dropping an entry from a range is seen.
    let mut short = by_range.clone();
    short.entries.remove(2);
    assert!(short.verify(&key).is_err());
    // Another key is refused.
    let other_dir = tempfile::tempdir().unwrap();
    let other = open(other_dir.path());
    let err = by_range.verify(other.verifier_key()).unwrap_err();
    assert!(err.to_string().contains("not the trusted key"), "{err}");
}

/// Opens the database behind the log's back, as an attacker with file access would.
fn tamper(dir: &Path, sql: &str) {
    let conn = Connection::open(dir.join(DB_FILE)).unwrap();
    conn.execute_batch(sql).unwrap();
}

fn filled(dir: &Path) -> Log {
    let log = open(dir);
    // One record per append: one checkpoint per record.
    for n in 0..20 {
        log.append(vec![record("a", n)]).unwrap();
    }
    assert!(log.verify().unwrap().is_ok());
    log
}

fn problem_index(log: &Log) -> u64 {
    let report = log.verify().unwrap();
    report.problem.expect("verify must fail").index
}

#[test]
fn tamper_changed_byte_is_found_at_its_index() {
    let dir = tempfile::tempdir().unwrap();
    let log = filled(dir.path());
    tamper(
        dir.path(),
        "UPDATE records SET data = CAST(replace(CAST(data AS TEXT), '\"n\":7', '\"n\":8') AS BLOB) WHERE idx = 7",
    );
    assert_eq!(problem_index(&log), 7);
    // Also when the attacker recomputes the stored leaf hash: the checkpoint catches it.
    let changed = log.get(7).unwrap();
    let leaf = merkle::leaf_hash(&changed);
    let conn = Connection::open(dir.path().join(DB_FILE)).unwrap();
    conn.execute("UPDATE records SET leaf = ?1 WHERE idx = 7", [&leaf[..]])
        .unwrap();
    assert_eq!(problem_index(&log), 7);
}

#[test]
fn tamper_deleted_record_is_found_at_its_index() {
    let dir = tempfile::tempdir().unwrap();
    let log = filled(dir.path());
    tamper(dir.path(), "DELETE FROM records WHERE idx = 12");
    assert_eq!(problem_index(&log), 12);
    // Deleting the last record leaves a checkpoint that covers a missing record.
    tamper(dir.path(), "DELETE FROM records WHERE idx >= 12");
    assert_eq!(problem_index(&log), 12);
}

#[test]
fn tamper_swapped_records_are_found_at_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let log = filled(dir.path());
    tamper(
        dir.path(),
        "UPDATE records SET idx = -1 WHERE idx = 5;
         UPDATE records SET idx = 5 WHERE idx = 14;
         UPDATE records SET idx = 14 WHERE idx = -1;",
    );
    assert_eq!(problem_index(&log), 5);
}

#[test]
fn tamper_inserted_record_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let log = filled(dir.path());
    // Appended behind the log's back, with a correct leaf hash, but no checkpoint covers it.
    let extra = record("a", 99);
    let conn = Connection::open(dir.path().join(DB_FILE)).unwrap();
    conn.execute(
        "INSERT INTO records (idx, agent, leaf, nodes, data) VALUES (20, 'a', ?1, X'', ?2)",
        rusqlite::params![&merkle::leaf_hash(extra.bytes())[..], extra.bytes()],
    )
    .unwrap();
    assert_eq!(problem_index(&log), 20);
    // Inserted in the middle by shifting later records up.
    conn.execute_batch(
        "DELETE FROM records WHERE idx = 20;
         UPDATE records SET idx = idx + 1000 WHERE idx >= 9;
         UPDATE records SET idx = idx - 999 WHERE idx >= 1000;",
    )
    .unwrap();
    conn.execute(
        "INSERT INTO records (idx, agent, leaf, nodes, data) VALUES (9, 'a', ?1, X'', ?2)",
        rusqlite::params![&merkle::leaf_hash(extra.bytes())[..], extra.bytes()],
    )
    .unwrap();
    assert_eq!(problem_index(&log), 9);
}

#[test]
fn tamper_stored_node_or_checkpoint_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let log = filled(dir.path());
    // Interior node (level 2, index 1) covers records 4..8 and is stored with record 7.
    tamper(
        dir.path(),
        "UPDATE records SET nodes = zeroblob(64) WHERE idx = 7",
    );
    assert_eq!(problem_index(&log), 7);
    let dir = tempfile::tempdir().unwrap();
    let log = filled(dir.path());
    tamper(
        dir.path(),
        "UPDATE checkpoints SET note = replace(note, '\n—', '\nx—') WHERE size = 11",
    );
    let report = log.verify().unwrap();
    let problem = report.problem.unwrap();
    assert_eq!(problem.index, 10);
    assert!(
        problem.message.contains("checkpoint at size 11"),
        "{problem:?}"
    );
}

#[test]
fn verify_since_still_detects_tampering_in_the_trusted_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let log = filled(dir.path());
    assert!(log.verify_since(20).unwrap().is_ok());
    let conn = Connection::open(dir.path().join(DB_FILE)).unwrap();
    let changed = br#"{"agent":"a","decision":"deny","kind":"verdict","n":3,"ts":3}"#;
    conn.execute(
        "UPDATE records SET data = ?1, leaf = ?2 WHERE idx = 3",
        rusqlite::params![&changed[..], &merkle::leaf_hash(changed)[..]],
    )
    .unwrap();
    let report = log.verify_since(20).unwrap();
    assert_eq!(report.problem.unwrap().index, 3);
    // A forged stored checkpoint below the trusted size does not hide it either: the signed
    // latest checkpoint still covers the record.
    let report = log.verify().unwrap();
    assert_eq!(report.problem.unwrap().index, 3);
}

#[test]
fn proofs_through_the_node_cache_match_a_fresh_tree() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    let records: Vec<Record> = (0..3000).map(|n| record("a", n)).collect();
    let mut tree = merkle::MemoryTree::new();
    for chunk in records.chunks(1000) {
        log.append(chunk.to_vec()).unwrap();
    }
    for r in &records {
        tree.push_data(r.bytes());
    }
    let size = 3000;
    let root = tree.root();
    assert_eq!(log.root(size).unwrap(), root);
    // Twice: the second pass is served partly from the cache of upper nodes.
    for _ in 0..2 {
        for index in (0..size).step_by(7) {
            let proof = log.inclusion_proof(index, size).unwrap();
            assert_eq!(proof, tree.inclusion_proof(index, size).unwrap());
        }
        for old in [1, 256, 257, 1024, 2047, 2999] {
            assert_eq!(
                log.consistency_proof(old, size).unwrap(),
                tree.consistency_proof(old, size).unwrap()
            );
        }
    }
}

fn typed(agent: &str, kind: &str, n: u64) -> Record {
    Record::from_json_text(&format!(
        r#"{{"kind":"{kind}","agent":"{agent}","ts":{n},"n":{n}}}"#
    ))
    .unwrap()
}

fn indexes(found: &[(u64, Vec<u8>)]) -> Vec<u64> {
    found.iter().map(|(index, _)| *index).collect()
}

/// 0 a verdict, 1 b verdict, 2 a score, 3 a trial_case, 4 b score, 5 a verdict.
fn mixed(log: &Log) {
    log.append(vec![
        typed("a", "verdict", 0),
        typed("b", "verdict", 1),
        typed("a", "score", 2),
        typed("a", "trial_case", 3),
        typed("b", "score", 4),
        typed("a", "verdict", 5),
    ])
    .unwrap();
}

#[test]
fn agent_records_reads_one_agent_by_index_kind_and_limit() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    mixed(&log);
    let all = log.agent_records("a", 0, &[], usize::MAX).unwrap();
    assert_eq!(indexes(&all), vec![0, 2, 3, 5]);
    assert_eq!(all[1].1, log.get(2).unwrap());
    assert_eq!(
        indexes(&log.agent_records("a", 3, &[], usize::MAX).unwrap()),
        vec![3, 5]
    );
    assert_eq!(
        indexes(&log.agent_records("a", 0, &[], 2).unwrap()),
        vec![0, 2]
    );
    let kinds = ["verdict", "trial_case"];
    assert_eq!(
        indexes(&log.agent_records("a", 0, &kinds, usize::MAX).unwrap()),
        vec![0, 3, 5]
    );
    assert_eq!(
        indexes(&log.agent_records("b", 0, &["score"], 10).unwrap()),
        vec![4]
    );
    assert!(log.agent_records("nobody", 0, &[], 10).unwrap().is_empty());
    assert!(log.agent_records("a", 6, &[], 10).unwrap().is_empty());
    assert!(log.agent_records("a", 0, &[], 0).unwrap().is_empty());
}

#[test]
fn a_version_1_database_is_migrated_at_open() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = open(dir.path());
        mixed(&log);
    }
    // Back to the version 1 schema: no kind column, no agent index.
    tamper(
        dir.path(),
        "DROP INDEX records_agent; ALTER TABLE records DROP COLUMN kind; PRAGMA user_version = 1;",
    );
    let conn = Connection::open(dir.path().join(DB_FILE)).unwrap();
    let columns: i64 = conn
        .query_row(
            "SELECT count(*) FROM pragma_table_info('records') WHERE name = 'kind'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(columns, 0);
    let log = open(dir.path());
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, 2);
    let kinds: Vec<String> = conn
        .prepare("SELECT kind FROM records ORDER BY idx")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        kinds,
        [
            "verdict",
            "verdict",
            "score",
            "trial_case",
            "score",
            "verdict"
        ]
    );
    let plan: String = conn
        .query_row(
            "EXPLAIN QUERY PLAN SELECT idx FROM records WHERE agent = 'a' AND idx >= 0 ORDER BY idx",
            [],
            |r| r.get(3),
        )
        .unwrap();
    assert!(plan.contains("records_agent"), "{plan}");
    assert_eq!(
        indexes(&log.agent_records("a", 0, &["score"], 10).unwrap()),
        vec![2]
    );
    // New appends fill the column; the tree is untouched by the migration.
    log.append(vec![typed("a", "score", 6)]).unwrap();
    assert_eq!(
        indexes(&log.agent_records("a", 0, &["score"], 10).unwrap()),
        vec![2, 6]
    );
    assert!(log.verify().unwrap().is_ok());
    drop(log);
    // Opening again is a no-op.
    let log = open(dir.path());
    assert_eq!(log.agent_records("a", 0, &[], 10).unwrap().len(), 5);
}
