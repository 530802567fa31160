//! The store's behaviour, the same on both backends: every check here runs
//! once against a SQLite file and once against a real PostgreSQL cluster
//! the test starts itself (`initdb` + `pg_ctl` on loopback). The chain,
//! tamper detection (an UPDATE by hand), search, purge and legal holds,
//! held messages, the bridge's id map, checkpoints, schema versions.

use std::sync::Arc;

use imgate::archive::{ArchiveRecord, CopyRow, Decision, Filter, Review, Store};
use imgate::event::NetworkId;
use imgate::event::bridge::Delivery;
use imgate::store::StoreConfig;
use imgate_tests::postgres::Postgres;

/// A fresh, empty store and a way to reach under it with SQL.
struct Db {
    config: StoreConfig,
    sql: Box<dyn Fn(&str)>,
    /// Marks the schema as written by a newer imgate.
    bump_schema: Box<dyn Fn()>,
}

impl Db {
    fn open(&self) -> Store {
        Store::connect(&self.config).expect("open the store")
    }
}

fn sqlite_db(dir: &tempfile::TempDir, n: usize) -> Db {
    let path = dir.path().join(format!("a{n}.db"));
    let (p1, p2) = (path.clone(), path.clone());
    Db {
        config: StoreConfig::sqlite(&path),
        sql: Box::new(move |sql| {
            rusqlite::Connection::open(&p1)
                .unwrap()
                .execute_batch(sql)
                .unwrap()
        }),
        bump_schema: Box::new(move || {
            rusqlite::Connection::open(&p2)
                .unwrap()
                .pragma_update(None, "user_version", 99)
                .unwrap()
        }),
    }
}

fn postgres_db(pg: &Arc<Postgres>) -> Db {
    let url = pg.fresh_database();
    let name = Postgres::database_of(&url).to_owned();
    let (pg1, pg2, n1, n2) = (pg.clone(), pg.clone(), name.clone(), name);
    Db {
        config: StoreConfig::at(url),
        sql: Box::new(move |sql| {
            pg1.psql(&n1, sql);
        }),
        bump_schema: Box::new(move || {
            pg2.psql(&n2, "UPDATE imgate_schema SET version = 99");
        }),
    }
}

fn record(i: usize, sender: &str, body: &str, appended_ms: u64) -> ArchiveRecord {
    serde_json::from_value(serde_json::json!({
        "seq": 0,
        "plugin": "archiver",
        "appended_ms": appended_ms,
        "event": {
            "id": format!("ev-{i}"),
            "network": "xmpp",
            "direction": "outbound",
            "session": {"id": "s1", "user": sender},
            "message": {"sender": sender, "recipient": "bob@example.net", "body": body}
        },
        "verdict": {"action": "allow", "tags": ["dlp:card-number"]},
        "annotations": []
    }))
    .expect("a record")
}

fn filled(db: &Db, n: usize) -> Store {
    let mut store = db.open();
    let mut batch: Vec<_> = (0..n)
        .map(|i| {
            record(
                i,
                "alice@corp.example",
                &format!("message number {i}"),
                1_000 + i as u64,
            )
        })
        .collect();
    assert_eq!(store.append(&mut batch).unwrap().len(), n);
    store
}

fn chain_appends_verifies_and_survives_reopening(fresh: &mut dyn FnMut() -> Db) {
    let db = fresh();
    let store = filled(&db, 5);
    assert_eq!(store.verify().unwrap().records, 5);
    drop(store);
    let mut store = db.open();
    assert_eq!(store.next_seq(), 6);
    let seqs = store
        .append(&mut [record(9, "carol@corp.example", "after reopening", 9_000)])
        .unwrap();
    assert_eq!(seqs, vec![6]);
    let v = store.verify().unwrap();
    assert_eq!(v.records, 6);
    assert_eq!(store.head().unwrap(), (6, v.last_hash));
}

fn any_change_by_hand_is_found_and_named(fresh: &mut dyn FnMut() -> Db) {
    let db = fresh();
    let store = filled(&db, 5);
    (db.sql)("UPDATE records SET doc = replace(doc, 'number 2', 'number 7') WHERE seq = 3");
    let e = store.verify().unwrap_err();
    assert_eq!(e.seq, 3, "{e}");
    assert!(e.why.contains("hash"), "{e}");

    let db = fresh();
    let store = filled(&db, 5);
    (db.sql)("UPDATE records SET body = 'nothing to see' WHERE seq = 4");
    let e = store.verify().unwrap_err();
    assert_eq!((e.seq, e.why.contains("searchable")), (4, true), "{e}");

    let db = fresh();
    let store = filled(&db, 5);
    (db.sql)("DELETE FROM records WHERE seq = 2");
    assert_eq!(store.verify().unwrap_err().seq, 2);
}

