//! The audit chain: one append-only chain of entries per campaign, each committing to all
//! before it, so that no entry can be changed, dropped or reordered without every later hash
//! disagreeing.
//!
//! `hash(n) = sha256(hash(n-1) ‖ canonical(body(n)))`, with 32 zero bytes before the first
//! entry. `canonical` is JSON in UTF-8 with object keys sorted by code point, no whitespace,
//! non-ASCII characters as themselves, the short escapes `\" \\ \b \f \n \r \t` and `\u00xx`
//! (lower-case hex) for other control characters, and no floating-point numbers: integers
//! only, decimals travel as strings. This is what `serde_json` writes for a `Value` whose maps
//! are sorted (its default `BTreeMap`), and what Python's
//! `json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)` writes, so an
//! outside verifier needs nothing of ours.

use serde_json::Value;
use sha2::{Digest, Sha256};

/// The hash before the first entry.
pub const GENESIS: [u8; 32] = [0; 32];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CanonicalError {
    #[error("floating-point number at {0}: decimals must travel as strings")]
    Float(String),
}

/// The canonical text of a body. Refuses floating-point numbers anywhere inside.
pub fn canonical(body: &Value) -> Result<String, CanonicalError> {
    check_no_floats(body, "$")?;
    // serde_json's Map is a BTreeMap (the `preserve_order` feature is off), so keys come out
    // sorted by code point: UTF-8 byte order is code point order.
    Ok(serde_json::to_string(body).expect("a Value always serializes"))
}

fn check_no_floats(v: &Value, at: &str) -> Result<(), CanonicalError> {
    match v {
        Value::Number(n) if !(n.is_i64() || n.is_u64()) => Err(CanonicalError::Float(at.into())),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .try_for_each(|(i, x)| check_no_floats(x, &format!("{at}[{i}]"))),
        Value::Object(map) => map
            .iter()
            .try_for_each(|(k, x)| check_no_floats(x, &format!("{at}.{k}"))),
        _ => Ok(()),
    }
}

/// One link: `sha256(prev ‖ canonical_body)`.
pub fn link(prev: &[u8; 32], canonical_body: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(prev);
    h.update(canonical_body.as_bytes());
    h.finalize().into()
}

pub fn to_hex(hash: &[u8; 32]) -> String {
    hex::encode(hash)
}

pub fn from_hex(s: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    (s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
        .then(|| hex::decode_to_slice(s, &mut out).ok())
        .flatten()
        .map(|_| out)
}

/// An entry as stored and published.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Entry {
    pub seq: i64,
    pub kind: String,
    pub body: Value,
    pub prev_hash: String,
    pub hash: String,
}

/// Why a chain does not hold, and where it first breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("seq {seq}: {reason}")]
pub struct ChainBreak {
    pub seq: i64,
    pub reason: String,
}

/// An entry as read for checking: the body as the JSON text that was stored or exported.
#[derive(Debug, Clone, Copy)]
pub struct EntryRef<'a> {
    pub seq: i64,
    pub kind: &'a str,
    /// The `kind` inside the body.
    pub body_kind: &'a str,
    pub body: &'a str,
    pub prev_hash: &'a str,
    pub hash: &'a str,
}

/// Checks entries one by one against the previous one. Feed them in stored order.
#[derive(Debug, Clone)]
pub struct ChainChecker {
    expected_seq: i64,
    prev: [u8; 32],
}

impl Default for ChainChecker {
    fn default() -> Self {
        Self {
            expected_seq: 1,
            prev: GENESIS,
        }
    }
}

impl ChainChecker {
    pub fn checked(&self) -> i64 {
        self.expected_seq - 1
    }

    pub fn head(&self) -> [u8; 32] {
        self.prev
    }

