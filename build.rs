//! Release binaries carry their debug info (line tables, for backtraces with
//! file:line) zlib-compressed: 37 MB become about 20. Backtraces read the
//! compressed sections as they are; `objcopy --decompress-debug-sections`
//! restores them for tools that cannot.

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    if std::env::var("PROFILE").as_deref() == Ok("release") {
        println!("cargo::rustc-link-arg-bins=-Wl,--compress-debug-sections=zlib");
    }
}
