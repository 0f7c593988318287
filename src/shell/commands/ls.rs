//! `ls`: a directory's entries, one a line, read from the engine a page at a time.
//!
//! Sorted (the default, as coreutils) it must see every name before it prints the first, so it
//! holds the directory, compactly ([`Names`]: one buffer of names and 16 bytes an entry; sizes
//! and times only for `-l`). With `-U` it prints each page as it comes and drops it before asking
//! for the next, so its memory stays at one page and the gathered output whatever the directory
//! (FAULTS.md decision 39). Lines are formatted straight into the output, never one `String`
//! per entry.

use std::future::Future;

use mavfs_actors::quote::{Shown, Style};
use mavfs_actors::{DirEntry, EntryKind, LIST_PAGE_ENTRIES, ListCursor, Meta, Tier, VPath};

use super::info::{kind_char, tier_of};
use super::{OperandRun, Opts};
use crate::engine::Engine;
use crate::shell::format;
use crate::shell::output::Output;
use crate::shell::{CmdError, Session, Status};

/// `ls`'s long options, as the short ones they stand for: `--escape` is `-b`, `--literal` `-N`,
/// `--hide-control-chars` `-q`; `--show-control-chars` has no short form and is taken out.
fn ls_long_options(args: &[String]) -> (Vec<String>, bool) {
    let mut show_control = false;
    let mut rest = Vec::with_capacity(args.len());
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        let short = match arg.as_str() {
            "--" => {
                rest.push(arg.clone());
                rest.extend(iter.cloned());
                break;
            }
            "--escape" => "-b",
            "--literal" => "-N",
            "--hide-control-chars" => "-q",
            "--show-control-chars" => {
                show_control = true;
                continue;
            }
            _ => {
                rest.push(arg.clone());
                continue;
            }
        };
        rest.push(short.to_string());
    }
    (rest, show_control)
}

/// `ls [-l] [-U] [-b|-N] [-q] [path...]`: names, one a line, directories with a `/` suffix;
/// sorted, or with `-U` in the store's order as they come, page by page, in bounded memory.
/// Names are shown as GNU `ls` shows them ([`Shown::listing`]): on a terminal quoted for the
/// shell (`'a'$'\n''b'`), elsewhere as they are; `-b` (`--escape`) uses C escapes, `-N`
/// (`--literal`) no quoting (control characters still `?` on a terminal, unless
/// `--show-control-chars`), `-q` (`--hide-control-chars`) shows control characters as `?`.
pub async fn ls(session: &Session, args: &[String], out: &mut Output) -> Result<Status, CmdError> {
    let (args, show_control) = ls_long_options(args);
    let opts = Opts::parse(&args, "labNqU", "")?;
    let mut shown = out.shown();
    // The last of -b and -N wins, as in coreutils; the parser keeps no order, so -N over -b.
    if opts.has('b') {
        shown.style = Style::Escape;
    }
    if opts.has('N') {
        shown.style = Style::Literal;
    }
    if opts.has('q') {
        shown.hide_control = true;
    }
    if show_control {
        shown.hide_control = false;
    }
    let operands = if opts.operands.is_empty() {
        vec![session.cwd().as_str().to_string()]
    } else {
        opts.operands.clone()
    };
    let how = Listing {
        long: opts.has('l'),
        unsorted: opts.has('U'),
        headers: operands.len() > 1,
        shown,
    };
    // Whether no directory has been listed yet: a header after the first one is set apart by a
    // blank line.
    let mut first = true;
    let mut run = OperandRun::new("ls");
    for arg in &operands {
        run.record(ls_one(session, arg, &how, &mut first, out).await)?;
    }
    run.finish()
}

/// How `ls` lists: long or short, sorted or not, with headers, names shown how.
struct Listing {
    long: bool,
    unsorted: bool,
    headers: bool,
    shown: Shown,
}

async fn ls_one(
    session: &Session,
    arg: &str,
    how: &Listing,
    first: &mut bool,
    out: &mut Output,
) -> Result<(), CmdError> {
    let path = session.resolve(arg).await?;
    let meta = session.engine().stat(&path).await?;
    if !meta.is_dir() {
        let tier = tier_text(tier_of(session, &path));
        let line = Line {
            name: &how.shown.name(arg),
            kind: meta.kind,
            pad: false,
        };
        let long = how.long.then_some((&meta, tier.as_str()));
        return Ok(line.write(long, false, out).await?);
    }
    let mut pages = EnginePages::new(session.engine(), &path);
    // The first page before the header, as GNU `ls` reports a directory it cannot read
    // without a header.
    let page = pages.next_page().await?;
    if how.headers {
        if !*first {
            out.line("").await?;
        }
        out.put_line(format_args!("{}:", how.shown.name(arg)));
    }
    *first = false;
    // Entries of a mount have the mount's tier; `/` lists mounts, each its own.
    let tiers = Tiers {
        session,
        dir: &path,
        of_dir: (!path.is_root()).then(|| tier_text(tier_of(session, &path))),
    };
    if how.unsorted {
        let tiers = how.long.then_some(&tiers);
        return list_unsorted(page, &mut pages, how, tiers, out).await;
    }
    let mut names = Names::new(how.long);
    let mut page = page;
    loop {
        for entry in page.unwrap_or_default() {
            names.push(entry)?;
        }
        page = pages.next_page().await?;
        if page.is_none() {
            break;
        }
    }
    names.sort();
    // As GNU `ls -l`: when some names are quoted, the others get a blank so that names align.
    let align = how.long
        && how.shown.style == Style::ShellEscape
        && names
            .iter()
            .any(|(name, _)| is_quoted(&how.shown.name(name)));
    for (name, item) in names.iter() {
        let shown = how.shown.name(name);
        let line = Line {
            pad: align && !is_quoted(&shown),
            name: &shown,
            kind: item.kind,
        };
        let tier = tiers.of(name);
        let long = names.meta(item).map(|meta| (meta, tier.as_ref()));
        line.write(long, true, out).await?;
    }
    Ok(())
}

