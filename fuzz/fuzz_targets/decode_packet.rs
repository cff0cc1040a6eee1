//! Any bytes into `decode_packet` under several limit sets; whatever decodes must
//! re-encode stably. The checks live in `rumor_fuzz::decode_packet`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rumor_fuzz::decode_packet(data));