fn search_by_participant_text_and_tag(fresh: &mut dyn FnMut() -> Db) {
    let db = fresh();
    let mut store = db.open();
    let mut batch = vec![
        record(0, "alice@corp.example", "the merger closes friday", 1_000),
        record(1, "carol@corp.example", "lunch on friday?", 2_000),
        record(2, "alice@corp.example", "see you at lunch", 3_000),
        record(3, "dave@corp.example", "nothing about it", 4_000),
    ];
    store.append(&mut batch).unwrap();
    fn seqs(store: &Store, f: Filter) -> Vec<u64> {
        store.search(&f).unwrap().iter().map(|e| e.seq()).collect()
    }
    let by = |p: &str| Filter {
        participant: Some(p.into()),
        ..Default::default()
    };
    assert_eq!(seqs(&store, by("alice@corp.example")), vec![1, 3]);
    let text = |t: &str| Filter {
        text: Some(t.into()),
        ..Default::default()
    };
    assert_eq!(seqs(&store, text("friday")), vec![1, 2]);
    assert_eq!(seqs(&store, text("lunch")), vec![2, 3]);
    assert_eq!(
        seqs(
            &store,
            Filter {
                participant: Some("alice@corp.example".into()),
                ..text("lunch")
            }
        ),
        vec![3]
    );
    assert_eq!(
        seqs(
            &store,
            Filter {
                tag: Some("dlp:card-number".into()),
                since_ms: Some(2_000),
                until_ms: Some(4_000),
                ..Default::default()
            }
        ),
        vec![2, 3]
    );
    assert_eq!(
        seqs(
            &store,
            Filter {
                limit: Some(2),
                ..Default::default()
            }
        ),
        vec![1, 2]
    );
    // A NUL in a message (Matrix allows one) is kept and found.
    store
        .append(&mut [record(
            4,
            "erin@corp.example",
            "odd\0byte in quarterly text",
            5_000,
        )])
        .unwrap();
    assert_eq!(seqs(&store, text("quarterly")), vec![5]);
    assert_eq!(store.verify().unwrap().records, 5);
    // The export bytes are the hashed bytes.
    let stored = store.select(&by("erin@corp.example")).unwrap();
    let entry = imgate::archive::Entry::parse(&stored[0].doc).unwrap();
    let imgate::archive::Entry::Record(r) = entry else {
        panic!("a record")
    };
    assert_eq!(r.event.message.unwrap().body, "odd\0byte in quarterly text");
}

/// What the console asks of the store: accounts, the entries reviewers
/// leave, and newest-first pages of a conversation, a network, a tag.
fn console_accounts_entries_and_pages(fresh: &mut dyn FnMut() -> Db) {
    use imgate::archive::{Entry, Role};
    let db = fresh();
    let mut store = db.open();
    let mut batch = vec![
        record(0, "alice@corp.example", "to bob", 1_000),
        record(1, "carol@corp.example", "carol to bob", 2_000),
        record(2, "alice@corp.example", "again to bob", 3_000),
    ];
    batch[1].event.network = "irc".into();
    batch[2].verdict = None;
    store.append(&mut batch).unwrap();
    let hash = imgate::archive::hash_password("a long passphrase").unwrap();
    store
        .account_add("carol", Role::Admin, &hash, "setup", 10)
        .unwrap();
    assert!(
        store
            .account_add("carol", Role::Reviewer, &hash, "setup", 11)
            .is_err()
    );
    store
        .account_add("rita", Role::Reviewer, &hash, "carol", 12)
        .unwrap();
    let found = store.account("rita").unwrap().unwrap();
    assert_eq!(
        (found.role, found.created_by.as_str()),
        (Role::Reviewer, "carol")
    );
    assert!(imgate::archive::password_matches(
        &found.hash,
        "a long passphrase"
    ));
    assert_eq!(store.accounts().unwrap().len(), 2);
    assert_eq!(
        store.account_remove("rita", "carol", 13).unwrap().name,
        "rita"
    );
    assert!(store.account("rita").unwrap().is_none());
    let (seq, head) = store
        .note(
            "view",
            "carol",
            14,
            serde_json::json!({"page": "search", "shown": [3, 1]}),
        )
        .unwrap();
    assert_eq!((seq, head), store.head().unwrap());
    let audit = store
        .search(&Filter {
            kind: Some("audit:view".into()),
            ..Default::default()
        })
        .unwrap();
    let [Entry::Audit(view)] = audit.as_slice() else {
        panic!("{audit:?}")
    };
    assert_eq!(
        (view.by.as_str(), view.details["shown"].clone()),
        ("carol", serde_json::json!([3, 1]))
    );

    fn seqs(store: &Store, f: Filter) -> Vec<u64> {
        store.search(&f).unwrap().iter().map(|e| e.seq()).collect()
    }
    let newest = |f: Filter| Filter {
        newest_first: true,
        ..f
    };
    assert_eq!(seqs(&store, newest(Filter::default())), [3, 2, 1]);
    assert_eq!(
        seqs(
            &store,
            newest(Filter {
                before_seq: Some(3),
                limit: Some(1),
                ..Default::default()
            })
        ),
        [2]
    );
    assert_eq!(
        seqs(
            &store,
            Filter {
                participant: Some("alice@corp.example".into()),
                with: Some("bob@example.net".into()),
                after_seq: Some(1),
                ..Default::default()
            }
        ),
        [3]
    );
    let network = |n: &str| Filter {
        network: Some(n.into()),
        ..Default::default()
    };
    assert_eq!(seqs(&store, network("irc")), [2]);
    assert_eq!(seqs(&store, network("xmpp")), [1, 3]);
    // The record without a verdict has no tags: the tagged ones are found.
    assert_eq!(
        seqs(
            &store,
            newest(Filter {
                tag: Some("dlp:card-number".into()),
                ..Default::default()
            })
        ),
        [2, 1]
    );
    assert_eq!(store.verify().unwrap().records, 7);
}

