//! MNIST's IDX format (plain or gzip): a 4-byte magic `0 0 type dims`, `dims` big-endian
//! `u32` sizes, then the values. pcnet-std reads unsigned-byte files (type `0x08`), which is
//! what MNIST, Fashion-MNIST and EMNIST ship.

use super::Dataset;
use crate::Error;
use pcnet_core::Scalar;
use std::{
    io::Read,
    path::{Path, PathBuf},
};

/// The contents of an IDX file of unsigned bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdxArray {
    /// The sizes of each dimension (e.g. `[60000, 28, 28]` for MNIST's training images).
    pub shape: Vec<usize>,
    /// The values, row-major.
    pub values: Vec<u8>,
}

/// The largest IDX array read (1 GiB): a guard against corrupt headers.
const MAX_IDX_VALUES: usize = 1 << 30;

/// Reads an IDX file of unsigned bytes from `reader`, gzip-compressed or not (detected by
/// the gzip magic bytes); `name` appears in error messages.
///
/// # Errors
/// [`Error::Format`] for a bad magic number, an element type other than unsigned byte,
/// sizes that overflow or exceed 1 GiB, a gzip stream that is corrupt, or a file shorter or
/// longer than its header says.
///
/// # Example
/// ```
/// use pcnet_std::data::read_idx;
/// // A 2 x 3 array: magic 0 0 8 2, sizes 2 and 3, then 6 bytes.
/// let bytes = [0u8, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 3, 4, 5, 6];
/// let array = read_idx(&bytes[..], "inline")?;
/// assert_eq!(array.shape, vec![2, 3]);
/// assert_eq!(array.values, vec![1, 2, 3, 4, 5, 6]);
/// # Ok::<(), pcnet_std::Error>(())
/// ```
pub fn read_idx(mut reader: impl Read, name: &str) -> Result<IdxArray, Error> {
    let mut raw = Vec::new();
    reader
        .read_to_end(&mut raw)
        .map_err(|e| Error::format(name, format!("cannot read: {e}")))?;
    let bytes = if raw.starts_with(&GZIP_MAGIC) {
        gunzip(&raw, name)?
    } else {
        raw
    };
    parse_idx(&bytes, name)
}

/// The first two bytes of a gzip stream.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// The decompressed bytes of an IDX file, at most the largest valid IDX file plus one byte.
#[cfg(feature = "gzip")]
fn gunzip(raw: &[u8], name: &str) -> Result<Vec<u8>, Error> {
    let mut plain = Vec::new();
    flate2::read::GzDecoder::new(raw)
        .take(MAX_IDX_VALUES as u64 + 4 + 4 * 255 + 1)
        .read_to_end(&mut plain)
        .map_err(|e| Error::format(name, format!("corrupt gzip stream: {e}")))?;
    Ok(plain)
}

/// Without the `gzip` feature a compressed file is an error that says so.
#[cfg(not(feature = "gzip"))]
fn gunzip(_raw: &[u8], name: &str) -> Result<Vec<u8>, Error> {
    Err(Error::format(
        name,
        "gzip-compressed, and pcnet-std was built without its `gzip` feature",
    ))
}

fn parse_idx(bytes: &[u8], name: &str) -> Result<IdxArray, Error> {
    if bytes.len() < 4 || bytes[0] != 0 || bytes[1] != 0 {
        return Err(Error::format(
            name,
            "not an IDX file (the magic number must start with two zero bytes)",
        ));
    }
    if bytes[2] != 0x08 {
        return Err(Error::format(
            name,
            format!(
                "IDX element type 0x{:02x} is not supported (only unsigned bytes, 0x08)",
                bytes[2]
            ),
        ));
    }
    let dims = usize::from(bytes[3]);
    if dims == 0 {
        return Err(Error::format(name, "IDX file with zero dimensions"));
    }
    let header = 4 + 4 * dims;
    if bytes.len() < header {
        return Err(Error::format(
            name,
            format!("truncated header: {dims} sizes announced"),
        ));
    }
    let mut shape = Vec::with_capacity(dims);
    let mut count: usize = 1;
    for d in 0..dims {
        let at = 4 + 4 * d;
        let size =
            u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]) as usize;
        count = count
            .checked_mul(size)
            .filter(|&c| c <= MAX_IDX_VALUES)
            .ok_or_else(|| Error::format(name, "the sizes in the header are too large"))?;
        shape.push(size);
    }
    let body = &bytes[header..];
    if body.len() != count {
        return Err(Error::format(
            name,
            format!(
                "the header announces {count} values ({shape:?}), the file holds {}",
                body.len()
            ),
        ));
    }
    Ok(IdxArray {
        shape,
        values: body.to_vec(),
    })
}

