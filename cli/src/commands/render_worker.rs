//! `confctl render-worker` (hidden): the child process `confctl export` typesets its PDFs in — lectures on
//! standard input, rendered bytes on standard output (`confctl::export::worker`), until the input closes.

use std::io::{BufWriter, Write};
use std::process::ExitCode;

/// Runs without the async runtime: one render at a time, nothing else in the process.
pub fn run() -> ExitCode {
    let mut input = std::io::stdin().lock();
    let mut output = BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    match confctl::export::worker::serve(&mut input, &mut output).and_then(|()| output.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        // The export went away (killed, interrupted) while this worker was rendering: nothing to report.
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("confctl render-worker: {err}");
            ExitCode::from(1)
        }
    }
}
