#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| imgate_fuzz::irc_split_vs_ngircd(data));