/// Prints every page of a listing as it comes, the first already read: each page is written
/// out, handed on and dropped before the next is asked for. `tiers` for `-l`; names are then
/// not aligned on quoting (that needs every name first).
async fn list_unsorted<P: Pages>(
    first: Option<Vec<DirEntry>>,
    pages: &mut P,
    how: &Listing,
    tiers: Option<&Tiers<'_>>,
    out: &mut Output,
) -> Result<(), CmdError> {
    let mut page = first;
    while let Some(entries) = page {
        for DirEntry { name, meta } in &entries {
            let line = Line {
                name: &how.shown.name(name),
                kind: meta.kind,
                pad: false,
            };
            match tiers {
                Some(tiers) => line.write(Some((meta, &tiers.of(name))), true, out).await?,
                None => line.write(None, true, out).await?,
            }
        }
        drop(entries);
        // Page by page, as they come: a reader sees the listing grow.
        out.flush().await?;
        page = pages.next_page().await?;
    }
    Ok(())
}

fn is_quoted(shown: &str) -> bool {
    shown.starts_with(['\'', '"'])
}

fn tier_text(tier: Option<Tier>) -> String {
    tier.map_or_else(|| "-".to_string(), |t| t.as_str().to_string())
}

/// The tier column of `ls -l` for entries of one directory.
struct Tiers<'a> {
    session: &'a Session,
    dir: &'a VPath,
    /// The directory's own tier, shared by its entries; `None` for `/`, whose entries are mounts.
    of_dir: Option<String>,
}

impl Tiers<'_> {
    fn of(&self, name: &str) -> std::borrow::Cow<'_, str> {
        match &self.of_dir {
            Some(tier) => tier.as_str().into(),
            None => {
                let tier = self
                    .dir
                    .join(name)
                    .ok()
                    .and_then(|p| tier_of(self.session, &p));
                tier_text(tier).into()
            }
        }
    }
}

/// One line of a listing: a name already shown (quoted as asked), and its kind.
struct Line<'a> {
    name: &'a str,
    kind: EntryKind,
    /// A blank before the name, aligning it with quoted ones.
    pad: bool,
}

impl Line<'_> {
    /// Writes the line: the name alone, or with `long` (metadata and tier) as `ls -l` does;
    /// `slash`: a directory's name ends with `/` (entries of a listing, not an operand).
    async fn write(
        &self,
        long: Option<(&Meta, &str)>,
        slash: bool,
        out: &mut Output,
    ) -> Result<(), crate::shell::output::OutputError> {
        let slash = if slash && self.kind == EntryKind::Dir {
            "/"
        } else {
            ""
        };
        let pad = if self.pad { " " } else { "" };
        match long {
            None => out.put_line(format_args!("{}{slash}", self.name)),
            Some((meta, tier)) => out.put_line(format_args!(
                "{} {:>12} {} {:<4} {pad}{}{slash}",
                kind_char(meta.kind),
                meta.size,
                format::timestamp(meta.modified),
                tier,
                self.name
            )),
        }
        out.hand_on().await
    }
}

/// Where a listing's pages come from: the engine, or a test's own.
trait Pages {
    /// The next page's entries; `None` once the listing has ended.
    fn next_page(&mut self) -> impl Future<Output = mavfs_actors::Result<Option<Vec<DirEntry>>>>;
}

/// The pages of one directory, from the engine.
struct EnginePages<'a> {
    engine: &'a Engine,
    path: &'a VPath,
    /// Where the listing goes on; `None` before the first page.
    cursor: Option<ListCursor>,
    done: bool,
}

impl<'a> EnginePages<'a> {
    fn new(engine: &'a Engine, path: &'a VPath) -> Self {
        EnginePages {
            engine,
            path,
            cursor: None,
            done: false,
        }
    }
}

impl Pages for EnginePages<'_> {
    async fn next_page(&mut self) -> mavfs_actors::Result<Option<Vec<DirEntry>>> {
        if self.done {
            return Ok(None);
        }
        let page = self
            .engine
            .list_page(self.path, self.cursor.take(), LIST_PAGE_ENTRIES)
            .await?;
        self.cursor = page.next;
        self.done = self.cursor.is_none();
        Ok(Some(page.entries))
    }
}

