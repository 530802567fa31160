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
//! - `sleep`: sleeps 10 s in WASI (a host-side wait, not wasm code);
//! - `println`: prints a million lines to stdout;
//! - `rewrite-crlf`, `rewrite-nul`, `rewrite-ctl`: rewrites the body to
//!   text with CRLF + an IRC command, a NUL, or XML-forbidden characters;
//!   `rewrite-long-crlf`: over 512 bytes, with CRLF + a command inside;
//! - `reason-crlf`, `reason-ctl`: blocks with a reason holding CRLF + an
//!   IRC command, or NUL and other XML-forbidden characters;
//! - `tag-host`, `tag-crlf`: a tag in the host's `imgate:` namespace, or
//!   one with CRLF.
//! - anything starting `echo:` rewrites the body to what follows, with
//!   `\r`, `\n` and `\0` written as escapes turned into those bytes.
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
            "sleep" => {
                std::thread::sleep(std::time::Duration::from_secs(10));
                Verdict::allow().with_tag("hostile:woke")
            }
            "println" => {
                for i in 0..1_000_000 {
                    println!("hostile line {i}");
                }
                Verdict::allow().with_tag("hostile:printed")
            }
            "rewrite-crlf" => Verdict::rewrite("hi\r\nQUIT :pwned\r\nPRIVMSG #other :injected"),
            "rewrite-long-crlf" => Verdict::rewrite(format!(
                "{}\r\nQUIT :late\r\n{}",
                "a ".repeat(300),
                "b".repeat(600)
            )),
            "rewrite-nul" => Verdict::rewrite("n\0ul"),
            "rewrite-ctl" => Verdict::rewrite("a\u{1}b\u{b}c\u{fffe}"),
            "reason-crlf" => Verdict::block("no\r\nQUIT :pwned\r\nPRIVMSG #other :injected"),
            "reason-ctl" => Verdict::block("no\0\u{1}\u{b}\u{fffe}</text>"),
            "tag-host" => Verdict::allow().with_tag("imgate:failed:archiver"),
            "tag-crlf" => Verdict::allow().with_tag("a\r\nb"),
            body if body.starts_with("echo:") => Verdict::rewrite(
                body["echo:".len()..]
                    .replace("\\r", "\r")
                    .replace("\\n", "\n")
                    .replace("\\0", "\0"),
            ),
            "kv" => match imgate_sdk::kv::increment("hits", 1) {
                Ok(n) => Verdict::allow().with_tag(format!("hits:{n}")),
                Err(e) => Verdict::block(format!("kv failed: {e:?}")),
            },
            _ => Verdict::allow().with_tag("hostile:served"),
        }
    }
}

imgate_sdk::export_plugin!(Hostile);
