//! A byte string read as a sequence of time steps, datagrams and commands for a few
//! real `Node`s, with invariants checked after every step. The interpreter and the
//! checks live in `rumor_fuzz::node_inputs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rumor_fuzz::node_inputs(data));