fn purges_respect_legal_holds_and_keep_the_chain(fresh: &mut dyn FnMut() -> Db) {
    let db = fresh();
    let mut store = db.open();
    let day = 86_400_000;
    let mut batch = vec![
        record(0, "alice@corp.example", "old and free", 1_000),
        record(1, "mallory@corp.example", "old but held", 1_000),
        record(2, "alice@corp.example", "recent", 30 * day),
    ];
    store.append(&mut batch).unwrap();
    let hold = store
        .hold_add(
            "user",
            "mallory@corp.example",
            "investigation 7",
            "legal",
            2_000,
        )
        .unwrap();
    assert_eq!(store.holds().unwrap().len(), 1);
    let report = store
        .purge(31 * day, Some(10), &Default::default(), "compliance")
        .unwrap();
    assert_eq!((report.purged, report.held), (1, 1));
    assert_eq!(report.entry, Some(5));
    assert_eq!(store.verify().unwrap().records, 5);
    let bodies: Vec<String> = store
        .search(&Default::default())
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            imgate::archive::Entry::Record(r) => Some(r.event.message.clone()?.body),
            _ => None,
        })
        .collect();
    assert_eq!(bodies, vec!["old but held", "recent"]);
    let lifted = store.hold_remove(hold, "legal", 3_000).unwrap();
    assert_eq!(lifted.value, "mallory@corp.example");
    assert!(store.holds().unwrap().is_empty());
    assert!(store.hold_remove(hold, "legal", 3_000).is_err());
    let audits: Vec<String> = store
        .search(&Filter {
            kind: Some("audit:hold-remove".into()),
            ..Default::default()
        })
        .unwrap()
        .iter()
        .map(|e| e.seq().to_string())
        .collect();
    assert_eq!(audits, vec!["6"]);
    assert_eq!(store.verify().unwrap().records, 6);
    // A purge's hidden row without its entry is found.
    let db = fresh();
    let store = filled(&db, 3);
    (db.sql)("UPDATE records SET doc = NULL WHERE seq = 2");
    assert_eq!(store.verify().unwrap_err().seq, 2);
}

fn held_messages_are_decided_once(fresh: &mut dyn FnMut() -> Db) {
    let db = fresh();
    let mut store = filled(&db, 2);
    let seq = store
        .hold_message(
            record(7, "alice@corp.example", "please review", 5_000),
            "needs review",
            Some("dlp"),
        )
        .unwrap();
    assert_eq!(seq, 3);
    let waiting = store.held_messages(false).unwrap();
    assert_eq!(waiting.len(), 1);
    assert_eq!(waiting[0].event_id, "ev-7");
    let review = Review {
        decision: Decision::Release,
        reviewer: "rita",
        note: "fine",
        outcome: Ok("delivered".into()),
    };
    let decided = store.review("ev-7", &review, 6_000).unwrap();
    assert_eq!(decided.status, "released");
    assert!(store.review("ev-7", &review, 6_001).is_err());
    assert!(store.held_messages(false).unwrap().is_empty());
    assert_eq!(store.held_messages(true).unwrap().len(), 1);
    assert_eq!(
        store
            .held_message("ev-7")
            .unwrap()
            .unwrap()
            .reviewer
            .as_deref(),
        Some("rita")
    );
    assert_eq!(store.verify().unwrap().records, 4);
}

