//! The snapshot rule, checked against a model: whatever writes, deletions, renames, expiry,
//! FLUSHDB and SWAPDB happen between walk steps, the snapshot records every key that
//! existed when it started exactly once, in the database it was in, with the value and
//! TTL it had then, and nothing else.

use ferrokv_keyspace::db::Clock;
use ferrokv_keyspace::snapshot::next_epoch;
use ferrokv_keyspace::{Db, DbEntry, Obj, SmallBytes, Value};
use proptest::prelude::*;
use std::collections::BTreeMap;

type State = BTreeMap<(usize, Vec<u8>), (i64, Option<i64>)>;

#[derive(Clone, Debug)]
enum Op {
    Set { db: usize, key: u8, val: i64 },
    SetKeepTtl { db: usize, key: u8, val: i64 },
    Incr { db: usize, key: u8 },
    EntrySet { db: usize, key: u8, val: i64 },
    Del { db: usize, key: u8 },
    Rename { db: usize, from: u8, to: u8 },
    Move { from: usize, key: u8 },
    Expire { db: usize, key: u8, at: i64 },
    Persist { db: usize, key: u8 },
    Lookup { db: usize, key: u8 },
    ActiveExpire { db: usize },
    Flush { db: usize },
    Swap,
    Step { budget: usize },
    Tick,
}

fn key(k: u8) -> Vec<u8> {
    format!("k{k}").into_bytes()
}

fn op() -> impl Strategy<Value = Op> {
    let db = 0..2usize;
    let k = 0..40u8;
    prop_oneof![
        6 => (db.clone(), k.clone(), any::<i64>()).prop_map(|(db, key, val)| Op::Set { db, key, val }),
        2 => (db.clone(), k.clone(), any::<i64>()).prop_map(|(db, key, val)| Op::SetKeepTtl { db, key, val }),
        4 => (db.clone(), k.clone()).prop_map(|(db, key)| Op::Incr { db, key }),
        3 => (db.clone(), k.clone(), any::<i64>()).prop_map(|(db, key, val)| Op::EntrySet { db, key, val }),
        3 => (db.clone(), k.clone()).prop_map(|(db, key)| Op::Del { db, key }),
        2 => (db.clone(), k.clone(), k.clone()).prop_map(|(db, from, to)| Op::Rename { db, from, to }),
        1 => (db.clone(), k.clone()).prop_map(|(from, key)| Op::Move { from, key }),
        3 => (db.clone(), k.clone(), 0..20i64).prop_map(|(db, key, at)| Op::Expire { db, key, at }),
        1 => (db.clone(), k.clone()).prop_map(|(db, key)| Op::Persist { db, key }),
        2 => (db.clone(), k.clone()).prop_map(|(db, key)| Op::Lookup { db, key }),
        1 => db.clone().prop_map(|db| Op::ActiveExpire { db }),
        1 => db.clone().prop_map(|db| Op::Flush { db }),
        1 => Just(Op::Swap),
        4 => (1..8usize).prop_map(|budget| Op::Step { budget }),
        1 => Just(Op::Tick),
    ]
}

fn state(dbs: &[Db]) -> State {
    let mut m = State::new();
    for db in dbs {
        for (k, o) in db.iter(i64::MIN) {
            let Value::Int(v) = o.value else { panic!("model stores integers") };
            m.insert((db.id, k.to_vec()), (v, db.expire_at(k)));
        }
    }
    m
}

fn record(out: &mut State, db: usize, k: &SmallBytes, o: &Obj, e: Option<i64>) {
    let Value::Int(v) = o.value else { panic!("recorded a stand-in or non-integer: {o:?}") };
    let prev = out.insert((db, k.to_vec()), (v, e));
    assert!(prev.is_none(), "key {k:?} of db {db} recorded twice");
}

