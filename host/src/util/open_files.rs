//! The open-file limit: every proxied session holds two sockets (client
//! and upstream), so the soft limit a shell hands out (often 1,024) caps a
//! gateway at a few hundred sessions. Raised to the hard limit at start,
//! as far as the process may without privileges.

use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

/// Raises the soft open-file limit to the hard one; returns the limit now
/// in force (`None` when unlimited or unknown).
pub fn raise_to_hard() -> Option<u64> {
    let limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        let raised = Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        if let Err(e) = setrlimit(Resource::Nofile, raised) {
            tracing::warn!(error = %e, "could not raise the open-file limit");
        }
    }
    getrlimit(Resource::Nofile).current
}

/// Sessions that fit in `limit` open files: two sockets each, after a
/// reserve for listeners, the archive, plugins and the admin API.
pub fn sessions_within(limit: u64) -> u64 {
    limit.saturating_sub(RESERVED) / 2
}

const RESERVED: u64 = 64;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soft_limit_ends_at_the_hard_one() {
        let now = raise_to_hard();
        let limit = getrlimit(Resource::Nofile);
        assert_eq!(now, limit.current);
        assert_eq!(limit.current, limit.maximum);
    }

    #[test]
    fn each_session_takes_two_files_after_the_reserve() {
        assert_eq!(sessions_within(20_000), 9_968);
        assert_eq!(sessions_within(10), 0);
    }
}
