//! The render worker's side of rendering in a child process (`confctl render-worker`): lectures arrive on
//! standard input, their rendered bytes leave on standard output, one at a time, until the input closes.
//!
//! Why a process: typst keeps its memoised layouts in process-wide caches, so two PDFs typeset at once in one
//! process slow each other down (`docs/performance.md`, bulk export); in two processes they do not. A bulk
//! export therefore hands its PDFs to worker processes (`lectures::workers`), which also keeps a renderer
//! crash to one lecture's failure.
//!
//! Frames, little-endian: a request is `u32 length` + JSON `{"format": "pdf", "doc": LectureDoc}`; a reply is
//! `u8 status` (0 rendered, 1 failed) + `u32 length` + the bytes, or the error message in UTF-8.

use std::borrow::Cow;
use std::io::{self, Read, Write};

use serde::{Deserialize, Serialize};

use super::{Format, LectureDoc};

/// The largest request a worker reads: a lecture's document is a few megabytes at most.
const MAX_REQUEST: u32 = 512 << 20;

/// What the exporting process sends: borrowed when it is written, owned when the worker reads it.
#[derive(Serialize, Deserialize)]
struct Request<'a> {
    /// The format's name (`Format::as_str`).
    format: &'a str,
    doc: Cow<'a, LectureDoc>,
}

/// The request frame for `doc` in `format`.
pub fn request(doc: &LectureDoc, format: Format) -> serde_json::Result<Vec<u8>> {
    let mut frame = vec![0; 4];
    serde_json::to_writer(&mut frame, &Request { format: format.as_str(), doc: Cow::Borrowed(doc) })?;
    let length = (frame.len() - 4) as u32;
    frame[..4].copy_from_slice(&length.to_le_bytes());
    Ok(frame)
}

/// Serves requests from `input` until it closes; an I/O error ends the worker (its parent went away).
pub fn serve(input: &mut impl Read, output: &mut impl Write) -> io::Result<()> {
    loop {
        let mut length = [0; 4];
        match input.read_exact(&mut length) {
            Ok(()) => {}
            Err(err) if err.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(err) => return Err(err),
        }
        let length = u32::from_le_bytes(length);
        if length > MAX_REQUEST {
            return Err(io::Error::new(io::ErrorKind::InvalidData, format!("a request of {length} bytes")));
        }
        let mut body = vec![0; length as usize];
        input.read_exact(&mut body)?;
        let rendered = serde_json::from_slice::<Request<'_>>(&body)
            .map_err(|err| format!("a request the worker cannot read: {err}"))
            .and_then(|request| {
                let format: Format = request.format.parse().map_err(|err: crate::Error| err.to_string())?;
                super::render(&request.doc, format).map_err(|err| err.to_string())
            });
        drop(body);
        let (status, payload) = match &rendered {
            Ok(bytes) => (0u8, bytes.as_slice()),
            Err(message) => (1u8, message.as_bytes()),
        };
        output.write_all(&[status])?;
        output.write_all(&(payload.len() as u32).to_le_bytes())?;
        output.write_all(payload)?;
        output.flush()?;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::export::synthetic;

    /// Reads one reply frame: the status and the payload.
    fn reply(bytes: &mut &[u8]) -> (u8, Vec<u8>) {
        let mut head = [0; 5];
        bytes.read_exact(&mut head).unwrap();
        let mut payload = vec![0; u32::from_le_bytes([head[1], head[2], head[3], head[4]]) as usize];
        bytes.read_exact(&mut payload).unwrap();
        (head[0], payload)
    }

    #[test]
    fn renders_each_request_in_turn_and_reports_failures_as_replies() {
        let doc = synthetic::lecture(2, 20, 5, 1);
        let mut input = request(&doc, Format::Vtt).unwrap();
        let mut hidden = doc.clone();
        hidden.attendance = None;
        input.extend(request(&hidden, Format::AttendanceCsv).unwrap());
        input.extend(request(&doc, Format::Pdf).unwrap());
        let mut output = Vec::new();
        serve(&mut input.as_slice(), &mut output).unwrap();

        let mut replies = output.as_slice();
        assert_eq!(reply(&mut replies), (0, crate::export::render(&doc, Format::Vtt).unwrap()));
        let (status, message) = reply(&mut replies);
        assert_eq!(status, 1);
        assert!(String::from_utf8(message).unwrap().contains("attendance is shown only"));
        let (status, pdf) = reply(&mut replies);
        assert_eq!(status, 0);
        assert!(pdf.starts_with(b"%PDF-"));
        assert!(replies.is_empty(), "one reply per request");
    }

    #[test]
    fn a_closed_input_ends_the_worker_and_garbage_is_refused() {
        serve(&mut [].as_slice(), &mut Vec::new()).unwrap();
        let mut garbage = 5u32.to_le_bytes().to_vec();
        garbage.extend(b"nope!");
        let mut output = Vec::new();
        serve(&mut garbage.as_slice(), &mut output).unwrap();
        let (status, message) = reply(&mut output.as_slice());
        assert_eq!(status, 1);
        assert!(String::from_utf8(message).unwrap().contains("cannot read"));
        let too_long = (MAX_REQUEST + 1).to_le_bytes();
        assert!(serve(&mut too_long.as_slice(), &mut Vec::new()).is_err());
    }
}
