//! How fast `minyi verify` checks a chain: builds a chain of ballot-like entries (1,000,000 by
//! default, or the count given as the first argument), writes it as the JSON Lines export, and
//! verifies it from the file on one thread, as `minyi verify --file` does.
//!
//!     cargo bench --bench verify_chain -- 1000000
//!
//! Prints entries per second for the whole check (read, parse, canonicalize, hash, replay)
//! and for the hashing alone, so the two can be compared within one run.

use std::io::{BufWriter, Write};
use std::time::Instant;

use minyi::app::verify;
use minyi::domain::audit::{self, Entry};
use serde_json::json;

fn main() {
    let n: i64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("chain.jsonl");

    let started = Instant::now();
    let mut out = BufWriter::new(std::fs::File::create(&path).expect("create file"));
    let mut prev = audit::GENESIS;
    let mut texts = Vec::with_capacity(n as usize);
    for seq in 1..=n {
        let body = json!({
            "kind": "ballot",
            "at": "2026-11-25T08:00:00.000000Z",
            "campaign_id": "1",
            "voter_id": format!("{:032x}", seq * 7919),
            "candidate_ids": [(seq % 36 + 1).to_string(), ((seq + 7) % 36 + 1).to_string()],
        });
        let text = audit::canonical(&body).expect("no floats");
        let hash = audit::link(&prev, &text);
        let entry = Entry {
            seq,
            kind: "ballot".into(),
            body,
            prev_hash: audit::to_hex(&prev),
            hash: audit::to_hex(&hash),
        };
        serde_json::to_writer(&mut out, &entry).expect("write");
        out.write_all(b"\n").expect("write");
        texts.push(text);
        prev = hash;
    }
    out.flush().expect("flush");
    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    println!(
        "built {n} entries ({:.1} MB) in {:.2} s",
        size as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );

    let started = Instant::now();
    let mut prev = audit::GENESIS;
    for text in &texts {
        prev = audit::link(&prev, text);
    }
    let hash_only = started.elapsed();
    std::hint::black_box(prev);

    let file = std::fs::File::open(&path).expect("open");
    let report =
        verify::from_reader(std::io::BufReader::with_capacity(1 << 20, file)).expect("read");
    assert!(report.ok(), "{:?}", report.problem);
    assert_eq!(report.entries, n);
    println!(
        "verify --file: {n} entries in {:.2} s = {:.0} entries/s (one thread)",
        report.elapsed.as_secs_f64(),
        report.rate()
    );
    println!(
        "sha256 links alone: {:.0} entries/s; the full check costs {:.1}x the hashing",
        n as f64 / hash_only.as_secs_f64(),
        report.elapsed.as_secs_f64() / hash_only.as_secs_f64()
    );
}
