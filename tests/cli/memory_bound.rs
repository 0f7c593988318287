//! A 1 GiB file pulled from `/vdisk` into `/vram` and pushed back: byte-identical, and the
//! process's peak memory is one copy of the file plus a bounded overhead.
//!
//! The peak is read with `getrusage(RUSAGE_CHILDREN)`, which covers every child the test process
//! has waited for, so no other test may spawn one in that process: the test runs alone in a process
//! of its own ([`harness::alone_in_process`]).

use crate::harness;

use std::fs::File;
use std::io::{BufReader, Read, Write};

use harness::Mavfs;

const SIZE: usize = 1 << 30;
const CHUNK: usize = 1 << 20;
/// What the process may use besides the file itself: the binary, runtime, pipeline windows.
const OVERHEAD: usize = 160 << 20;

/// Fills `buf` with a stream that differs at every offset (xorshift), so a misplaced chunk shows.
fn fill(buf: &mut [u8], state: &mut u64) {
    for word in buf.chunks_exact_mut(8) {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        word.copy_from_slice(&state.to_le_bytes());
    }
}

fn peak_rss_of_children() -> usize {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes a whole rusage into the pointer it is given. The only unsafe code
    // in the workspace: std has no way to read the peak RSS of child processes.
    #[allow(unsafe_code)]
    let usage = unsafe {
        assert_eq!(
            libc::getrusage(libc::RUSAGE_CHILDREN, usage.as_mut_ptr()),
            0
        );
        usage.assume_init()
    };
    usage.ru_maxrss as usize * 1024
}

fn same_contents(a: &std::path::Path, b: &std::path::Path) -> bool {
    let (mut a, mut b) = (
        BufReader::new(File::open(a).unwrap()),
        BufReader::new(File::open(b).unwrap()),
    );
    let (mut x, mut y) = (vec![0u8; CHUNK], vec![0u8; CHUNK]);
    loop {
        let n = a.read(&mut x).unwrap();
        if n == 0 {
            return b.read(&mut y).unwrap() == 0;
        }
        if b.read_exact(&mut y[..n]).is_err() || x[..n] != y[..n] {
            return false;
        }
    }
}

#[test]
fn a_gib_round_trips_through_memory_with_one_copy_in_ram() {
    let name = "a_gib_round_trips_through_memory_with_one_copy_in_ram";
    if !harness::alone_in_process(module_path!(), name) {
        return; // it ran, and passed, in a process of its own
    }
    let m = Mavfs::new();
    std::fs::create_dir(m.block_dir()).unwrap();
    let original = m.block_dir().join("big");
    let mut file = File::create(&original).unwrap();
    let (mut buf, mut state) = (vec![0u8; CHUNK], 0x9E37_79B9_7F4A_7C15u64);
    for _ in 0..SIZE / CHUNK {
        fill(&mut buf, &mut state);
        file.write_all(&buf).unwrap();
    }
    drop(file);

    let out = m.exec(&[
        "pull /vdisk/big /vram/big",
        "push /vram/big /vdisk/back",
        "ls -l /vram",
    ]);
    assert!(out.ok().contains(&format!(" {SIZE} ")), "{}", out.stdout);
    let peak = peak_rss_of_children();
    assert!(
        same_contents(&original, &m.block_dir().join("back")),
        "byte-identical after the round trip"
    );
    assert!(
        peak >= SIZE,
        "the file was held in memory once ({peak} bytes peak)"
    );
    assert!(
        peak <= SIZE + OVERHEAD,
        "peak {peak} bytes exceeds one copy plus {OVERHEAD}"
    );
}
