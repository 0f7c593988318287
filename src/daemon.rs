//! The daemon (`mavfs serve`) and its clients; placeholder until the protocol, server and client land.

pub mod socket;