    /// Checks the next entry: its seq, its link to the previous hash, its own hash over the
    /// canonical form of its body, and that its `kind` is the body's.
    ///
    /// The fast path hashes the body text as it is: stored and exported bodies are already
    /// canonical, and if that text hashes to the entry's hash it *is* the hashed preimage
    /// (SHA-256 is collision resistant). Only a body whose text does not (re-formatted by
    /// some other tool, or tampered with) is parsed and canonicalized before judging it.
    pub fn check(&mut self, e: &EntryRef<'_>) -> Result<(), ChainBreak> {
        let fail = |reason: String| ChainBreak { seq: e.seq, reason };
        if e.seq != self.expected_seq {
            return Err(ChainBreak {
                seq: self.expected_seq,
                reason: format!(
                    "expected seq {} but found seq {} (an entry is missing or out of order)",
                    self.expected_seq, e.seq
                ),
            });
        }
        if from_hex(e.prev_hash) != Some(self.prev) {
            return Err(fail(format!(
                "prev_hash {} is not the previous entry's hash {}",
                e.prev_hash,
                to_hex(&self.prev)
            )));
        }
        if e.kind != e.body_kind {
            return Err(fail(format!(
                "kind {:?} differs from the body's kind {:?}",
                e.kind, e.body_kind
            )));
        }
        let claimed = from_hex(e.hash)
            .ok_or_else(|| fail(format!("hash {:?} is not 64 hex digits", e.hash)))?;
        let mut hash = link(&self.prev, e.body);
        if hash != claimed {
            let body: Value =
                serde_json::from_str(e.body).map_err(|x| fail(format!("body is not JSON: {x}")))?;
            let text = canonical(&body).map_err(|x| fail(x.to_string()))?;
            hash = link(&self.prev, &text);
            if hash != claimed {
                return Err(fail(format!(
                    "hash {} does not match the body (computed {})",
                    e.hash,
                    to_hex(&hash)
                )));
            }
        }
        self.prev = hash;
        self.expected_seq += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Vectors written by hand from the rules above, not produced by the code under test.
    #[test]
    fn canonical_json_matches_hand_written_vectors() {
        let cases: Vec<(Value, &str)> = vec![
            (json!({"b": 1, "a": 2}), r#"{"a":2,"b":1}"#),
            // Keys in code point order: upper case before lower case, ASCII before CJK,
            // 中 (U+4E2D) before 文 (U+6587).
            (
                json!({"文": 1, "中": 2, "a": 3, "B": 4, "": 5}),
                r#"{"":5,"B":4,"a":3,"中":2,"文":1}"#,
            ),
            (
                json!({"name": "张三", "unit": "示例市人民医院"}),
                r#"{"name":"张三","unit":"示例市人民医院"}"#,
            ),
            (
                json!(
                    "quote\" backslash\\ nl\n tab\t cr\r bs\u{8} ff\u{c} nul\u{0} us\u{1f} slash/"
                ),
                "\"quote\\\" backslash\\\\ nl\\n tab\\t cr\\r bs\\b ff\\f nul\\u0000 us\\u001f slash/\"",
            ),
            (
                json!({"z": {"y": [3, {"b": null, "a": true}], "x": false}}),
                r#"{"z":{"x":false,"y":[3,{"a":true,"b":null}]}}"#,
            ),
            (
                json!({"big": 9007199254740993u64, "neg": -9223372036854775808i64, "max": 18446744073709551615u64}),
                r#"{"big":9007199254740993,"max":18446744073709551615,"neg":-9223372036854775808}"#,
            ),
            (
                json!({"rate": "0.8305", "emoji": "😀"}),
                "{\"emoji\":\"😀\",\"rate\":\"0.8305\"}",
            ),
            (json!([]), "[]"),
            (json!({}), "{}"),
        ];
        for (value, expected) in cases {
            assert_eq!(canonical(&value).unwrap(), expected);
        }
    }

    #[test]
    fn floats_are_refused_wherever_they_hide() {
        assert_eq!(
            canonical(&json!({"a": [1, {"b": 1.5}]})),
            Err(CanonicalError::Float("$.a[1].b".into()))
        );
        assert!(canonical(&json!(1.0)).is_err());
    }

    #[test]
    fn the_link_is_sha256_of_prev_and_body() {
        // Computed independently with Python's hashlib:
        // sha256(bytes(32) + b"{}") and sha256(bytes.fromhex("ab"*32) + '{"名":"张三"}'.encode())
        assert_eq!(
            to_hex(&link(&GENESIS, "{}")),
            "fb1634c4e6cd4b1f1afe3ce2d6ef080f7ac5d1f357d723ad4dfca782733b62db"
        );
        assert_eq!(
            to_hex(&link(&[0xab; 32], r#"{"名":"张三"}"#)),
            "95bf148cef75765fca9430241ded72574722e99a39cbaeaa2165496d26403038"
        );
        assert_eq!(from_hex(&to_hex(&[7; 32])), Some([7; 32]));
        assert_eq!(from_hex("AB"), None);
    }

    /// The worked example in docs/audit-chain.md, checked against what Python's standard
    /// library computes for it.
    #[test]
    fn the_documented_worked_example_holds() {
        let body = json!({"kind": "category.created", "at": "2026-06-01T08:00:00.000000Z",
            "actor": {"staff_id": "3", "username": "li.organizer", "role": "organizer"},
            "campaign_id": "1", "category": {"id": "2", "name": "护士", "winners": 10}});
        let text = canonical(&body).unwrap();
        assert_eq!(
            text,
            r#"{"actor":{"role":"organizer","staff_id":"3","username":"li.organizer"},"at":"2026-06-01T08:00:00.000000Z","campaign_id":"1","category":{"id":"2","name":"护士","winners":10},"kind":"category.created"}"#
        );
        let prev =
            from_hex("5f0c3a0e8f4d7e2b9a1c6d3e4f5a6b7c8d9e0f1a2b3c4d5e6f708192a3b4c5d6").unwrap();
        assert_eq!(
            to_hex(&link(&prev, &text)),
            "eb5cefbafd4c3578703418e6113b482635df4ec48f523ab40b5cc6fea0fbb682"
        );
    }

    fn chain(bodies: &[Value]) -> Vec<Entry> {
        let mut prev = GENESIS;
        bodies
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let hash = link(&prev, &canonical(b).unwrap());
                let e = Entry {
                    seq: i as i64 + 1,
                    kind: b["kind"].as_str().unwrap().into(),
                    body: b.clone(),
                    prev_hash: to_hex(&prev),
                    hash: to_hex(&hash),
                };
                prev = hash;
                e
            })
            .collect()
    }

    fn first_break(entries: &[Entry]) -> Option<ChainBreak> {
        let mut c = ChainChecker::default();
        entries.iter().find_map(|e| {
            // Pretty-printed on purpose: the checker must judge the canonical form.
            let text = serde_json::to_string_pretty(&e.body).unwrap();
            let body_kind = e.body["kind"].as_str().unwrap_or_default();
            let r = EntryRef {
                seq: e.seq,
                kind: &e.kind,
                body_kind,
                body: &text,
                prev_hash: &e.prev_hash,
                hash: &e.hash,
            };
            c.check(&r).err()
        })
    }

    #[test]
    fn a_good_chain_checks_and_any_tampering_names_the_first_bad_seq() {
        let bodies: Vec<Value> = (0..5).map(|i| json!({"kind": "test", "n": i})).collect();
        let good = chain(&bodies);
        assert_eq!(first_break(&good), None);

        let mut changed = good.clone();
        changed[2].body["n"] = json!(99);
        assert_eq!(first_break(&changed).unwrap().seq, 3);

        let mut deleted = good.clone();
        deleted.remove(1);
        assert_eq!(first_break(&deleted).unwrap().seq, 2);

        let mut reordered = good.clone();
        reordered.swap(3, 4);
        assert_eq!(first_break(&reordered).unwrap().seq, 4);

        // Rewriting an entry and its own hash still breaks the next link.
        let mut rehashed = good.clone();
        rehashed[1].body["n"] = json!(7);
        let prev = from_hex(&rehashed[1].prev_hash).unwrap();
        rehashed[1].hash = to_hex(&link(&prev, &canonical(&rehashed[1].body).unwrap()));
        assert_eq!(first_break(&rehashed).unwrap().seq, 3);

        let mut relabelled = good.clone();
        relabelled[0].kind = "other".into();
        assert_eq!(first_break(&relabelled).unwrap().seq, 1);
    }
}
