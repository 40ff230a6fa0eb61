//! An event file: TFRecord framing (length, masked CRC-32C of the length, the record,
//! masked CRC-32C of the record) around serialized [`Event`]s, named
//! `events.out.tfevents.<seconds>.<host>.<pid>` as TensorBoard expects.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use prost::Message;

use s2s_run::error::{io, Result};

use crate::proto::{Event, What};

/// TFRecord's CRC mask: rotate right by 15 bits and add a constant.
fn masked_crc(bytes: &[u8]) -> u32 {
    let crc = crc32c::crc32c(bytes);
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

/// Seconds since the epoch, as TensorBoard's wall times.
pub fn now_secs() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

/// One event file being written.
#[derive(Debug)]
pub struct EventFile {
    path: PathBuf,
    out: BufWriter<File>,
}

impl EventFile {
    /// Starts a new file in `dir` with its `file_version` record.
    pub fn create(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .ok()
            .filter(|h| !h.is_empty() && !h.contains('/'))
            .unwrap_or_else(|| "localhost".into());
        // Readers take a folder's files in name order: a session's file must sort after
        // the earlier sessions' even when it starts within the same second.
        let newest = std::fs::read_dir(dir)
            .map_err(io(dir))?
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                name.strip_prefix("events.out.tfevents.")?.split('.').next()?.parse::<u64>().ok()
            })
            .max();
        let secs = (now_secs() as u64).max(newest.map_or(0, |n| n + 1));
        let path = dir.join(format!("events.out.tfevents.{secs}.{host}.{}", std::process::id()));
        let out = BufWriter::new(File::create(&path).map_err(io(&path))?);
        let mut file = Self { path, out };
        file.write(&Event { wall_time: now_secs(), step: 0, what: Some(What::FileVersion("brain.Event:2".into())) })?;
        Ok(file)
    }

    #[cfg(test)]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one event (buffered until [`Self::flush`]).
    pub fn write(&mut self, event: &Event) -> Result<()> {
        let data = event.encode_to_vec();
        let len = (data.len() as u64).to_le_bytes();
        let path = &self.path;
        let out = &mut self.out;
        out.write_all(&len).map_err(io(path))?;
        out.write_all(&masked_crc(&len).to_le_bytes()).map_err(io(path))?;
        out.write_all(&data).map_err(io(path))?;
        out.write_all(&masked_crc(&data).to_le_bytes()).map_err(io(path))?;
        Ok(())
    }

    /// Hands what is buffered to the OS (it then survives the process being killed).
    pub fn flush(&mut self) -> Result<()> {
        self.out.flush().map_err(io(&self.path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The masked CRC of TFRecord's framing, checked against TensorFlow's
    /// `tensorflow/core/lib/hash/crc32c.h` test values: crc32c("123456789") = 0xe3069283.
    #[test]
    fn crc_and_mask_match_tensorflow() {
        assert_eq!(crc32c::crc32c(b"123456789"), 0xe306_9283);
        // ((crc >> 15) | (crc << 17)) + 0xa282ead8, worked out by hand for that crc.
        assert_eq!(masked_crc(b"123456789"), 0xc78ab0e5);
    }

    #[test]
    fn records_are_framed_and_readable_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut f = EventFile::create(dir.path()).expect("create");
        f.write(&Event { wall_time: 1.0, step: 7, what: None }).expect("write");
        f.flush().expect("flush");
        let bytes = std::fs::read(f.path()).expect("read");
        let mut at = 0;
        let mut events = Vec::new();
        while at < bytes.len() {
            let len = u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8")) as usize;
            assert_eq!(
                u32::from_le_bytes(bytes[at + 8..at + 12].try_into().expect("4")),
                masked_crc(&bytes[at..at + 8])
            );
            let data = &bytes[at + 12..at + 12 + len];
            assert_eq!(
                u32::from_le_bytes(bytes[at + 12 + len..at + 16 + len].try_into().expect("4")),
                masked_crc(data)
            );
            events.push(Event::decode(data).expect("decode"));
            at += 16 + len;
        }
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].what, Some(What::FileVersion("brain.Event:2".into())));
        assert_eq!(events[1].step, 7);
    }
}