/// A directory's entries held for sorting, compactly: every name in one buffer, and per entry
/// where its name is and its kind (16 bytes); with `-l` also its metadata.
struct Names {
    text: String,
    items: Vec<Item>,
    /// Metadata by [`Item::at`], kept only for `-l`.
    metas: Option<Vec<Meta>>,
}

/// One entry of [`Names`].
#[derive(Debug, Clone, Copy)]
struct Item {
    start: u32,
    len: u32,
    /// Its place in [`Names::metas`]: the order entries came in.
    at: u32,
    kind: EntryKind,
}

impl Names {
    fn new(long: bool) -> Self {
        Names {
            text: String::new(),
            items: Vec::new(),
            metas: long.then(Vec::new),
        }
    }

    /// Adds an entry. Errors: `InvalidInput` past 4 GiB of names or 2^32 entries, which only
    /// `ls -U` lists.
    fn push(&mut self, entry: DirEntry) -> Result<(), CmdError> {
        let too_large = || {
            CmdError::Engine(
                mavfs_actors::Error::new(mavfs_actors::ErrorKind::InvalidInput, "ls")
                    .with_detail("too many entries to sort; ls -U lists them unsorted"),
            )
        };
        let start = u32::try_from(self.text.len()).map_err(|_| too_large())?;
        let at = u32::try_from(self.items.len()).map_err(|_| too_large())?;
        self.text.push_str(&entry.name);
        u32::try_from(self.text.len()).map_err(|_| too_large())?;
        self.items.push(Item {
            start,
            len: entry.name.len() as u32,
            at,
            kind: entry.meta.kind,
        });
        if let Some(metas) = &mut self.metas {
            metas.push(entry.meta);
        }
        Ok(())
    }

    fn name(&self, item: &Item) -> &str {
        &self.text[item.start as usize..(item.start + item.len) as usize]
    }

    /// Sorts by name, bytewise (as `ls` in the C locale), dropping a name listed twice (a
    /// Redis listing may return one again when its directory shrinks meanwhile).
    fn sort(&mut self) {
        let mut items = std::mem::take(&mut self.items);
        items.sort_unstable_by(|a, b| self.name(a).cmp(self.name(b)));
        items.dedup_by(|a, b| self.name(a) == self.name(b));
        self.items = items;
    }

    fn iter(&self) -> impl Iterator<Item = (&str, &Item)> {
        self.items.iter().map(|item| (self.name(item), item))
    }

    fn meta(&self, item: &Item) -> Option<&Meta> {
        self.metas.as_ref().map(|metas| &metas[item.at as usize])
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;

    fn entry(name: &str) -> DirEntry {
        DirEntry {
            name: name.to_string(),
            meta: Meta {
                kind: EntryKind::File,
                size: 1,
                modified: SystemTime::UNIX_EPOCH,
            },
        }
    }

    /// Pages of `per` entries, `count` in all, that check at each request that every entry of
    /// the pages before is already handed on.
    struct Checked {
        kept: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
        served: usize,
        count: usize,
        per: usize,
        requests: usize,
    }

    impl Pages for Checked {
        async fn next_page(&mut self) -> mavfs_actors::Result<Option<Vec<DirEntry>>> {
            self.requests += 1;
            let lines = self
                .kept
                .lock()
                .unwrap()
                .iter()
                .filter(|&&b| b == b'\n')
                .count();
            assert_eq!(
                lines, self.served,
                "a page is handed on before the next is read"
            );
            if self.served == self.count {
                return Ok(None);
            }
            let end = (self.served + self.per).min(self.count);
            let page = (self.served..end)
                .map(|i| entry(&format!("e{i}")))
                .collect();
            self.served = end;
            Ok(Some(page))
        }
    }

    #[tokio::test]
    async fn unsorted_hands_on_each_page_before_reading_the_next() {
        let (mut out, kept) = Output::memory();
        let mut pages = Checked {
            kept: kept.clone(),
            served: 0,
            count: 1000,
            per: 7,
            requests: 0,
        };
        let how = Listing {
            long: false,
            unsorted: true,
            headers: false,
            shown: Shown::listing(false),
        };
        let first = pages.next_page().await.unwrap();
        list_unsorted(first, &mut pages, &how, None, &mut out)
            .await
            .unwrap();
        let text = String::from_utf8(kept.lock().unwrap().clone()).unwrap();
        let names: Vec<&str> = text.lines().collect();
        assert_eq!(names.len(), 1000);
        assert_eq!((names[0], names[999]), ("e0", "e999"));
        assert_eq!(pages.requests, 1000usize.div_ceil(7) + 1);
    }

    #[test]
    fn names_sort_bytewise_and_drop_repeats() {
        let mut names = Names::new(true);
        for n in ["b", "a", "B", "a", "é", "c"] {
            names.push(entry(n)).unwrap();
        }
        names.sort();
        let sorted: Vec<&str> = names.iter().map(|(n, _)| n).collect();
        assert_eq!(sorted, ["B", "a", "b", "c", "é"]);
        let (_, item) = names.iter().next().unwrap();
        assert_eq!(names.meta(item).map(|m| m.size), Some(1));
    }
}