fn apply(dbs: &mut [Db], op: &Op, now: &mut i64) {
    let clock = Clock { now_ms: *now, master: true };
    match *op {
        Op::Set { db, key: k, val } => {
            dbs[db].set(&key(k), Obj::new(Value::Int(val), 0), false);
        }
        Op::SetKeepTtl { db, key: k, val } => {
            dbs[db].set(&key(k), Obj::new(Value::Int(val), 0), true);
        }
        Op::Incr { db, key: k } => {
            if let Some(o) = dbs[db].lookup_mut(&key(k), clock) {
                if let Value::Int(n) = &mut o.value {
                    *n = n.wrapping_add(1);
                }
            }
        }
        Op::EntrySet { db, key: k, val } => match dbs[db].entry(&key(k), clock) {
            DbEntry::Occupied { obj, .. } => *obj = Obj::new(Value::Int(val), 0),
            DbEntry::Vacant(v) => v.insert(Obj::new(Value::Int(val), 0)),
        },
        Op::Del { db, key: k } => {
            if dbs[db].lookup(&key(k), clock).is_some() {
                dbs[db].remove(&key(k));
            }
        }
        Op::Rename { db, from, to } => {
            if from != to && dbs[db].lookup(&key(from), clock).is_some() {
                dbs[db].remove(&key(to));
                let (_, o, ttl) = dbs[db].take(&key(from)).expect("looked up");
                dbs[db].add(&key(to), o);
                if let Some(t) = ttl {
                    dbs[db].set_expire(&key(to), t);
                }
            }
        }
        Op::Move { from, key: k } => {
            let to = 1 - from;
            if dbs[from].lookup(&key(k), clock).is_some() && dbs[to].lookup(&key(k), clock).is_none() {
                let (_, o, ttl) = dbs[from].take(&key(k)).expect("looked up");
                dbs[to].add(&key(k), o);
                if let Some(t) = ttl {
                    dbs[to].set_expire(&key(k), t);
                }
            }
        }
        Op::Expire { db, key: k, at } => {
            if dbs[db].lookup(&key(k), clock).is_some() {
                dbs[db].set_expire(&key(k), at);
            }
        }
        Op::Persist { db, key: k } => {
            if dbs[db].lookup(&key(k), clock).is_some() {
                dbs[db].remove_expire(&key(k));
            }
        }
        Op::Lookup { db, key: k } => {
            dbs[db].lookup(&key(k), clock);
        }
        Op::ActiveExpire { db } => {
            dbs[db].active_expire_step(*now, 10);
        }
        Op::Flush { db } => {
            dbs[db].flush();
        }
        Op::Swap => {
            let (a, b) = dbs.split_at_mut(1);
            a[0].swap_contents(&mut b[0]);
        }
        Op::Step { .. } | Op::Tick => {}
    }
    if let Op::Tick = op {
        *now += 3;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn snapshot_records_the_state_at_its_start(
        before in prop::collection::vec(op(), 0..120),
        during in prop::collection::vec(op(), 0..200),
    ) {
        let mut dbs = vec![Db::new(0), Db::new(1)];
        let mut now = 1;
        for o in &before {
            apply(&mut dbs, o, &mut now);
        }
        let expected = state(&dbs);

        let epoch = next_epoch();
        for db in dbs.iter_mut() {
            db.begin_snapshot(epoch);
        }
        let mut got = State::new();
        let step = |dbs: &mut [Db], budget: usize, got: &mut State| {
            let mut done = true;
            for db in dbs.iter_mut() {
                done &= db.snapshot_step(budget, &mut |d, k, o, e| record(got, d, k, o, e));
            }
            for db in dbs.iter_mut() {
                for p in db.take_preserved() {
                    record(got, p.db, &p.key, &p.obj, p.expire);
                }
            }
            done
        };
        for o in &during {
            apply(&mut dbs, o, &mut now);
            if let Op::Step { budget } = *o {
                step(&mut dbs, budget, &mut got);
            }
        }
        while !step(&mut dbs, 16, &mut got) {}
        for db in dbs.iter_mut() {
            db.end_snapshot();
        }
        prop_assert_eq!(got, expected);
    }
}
