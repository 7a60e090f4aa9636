//! Release binaries carry their debug info (line tables, for backtraces with
//! file:line) zlib-compressed: 37 MB become about 20. Backtraces read the
//! compressed sections as they are; `objcopy --decompress-debug-sections`
//! restores them for tools that cannot. The linker (rustc's bundled lld)
//! compresses harder at `-O2` (6.0 MB of debug info become 5.3), and
//! `--discard-all` drops local symbols (1.5 MB of names): frames of our code
//! are named from the debug info, dependencies' from their global symbols.
//! Profilers such as `perf` want the local ones too (SQLite's static
//! functions): build with `AURINKO_SYNC_KEEP_SYMBOLS=1` to keep them.

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    if std::env::var("PROFILE").as_deref() == Ok("release") {
        println!("cargo::rustc-link-arg-bins=-Wl,--compress-debug-sections=zlib");
        // Local symbols name static C functions (SQLite's) and private
        // Rust ones for profilers: `AURINKO_SYNC_KEEP_SYMBOLS=1` keeps them.
        println!("cargo::rerun-if-env-changed=AURINKO_SYNC_KEEP_SYMBOLS");
        if std::env::var_os("AURINKO_SYNC_KEEP_SYMBOLS").is_none_or(|v| v.is_empty() || v == "0") {
            println!("cargo::rustc-link-arg-bins=-Wl,--discard-all");
        }
        println!("cargo::rustc-link-arg-bins=-Wl,-O2");
    }
}
