//! ngircd 26's line splitting (`Handle_Buffer` in src/ngircd/conn.c,
//! without STRICT_RFC), as a model for the differential target.
//!
//! The read buffer is a C string: searches stop at the first NUL. A line
//! ends at the first CR or LF before the first CRLF, else at that CRLF,
//! else at the first CR or LF. An empty line is skipped. A line whose
//! length with its terminator exceeds 512 bytes closes the connection, as
//! does a buffer of 513 bytes or more with no line end.

const COMMAND_LEN: usize = 513;

/// What ngircd does with the next part of the buffer.
#[derive(Debug, PartialEq)]
pub enum Read {
    /// Parses and runs this line.
    Line(Vec<u8>),
    /// Closes the connection ("Request too long").
    Close,
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// What ngircd runs from `input`, in order, when it all arrives at once.
pub fn lines(input: &[u8]) -> Vec<Read> {
    let mut buf = input;
    let mut out = Vec::new();
    while !buf.is_empty() {
        let cstr = &buf[..buf.iter().position(|&b| b == 0).unwrap_or(buf.len())];
        let crlf = find(cstr, b"\r\n");
        let cr = cstr.iter().position(|&b| b == b'\r');
        let lf = cstr.iter().position(|&b| b == b'\n');
        let first = match (cr, lf) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let (ptr, delta) = match (crlf, first) {
            (Some(p), Some(f)) if f < p => (f, 1),
            (Some(p), _) => (p, 2),
            (None, Some(f)) => (f, 1),
            (None, None) => {
                if buf.len() >= COMMAND_LEN {
                    out.push(Read::Close);
                }
                break; // waits for more
            }
        };
        let len = ptr + delta;
        if len > COMMAND_LEN - 1 {
            out.push(Read::Close);
            break;
        }
        if len > delta {
            out.push(Read::Line(buf[..ptr].to_vec()));
        }
        buf = &buf[len..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_model_splits_as_ngircd_does() {
        let line = |s: &[u8]| Read::Line(s.to_vec());
        assert_eq!(
            lines(b"A\r\nB\rC\nD\n\rE\r\n"),
            vec![line(b"A"), line(b"B"), line(b"C"), line(b"D"), line(b"E")]
        );
        // A NUL hides the rest of the buffer: ngircd waits.
        assert_eq!(lines(b"A\0B\r\nC\r\n"), vec![]);
        let long = [b'x'; 600];
        assert_eq!(lines(&long), vec![Read::Close]);
        let mut too_long = vec![b'x'; 511];
        too_long.extend_from_slice(b"\r\n");
        assert_eq!(lines(&too_long), vec![Read::Close]);
        too_long.drain(..1);
        assert_eq!(lines(&too_long), vec![line(&[b'x'; 510])]);
    }
}
