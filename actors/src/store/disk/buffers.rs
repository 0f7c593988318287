//! Chunk buffers of the disk reader, reused instead of allocated anew for every chunk.
//!
//! A 1 MiB buffer from the allocator is fresh memory: glibc maps it for the allocation and
//! unmaps it on free, so the kernel zeroes and faults in every page again for every chunk read,
//! which cost a fifth of a transfer's CPU time out of tmpfs. A buffer handed out here goes back
//! to the pool when the last [`Bytes`] over it drops (the destination wrote it), so a transfer
//! keeps reusing the same few pages. A buffer kept for good (a memory mount holding the chunk)
//! simply never comes back.
//!
//! Rule: the pool holds at most [`KEPT`] free buffers, so an idle store keeps at most that many
//! chunks of memory.

use std::io::{self, Read};
use std::sync::{Arc, Mutex};

use bytes::Bytes;

/// Free buffers a pool keeps: enough for the chunks in flight of a few files.
const KEPT: usize = 16;

/// A pool of equal-sized buffers. Cheap to clone.
#[derive(Debug, Clone)]
pub(super) struct Buffers {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    size: usize,
    free: Mutex<Vec<Vec<u8>>>,
}

/// A buffer on loan: back to its pool when dropped.
struct Loan {
    buf: Vec<u8>,
    pool: Arc<Inner>,
}

impl AsRef<[u8]> for Loan {
    fn as_ref(&self) -> &[u8] {
        &self.buf
    }
}

impl Drop for Loan {
    fn drop(&mut self) {
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        if let Ok(mut free) = self.pool.free.lock()
            && free.len() < KEPT
        {
            free.push(buf);
        }
    }
}

impl Buffers {
    /// A pool of buffers of `size` bytes.
    pub(super) fn new(size: usize) -> Buffers {
        Buffers {
            inner: Arc::new(Inner {
                size,
                free: Mutex::new(Vec::new()),
            }),
        }
    }

    /// Reads up to `want` bytes of `file` (fewer only at its end). A read of the pool's buffer
    /// size goes into a pooled buffer; any other into a buffer of its own. A blocking call.
    pub(super) fn read(&self, file: &mut std::fs::File, want: usize) -> io::Result<Bytes> {
        if want != self.inner.size {
            let mut buf = Vec::with_capacity(want);
            file.take(want as u64).read_to_end(&mut buf)?;
            return Ok(Bytes::from(buf));
        }
        let reused = self.inner.free.lock().ok().and_then(|mut free| free.pop());
        let mut buf = reused.unwrap_or_else(|| Vec::with_capacity(want));
        // `read_to_end` fills the spare capacity without zeroing it first.
        file.take(want as u64).read_to_end(&mut buf)?;
        Ok(Bytes::from_owner(Loan {
            buf,
            pool: self.inner.clone(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn buffers_come_back_when_their_bytes_drop() {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(&[7u8; 100]).unwrap();
        let pool = Buffers::new(40);
        let mut reread = || {
            use std::io::Seek;
            file.seek(io::SeekFrom::Start(0)).unwrap();
            pool.read(&mut file, 40).unwrap()
        };
        let first = reread();
        assert_eq!(&first[..], &[7u8; 40][..]);
        let address = first.as_ptr();
        let copy = first.clone();
        drop(first);
        assert_eq!(pool.inner.free.lock().unwrap().len(), 0, "still shared");
        drop(copy);
        assert_eq!(pool.inner.free.lock().unwrap().len(), 1);
        let again = reread();
        assert_eq!(again.as_ptr(), address, "the same buffer, reused");
        assert_eq!(&again[..], &[7u8; 40][..]);
    }
}