/// Reads the four MNIST files from `dir` (`train-images-idx3-ubyte`,
/// `train-labels-idx1-ubyte`, `t10k-images-idx3-ubyte`, `t10k-labels-idx1-ubyte`, each
/// plain or with `.gz`) as `(train, test)`, pixels divided by 255, 10 classes.
///
/// # Errors
/// [`Error::Io`] naming the file that is missing or unreadable, [`Error::Format`] for a
/// corrupt file or images and labels that do not match.
pub fn mnist<T: Scalar>(dir: &Path) -> Result<(Dataset<T>, Dataset<T>), Error> {
    let train = mnist_pair(dir, "train")?;
    let test = mnist_pair(dir, "t10k")?;
    Ok((train, test))
}

fn open_either(dir: &Path, stem: &str) -> Result<(PathBuf, Vec<u8>), Error> {
    let plain = dir.join(stem);
    let gzipped = dir.join(format!("{stem}.gz"));
    for path in [&plain, &gzipped] {
        if path.exists() {
            let bytes = std::fs::read(path).map_err(|source| Error::Io {
                path: path.clone(),
                source,
            })?;
            return Ok((path.clone(), bytes));
        }
    }
    Err(Error::Io {
        path: plain,
        source: std::io::Error::new(std::io::ErrorKind::NotFound, "not found (nor with .gz)"),
    })
}

fn mnist_pair<T: Scalar>(dir: &Path, prefix: &str) -> Result<Dataset<T>, Error> {
    let (image_path, image_bytes) = open_either(dir, &format!("{prefix}-images-idx3-ubyte"))?;
    let (label_path, label_bytes) = open_either(dir, &format!("{prefix}-labels-idx1-ubyte"))?;
    let image_name = image_path.display().to_string();
    let label_name = label_path.display().to_string();
    let images = read_idx(image_bytes.as_slice(), &image_name)?;
    let labels = read_idx(label_bytes.as_slice(), &label_name)?;
    if images.shape.len() < 2 || labels.shape.len() != 1 || images.shape[0] != labels.shape[0] {
        return Err(Error::format(
            &image_name,
            format!(
                "images of shape {:?} do not match labels of shape {:?}",
                images.shape, labels.shape
            ),
        ));
    }
    let rows = images.shape[0];
    let features = images.values.len().checked_div(rows).unwrap_or(0);
    if let Some(row) = labels.values.iter().position(|&l| l > 9) {
        return Err(Error::format(
            &label_name,
            format!("label {} at row {row} is not a digit", labels.values[row]),
        ));
    }
    let inputs = images
        .values
        .iter()
        .map(|&v| T::from_f64(f64::from(v) / 255.0))
        .collect();
    let labels = labels.values.iter().map(|&l| usize::from(l)).collect();
    Dataset::new(inputs, labels, features, 10)
        .map_err(|e| Error::format(&image_name, e.to_string()))
}

// Most of these tests write gzip files.
#[cfg(all(test, feature = "gzip"))]
mod tests {
    use super::*;
    use std::io::Write;

    fn idx(shape: &[u32], values: &[u8]) -> Vec<u8> {
        let mut bytes = vec![0, 0, 8, shape.len() as u8];
        for s in shape {
            bytes.extend_from_slice(&s.to_be_bytes());
        }
        bytes.extend_from_slice(values);
        bytes
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn plain_and_gzip_files_read_the_same() {
        let values: Vec<u8> = (0..24).collect();
        let plain = idx(&[2, 3, 4], &values);
        let a = read_idx(plain.as_slice(), "p").unwrap();
        let b = read_idx(gzip(&plain).as_slice(), "g").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.shape, vec![2, 3, 4]);
        assert_eq!(a.values, values);
    }

