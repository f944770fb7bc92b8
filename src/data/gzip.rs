//! A gzip file as `gzip -d` reads it: one or more members, then at most zero padding. Bytes after
//! the last member that are neither a new member nor zeros are reported as such (flate2's
//! `MultiGzDecoder` takes them for a member header and reports a truncated or corrupt file).

use std::fmt;
use std::io::{self, BufRead, Read};

use flate2::bufread::GzDecoder;

/// Bytes after a complete gzip stream that are not gzip data.
#[derive(Debug)]
pub(super) struct TrailingBytes;

impl fmt::Display for TrailingBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the compressed data is complete, but bytes that are not gzip follow it: expected \
             the file to end there (strip them, or recompress the data)"
        )
    }
}

impl std::error::Error for TrailingBytes {}

/// Every member of a gzip stream, in order.
pub(super) struct Members<R: BufRead> {
    member: Option<GzDecoder<R>>,
}

impl<R: BufRead> Members<R> {
    /// Decode `inner`, which starts with a gzip member.
    pub(super) fn new(inner: R) -> Self {
        Members {
            member: Some(GzDecoder::new(inner)),
        }
    }
}

/// What follows a member: another member, the end (zero padding is the end), or stray bytes.
fn next_member<R: BufRead>(inner: &mut R) -> io::Result<bool> {
    let head = inner.fill_buf()?;
    if head.is_empty() {
        return Ok(false);
    }
    if head[0] == 0x1f {
        return Ok(true);
    }
    loop {
        let head = inner.fill_buf()?;
        if head.is_empty() {
            return Ok(false);
        }
        if head.iter().any(|&b| b != 0) {
            return Err(io::Error::new(io::ErrorKind::InvalidData, TrailingBytes));
        }
        let n = head.len();
        inner.consume(n);
    }
}

impl<R: BufRead> Read for Members<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        loop {
            let Some(member) = self.member.as_mut() else {
                return Ok(0);
            };
            let n = member.read(out)?;
            if n > 0 || out.is_empty() {
                return Ok(n);
            }
            let mut inner = self
                .member
                .take()
                .map(GzDecoder::into_inner)
                .ok_or_else(|| io::Error::other("gzip decoder state lost"))?;
            if next_member(&mut inner)? {
                self.member = Some(GzDecoder::new(inner));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use flate2::Compression;
    use flate2::write::GzEncoder;

    use super::*;

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap()
    }

    fn decode(bytes: &[u8]) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        Members::new(bytes).read_to_end(&mut out)?;
        Ok(out)
    }

    #[test]
    fn members_then_zero_padding() {
        let mut bytes = gzip(b"one ");
        bytes.extend(gzip(b"two"));
        bytes.extend([0; 512]);
        assert_eq!(decode(&bytes).unwrap(), b"one two");
    }

    #[test]
    fn stray_bytes_are_not_a_truncated_member() {
        let mut bytes = gzip(b"data");
        bytes.extend(b"xyz");
        let e = decode(&bytes).unwrap_err();
        assert!(e.get_ref().unwrap().is::<TrailingBytes>(), "{e}");
    }

    #[test]
    fn a_cut_member_is_still_unexpected_eof() {
        let bytes = gzip(&[7; 10_000]);
        let e = decode(&bytes[..bytes.len() - 4]).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
    }
}
