//! The daemon's wire protocol: what a client and `mavfs serve` say to each other over the Unix
//! socket.
//!
//! Frames are length-delimited ([`codec`]: a 4-byte big-endian length, at most [`MAX_FRAME`]
//! bytes). The first byte of a frame says what it holds:
//!
//! - `J`: a JSON message, [`ClientMsg`] from the client or [`ServerMsg`] from the daemon;
//! - `D`: file bytes of one stream (a `cat` or a redirection): the stream's request id as 8
//!   big-endian bytes, then at most [`MAX_DATA`] bytes of data. Data travels raw, not as JSON,
//!   so a large `cat` costs one copy into the frame and none to decode.
//!
//! A connection opens with [`ClientMsg::Hello`] and [`ServerMsg::Welcome`] (the versions must
//! match). Then every request carries an id chosen by the client, unique on its connection, and
//! every reply names it, so one connection carries many requests at once. A job run in the
//! foreground ([`Request::Run`], [`Request::Foreground`]) gets two replies: [`Reply::Job`] when
//! it starts, [`Reply::Outcome`] when it ends; [`ClientMsg::Cancel`] or the connection closing
//! first cancels it, as Ctrl-C does.
//!
//! Streams are flow-controlled by credit, one credit a data frame, [`WINDOW`] to start with: a
//! reader grants more with [`ClientMsg::Credit`] as it consumes, the daemon grants a writer more
//! with [`ServerMsg::Credit`] as it stores, so neither side ever holds more than a window of a
//! stream in memory, however slow the other is. Both grant [`CREDIT_BATCH`] at a time.
//!
//! Anything else (bad JSON, an unknown message, a frame over the limit, more data than a stream
//! was granted) is answered with [`ServerMsg::Refused`] and the connection is closed. Data or
//! credit for a request that has already ended (a write that failed while the client was still
//! sending) is dropped: the client learns of the end from the reply.

use bytes::{BufMut, Bytes, BytesMut};
use mavfs_actors::{
    DirEntry, Error, JobEvent, JobId, JobInfo, JobOptions, JobOutcome, ListCursor, ListPage, Meta,
    MountInfo, MountStats, TransferRequest, VPath, WriteMode,
};
use serde::{Deserialize, Serialize};
use tokio_util::codec::LengthDelimitedCodec;

/// The protocol's version; a client and a daemon talk only when theirs are equal.
pub const VERSION: u32 = 2;
/// Most bytes of file data in one data frame.
pub const MAX_DATA: usize = 1 << 20;
/// Longest frame either side accepts: a full data frame and its header, or a JSON message (a
/// listing of a large directory must fit; a longer one fails with an error, never a cut).
pub const MAX_FRAME: usize = MAX_DATA + 64;
/// Most entries of a listing page the daemon sends: 256 names of 255 bytes, each character
/// escaped in JSON at its longest (`\u0001`, 6 bytes), and their metadata stay well inside one
/// frame.
pub const MAX_PAGE_ENTRIES: usize = 256;
/// Data frames a stream may have in flight before the receiver grants more.
pub const WINDOW: u32 = 4;
/// The receiver of a stream grants credit this many frames at a time, as it consumes them: half
/// a window, so a small stream needs no credit at all and a large one never waits on a window
/// that is more than half consumed. (A receiver may grant at any pace; this is ours.)
pub const CREDIT_BATCH: u32 = WINDOW / 2;

const TAG_JSON: u8 = b'J';
const TAG_DATA: u8 = b'D';

/// The codec both sides frame a socket with.
pub fn codec() -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder()
        .max_frame_length(MAX_FRAME)
        .new_codec()
}