fn the_bridge_map_links_copies_both_ways(fresh: &mut dyn FnMut() -> Db) {
    let db = fresh();
    let mut store = db.open();
    let row = CopyRow {
        copy_event: "copy-1".into(),
        origin_event: "orig-1".into(),
        origin_network: "xmpp".into(),
        origin_room: "lobby@rooms".into(),
        origin_author: Some("alice".into()),
        copy_network: "irc".into(),
        copy_room: "#lobby".into(),
        excerpt: Some("hello".into()),
        plugin: "bridge".into(),
        created_ms: 1_000,
    };
    assert!(
        store
            .bridge_record(&row, &[NetworkId::new("stanza-id", "x-1")])
            .unwrap()
    );
    assert!(
        !store.bridge_record(&row, &[]).unwrap(),
        "a ticket is recorded once"
    );
    store
        .bridge_settle(
            "copy-1",
            &Delivery::Delivered(vec![NetworkId::new("msgid", "i-1")]),
            2_000,
        )
        .unwrap();
    let follows = store
        .bridge_follow("xmpp", "x-1", "irc", "#lobby")
        .unwrap()
        .unwrap();
    assert_eq!(follows.ids[0].value, "i-1");
    let back = store
        .bridge_follow("irc", "i-1", "xmpp", "lobby@rooms")
        .unwrap()
        .unwrap();
    assert_eq!(back.ids[0].value, "x-1");
    assert!(matches!(
        store.bridge_status("copy-1").unwrap(),
        Some(Delivery::Delivered(_))
    ));
    assert_eq!(store.bridge_copies_of("orig-1").unwrap().len(), 1);
    assert_eq!(store.bridge_recent(Some("delivered"), 10).unwrap().len(), 1);
    assert!(store.bridge_recent(Some("failed"), 10).unwrap().is_empty());
}

fn checkpoints_anchor_the_chain(fresh: &mut dyn FnMut() -> Db) {
    let db = fresh();
    let mut store = filled(&db, 4);
    let key = imgate::archive::checkpoint::Checkpoint::sign(
        &ed25519_key(),
        4,
        &store.head().unwrap().1,
        1_000,
    );
    store.add_checkpoint(&key).unwrap();
    let kept = store.checkpoints().unwrap();
    assert_eq!(kept, vec![key.clone()]);
    assert_eq!(store.verify_anchored(&kept).unwrap().records, 4);
    store
        .append(&mut [record(9, "alice@corp.example", "later", 9_000)])
        .unwrap();
    (db.sql)("DELETE FROM records WHERE seq > 3");
    let e = store.verify_anchored(&kept).unwrap_err();
    assert!(e.why.contains("cut off"), "{e}");
}

fn ed25519_key() -> imgate::archive::checkpoint::SigningKey {
    imgate::archive::checkpoint::SigningKey::from_bytes(&[7; 32])
}

fn a_newer_schema_is_refused(fresh: &mut dyn FnMut() -> Db) {
    let db = fresh();
    drop(db.open());
    (db.bump_schema)();
    let e = Store::connect(&db.config).err().expect("refused");
    assert!(
        e.to_string().contains("newer than this imgate knows"),
        "{e}"
    );
    assert!(Store::connect_read_only(&db.config).is_err());
}

type Check = fn(&mut dyn FnMut() -> Db);

const CHECKS: &[(&str, Check)] = &[
    ("chain", chain_appends_verifies_and_survives_reopening),
    ("tamper", any_change_by_hand_is_found_and_named),
    ("search", search_by_participant_text_and_tag),
    ("purge", purges_respect_legal_holds_and_keep_the_chain),
    ("held", held_messages_are_decided_once),
    ("bridge", the_bridge_map_links_copies_both_ways),
    ("checkpoints", checkpoints_anchor_the_chain),
    ("console", console_accounts_entries_and_pages),
    ("schema", a_newer_schema_is_refused),
];

fn run_all(fresh: &mut dyn FnMut() -> Db) {
    for (name, check) in CHECKS {
        eprintln!("-- {name}");
        check(fresh);
    }
}

#[test]
fn every_check_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let mut n = 0;
    run_all(&mut || {
        n += 1;
        sqlite_db(&dir, n)
    });
}

