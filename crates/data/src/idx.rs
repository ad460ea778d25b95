//! IDX files (the MNIST / Fashion-MNIST format), plain or gzip-compressed, and the
//! Fashion-MNIST data set as shipped by Debian's `dataset-fashion-mnist`.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::Dataset;

/// Where Debian's `dataset-fashion-mnist` puts the files.
pub const FASHION_MNIST_DIR: &str = "/usr/share/datasets/fashion-mnist";

/// An unreadable or malformed IDX file.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct IdxError {
    /// The file.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

/// An array of bytes with its dimensions (the only element type MNIST-style files use).
#[derive(Clone, Debug, PartialEq)]
pub struct Idx {
    /// Dimensions, outermost first.
    pub dims: Vec<usize>,
    /// Row-major values.
    pub data: Vec<u8>,
}

/// Parses an IDX file's bytes (gunzipped first when they start with the gzip magic).
pub fn parse(bytes: &[u8]) -> Result<Idx, String> {
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut plain = Vec::new();
        flate2::read::GzDecoder::new(bytes)
            // Fashion-MNIST's largest file is 47 MB; anything far bigger is not one.
            .take(1 << 30)
            .read_to_end(&mut plain)
            .map_err(|e| format!("bad gzip data: {e}"))?;
        return parse(&plain);
    }
    let [0, 0, kind, rank, rest @ ..] = bytes else {
        return Err("too short for an IDX header".into());
    };
    if *kind != 0x08 {
        return Err(format!("element type 0x{kind:02x} is not unsigned bytes (0x08)"));
    }
    let rank = usize::from(*rank);
    if rest.len() < 4 * rank {
        return Err(format!("header announces {rank} dimensions but the file ends first"));
    }
    let dims: Vec<usize> =
        rest[..4 * rank].chunks(4).map(|d| u32::from_be_bytes([d[0], d[1], d[2], d[3]]) as usize).collect();
    let data = &rest[4 * rank..];
    let count = dims.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
    if count != Some(data.len()) {
        return Err(format!("dimensions {dims:?} need {count:?} bytes of data, the file has {}", data.len()));
    }
    Ok(Idx { dims, data: data.to_vec() })
}

/// Reads an IDX file.
pub fn read(path: &Path) -> Result<Idx, IdxError> {
    let error = |message: String| IdxError { path: path.display().to_string(), message };
    let bytes = std::fs::read(path).map_err(|e| error(e.to_string()))?;
    parse(&bytes).map_err(error)
}

/// Fashion-MNIST: 28×28 grey images scaled to [0, 1] (rows of 784) and labels 0–9.
#[derive(Clone, Debug)]
pub struct FashionMnist {
    /// Training images.
    pub train: Dataset,
    /// Training labels.
    pub train_labels: Vec<u8>,
    /// Test images.
    pub test: Dataset,
    /// Test labels.
    pub test_labels: Vec<u8>,
}

impl FashionMnist {
    /// Loads the four files from `dir` (each `NAME` or `NAME.gz`), e.g.
    /// [`FASHION_MNIST_DIR`]; a missing file's error names the path and the Debian package.
    pub fn load(dir: &Path) -> Result<FashionMnist, IdxError> {
        let (train, train_labels) =
            (images(dir, "train-images-idx3-ubyte")?, labels(dir, "train-labels-idx1-ubyte")?);
        let (test, test_labels) =
            (images(dir, "t10k-images-idx3-ubyte")?, labels(dir, "t10k-labels-idx1-ubyte")?);
        for (images, labels, name) in [(&train, &train_labels, "train"), (&test, &test_labels, "t10k")] {
            if images.len() != labels.len() {
                return Err(IdxError {
                    path: dir.display().to_string(),
                    message: format!("{} {name} images but {} labels", images.len(), labels.len()),
                });
            }
        }
        Ok(FashionMnist { train, train_labels, test, test_labels })
    }
}

/// `dir/name`, or `dir/name.gz` when only that exists.
fn find(dir: &Path, name: &str) -> Result<PathBuf, IdxError> {
    let plain = dir.join(name);
    let gz = dir.join(format!("{name}.gz"));
    match (plain.exists(), gz.exists()) {
        (true, _) => Ok(plain),
        (false, true) => Ok(gz),
        (false, false) => Err(IdxError {
            path: gz.display().to_string(),
            message: format!(
                "not found (nor {name}); install Fashion-MNIST with `apt-get install dataset-fashion-mnist` (files in {FASHION_MNIST_DIR}) or give the directory holding the four IDX files"
            ),
        }),
    }
}

fn images(dir: &Path, name: &str) -> Result<Dataset, IdxError> {
    let path = find(dir, name)?;
    let idx = read(&path)?;
    let [_, h, w] = idx.dims[..] else {
        let message = format!("expected N×H×W images, got dimensions {:?}", idx.dims);
        return Err(IdxError { path: path.display().to_string(), message });
    };
    Ok(Dataset { width: h * w, data: idx.data.iter().map(|&v| f32::from(v) / 255.0).collect() })
}

