//! Packs: the small files of one batched write stored back to back in one string key.
//!
//! A Redis string is one allocation, rounded up by the server's allocator to a size class.
//! jemalloc (what Redis builds with) has four classes per doubling, so a 4 KiB file in a key of
//! its own takes a 5 KiB allocation (its 4,096 bytes plus a few of header): 1.25x the data
//! before any metadata. A pack of many files pays the rounding once; [`cut`] chooses each pack's
//! files so that the pack also fills its own size class, to within [`WASTE_DIVISOR`].
//!
//! A pack is data like any other (a data id, a `pending` member while staged, one chunk key,
//! chunk 0, placed by its own id). Each file in it is the entry `p/<size>/<mtime>/<offset>/<pack>`
//! and the `packs` hash counts the files that still use each pack: the script that retires a
//! packed file's entry decrements it, and the last file out makes the pack dead data, deleted as
//! any other. A file replaced or removed from a live pack leaves its bytes in the pack until the
//! pack's last file goes: at most one batch's worth per pack.

use std::ops::Range;

/// Most bytes in one pack: 1 MiB less room for the string's header, so a full pack fits the
/// 1 MiB size class. Also the largest a batched file can be and still be packed.
pub(crate) const PACK_BYTES: u64 = (1 << 20) - 64;

/// What the server adds to a string's bytes in its allocation (sds header and terminator, and
/// the two bytes of room a large bulk argument's buffer keeps), rounded up.
const HEADER: u64 = 16;

/// A pack may leave at most 1/32 of its size class unused, unless it holds one file.
const WASTE_DIVISOR: u64 = 32;

/// The size class jemalloc rounds an allocation of `n` bytes up to: 8, then 16, then four
/// classes per doubling (5,120 after 4,096; 655,360 after 524,288).
pub(crate) fn size_class(n: u64) -> u64 {
    if n <= 16 {
        return if n <= 8 { 8 } else { 16 };
    }
    let top = 63 - (n - 1).leading_zeros() as u64; // 2^top < n <= 2^(top + 1)
    let step = 1u64 << top.saturating_sub(2).max(4);
    (n - 1) / step * step + step
}

/// The server's allocation for a pack of `bytes` bytes.
fn allocation(bytes: u64) -> u64 {
    size_class(bytes + HEADER)
}

/// Splits files of `sizes` bytes, in order, into packs: each range is one pack's files. A pack
/// takes the most files that fit in [`PACK_BYTES`] (at least one) and leave at most
/// 1/[`WASTE_DIVISOR`] of its allocation unused; when no count does (files of 64 KiB never fill
/// a class), the count that wastes the smallest share. The files left go on to the next pack.
pub(crate) fn cut(sizes: &[u64]) -> Vec<Range<usize>> {
    let mut packs = Vec::new();
    let mut start = 0;
    while start < sizes.len() {
        let mut end = start;
        let mut bytes = 0;
        while end < sizes.len() && (end == start || bytes + sizes[end] <= PACK_BYTES) {
            bytes += sizes[end];
            end += 1;
        }
        let mut best = (waste(bytes), end);
        while end - start > 1 && wasteful(bytes) {
            end -= 1;
            bytes -= sizes[end];
            if waste(bytes) < best.0 {
                best = (waste(bytes), end);
            }
        }
        if wasteful(bytes) {
            end = best.1;
        }
        packs.push(start..end);
        start = end;
    }
    packs
}

/// The share of a pack's allocation its `bytes` leave unused.
fn waste(bytes: u64) -> f64 {
    let class = allocation(bytes);
    (class - bytes) as f64 / class as f64
}

fn wasteful(bytes: u64) -> bool {
    waste(bytes) * WASTE_DIVISOR as f64 > 1.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_classes_are_jemallocs() {
        let cases = [
            (1, 8),
            (9, 16),
            (17, 32),
            (33, 48),
            (4096, 4096),
            (4097, 5120),
            (4102, 5120),
            (5121, 6144),
            (524_288, 524_288),
            (524_304, 655_360),
            (1 << 20, 1 << 20),
            ((1 << 20) + 1, 1_310_720),
        ];
        for (n, class) in cases {
            assert_eq!(size_class(n), class, "{n}");
        }
    }

    #[test]
    fn packs_fill_their_size_class() {
        // 128 files of 4 KiB: 512 KiB and a header would take the 640 KiB class, so one file
        // moves to a pack of its own.
        let sizes = vec![4096; 128];
        assert_eq!(cut(&sizes), vec![0..127, 127..128]);
        for files in [1usize, 7, 100, 128, 300] {
            for size in [1u64, 100, 1024, 4096, 10_000, 65_536] {
                let sizes = vec![size; files];
                let packs = cut(&sizes);
                let covered: Vec<usize> = packs.iter().flat_map(Clone::clone).collect();
                assert_eq!(covered, (0..files).collect::<Vec<_>>(), "{files} x {size}");
                for pack in &packs {
                    let bytes: u64 = sizes[pack.clone()].iter().sum();
                    assert!(bytes <= PACK_BYTES || pack.len() == 1);
                    if size == 65_536 && files == 300 {
                        assert!(pack.len() > 1, "64 KiB files share packs: {pack:?}");
                    }
                    let fewer = (1..pack.len()).map(|n| waste(size * n as u64));
                    let least = fewer.fold(waste(bytes), f64::min);
                    assert!(
                        !wasteful(bytes) || waste(bytes) <= least,
                        "{files} x {size}: {pack:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_pack_of_4_kib_files_costs_under_one_percent() {
        let packs = cut(&vec![4096; 255]);
        assert_eq!(packs, vec![0..255]);
        let bytes = 255 * 4096;
        assert!(allocation(bytes) as f64 / (bytes as f64) < 1.01);
    }
}