/// What a client sends.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMsg {
    /// The first message: the client's protocol version.
    Hello {
        /// [`VERSION`] as the client knows it.
        version: u32,
    },
    /// A request, answered by replies that carry the same id.
    Request {
        /// Chosen by the client, unique on its connection.
        id: u64,
        /// What to do.
        request: Request,
    },
    /// The reader of stream `id` takes `chunks` more data frames.
    Credit {
        /// The stream's request id.
        id: u64,
        /// Data frames granted.
        chunks: u32,
    },
    /// The end of write stream `id`: commit it, or (a cancelled redirection) discard it.
    EndWrite {
        /// The stream's request id.
        id: u64,
        /// Whether to make the written bytes visible.
        commit: bool,
    },
    /// Abandons request `id`: a foreground job is cancelled, a stream dropped, a write
    /// discarded.
    Cancel {
        /// The request's id.
        id: u64,
    },
}

/// One operation of the engine, as a client asks for it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Metadata: [`Reply::Meta`].
    Stat {
        /// The path.
        path: VPath,
    },
    /// A listing: [`Reply::Entries`].
    List {
        /// The directory.
        path: VPath,
    },
    /// One page of a listing, unsorted: [`Reply::Page`]. The daemon serves at most
    /// [`MAX_PAGE_ENTRIES`] entries a page, whatever `limit` asks.
    ListPage {
        /// The directory.
        path: VPath,
        /// Where the listing goes on; `None` for its first page.
        cursor: Option<ListCursor>,
        /// Entries asked for.
        limit: usize,
    },
    /// `mkdir [-p]`: [`Reply::Done`].
    Mkdir {
        /// The directory.
        path: VPath,
        /// `-p`.
        parents: bool,
    },
    /// `touch`: [`Reply::Done`].
    Touch {
        /// The file.
        path: VPath,
    },
    /// `rm [-r] [-f]`: [`Reply::Done`].
    Remove {
        /// The path.
        path: VPath,
        /// `-r`.
        recursive: bool,
        /// `-f`.
        force: bool,
    },
    /// Streams a file: [`Reply::Reading`], then data frames, then [`ServerMsg::ReadEnd`].
    Read {
        /// The file.
        path: VPath,
    },
    /// Writes a file: [`Reply::Writing`], then the client's data frames and
    /// [`ClientMsg::EndWrite`], then [`Reply::Done`].
    Write {
        /// The file.
        path: VPath,
        /// Replace or append.
        mode: WriteMode,
    },
    /// Starts a background job: [`Reply::Job`]. It outlives the connection.
    Start {
        /// The transfer.
        request: TransferRequest,
        /// The command as typed.
        label: String,
        /// Its own `--bwlimit`.
        #[serde(default)]
        options: JobOptions,
    },
    /// Runs a job in the foreground: [`Reply::Job`], then [`Reply::Outcome`]. Cancelled if the
    /// request is cancelled or the connection closes first.
    Run {
        /// The transfer.
        request: TransferRequest,
        /// The command as typed.
        label: String,
        /// Its own `--bwlimit`.
        #[serde(default)]
        options: JobOptions,
    },
    /// Brings a job to the foreground (`fg`): as [`Request::Run`].
    Foreground {
        /// The job.
        job: JobId,
    },
    /// Waits for a job: [`Reply::Outcome`].
    Wait {
        /// The job.
        job: JobId,
    },
    /// Cancels a job: [`Reply::Done`].
    Cancel {
        /// The job.
        job: JobId,
    },
    /// Suspends a job (`stop`): [`Reply::Done`].
    Suspend {
        /// The job.
        job: JobId,
    },
    /// Continues a suspended job (`bg`): [`Reply::Done`].
    Resume {
        /// The job.
        job: JobId,
    },
    /// Sets a job's own limit: [`Reply::Done`].
    Throttle {
        /// The job.
        job: JobId,
        /// Bytes per second; `None`: off.
        bwlimit: Option<u64>,
    },
    /// Sets how many files a job moves at once: [`Reply::Done`].
    SetJobs {
        /// The job.
        job: JobId,
        /// Files at once.
        jobs: usize,
    },
    /// Sets the limit all jobs share: [`Reply::Done`].
    ThrottleAll {
        /// Bytes per second; `None`: off.
        bwlimit: Option<u64>,
    },
    /// The limit all jobs share: [`Reply::Limit`].
    GlobalLimit,
    /// The job table: [`Reply::Jobs`].
    Jobs,
    /// Usage of every mount: [`Reply::Stats`].
    Stats,
    /// Every job event from now on, as [`ServerMsg::Event`]: [`Reply::Done`] first.
    Subscribe,
}

