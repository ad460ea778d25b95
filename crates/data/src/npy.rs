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
    parse(&bytes).map_err(|message| file_error(path, message))
}

/// Parses the bytes of a `.npy` file: a C-order float32 or float64 array as f64, with its
/// shape. The header's shape must match the data that follows it.
pub fn parse(bytes: &[u8]) -> Result<(Vec<usize>, Vec<f64>), String> {
    check_declared_size(bytes)?;
    let file = npyz::NpyFile::new(bytes).map_err(|e| e.to_string())?;
    let shape: Vec<usize> = file.shape().iter().map(|&d| d as usize).collect();
    if file.order() != npyz::Order::C {
        return Err("Fortran-order arrays are not supported; save with order='C'".into());
    }
    let descr = file.dtype().descr().trim_matches('\'').to_string();
    let item = match descr.as_str() {
        "<f8" => 8,
        "<f4" => 4,
        other => return Err(format!("dtype {other} is not supported; use float32 or float64")),
    };
    // Checked before reading, so a lying header cannot make the reader allocate for it.
    let declared = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
    if declared.and_then(|n| n.checked_mul(item)).is_none_or(|size| size > bytes.len()) {
        return Err(format!(
            "the header declares shape {shape:?}, more data than the file's {} bytes",
            bytes.len()
        ));
    }
    let data: Vec<f64> = if item == 8 {
        file.into_vec::<f64>().map_err(|e| e.to_string())?
    } else {
        file.into_vec::<f32>().map_err(|e| e.to_string())?.into_iter().map(f64::from).collect()
    };
    Ok((shape, data))
}

/// Rejects, before npyz reads them, headers longer than the file, headers that are not a
/// flat dict, and shapes asking for more values than the file could hold (npyz's product of
/// the dimensions overflows on hostile headers). Headers this check cannot read are left to
/// npyz's own errors.
fn check_declared_size(bytes: &[u8]) -> Result<(), String> {
    let declared = match bytes.get(6..8) {
        Some([1, _]) => bytes.get(8..10).map(|n| (10usize, u16::from_le_bytes([n[0], n[1]]) as usize)),
        Some([2 | 3, _]) => {
            bytes.get(8..12).map(|n| (12usize, u32::from_le_bytes([n[0], n[1], n[2], n[3]]) as usize))
        }
        _ => None,
    };
    if let Some((start, len)) = declared
        && start + len > bytes.len()
    {
        return Err(format!("the header declares {len} bytes of header, the file has {}", bytes.len()));
    }
    let header = declared.and_then(|(start, len)| std::str::from_utf8(&bytes[start..start + len]).ok());
    // numpy writes a flat dict with one shape tuple; nested brackets are not a float array's
    // header, and npyz's literal parser backtracks exponentially on deep nesting.
    if let Some(h) = header
        && (h.matches('{').count() > 1 || h.matches('(').count() > 1 || h.contains('['))
    {
        return Err("the header is not numpy's flat {'descr', 'fortran_order', 'shape'} dict".into());
    }
    let Some(shape) = header.and_then(|h| {
        let after = &h[h.find("'shape'")?..];
        let open = after.find('(')?;
        let close = after[open..].find(')')? + open;
        Some(after[open + 1..close].to_string())
    }) else {
        return Ok(());
    };
    let mut elements: u128 = 1;
    for dim in shape.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        let Ok(dim) = dim.parse::<u128>() else { return Ok(()) };
        elements = elements.saturating_mul(dim);
    }
    if elements.saturating_mul(4) > bytes.len() as u128 {
        return Err(format!(
            "the header declares shape ({shape}), more data than the file's {} bytes",
            bytes.len()
        ));
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::parse;

    /// A `.npy` header for `shape` (float32, C order) followed by `data_bytes` zero bytes.
    fn file(shape: &str, data_bytes: usize) -> Vec<u8> {
        let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}");
        while (10 + header.len() + 1) % 64 != 0 {
            header.push(' ');
        }
        header.push('\n');
        let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
        bytes.extend((header.len() as u16).to_le_bytes());
        bytes.extend(header.as_bytes());
        bytes.extend(vec![0u8; data_bytes]);
        bytes
    }

    #[test]
    fn a_header_promising_more_data_than_the_file_holds_is_an_error() {
        let (shape, values) = parse(&file("(2, 3)", 24)).unwrap();
        assert_eq!((shape, values.len()), (vec![2, 3], 6));
        let err = parse(&file("(1000000000, 1000000000)", 24)).unwrap_err();
        assert!(err.starts_with("the header declares shape (1000000000, 1000000000)"), "{err}");
        let err = parse(&file("(18446744073709551615, 2)", 24)).unwrap_err();
        assert!(err.contains("more data than the file's"), "{err}");
        assert!(parse(&file("(2, 3)", 7)).is_err());
        // A version-2 header length of 4 GB in a 20-byte file.
        let mut lying = b"\x93NUMPY\x02\x00".to_vec();
        lying.extend(u32::MAX.to_le_bytes());
        lying.extend(b"{'descr'");
        let err = parse(&lying).unwrap_err();
        assert!(err.starts_with("the header declares 4294967295 bytes of header"), "{err}");
        // Found by fuzzing: deeply nested braces made npyz's header parser backtrack for
        // minutes.
        let mut nested = file("(2, 3)", 24);
        nested[10..60].fill(b'{');
        let err = parse(&nested).unwrap_err();
        assert!(err.starts_with("the header is not numpy's flat"), "{err}");
    }
}
