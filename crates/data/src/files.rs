//! Reading a file a user names: it must be a regular file (not a FIFO, a device or a
//! folder, which would hang or never end), no larger than a stated limit, and read with
//! that bound. Data files, configs, tokenizers and vocabularies all come in this way.

use std::io::Read;
use std::path::Path;

/// The largest data file read (a million pairs are about 100 MB).
pub const MAX_DATA_FILE_BYTES: u64 = 4 << 30;
/// The largest line of a data file (a sentence pair).
pub const MAX_LINE_BYTES: usize = 1 << 20;
/// The largest config, tokenizer or vocabulary file read.
pub const MAX_SMALL_FILE_BYTES: u64 = 256 << 20;

/// The UTF-8 byte-order mark some editors write at the start of a file.
pub const BOM: &[u8] = b"\xEF\xBB\xBF";

/// The bytes of `path`, if it is a regular file of at most `limit` bytes; the error says
/// why not (the caller names the file).
pub fn read_regular(path: &Path, limit: u64) -> std::io::Result<Vec<u8>> {
    let meta = std::fs::metadata(path)?;
    if !meta.is_file() {
        let what = if meta.is_dir() { "a folder" } else { "not a regular file (a pipe or a device?)" };
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, what));
    }
    let too_big = || {
        std::io::Error::new(std::io::ErrorKind::InvalidData, format!("larger than the limit of {} MiB", limit >> 20))
    };
    if meta.len() > limit {
        return Err(too_big());
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    std::fs::File::open(path)?.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(too_big());
    }
    Ok(bytes)
}

/// [`read_regular`] as UTF-8 text, a leading byte-order mark dropped.
pub fn read_text(path: &Path, limit: u64) -> std::io::Result<String> {
    let bytes = read_regular(path, limit)?;
    let bytes = bytes.strip_prefix(BOM).map(<[u8]>::to_vec).unwrap_or(bytes);
    String::from_utf8(bytes).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.utf8_error()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_regular_files_within_the_limit_are_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("a.txt");
        std::fs::write(&file, b"\xEF\xBB\xBFhello").expect("write");
        assert_eq!(read_text(&file, 100).expect("reads"), "hello");
        assert!(read_regular(&file, 4).expect_err("too big").to_string().contains("limit"));
        assert!(read_regular(dir.path(), 100).expect_err("folder").to_string().contains("folder"));
        if cfg!(target_os = "linux") {
            let zero = read_regular(Path::new("/dev/zero"), 100).expect_err("device").to_string();
            assert!(zero.contains("not a regular file"), "{zero}");
        }
    }
}