/// A successful answer to a request.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "reply", content = "value", rename_all = "snake_case")]
pub enum Reply {
    /// The request did what it asked.
    Done,
    /// Metadata.
    Meta(Meta),
    /// Directory entries, sorted by name.
    Entries(Vec<DirEntry>),
    /// One page of a listing, and where it goes on.
    Page(ListPage),
    /// A read has started; the file holds this many bytes.
    Reading(u64),
    /// A write is open; data frames may follow.
    Writing,
    /// A job's id (started, or brought to the foreground).
    Job(JobId),
    /// How a job ended.
    Outcome(JobOutcome),
    /// Every job.
    Jobs(Vec<JobInfo>),
    /// Every mount's usage.
    Stats(Vec<MountStats>),
    /// A limit in bytes per second; `None`: off.
    Limit(Option<u64>),
}

/// What the daemon sends.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMsg {
    /// The answer to [`ClientMsg::Hello`].
    Welcome {
        /// [`VERSION`] as the daemon knows it.
        version: u32,
        /// The daemon's program version.
        daemon: String,
        /// The daemon's process id.
        pid: u32,
        /// Its mounts, in order.
        mounts: Vec<MountInfo>,
        /// Where a shell starts.
        home: VPath,
    },
    /// A reply to request `id`.
    Reply {
        /// The request's id.
        id: u64,
        /// What it did, or why not.
        result: Result<Reply, Error>,
    },
    /// The writer of stream `id` may send `chunks` more data frames.
    Credit {
        /// The stream's request id.
        id: u64,
        /// Data frames granted.
        chunks: u32,
    },
    /// Read stream `id` has ended: complete, or cut short by an error.
    ReadEnd {
        /// The stream's request id.
        id: u64,
        /// Why it ended early, if it did.
        error: Option<Error>,
    },
    /// A job event (after [`Request::Subscribe`]).
    Event {
        /// The event.
        event: JobEvent,
    },
    /// Events were dropped because this client fell behind: re-read the job table.
    Lagged {
        /// How many.
        skipped: u64,
    },
    /// The connection is refused or closed for a protocol error; nothing follows.
    Refused {
        /// Why, in the user's terms.
        reason: String,
    },
}

/// A decoded frame.
#[derive(Debug)]
pub enum Frame<M> {
    /// A JSON message.
    Message(M),
    /// File bytes of stream `id`.
    Data {
        /// The stream's request id.
        id: u64,
        /// The bytes.
        data: Bytes,
    },
}

/// A frame ready to send. File data stays in the buffer it was read into: [`write()`] sends a
/// header and then the bytes themselves, so a stream costs no copy in user space.
#[derive(Debug, Clone)]
pub enum Outgoing {
    /// A whole encoded frame: its length prefix, tag and JSON.
    Message(Bytes),
    /// Stream `id`'s bytes, at most [`MAX_DATA`].
    Data {
        /// The stream's request id.
        id: u64,
        /// The bytes.
        data: Bytes,
    },
}

/// Encodes a JSON message frame, length prefix included.
pub fn message<M: Serialize>(msg: &M) -> Outgoing {
    let mut buf = BytesMut::with_capacity(128);
    buf.put_u32(0);
    buf.put_u8(TAG_JSON);
    let mut writer = buf.writer();
    // Serialising our own enums into memory cannot fail.
    serde_json::to_writer(&mut writer, msg).expect("protocol messages serialise");
    let mut buf = writer.into_inner();
    let len = u32::try_from(buf.len() - 4).unwrap_or(u32::MAX);
    buf[..4].copy_from_slice(&len.to_be_bytes());
    Outgoing::Message(buf.freeze())
}

