//! The system calls the tests make (signals, FIFOs, device nodes, who we
//! are), through rustix's safe wrappers: the crate denies `unsafe`.

use std::path::Path;

use rustix::fs::{CWD, FileType, Mode, makedev, mkfifoat, mknodat};
use rustix::process::{Pid, Signal, geteuid, kill_process};

pub use rustix::process::Signal as Sig;

/// Sends `signal` to the process `pid` (a child of the test).
pub fn signal(pid: u32, signal: Signal) {
    let pid = i32::try_from(pid).ok().and_then(Pid::from_raw).expect("a valid pid");
    kill_process(pid, signal).expect("the signal is sent");
}

pub fn is_root() -> bool {
    geteuid().is_root()
}

pub fn mkfifo(path: &Path, mode: u32) {
    mkfifoat(CWD, path, Mode::from_raw_mode(mode)).unwrap_or_else(|e| panic!("mkfifo {}: {e}", path.display()));
}

/// A `/dev/null` of our own (character device 1:3) at `path`.
pub fn dev_null(path: &Path) {
    mknodat(CWD, path, FileType::CharacterDevice, Mode::from_raw_mode(0o666), makedev(1, 3))
        .unwrap_or_else(|e| panic!("mknod {}: {e}", path.display()));
}
