//! The `aurinko-sync` binary; everything lives in the library's `cli`.

fn main() -> std::process::ExitCode {
    aurinko_sync::cli::main()
}
