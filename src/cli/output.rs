//! Everything the commands print, to stdout and stderr, through writers
//! that end quietly when nobody reads any more.
//!
//! `println!` and `eprintln!` panic when a write fails: `aurinko-sync demo
//! | head` closes the pipe after ten lines, and the next line panicked with
//! exit 101 and a backtrace. Here a failed write means the reader is gone:
//! that stream's later output is dropped, and the command carries on to its
//! usual exit code (a catch-up still commits what it fetched). A failure
//! other than a closed pipe (a full disk behind `> file`) is said once on
//! stderr. Log lines go through [`Stderr`], so tracing never falls back to
//! `eprintln!` either.

use std::fmt;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};

static STDOUT_GONE: AtomicBool = AtomicBool::new(false);
static STDERR_GONE: AtomicBool = AtomicBool::new(false);

/// Writes to stdout, like `print!`, unless stdout is gone.
pub fn out(args: fmt::Arguments<'_>) {
    if STDOUT_GONE.load(Ordering::Relaxed) {
        return;
    }
    let mut stdout = io::stdout().lock();
    if let Err(e) = stdout.write_fmt(args).and_then(|()| stdout.flush()) {
        STDOUT_GONE.store(true, Ordering::Relaxed);
        if e.kind() != io::ErrorKind::BrokenPipe {
            err(format_args!("aurinko-sync: cannot write to stdout ({e}); the rest of the output is dropped\n"));
        }
    }
}

/// Writes to stderr, like `eprint!`, unless stderr is gone.
pub fn err(args: fmt::Arguments<'_>) {
    let _ = Stderr.write_fmt(args);
}

/// Stderr for the log: a write that fails reports success, so that the
/// logger drops the line instead of complaining on a closed stream.
#[derive(Clone, Copy)]
pub struct Stderr;

impl Write for Stderr {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if !STDERR_GONE.load(Ordering::Relaxed) && io::stderr().lock().write_all(buf).is_err() {
            STDERR_GONE.store(true, Ordering::Relaxed);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        let _ = io::stderr().flush();
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Stderr {
    type Writer = Stderr;

    fn make_writer(&'a self) -> Stderr {
        Stderr
    }
}

/// `println!` for the commands: see [`out`].
macro_rules! outln {
    ($($arg:tt)*) => { $crate::cli::output::out(format_args!("{}\n", format_args!($($arg)*))) };
}

/// `eprintln!` for the commands: see [`err`].
macro_rules! errln {
    ($($arg:tt)*) => { $crate::cli::output::err(format_args!("{}\n", format_args!($($arg)*))) };
}

pub(crate) use {errln, outln};
