//! Commands whose replies are taken as the frames fred decoded: the bytes of a chunk or an entry
//! as they came off the socket.
//!
//! fred turns every other reply into a `Value`, checking each bulk string for UTF-8 to choose
//! between text and bytes. For file data that is a scan of every byte read (about 3% of the CPU
//! of pushing 20,000 small text files out of Redis), and for a directory's `HGETALL` a map of
//! owned keys built to look up a few names once. Here a bulk string stays the `Bytes` slice of
//! the connection's read buffer it was decoded into, and an error reply becomes the same error
//! fred gives, so that callers map it as they map any other.
//!
//! One cost: fred flushes the socket after every custom command, where it writes its own commands
//! queued together in one go. For a command that brings file data back the scan costs more than
//! the flush (see `batch::read_run`).

use bytes::Bytes;
use fred::error::{Error as FredError, ErrorKind as FredKind};
use fred::interfaces::ClientLike;
use fred::types::{ClusterHash, CustomCommand, Resp3Frame, Value};

/// `GET key`: the value, `None` when the key is missing.
pub(crate) async fn get(client: &impl ClientLike, key: &str) -> Result<Option<Bytes>, FredError> {
    let frame = run(client, "GET", vec![key.into()]).await?;
    bulk(frame, "GET")
}

/// `GETRANGE key start end` (both inclusive): the bytes, none when the key is missing.
pub(crate) async fn getrange(
    client: &impl ClientLike,
    key: &str,
    start: u64,
    end: u64,
) -> Result<Bytes, FredError> {
    let args = vec![key.into(), int(start)?, int(end)?];
    let frame = run(client, "GETRANGE", args).await?;
    Ok(bulk(frame, "GETRANGE")?.unwrap_or_default())
}

/// `HGETALL key`: its fields and values, in the hash's order; none when the key is missing.
pub(crate) async fn hgetall(
    client: &impl ClientLike,
    key: &str,
) -> Result<Vec<(Bytes, Bytes)>, FredError> {
    let frame = run(client, "HGETALL", vec![key.into()]).await?;
    match frame {
        Resp3Frame::Array { data, .. } => pairs(data, "HGETALL"),
        Resp3Frame::Map { data, .. } => data
            .into_iter()
            .map(|(field, value)| pair(field, value, "HGETALL"))
            .collect(),
        _ => Err(unexpected("HGETALL")),
    }
}

/// `HGET key field`: the value, `None` when there is none.
pub(crate) async fn hget(
    client: &impl ClientLike,
    key: &str,
    field: &str,
) -> Result<Option<Bytes>, FredError> {
    let frame = run(client, "HGET", vec![key.into(), field.into()]).await?;
    bulk(frame, "HGET")
}

/// `HSCAN key cursor COUNT count`: the next cursor (`0` once the scan is over) and a page of
/// fields and values.
pub(crate) async fn hscan(
    client: &impl ClientLike,
    key: &str,
    cursor: &str,
    count: usize,
) -> Result<(String, Vec<(Bytes, Bytes)>), FredError> {
    let args = vec![
        key.into(),
        cursor.into(),
        "COUNT".into(),
        int(count as u64)?,
    ];
    let Resp3Frame::Array { data, .. } = run(client, "HSCAN", args).await? else {
        return Err(unexpected("HSCAN"));
    };
    let mut parts = data.into_iter();
    let (Some(next), Some(Resp3Frame::Array { data: flat, .. }), None) =
        (parts.next(), parts.next(), parts.next())
    else {
        return Err(unexpected("HSCAN"));
    };
    let next = bulk(next, "HSCAN")?
        .and_then(|b| String::from_utf8(b.to_vec()).ok())
        .ok_or_else(|| unexpected("HSCAN"))?;
    Ok((next, pairs(flat, "HSCAN")?))
}

/// `HMGET key field...`: each field's value, `None` where there is none.
pub(crate) async fn hmget(
    client: &impl ClientLike,
    key: &str,
    fields: &[&str],
) -> Result<Vec<Option<Bytes>>, FredError> {
    let mut args = Vec::with_capacity(fields.len() + 1);
    args.push(key.into());
    args.extend(fields.iter().map(|&field| Value::from(field)));
    match run(client, "HMGET", args).await? {
        Resp3Frame::Array { data, .. } if data.len() == fields.len() => {
            data.into_iter().map(|value| bulk(value, "HMGET")).collect()
        }
        _ => Err(unexpected("HMGET")),
    }
}

/// Sends `cmd` with `args` (the key first, which routes it on a cluster) and returns the reply's
/// frame, or the error it holds.
async fn run(
    client: &impl ClientLike,
    cmd: &'static str,
    args: Vec<Value>,
) -> Result<Resp3Frame, FredError> {
    let command = CustomCommand::new_static(cmd, ClusterHash::FirstKey, false);
    let frame = client.custom_raw(command, args).await?;
    match &frame {
        Resp3Frame::SimpleError { data, .. } => Err(server_error(data)),
        Resp3Frame::BlobError { data, .. } => Err(server_error(&String::from_utf8_lossy(data))),
        _ => Ok(frame),
    }
}

/// A bulk string's bytes, `None` for a null.
fn bulk(frame: Resp3Frame, cmd: &str) -> Result<Option<Bytes>, FredError> {
    match frame {
        Resp3Frame::BlobString { data, .. } | Resp3Frame::SimpleString { data, .. } => {
            Ok(Some(data))
        }
        Resp3Frame::Null => Ok(None),
        _ => Err(unexpected(cmd)),
    }
}

/// The field and value pairs of a flat RESP2 array `field, value, ...`.
fn pairs(flat: Vec<Resp3Frame>, cmd: &str) -> Result<Vec<(Bytes, Bytes)>, FredError> {
    if !flat.len().is_multiple_of(2) {
        return Err(unexpected(cmd));
    }
    let mut items = flat.into_iter();
    let mut out = Vec::with_capacity(items.len() / 2);
    while let (Some(field), Some(value)) = (items.next(), items.next()) {
        out.push(pair(field, value, cmd)?);
    }
    Ok(out)
}

fn pair(field: Resp3Frame, value: Resp3Frame, cmd: &str) -> Result<(Bytes, Bytes), FredError> {
    match (bulk(field, cmd)?, bulk(value, cmd)?) {
        (Some(field), Some(value)) => Ok((field, value)),
        _ => Err(unexpected(cmd)),
    }
}

/// An error reply as fred reports one: the server's text, whose first word is its code, and the
/// kind fred gives that code.
fn server_error(text: &str) -> FredError {
    let kind = match text.split_whitespace().next().unwrap_or("") {
        "WRONGTYPE" => FredKind::InvalidArgument,
        "NOAUTH" | "WRONGPASS" => FredKind::Auth,
        "MOVED" | "ASK" | "CLUSTERDOWN" => FredKind::Cluster,
        _ => FredKind::Unknown,
    };
    FredError::new(kind, text.to_string())
}

fn unexpected(cmd: &str) -> FredError {
    FredError::new(
        FredKind::Protocol,
        format!("unexpected reply shape to {cmd}"),
    )
}

fn int(n: u64) -> Result<Value, FredError> {
    i64::try_from(n)
        .map(Value::Integer)
        .map_err(|_| FredError::new(FredKind::InvalidArgument, "offset past i64"))
}
