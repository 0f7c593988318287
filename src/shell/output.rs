//! Where a command's output goes: the process's stdout, or a virtual file when redirected.
//!
//! Commands write bytes to an [`Output`]; small writes are gathered into chunks so that `ls` of a
//! large directory into `/vdisk/list` does not become one store write per line. A closed stdout
//! (`mavfs exec 'cat big' | head`) ends the command quietly, as in coreutils run under a shell.

use std::io::Write;

use crate::engine::FileWrite;
use bytes::{Bytes, BytesMut};
use mavfs_actors::Error;
use mavfs_actors::quote::Shown;

/// Gathered bytes are handed on once this many are waiting.
const GATHER_BYTES: usize = 64 * 1024;

/// Why writing output stopped.
#[derive(Debug)]
pub enum OutputError {
    /// The reader of stdout went away; the command should stop without an error.
    Closed,
    /// Writing to a virtual file failed.
    Store(Error),
    /// Writing to stdout failed otherwise.
    Stdout(std::io::Error),
}

enum Target {
    Stdout,
    File(FileWrite),
    /// Kept in memory, where a unit test reads what was handed on ([`Output::memory`]).
    #[cfg(test)]
    Memory(std::sync::Arc<std::sync::Mutex<Vec<u8>>>),
}

/// A command's output stream.
pub struct Output {
    target: Target,
    pending: BytesMut,
}

impl Output {
    pub fn stdout() -> Self {
        Output {
            target: Target::Stdout,
            pending: BytesMut::new(),
        }
    }

    /// Whether this is the process's stdout, not a redirection into a virtual file.
    pub fn is_stdout(&self) -> bool {
        matches!(self.target, Target::Stdout)
    }

    /// Whether this is the process's stdout and that is a terminal: listings then quote names
    /// as `ls` does there ([`mavfs_actors::quote::Shown::listing`]).
    pub fn is_terminal(&self) -> bool {
        use std::io::IsTerminal;
        self.is_stdout() && std::io::stdout().is_terminal()
    }

    /// How listings written here show names by default.
    pub fn shown(&self) -> Shown {
        Shown::listing(self.is_terminal())
    }

    /// Output into a virtual file being written; visible there only after [`Output::finish`].
    pub fn file(writer: FileWrite) -> Self {
        Output {
            target: Target::File(writer),
            pending: BytesMut::new(),
        }
    }

    /// Writes text.
    pub async fn text(&mut self, s: &str) -> Result<(), OutputError> {
        self.pending.extend_from_slice(s.as_bytes());
        if self.pending.len() >= GATHER_BYTES {
            self.flush().await?;
        }
        Ok(())
    }

    /// Writes one line of text followed by a newline.
    pub async fn line(&mut self, s: &str) -> Result<(), OutputError> {
        self.pending.extend_from_slice(s.as_bytes());
        self.text("\n").await
    }

    /// Gathers one line formatted from `args` straight into the bytes waiting, with no
    /// `String` in between (a listing of 10^6 entries formats 10^6 lines). Synchronous, since
    /// `fmt::Arguments` may not be held across an await: [`Output::hand_on`] follows.
    pub fn put_line(&mut self, args: std::fmt::Arguments<'_>) {
        use std::fmt::Write as _;
        // Writing into a `BytesMut` cannot fail.
        let _ = self.pending.write_fmt(args);
        self.pending.extend_from_slice(b"\n");
    }

    /// Hands on what is gathered once it is `GATHER_BYTES` or more, as every write does.
    pub async fn hand_on(&mut self) -> Result<(), OutputError> {
        if self.pending.len() >= GATHER_BYTES {
            self.flush().await?;
        }
        Ok(())
    }

    /// An output kept in memory, for tests, and where it keeps what is handed on.
    #[cfg(test)]
    pub fn memory() -> (Self, std::sync::Arc<std::sync::Mutex<Vec<u8>>>) {
        let kept = std::sync::Arc::default();
        let out = Output {
            target: Target::Memory(std::sync::Arc::clone(&kept)),
            pending: BytesMut::new(),
        };
        (out, kept)
    }

    /// Writes a chunk of raw bytes without copying it (for `cat`).
    pub async fn bytes(&mut self, chunk: Bytes) -> Result<(), OutputError> {
        if chunk.len() < GATHER_BYTES {
            self.pending.extend_from_slice(&chunk);
            if self.pending.len() >= GATHER_BYTES {
                self.flush().await?;
            }
            return Ok(());
        }
        self.flush().await?;
        self.send(chunk).await
    }

    /// Hands on what is gathered now, for output a reader follows live (a transfer's events).
    pub async fn flush(&mut self) -> Result<(), OutputError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let chunk = self.pending.split().freeze();
        self.send(chunk).await
    }

    async fn send(&mut self, chunk: Bytes) -> Result<(), OutputError> {
        match &mut self.target {
            // Blocking on stdout is the point here: a slow terminal or pipe should slow `cat`.
            Target::Stdout => {
                let mut out = std::io::stdout().lock();
                out.write_all(&chunk)
                    .and_then(|()| out.flush())
                    .map_err(|e| {
                        if e.kind() == std::io::ErrorKind::BrokenPipe {
                            OutputError::Closed
                        } else {
                            OutputError::Stdout(e)
                        }
                    })
            }
            Target::File(w) => w.write(chunk).await.map_err(OutputError::Store),
            #[cfg(test)]
            Target::Memory(kept) => {
                kept.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .extend_from_slice(&chunk);
                Ok(())
            }
        }
    }

    /// Ends a failed command: what it printed to stdout still shows (as `cat good missing` prints
    /// `good`), while a virtual file is discarded, keeping its old contents.
    pub async fn abandon(mut self) {
        if let Target::Stdout = self.target {
            // Nothing more can be reported if stdout itself fails here.
            let _ = self.flush().await;
        }
    }

    /// Flushes what is pending and, for a virtual file, commits it.
    pub async fn finish(mut self) -> Result<(), OutputError> {
        self.flush().await?;
        match self.target {
            Target::Stdout => Ok(()),
            Target::File(w) => w.commit().await.map_err(OutputError::Store),
            #[cfg(test)]
            Target::Memory(_) => Ok(()),
        }
    }
}
