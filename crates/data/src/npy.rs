//! `.npy` files in and out (through `npyz`), so natgrad can be cross-checked against numpy,
//! JAX or PyTorch from files.

use std::io::BufWriter;

use npyz::WriterBuilder;
use std::path::Path;

/// Errors reading or writing arrays.
#[derive(Debug, thiserror::Error)]
pub enum NpyError {
    /// An I/O or format error, with the file.
    #[error("{path}: {message}")]
    File {
        /// The file.
        path: String,
        /// What went wrong.
        message: String,
    },
}

fn file_error(path: &Path, message: impl ToString) -> NpyError {
    NpyError::File { path: path.display().to_string(), message: message.to_string() }
}

/// Reads a float32 or float64 array as f64, with its shape.
pub fn read(path: &Path) -> Result<(Vec<usize>, Vec<f64>), NpyError> {
    let bytes = std::fs::read(path).map_err(|e| file_error(path, e))?;
    let file = npyz::NpyFile::new(&bytes[..]).map_err(|e| file_error(path, e))?;
    let shape: Vec<usize> = file.shape().iter().map(|&d| d as usize).collect();
    if file.order() != npyz::Order::C {
        return Err(file_error(path, "Fortran-order arrays are not supported; save with order='C'"));
    }
    let descr = file.dtype().descr().trim_matches('\'').to_string();
    let data: Vec<f64> = match descr.as_str() {
        "<f8" => file.into_vec::<f64>().map_err(|e| file_error(path, e))?,
        "<f4" => {
            file.into_vec::<f32>().map_err(|e| file_error(path, e))?.into_iter().map(f64::from).collect()
        }
        other => {
            return Err(file_error(path, format!("dtype {other} is not supported; use float32 or float64")));
        }
    };
    Ok((shape, data))
}

/// Writes `data` with `shape` as float32 or float64 (by `T`).
pub fn write<T: npyz::AutoSerialize + npyz::Serialize + Copy>(
    path: &Path,
    shape: &[usize],
    data: &[T],
) -> Result<(), NpyError> {
    let file = std::fs::File::create(path).map_err(|e| file_error(path, e))?;
    let shape: Vec<u64> = shape.iter().map(|&d| d as u64).collect();
    let mut writer = npyz::WriteOptions::new()
        .default_dtype()
        .shape(&shape)
        .writer(BufWriter::new(file))
        .begin_nd()
        .map_err(|e| file_error(path, e))?;
    writer.extend(data.iter().copied()).map_err(|e| file_error(path, e))?;
    writer.finish().map_err(|e| file_error(path, e))
}