    #[test]
    fn corrupt_files_are_errors_not_panics() {
        let good = idx(&[2, 2], &[1, 2, 3, 4]);
        let mut cases: Vec<(Vec<u8>, &str)> = vec![
            (vec![], "magic"),
            (vec![1, 0, 8, 1], "magic"),
            (vec![0, 0, 0x0d, 1, 0, 0, 0, 1, 0, 0, 0, 0], "0x0d"),
            (vec![0, 0, 8, 0], "zero dimensions"),
            (vec![0, 0, 8, 3, 0, 0], "truncated"),
            (good[..good.len() - 1].to_vec(), "announces"),
            ([good.clone(), vec![9]].concat(), "announces"),
            (idx(&[u32::MAX, u32::MAX, u32::MAX], &[]), "too large"),
            (vec![0x1f, 0x8b, 8, 0, 1, 2, 3], "gzip"),
        ];
        let zipped = gzip(&good);
        cases.push((zipped[..zipped.len() / 2].to_vec(), "gzip"));
        for (bytes, needle) in cases {
            let message = read_idx(bytes.as_slice(), "f.idx").unwrap_err().to_string();
            assert!(
                message.contains(needle) && message.contains("f.idx"),
                "{bytes:?}: {message}"
            );
        }
    }

    #[test]
    fn random_corruptions_never_panic() {
        // 2,000 mutated copies of a valid file, plain and gzip: each must read or fail
        // with an error, never panic (a panic fails the test).
        let good = idx(&[3, 4, 5], &[7u8; 60]);
        let zipped = gzip(&good);
        let mut rng = crate::rng::SplitMix64::new(11);
        for round in 0..2000 {
            let mut bytes = if round % 2 == 0 {
                good.clone()
            } else {
                zipped.clone()
            };
            for _ in 0..1 + rng.below(4) {
                let at = rng.below(bytes.len() as u64) as usize;
                match rng.below(3) {
                    0 => bytes[at] = rng.next_u64() as u8,
                    1 => bytes.truncate(at),
                    _ => bytes.insert(at, rng.next_u64() as u8),
                }
                if bytes.is_empty() {
                    break;
                }
            }
            let _ = read_idx(bytes.as_slice(), "fuzz");
        }
    }

    #[test]
    fn mnist_directory_with_written_files() {
        let dir = std::env::temp_dir().join(format!("pcnet-std-mnist-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // 3 training images of 2x2 (one gzipped file), 1 test image.
        std::fs::write(
            dir.join("train-images-idx3-ubyte.gz"),
            gzip(&idx(&[3, 2, 2], &[0, 255, 51, 0, 1, 2, 3, 4, 5, 6, 7, 8])),
        )
        .unwrap();
        std::fs::write(dir.join("train-labels-idx1-ubyte"), idx(&[3], &[7, 0, 9])).unwrap();
        std::fs::write(
            dir.join("t10k-images-idx3-ubyte"),
            idx(&[1, 2, 2], &[255, 255, 0, 0]),
        )
        .unwrap();
        std::fs::write(dir.join("t10k-labels-idx1-ubyte"), idx(&[1], &[3])).unwrap();
        let (train, test) = mnist::<f32>(&dir).unwrap();
        assert_eq!((train.len(), train.features(), train.classes()), (3, 4, 10));
        assert_eq!(train.labels(), &[7, 0, 9]);
        assert_eq!(&train.row(0)[..3], &[0.0, 1.0, 0.2]);
        assert_eq!(test.row(0), &[1.0, 1.0, 0.0, 0.0]);
        // A label file that does not match the images.
        std::fs::write(dir.join("t10k-labels-idx1-ubyte"), idx(&[2], &[3, 4])).unwrap();
        assert!(mnist::<f32>(&dir)
            .unwrap_err()
            .to_string()
            .contains("do not match"));
        std::fs::remove_file(dir.join("t10k-labels-idx1-ubyte")).unwrap();
        assert!(matches!(mnist::<f32>(&dir), Err(Error::Io { .. })));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[cfg(all(test, not(feature = "gzip")))]
mod without_gzip {
    use super::*;

    #[test]
    fn a_gzip_file_is_an_error_that_names_the_feature() {
        let err = read_idx(&[0x1f, 0x8b, 8, 0][..], "train.gz").unwrap_err();
        assert_eq!(
            err.to_string(),
            "train.gz: gzip-compressed, and pcnet-std was built without its `gzip` feature"
        );
        let plain = read_idx(&[0, 0, 8, 1, 0, 0, 0, 2, 7, 9][..], "plain").unwrap();
        assert_eq!(plain.values, [7, 9]);
    }
}
