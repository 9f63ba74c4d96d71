#![no_main]

use flatmin_lab::fuzzing::{self, CappedAlloc};
use libfuzzer_sys::fuzz_target;

// Any single allocation above the cap is a failure (a size taken from untrusted input).
#[global_allocator]
static ALLOC: CappedAlloc = CappedAlloc;

fuzz_target!(|data: &[u8]| fuzzing::checkpoint(data));
