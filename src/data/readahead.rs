//! Inflate on a second thread, so that decompressing a `.gz` and parsing its text overlap.

use std::io::{self, BufRead, Read};
use std::sync::mpsc::{Receiver, sync_channel};

/// Chunk handed from the inflating thread to the parser.
const CHUNK: usize = 1 << 20;

/// A `BufRead` fed by a thread that reads `inner` ahead in 1 MiB chunks (at most 4 in flight).
pub(super) struct ReadAhead {
    chunks: Receiver<io::Result<Vec<u8>>>,
    current: Vec<u8>,
    pos: usize,
    finished: bool,
}

impl ReadAhead {
    /// Start reading `inner` on its own thread.
    pub(super) fn spawn(mut inner: impl Read + Send + 'static) -> ReadAhead {
        let (tx, rx) = sync_channel(4);
        std::thread::spawn(move || {
            loop {
                let mut buf = vec![0; CHUNK];
                let mut filled = 0;
                let result = loop {
                    match inner.read(&mut buf[filled..]) {
                        Ok(0) => break Ok(()),
                        Ok(n) => {
                            filled += n;
                            if filled == CHUNK {
                                break Ok(());
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => break Err(e),
                    }
                };
                buf.truncate(filled);
                let end = filled < CHUNK;
                if filled > 0 && tx.send(Ok(buf)).is_err() {
                    return; // the reader was dropped
                }
                if let Err(e) = result {
                    let _ = tx.send(Err(e));
                    return;
                }
                if end {
                    return;
                }
            }
        });
        ReadAhead {
            chunks: rx,
            current: Vec::new(),
            pos: 0,
            finished: false,
        }
    }
}

impl Read for ReadAhead {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(out.len());
        out[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for ReadAhead {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        while self.pos == self.current.len() && !self.finished {
            match self.chunks.recv() {
                Ok(Ok(chunk)) => {
                    self.current = chunk;
                    self.pos = 0;
                }
                Ok(Err(e)) => {
                    self.finished = true;
                    return Err(e);
                }
                Err(_) => self.finished = true, // the thread is done: end of data
            }
        }
        Ok(&self.current[self.pos..])
    }

    fn consume(&mut self, amount: usize) {
        self.pos = (self.pos + amount).min(self.current.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passes_every_byte_through() {
        let data: Vec<u8> = (0..3 * CHUNK + 17).map(|i| (i % 251) as u8).collect();
        let mut out = Vec::new();
        ReadAhead::spawn(io::Cursor::new(data.clone()))
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, data);
    }

    #[test]
    fn passes_errors_on() {
        struct Failing(usize);
        impl Read for Failing {
            fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
                if self.0 == 0 {
                    return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "cut"));
                }
                let n = self.0.min(out.len());
                self.0 -= n;
                Ok(n)
            }
        }
        let mut out = Vec::new();
        let e = ReadAhead::spawn(Failing(10))
            .read_to_end(&mut out)
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
        assert_eq!(out.len(), 10);
    }
}
