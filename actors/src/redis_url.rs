//! Redis URLs: checking their shape and keeping their passwords out of output.
//!
//! The one place these rules live: the config checks a URL with [`check`] (adding file, line and
//! key), and the Redis store redacts with [`redact_url`] in every message it shows.

use std::borrow::Cow;
use std::net::Ipv6Addr;
use std::ops::Range;

/// What replaces a password.
const MASK: &str = "***";

/// `url` with the password of its userinfo replaced by `***`:
/// `redis://user:secret@host` becomes `redis://user:***@host`. A URL without a password comes back
/// unchanged.
///
/// Errs towards hiding too much: the userinfo is taken to end at the last `@`, so a password holding
/// an unescaped `/`, `?` or `#` (an invalid URL, but a likely typo) is still hidden.
pub fn redact_url(url: &str) -> Cow<'_, str> {
    match password_range(url) {
        Some(range) => Cow::Owned(format!(
            "{}{MASK}{}",
            &url[..range.start],
            &url[range.end..]
        )),
        None => Cow::Borrowed(url),
    }
}

/// Whether `url` carries a non-empty password in its userinfo.
pub fn has_password(url: &str) -> bool {
    password_range(url).is_some()
}

/// Byte range of the password in `url`, if it has a non-empty one.
fn password_range(url: &str) -> Option<Range<usize>> {
    let start = url.find("://")? + 3;
    let rest = &url[start..];
    let at = rest.rfind('@')?;
    let colon = rest[..at].find(':')?;
    let range = start + colon + 1..start + at;
    (!range.is_empty()).then_some(range)
}

/// Redacts every URL password in free text (an error message), URL by URL. A URL runs from its
/// `://` to the next whitespace, quote or closing bracket.
pub fn redact_urls_in(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find("://") {
        let end = rest[pos..]
            .find(|c: char| {
                c.is_whitespace() || matches!(c, '"' | '\'' | '`' | ',' | ')' | ']' | '>')
            })
            .map_or(rest.len(), |n| pos + n);
        // Start the token at the scheme so `redact_url` sees a whole URL.
        out.push_str(&rest[..pos]);
        out.push_str(&redact_url(&rest[pos..end]));
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// Checks the shape of a Redis URL: `redis://` or `rediss://`, an optional
/// `user[:password]@`, a host (name, IPv4 or bracketed IPv6), an optional port 1..=65535, an
/// optional database number (`/0`), an optional `?query`. A cluster node may name no database but
/// 0, the only one Redis Cluster has. The error says what is wrong and shows the URL redacted.
pub fn check(url: &str, cluster_node: bool) -> Result<(), String> {
    let shown = redact_url(url);
    let fail = |what: &str| Err(format!("{what} in {shown:?}"));

    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return fail("a URL may not hold whitespace");
    }
    let Some((scheme, rest)) = url.split_once("://") else {
        return fail("expected a redis:// or rediss:// URL");
    };
    if scheme != "redis" && scheme != "rediss" {
        return fail("the scheme must be redis:// or rediss://");
    }
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);

    let port = if let Some(bracketed) = host_port.strip_prefix('[') {
        let Some((ip, after)) = bracketed.split_once(']') else {
            return fail("unclosed [ in the host");
        };
        if ip.parse::<Ipv6Addr>().is_err() {
            return fail("invalid IPv6 address");
        }
        match after {
            "" => None,
            _ => match after.strip_prefix(':') {
                Some(port) => Some(port),
                None => return fail("unexpected text after the IPv6 address"),
            },
        }
    } else {
        let (host, port) = match host_port.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (host_port, None),
        };
        if host.is_empty() {
            return fail("missing host");
        }
        if !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
        {
            return fail("invalid host name");
        }
        port
    };
    if let Some(port) = port
        && !matches!(port.parse::<u16>(), Ok(p) if p != 0 && port.bytes().all(|b| b.is_ascii_digit()))
    {
        return fail("the port must be a number from 1 to 65535");
    }

    if tail.contains('#') {
        return fail("a URL fragment (#...) means nothing to Redis");
    }
    let path = tail.split_once('?').map_or(tail, |(path, _)| path);
    let db = path.strip_prefix('/').unwrap_or(path);
    if !db.is_empty() {
        if !db.bytes().all(|b| b.is_ascii_digit()) || db.parse::<u32>().is_err() {
            return fail("the path must be a database number such as /0");
        }
        if cluster_node && db.parse::<u32>() != Ok(0) {
            return fail("Redis Cluster has only database 0");
        }
    }
    Ok(())
}
