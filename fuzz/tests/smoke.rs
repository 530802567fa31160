//! The fuzz targets as a smoke test in every `cargo test`: each runs over
//! its committed corpus (`fuzz/corpus/<target>/`), then over mutations of
//! it for `IMGATE_FUZZ_SMOKE_S` seconds (default 30), from a fixed seed
//! (`IMGATE_FUZZ_SEED` to change it). No coverage guidance here; the long,
//! guided runs are `make fuzz`.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::time::{Duration, Instant};

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    let mut out: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| std::fs::read(e.ok()?.path()).ok())
        .collect();
    out.sort();
    assert!(!out.is_empty(), "{} is empty", dir.display());
    out
}

/// xorshift64*: reproducible from the seed printed on failure.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const INTERESTING: &[u8] = b"\r\n\0 :@<>&#;/'\"=\x01\x0b\x0c\xef\xbf\xbe\xff\xc3\x80";

fn mutate(rng: &mut Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut v = seeds[rng.below(seeds.len())].clone();
    for _ in 0..1 + rng.below(8) {
        let at = rng.below(v.len() + 1);
        match rng.below(6) {
            0 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] ^= 1 << rng.below(8);
            }
            1 => v.insert(at, INTERESTING[rng.below(INTERESTING.len())]),
            2 => v.insert(at, rng.next() as u8),
            3 if !v.is_empty() => {
                let end = (at + rng.below(16)).min(v.len());
                v.drain(at.min(end)..end);
            }
            4 if !v.is_empty() => {
                let start = rng.below(v.len());
                let end = (start + rng.below(64)).min(v.len());
                let piece = v[start..end].to_vec();
                v.splice(at..at, piece);
            }
            _ => {
                let other = &seeds[rng.below(seeds.len())];
                let start = rng.below(other.len() + 1);
                let end = (start + rng.below(128)).min(other.len());
                v.splice(at..at, other[start..end].iter().copied());
            }
        }
    }
    v.truncate(64 << 10);
    v
}

fn smoke(target: &str, check: fn(&[u8])) {
    let seeds = corpus(target);
    let run = |input: &[u8]| {
        if catch_unwind(AssertUnwindSafe(|| check(input))).is_err() {
            let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("crash-{target}"));
            let _ = std::fs::write(&path, input);
            panic!(
                "{target} failed on {} (input saved to {})",
                escape(input),
                path.display()
            );
        }
    };
    for s in &seeds {
        run(s);
    }
    let budget = std::env::var("IMGATE_FUZZ_SMOKE_S")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    // The same mutations on every run (a red CI run is then the code's
    // doing, not the dice's); IMGATE_FUZZ_SEED explores others.
    let seed = std::env::var("IMGATE_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x9E37_79B9_7F4A_7C15u64)
        ^ target
            .bytes()
            .fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
    let mut rng = Rng(seed | 1);
    let end = Instant::now() + Duration::from_secs(budget);
    let mut n = 0u64;
    while Instant::now() < end {
        for _ in 0..256 {
            run(&mutate(&mut rng, &seeds));
            n += 1;
        }
    }
    eprintln!(
        "{target}: {} corpus inputs, {n} mutations (seed {seed}), 0 failures",
        seeds.len()
    );
}

fn escape(b: &[u8]) -> String {
    b.iter()
        .flat_map(|&c| std::ascii::escape_default(c))
        .map(char::from)
        .collect()
}

#[test]
fn irc_codec() {
    smoke("irc_codec", imgate_fuzz::irc_codec);
}

#[test]
fn irc_split_vs_ngircd() {
    smoke("irc_split_vs_ngircd", imgate_fuzz::irc_split_vs_ngircd);
}

#[test]
fn xmpp_codec() {
    smoke("xmpp_codec", imgate_fuzz::xmpp_codec);
}

#[test]
fn replay_json() {
    smoke("replay_json", imgate_fuzz::replay_json);
}

#[test]
fn config() {
    smoke("config", imgate_fuzz::config);
}
