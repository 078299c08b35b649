//! `decode_digit` (what `predict` and the web API run on an uploaded file) on arbitrary bytes:
//! an error or a 28×28 digit, never a panic, within the stated size limits.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use netcalc::app::predict::decode_digit;

fuzz_target!(|data: &[u8]| {
    if let Ok(digit) = decode_digit(data, Path::new("upload")) {
        assert_eq!(digit.len(), 28 * 28);
    }
});