fn labels(dir: &Path, name: &str) -> Result<Vec<u8>, IdxError> {
    let path = find(dir, name)?;
    let idx = read(&path)?;
    if idx.dims.len() != 1 {
        let message = format!("expected a vector of labels, got dimensions {:?}", idx.dims);
        return Err(IdxError { path: path.display().to_string(), message });
    }
    Ok(idx.data)
}

/// Labels as one-hot rows of `classes` values; a label ≥ `classes` is an error.
pub fn one_hot(labels: &[u8], classes: usize) -> Result<Dataset, String> {
    let mut data = vec![0.0; labels.len() * classes];
    for (i, &label) in labels.iter().enumerate() {
        let label = usize::from(label);
        if label >= classes {
            return Err(format!("label {label} of example {i} is not below {classes}"));
        }
        data[i * classes + label] = 1.0;
    }
    Ok(Dataset { width: classes, data })
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::{FashionMnist, one_hot, parse};

    /// An IDX file of unsigned bytes.
    fn idx(dims: &[u32], data: &[u8]) -> Vec<u8> {
        let mut bytes = vec![0, 0, 8, dims.len() as u8];
        dims.iter().for_each(|d| bytes.extend(d.to_be_bytes()));
        bytes.extend(data);
        bytes
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn plain_and_gzipped_files_parse_alike() {
        let bytes = idx(&[2, 3], &[1, 2, 3, 4, 5, 6]);
        let plain = parse(&bytes).unwrap();
        assert_eq!(plain.dims, vec![2, 3]);
        assert_eq!(plain.data, vec![1, 2, 3, 4, 5, 6]);
        assert_eq!(parse(&gzip(&bytes)).unwrap(), plain);
    }

    #[test]
    fn malformed_files_are_errors() {
        for (bytes, message) in [
            (vec![0, 0, 8], "too short"),
            (vec![0, 0, 0x0d, 1, 0, 0, 0, 1, 0], "element type 0x0d"),
            (vec![0, 0, 8, 2, 0, 0, 0, 1], "file ends first"),
            (idx(&[2, 3], &[1, 2, 3]), "need Some(6) bytes of data, the file has 3"),
            (idx(&[u32::MAX, u32::MAX, u32::MAX], &[]), "need None bytes"),
            (vec![0x1f, 0x8b, 1, 2, 3], "bad gzip data"),
        ] {
            let err = parse(&bytes).unwrap_err();
            assert!(err.contains(message), "{err}");
        }
    }

    #[test]
    fn a_small_fashion_mnist_directory_loads_and_a_missing_one_names_the_package() {
        let dir = std::env::temp_dir().join(format!("natgrad-idx-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pixels: Vec<u8> = (0..3 * 4).map(|i| (i * 20) as u8).collect();
        std::fs::write(dir.join("train-images-idx3-ubyte.gz"), gzip(&idx(&[3, 2, 2], &pixels))).unwrap();
        std::fs::write(dir.join("train-labels-idx1-ubyte"), idx(&[3], &[9, 0, 4])).unwrap();
        std::fs::write(dir.join("t10k-images-idx3-ubyte"), idx(&[1, 2, 2], &[255, 0, 0, 51])).unwrap();
        std::fs::write(dir.join("t10k-labels-idx1-ubyte.gz"), gzip(&idx(&[1], &[3]))).unwrap();
        let data = FashionMnist::load(&dir).unwrap();
        assert_eq!((data.train.width, data.train.len()), (4, 3));
        assert_eq!(data.train.row(1), &[80.0 / 255.0, 100.0 / 255.0, 120.0 / 255.0, 140.0 / 255.0]);
        assert_eq!(data.test.row(0), &[1.0, 0.0, 0.0, 0.2]);
        assert_eq!((data.train_labels.as_slice(), data.test_labels.as_slice()), (&[9, 0, 4][..], &[3][..]));
        let hot = one_hot(&data.train_labels, 10).unwrap();
        assert_eq!(hot.row(0)[9], 1.0);
        assert_eq!(hot.row(2).iter().sum::<f32>(), 1.0);
        assert!(one_hot(&[10], 10).unwrap_err().contains("label 10"));

        std::fs::write(dir.join("t10k-labels-idx1-ubyte.gz"), gzip(&idx(&[2], &[3, 1]))).unwrap();
        let err = FashionMnist::load(&dir).unwrap_err().to_string();
        assert!(err.contains("1 t10k images but 2 labels"), "{err}");

        let missing = dir.join("nowhere");
        let err = FashionMnist::load(&missing).unwrap_err().to_string();
        assert!(err.contains("nowhere") && err.contains("dataset-fashion-mnist"), "{err}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
