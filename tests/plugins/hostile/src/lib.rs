//! A deliberately hostile plugin: the message body picks the attack. Used
//! by `tests/hostile.rs` to show each is contained and that the host
//! serves the next event.
//!
//! - `loop`: spins forever (the deadline stops it);
//! - `bomb`: allocates until refused (the memory cap stops it);
//! - `panic`: panics (a trap);
//! - `recurse`: overflows the stack (a trap);
//! - `huge`: rewrites the body to 100 MB (the host refuses the verdict);
//! - `tags`: returns 10 000 tags (the host refuses the verdict);
//! - `kv`: calls the `kv` capability, so the component imports it and
//!   fails to load unless `kv` is granted;
//! - `probe-wasi`: tries the filesystem, the environment and stdout, and
//!   reports what it got in tags (the WASI it gets is deny-all).
//!
//! Config `init`: `"loop"` spins in `init`, `"fail"` refuses to start.

use imgate_sdk::{Config, Event, Plugin, Verdict};

pub struct Hostile;

#[inline(never)]
#[allow(unconditional_recursion)]
fn recurse(n: u64) -> u64 {
    std::hint::black_box(recurse(std::hint::black_box(n + 1)) + 1)
}

impl Plugin for Hostile {
    fn init(config: Config) -> Result<Self, String> {
        match config.get::<String>("init")?.as_deref() {
            Some("loop") => {
                let mut n = 0u64;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            Some("fail") => Err("configured to refuse".into()),
            _ => Ok(Hostile),
        }
    }

    fn handle(&mut self, event: &Event<'_>) -> Verdict {
        match event.body().unwrap_or_default().as_str() {
            "loop" => {
                let mut n = 0u64;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            "bomb" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            "panic" => panic!("hostile plugin panicked on purpose"),
            "recurse" => Verdict::block(format!("{}", recurse(0))),
            "huge" => Verdict::rewrite("x".repeat(100 << 20)),
            "tags" => (0..10_000).fold(Verdict::allow(), |v, i| v.with_tag(format!("t{i}"))),
            "probe-wasi" => {
                println!("hostile stdout line");
                eprintln!("hostile stderr line");
                let fs = match std::fs::read_dir("/") {
                    Ok(_) => "fs:open",
                    Err(_) => "fs:denied",
                };
                let env = format!("env:{}", std::env::vars().count());
                let file = match std::fs::write("/tmp/imgate-hostile-escape", b"x") {
                    Ok(()) => "write:open",
                    Err(_) => "write:denied",
                };
                Verdict::allow().with_tag(fs).with_tag(env).with_tag(file)
            }
            "kv" => match imgate_sdk::kv::increment("hits", 1) {
                Ok(n) => Verdict::allow().with_tag(format!("hits:{n}")),
                Err(e) => Verdict::block(format!("kv failed: {e:?}")),
            },
            _ => Verdict::allow().with_tag("hostile:served"),
        }
    }
}

imgate_sdk::export_plugin!(Hostile);