#[test]
fn every_check_on_postgresql() {
    let pg = Arc::new(Postgres::start());
    run_all(&mut || postgres_db(&pg));
}

#[test]
fn two_writers_on_postgresql_share_one_chain() {
    let pg = Arc::new(Postgres::start());
    let config = StoreConfig::at(pg.fresh_database());
    let writers: Vec<_> = (0..4)
        .map(|t| {
            let config = config.clone();
            std::thread::spawn(move || {
                let mut store = Store::connect(&config).unwrap();
                let mut seqs = Vec::new();
                for i in 0..25 {
                    let mut batch = vec![record(i, "alice@corp.example", &format!("{t}-{i}"), 1)];
                    seqs.extend(store.append(&mut batch).unwrap());
                }
                seqs
            })
        })
        .collect();
    let mut seqs: Vec<u64> = writers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect();
    seqs.sort();
    assert_eq!(seqs, (1..=100).collect::<Vec<_>>());
    assert_eq!(
        Store::connect(&config).unwrap().verify().unwrap().records,
        100
    );
}

/// kv on PostgreSQL, as two gateways see it: two stores with pools of
/// their own on one database.
#[test]
fn kv_on_postgresql_is_atomic_expires_and_keeps_quotas_across_gateways() {
    use imgate::capabilities::kv::{KvConfig, KvStore};
    use imgate::contract::kv::KvError;
    let pg = Arc::new(Postgres::start());
    let url = pg.fresh_database();
    let limits = KvConfig {
        max_keys: 3,
        max_bytes: 4096,
        max_key_bytes: 64,
        max_value_bytes: 1024,
    };
    let a = KvStore::open(limits.clone(), Some(&StoreConfig::at(url.clone()))).unwrap();
    let b = KvStore::open(
        limits,
        Some(&StoreConfig::at(format!("{url}?application_name=second"))),
    )
    .unwrap();
    let (na, nb) = (a.namespace("rate-limit"), b.namespace("rate-limit"));

    na.set("k", b"v".to_vec(), None).unwrap();
    assert_eq!(nb.get("k").unwrap(), Some(b"v".to_vec()));
    assert_eq!(
        b.namespace("other").get("k").unwrap(),
        None,
        "namespaces are private"
    );
    assert!(nb.delete("k").unwrap());
    assert!(!na.delete("k").unwrap());
    assert_eq!(na.get("k").unwrap(), None);

    // Increments from both gateways at once: none lost.
    let threads: Vec<_> = [na.clone(), nb.clone(), na.clone(), nb.clone()]
        .into_iter()
        .map(|ns| {
            std::thread::spawn(move || {
                for _ in 0..50 {
                    ns.increment("n", 1).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(na.increment("n", 0).unwrap(), 200);
    na.set("s", b"abc".to_vec(), None).unwrap();
    assert!(matches!(nb.increment("s", 1), Err(KvError::Store(_))));

    // Compare-and-swap: one winner.
    assert!(na.compare_and_swap("c", None, b"a".to_vec()).unwrap());
    assert!(!nb.compare_and_swap("c", None, b"b".to_vec()).unwrap());
    assert!(nb.compare_and_swap("c", Some(b"a"), b"b".to_vec()).unwrap());
    assert_eq!(na.get("c").unwrap(), Some(b"b".to_vec()));

    // Quotas count the namespace across gateways: n, s, c are 3 keys.
    assert!(matches!(
        nb.set("d", b"x".to_vec(), None),
        Err(KvError::QuotaExceeded(_))
    ));
    assert!(matches!(
        na.set("k", vec![0; 2000], None),
        Err(KvError::TooLarge(_))
    ));
    // An expired key reads as absent at once (no sweep yet) and frees
    // its quota.
    na.delete("s").unwrap();
    na.set(
        "t",
        b"x".to_vec(),
        Some(std::time::Duration::from_millis(1_000)),
    )
    .unwrap();
    assert_eq!(nb.get("t").unwrap(), Some(b"x".to_vec()));
    std::thread::sleep(std::time::Duration::from_millis(1_500));
    assert_eq!(nb.get("t").unwrap(), None);
    nb.set("d", b"x".to_vec(), None).unwrap();

    // The database stopped: an error, not a hang; back: it works again.
    pg.stop();
    let started = std::time::Instant::now();
    assert!(matches!(na.get("d"), Err(KvError::Store(_))));
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    pg.start_again();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while na.get("d").is_err() {
        assert!(std::time::Instant::now() < deadline, "kv did not resume");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(na.get("d").unwrap(), Some(b"x".to_vec()));
}
