//! Reading files an operator points imgate at (plugins, signatures,
//! keys): regular files only, with a size limit. A path that names
//! `/dev/zero` would otherwise be read without end, and a FIFO would hang
//! the reader until someone writes to it.

use std::io::{Error, ErrorKind, Read};
use std::path::Path;

/// Reads `path` whole if it is a regular file of at most `max` bytes.
///
/// # Errors
/// The file cannot be opened or read (`NotFound` when it does not exist),
/// is not a regular file (`InvalidInput`), or is larger than `max`
/// (`FileTooLarge`).
pub fn read_regular(path: &Path, max: u64) -> std::io::Result<Vec<u8>> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    // Non-blocking open: opening a FIFO for reading otherwise waits for a
    // writer. Regular files ignore the flag.
    #[cfg(target_os = "linux")]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, 0o4000 /* O_NONBLOCK */);
    let file = options.open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "not a regular file (a device, FIFO, socket or directory)",
        ));
    }
    if meta.len() > max {
        return Err(too_large(max));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    // The file may grow after the check: read at most one byte past it.
    file.take(max + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(too_large(max));
    }
    Ok(bytes)
}

fn too_large(max: u64) -> Error {
    Error::new(
        ErrorKind::FileTooLarge,
        format!("larger than the limit of {} MiB", max >> 20),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_regular_files_within_the_limit_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let ok = dir.path().join("ok");
        std::fs::write(&ok, b"1234").unwrap();
        assert_eq!(read_regular(&ok, 4).unwrap(), b"1234");
        let e = read_regular(&ok, 3).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::FileTooLarge);
        let e = read_regular(Path::new("/dev/zero"), 1 << 20).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
        assert_eq!(
            read_regular(dir.path(), 1 << 20).unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
        assert_eq!(
            read_regular(&dir.path().join("missing"), 1)
                .unwrap_err()
                .kind(),
            ErrorKind::NotFound
        );
        #[cfg(unix)]
        {
            let fifo = dir.path().join("fifo");
            let made = std::process::Command::new("mkfifo").arg(&fifo).status();
            if made.is_ok_and(|s| s.success()) {
                let e = read_regular(&fifo, 1 << 20).unwrap_err();
                assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
            }
        }
    }
}
