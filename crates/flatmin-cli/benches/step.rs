//! `cargo bench -p flatmin-cli --bench step`: the same measurement as `flatmin bench`, with its
//! defaults (every model and optimizer, batch 128). Settings come from the environment:
//! `FLATMIN_BENCH_MODELS`, `FLATMIN_BENCH_OPTIMIZERS` (comma-separated), `FLATMIN_BENCH_STEPS`,
//! `FLATMIN_BENCH_BATCH`, `FLATMIN_BENCH_OUT` (a JSON file).

use flatmin_lab::bench::{self, BenchConfig};

fn list(var: &str) -> Option<Vec<String>> {
    std::env::var(var).ok().map(|v| {
        v.split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect()
    })
}

fn number(var: &str) -> Option<usize> {
    std::env::var(var).ok().and_then(|v| v.parse().ok())
}

#[global_allocator]
static ALLOCATOR: flatmin_lab::malloc::CountingAlloc = flatmin_lab::malloc::CountingAlloc;

fn main() {
    flatmin::keep_freed_memory();
    // `cargo test --benches` runs bench targets with `--test`-like flags: a smoke run then.
    let smoke = std::env::args().any(|a| a == "--test");
    let mut config = BenchConfig::default();
    if let Some(m) = list("FLATMIN_BENCH_MODELS") {
        config.models = m;
    }
    if let Some(o) = list("FLATMIN_BENCH_OPTIMIZERS") {
        config.optimizers = o;
    }
    if let Some(s) = number("FLATMIN_BENCH_STEPS") {
        config.steps = s;
    }
    if let Some(b) = number("FLATMIN_BENCH_BATCH") {
        config.batch_size = b;
    }
    if smoke {
        config.models = vec!["mlp".into()];
        config.optimizers = vec!["sgd".into(), "sam".into()];
        config.steps = 1;
        config.warmup = 0;
        config.batch_size = 8;
    }
    let result = match bench::run(&config, |line| eprintln!("{line}")) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("bench: {e}");
            std::process::exit(1);
        }
    };
    if let Ok(out) = std::env::var("FLATMIN_BENCH_OUT") {
        std::fs::write(&out, bench::to_json(&result)).unwrap_or_else(|e| panic!("{out}: {e}"));
    }
    println!("{}", bench::table(&result));
}
