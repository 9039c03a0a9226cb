//! Render worker processes for bulk exports: `confctl export` typesets its PDFs in child processes
//! (`confctl render-worker`, the protocol in `export::worker`), one render at a time each, started on first
//! use and kept for the run.
//!
//! Two PDFs typeset at once in one process slow each other down (typst's memoisation caches are
//! process-wide); two worker processes do not, and a renderer that crashes costs one lecture, not the run.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::{Mutex, Semaphore};

use crate::error::{Error, Result};
use crate::export::{Format, LectureDoc, worker};

/// The worker processes of one export run. Dropping it closes their input, which ends them.
pub struct RenderWorkers {
    program: PathBuf,
    args: Vec<OsString>,
    idle: Mutex<Vec<Worker>>,
    slots: Semaphore,
    /// The highest peak resident set a worker reported (kB, Linux), for the run's figures.
    peak_rss_kb: std::sync::atomic::AtomicU64,
}

struct Worker {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl std::fmt::Debug for RenderWorkers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RenderWorkers").field("program", &self.program).field("args", &self.args).finish()
    }
}

impl RenderWorkers {
    /// At most `count` workers, each started as `program args…` (for `confctl`: the running binary and
    /// `render-worker`).
    pub fn new(program: PathBuf, args: Vec<OsString>, count: usize) -> Self {
        Self {
            program,
            args,
            idle: Mutex::new(Vec::new()),
            slots: Semaphore::new(count.max(1)),
            peak_rss_kb: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Workers of the running `confctl` binary.
    pub fn of_this_binary(count: usize) -> Result<Self> {
        let program = std::env::current_exe()
            .map_err(|e| Error::internal(format!("cannot find the confctl binary to start render workers: {e}")))?;
        Ok(Self::new(program, vec!["render-worker".into()], count))
    }

    /// `doc` in `format`, rendered by a free worker (one is started when none is idle and a slot is free).
    /// The request is written before a worker is waited for, so a lecture read ahead is ready to go.
    pub async fn render(&self, doc: &Arc<LectureDoc>, format: Format) -> Result<Vec<u8>> {
        let doc = Arc::clone(doc);
        let request = tokio::task::spawn_blocking(move || worker::request(&doc, format))
            .await
            .map_err(|e| Error::internal(format!("the render request task failed: {e}")))?
            .map_err(|e| Error::internal(format!("the lecture could not be sent to a render worker: {e}")))?;
        let _slot = self.slots.acquire().await.map_err(|_| Error::internal("the render workers were closed"))?;
        let popped = self.idle.lock().await.pop();
        let mut worker = match popped {
            Some(worker) => worker,
            None => self.start()?,
        };
        match worker.call(&request).await {
            Ok(rendered) => {
                self.idle.lock().await.push(worker);
                rendered
            }
            // The worker is gone or out of step: it is not reused (killed on drop); the next render starts
            // another.
            Err(err) => {
                let exit = worker.child.try_wait().ok().flatten();
                let how = exit.map(|status| format!(" ({status})")).unwrap_or_default();
                Err(Error::internal(format!("the render worker stopped{how}: {err}")))
            }
        }
    }

    fn start(&self) -> Result<Worker> {
        let mut child = Command::new(&self.program)
            .args(&self.args)
            // A worker typesets one PDF at a time, and there are as many workers as cores: typst's parallel
            // steps gain nothing there, while a rayon pool per worker spends CPU on idle threads waking and
            // yielding (about 6 % of a worker's CPU in a bulk export, docs/performance.md).
            .env("RAYON_NUM_THREADS", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| Error::internal(format!("cannot start a render worker ({}): {e}", self.program.display())))?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(Error::internal("a render worker started without pipes"));
        };
        Ok(Worker { child, stdin, stdout: BufReader::with_capacity(1 << 16, stdout) })
    }

    /// Ends the workers (their input closes, they exit) and notes their peak memory.
    pub async fn shut_down(&self) {
        let workers = std::mem::take(&mut *self.idle.lock().await);
        for mut worker in workers {
            if let Some(kb) = peak_rss_kb(worker.child.id()) {
                self.peak_rss_kb.fetch_max(kb, std::sync::atomic::Ordering::Relaxed);
            }
            drop(worker.stdin);
            let _ = worker.child.wait().await;
        }
    }

    /// The highest peak resident set of a worker shut down so far, in kB (Linux; `None` elsewhere).
    pub fn peak_rss_kb(&self) -> Option<u64> {
        Some(self.peak_rss_kb.load(std::sync::atomic::Ordering::Relaxed)).filter(|&kb| kb > 0)
    }
}

impl Worker {
    /// Sends one request and reads its reply. `Err` means the worker cannot be used again; a render that
    /// failed inside a working worker is `Ok(Err(..))`.
    async fn call(&mut self, request: &[u8]) -> std::io::Result<Result<Vec<u8>>> {
        self.stdin.write_all(request).await?;
        self.stdin.flush().await?;
        let status = self.stdout.read_u8().await?;
        let length = self.stdout.read_u32_le().await?;
        let mut payload = vec![0; length as usize];
        self.stdout.read_exact(&mut payload).await?;
        Ok(match status {
            0 => Ok(payload),
            _ => Err(Error::internal(String::from_utf8_lossy(&payload).into_owned())),
        })
    }
}

/// `VmHWM` of process `pid` (Linux `/proc`).
fn peak_rss_kb(pid: Option<u32>) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{}/status", pid?)).ok()?;
    status.lines().find_map(|l| l.strip_prefix("VmHWM:"))?.trim().trim_end_matches("kB").trim().parse().ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::export::synthetic;

    #[tokio::test]
    async fn a_worker_that_dies_fails_its_render_with_the_reason_and_is_not_reused() {
        let doc = Arc::new(synthetic::lecture(1, 5, 2, 1));
        // Exits without reading: the request meets a closed pipe, or the reply an early end.
        let dying = RenderWorkers::new("sh".into(), vec!["-c".into(), "exit 3".into()], 1);
        for _ in 0..2 {
            let err = dying.render(&doc, Format::Pdf).await.unwrap_err().to_string();
            assert!(err.contains("the render worker stopped"), "{err}");
            assert!(dying.idle.lock().await.is_empty(), "a worker that failed is not kept");
        }
        let missing = RenderWorkers::new("/nonexistent/confctl".into(), vec!["render-worker".into()], 1);
        let err = missing.render(&doc, Format::Pdf).await.unwrap_err().to_string();
        assert!(err.contains("cannot start a render worker (/nonexistent/confctl)"), "{err}");
    }
}