/// A data frame of stream `id`; `data` holds at most [`MAX_DATA`] bytes.
pub fn data(id: u64, data: Bytes) -> Outgoing {
    debug_assert!(data.len() <= MAX_DATA);
    Outgoing::Data { id, data }
}

/// Sends `frame` on `w`: a message in one write, data as a 13-byte header and the bytes as they
/// are. Cancel safety: none; a frame cut off by dropping this future leaves the stream broken,
/// so callers close the connection then.
pub async fn write<W: tokio::io::AsyncWrite + Unpin>(
    w: &mut W,
    frame: &Outgoing,
) -> std::io::Result<()> {
    use tokio::io::AsyncWriteExt;
    match frame {
        Outgoing::Message(bytes) => w.write_all(bytes).await,
        Outgoing::Data { id, data } => {
            w.write_all(&data_header(*id, data.len())).await?;
            w.write_all(data).await
        }
    }
}

/// The 13 bytes that go before `len` bytes of stream `id`'s data on the wire: the frame's
/// length prefix, the tag and the id.
pub fn data_header(id: u64, len: usize) -> [u8; 13] {
    let mut header = [0u8; 13];
    let frame_len = u32::try_from(9 + len).unwrap_or(u32::MAX);
    header[..4].copy_from_slice(&frame_len.to_be_bytes());
    header[4] = TAG_DATA;
    header[5..].copy_from_slice(&id.to_be_bytes());
    header
}

/// Decodes a frame. Errors: what is wrong with it, for a [`ServerMsg::Refused`].
pub fn decode<M: for<'de> Deserialize<'de>>(mut frame: BytesMut) -> Result<Frame<M>, String> {
    match frame.first() {
        Some(&TAG_JSON) => serde_json::from_slice(&frame[1..])
            .map(Frame::Message)
            .map_err(|e| format!("malformed message: {e}")),
        Some(&TAG_DATA) if frame.len() >= 9 => {
            let id = u64::from_be_bytes(frame[1..9].try_into().expect("8 bytes"));
            Ok(Frame::Data {
                id,
                data: frame.split_off(9).freeze(),
            })
        }
        Some(&TAG_DATA) => Err("truncated data frame".into()),
        Some(other) => Err(format!("unknown frame type 0x{other:02x}")),
        None => Err("empty frame".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `write` puts on the wire, as the codec reads it back.
    fn wire(frame: Outgoing) -> BytesMut {
        use tokio_util::codec::Decoder;
        let mut sent = Vec::new();
        futures::executor::block_on(write(&mut sent, &frame)).unwrap();
        let mut buf = BytesMut::from(&sent[..]);
        codec().decode(&mut buf).unwrap().expect("one whole frame")
    }

    #[test]
    fn messages_and_data_round_trip() {
        let msg = ClientMsg::Request {
            id: 7,
            request: Request::Stat {
                path: VPath::parse("/vram/a").unwrap(),
            },
        };
        let frame = wire(message(&msg));
        match decode::<ClientMsg>(frame).unwrap() {
            Frame::Message(ClientMsg::Request { id: 7, request }) => {
                assert!(matches!(request, Request::Stat { .. }))
            }
            other => panic!("{other:?}"),
        }
        let frame = wire(data(9, Bytes::from_static(b"bytes")));
        match decode::<ClientMsg>(frame).unwrap() {
            Frame::Data { id: 9, data } => assert_eq!(&data[..], b"bytes"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bad_frames_are_errors() {
        for bad in [
            &b""[..],
            b"J{",
            b"Jnull",
            b"D\0\0",
            b"X{}",
            b"J{\"type\":\"nope\"}",
        ] {
            assert!(decode::<ClientMsg>(BytesMut::from(bad)).is_err(), "{bad:?}");
        }
        // A path that breaks the rules is refused when decoded.
        let bad_path = br#"J{"type":"request","id":1,"request":{"op":"stat","path":"rel/x"}}"#;
        assert!(decode::<ClientMsg>(BytesMut::from(&bad_path[..])).is_err());
    }
}
