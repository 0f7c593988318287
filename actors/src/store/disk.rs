//! `DiskStore`: the sandboxed host-directory tier (being written).
