//! CPU per audio stream for the assistant's decode + resample + VAD path (filled in below).

fn main() {}
