//! Volume files: parallel gzip (or plain) writing with inline hashes, and read-ahead gunzip.

pub mod reader;
pub mod writer;

pub use reader::GzipReader;
pub use writer::{VolumeSummary, VolumeWriter};
