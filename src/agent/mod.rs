//! The AI assistant (`confctl agent`, or in-process with `confctl serve --with-agent`): joins lectures as a
//! hidden LiveKit participant, captions every speaker live and summarises the lecture when it ends. It talks
//! only to confctl's agent API (`docs/agent-api.md`), never to the database or LiveKit's server API.

pub mod stt;
pub mod summary;
pub mod transcript;
