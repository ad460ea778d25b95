//! Convolution patches as PTX `.entry`s: im2col (one thread per patch value, a gather with
//! zeros for the padding) and col2im (one thread per pixel, summing the patch values that
//! came from it — no atomics, so the result does not depend on scheduling; the values are
//! added in the order of their window positions, as the CPU backend and the interpreter
//! add them).
//!
//! Parameter order (all `.u64`), the contract with the runtime: `x, out, total`, then
//! `c, kw, kh, ow, oh, w, h, sw, sh, pw, ph` — channels, window width and height, positions
//! across and down, image width and height, strides and paddings (columns, then rows).
//! `total` counts patch values (im2col) or pixels (col2im).

use natgrad_ir::DType;

use crate::text::{GRID_STRIDE_REGISTERS, Lines, constant, entry_text, float, size};

/// The geometry parameters after `x, out, total`.
const GEOMETRY: [&str; 11] = ["c", "kw", "kh", "ow", "oh", "w", "h", "sw", "sh", "pw", "ph"];

/// The geometry parameters, loaded into registers, by name.
struct Geometry {
    regs: Vec<String>,
}

impl Geometry {
    fn load(lines: &mut Lines, name: &str) -> Geometry {
        Geometry { regs: GEOMETRY.iter().map(|p| lines.param(name, p)).collect() }
    }

    fn get(&self, param: &str) -> &str {
        let at = GEOMETRY.iter().position(|p| *p == param).expect("a geometry parameter");
        &self.regs[at]
    }
}

/// `(quotient, remainder)` registers of `value / divisor` (unsigned).
fn divide(lines: &mut Lines, value: &str, divisor: &str) -> (String, String) {
    let (q, r) = (lines.reg("rd"), lines.reg("rd"));
    lines.op(format!("div.u64 {q}, {value}, {divisor}"));
    lines.op(format!("rem.u64 {r}, {value}, {divisor}"));
    (q, r)
}

/// An entry being written: its lines, the two pointers and the geometry, inside the
/// grid-stride loop over `total`.
struct Entry {
    lines: Lines,
    x: String,
    out: String,
    g: Geometry,
}

impl Entry {
    fn open(name: &str) -> Entry {
        let mut lines = Lines::default();
        let (x, out) = (lines.pointer(name, "x"), lines.pointer(name, "out"));
        let total = lines.param(name, "total");
        let g = Geometry::load(&mut lines, name);
        lines.grid_stride_begin(&total);
        Entry { lines, x, out, g }
    }

    /// Stores `value` at `out[%index]` (after the `$STORE` label), closes the loop and returns
    /// the entry's text.
    fn close(mut self, name: &str, dtype: DType, value: &str) -> String {
        let lines = &mut self.lines;
        lines.text.push_str("$STORE:\n");
        let target = lines.reg("rd");
        lines.op(format!("mad.lo.u64 {target}, %index, {}, {}", size(dtype), self.out));
        lines.op(format!("st.global.{} [{target}], {value}", float(dtype)));
        lines.grid_stride_end();
        let mut params = vec!["x".to_string(), "out".to_string(), "total".to_string()];
        params.extend(GEOMETRY.iter().map(|p| p.to_string()));
        let mut declarations = lines.declarations(&[("rd", "b64"), ("f", float(dtype)), ("p", "pred")]);
        declarations.push_str(GRID_STRIDE_REGISTERS);
        entry_text(name, &params, &declarations, &lines.text)
    }
}

/// im2col: `out[n, oy, ox, i, j, ch] = x[n, oy·sh + i − ph, ox·sw + j − pw, ch]`, zero outside
/// the image.
pub fn im2col(name: &str, dtype: DType) -> String {
    let (t, bytes) = (float(dtype), size(dtype));
    let mut entry = Entry::open(name);
    let Entry { lines, x, g, .. } = &mut entry;
    let (rest, ch) = divide(lines, "%index", g.get("c"));
    let (rest, j) = divide(lines, &rest, g.get("kw"));
    let (rest, i) = divide(lines, &rest, g.get("kh"));
    let (rest, ox) = divide(lines, &rest, g.get("ow"));
    let (image, oy) = divide(lines, &rest, g.get("oh"));
    let (y, col) = (lines.reg("rd"), lines.reg("rd"));
    lines.op(format!("mad.lo.s64 {y}, {oy}, {}, {i}", g.get("sh")));
    lines.op(format!("sub.s64 {y}, {y}, {}", g.get("ph")));
    lines.op(format!("mad.lo.s64 {col}, {ox}, {}, {j}", g.get("sw")));
    lines.op(format!("sub.s64 {col}, {col}, {}", g.get("pw")));
    let value = lines.reg("f");
    lines.op(format!("mov.{t} {value}, {}", constant(dtype, 0.0)));
    // Outside the image when y or col (as unsigned) is at least the image's extent: a
    // negative coordinate wraps to a huge unsigned one.
    let (outside_y, outside_x) = (lines.reg("p"), lines.reg("p"));
    lines.op(format!("setp.ge.u64 {outside_y}, {y}, {}", g.get("h")));
    lines.op(format!("setp.ge.u64 {outside_x}, {col}, {}", g.get("w")));
    lines.op(format!("or.pred {outside_y}, {outside_y}, {outside_x}"));
    lines.op(format!("@{outside_y} bra $STORE"));
    let source = lines.reg("rd");
    lines.op(format!("mad.lo.u64 {source}, {image}, {}, {y}", g.get("h")));
    lines.op(format!("mad.lo.u64 {source}, {source}, {}, {col}", g.get("w")));
    lines.op(format!("mad.lo.u64 {source}, {source}, {}, {ch}", g.get("c")));
    lines.op(format!("mad.lo.u64 {source}, {source}, {bytes}, {x}"));
    lines.op(format!("ld.global.nc.{t} {value}, [{source}]"));
    entry.close(name, dtype, &value)
}

/// col2im: `out[n, y, col, ch] = Σ x[n, oy, ox, i, j, ch]` over the windows covering the
/// pixel (`oy·sh + i − ph = y`, `ox·sw + j − pw = col`), window rows `i` and columns `j`
/// descending (so positions ascend).
pub fn col2im(name: &str, dtype: DType) -> String {
    let (t, bytes) = (float(dtype), size(dtype));
    let mut entry = Entry::open(name);
    let Entry { lines, x, g, .. } = &mut entry;
    let (rest, ch) = divide(lines, "%index", g.get("c"));
    let (rest, col) = divide(lines, &rest, g.get("w"));
    let (image, y) = divide(lines, &rest, g.get("h"));
    let sum = lines.reg("f");
    lines.op(format!("mov.{t} {sum}, {}", constant(dtype, 0.0)));
    let (padded_y, padded_x) = (lines.reg("rd"), lines.reg("rd"));
    lines.op(format!("add.u64 {padded_y}, {y}, {}", g.get("ph")));
    lines.op(format!("add.u64 {padded_x}, {col}, {}", g.get("pw")));
    // i = kh − 1 … 0
    let i = lines.reg("rd");
    lines.op(format!("mov.u64 {i}, {}", g.get("kh")));
    lines.text.push_str("$ROWS:\n");
    let (done, skip) = (lines.reg("p"), lines.reg("p"));
    lines.op(format!("setp.eq.u64 {done}, {i}, 0"));
    lines.op(format!("@{done} bra $STORE"));
    lines.op(format!("sub.u64 {i}, {i}, 1"));
    // oy = (y + ph − i) / sh when that is a whole position inside 0..oh.
    lines.op(format!("setp.lt.u64 {skip}, {padded_y}, {i}"));
    lines.op(format!("@{skip} bra $ROWS"));
    let (offset_y, oy, remainder) = (lines.reg("rd"), lines.reg("rd"), lines.reg("rd"));
    lines.op(format!("sub.u64 {offset_y}, {padded_y}, {i}"));
    lines.op(format!("rem.u64 {remainder}, {offset_y}, {}", g.get("sh")));
    lines.op(format!("div.u64 {oy}, {offset_y}, {}", g.get("sh")));
    let (misaligned, beyond) = (lines.reg("p"), lines.reg("p"));
    lines.op(format!("setp.ne.u64 {misaligned}, {remainder}, 0"));
    lines.op(format!("setp.ge.u64 {beyond}, {oy}, {}", g.get("oh")));
    lines.op(format!("or.pred {misaligned}, {misaligned}, {beyond}"));
    lines.op(format!("@{misaligned} bra $ROWS"));
    // j = kw − 1 … 0
    let j = lines.reg("rd");
    lines.op(format!("mov.u64 {j}, {}", g.get("kw")));
    lines.text.push_str("$COLUMNS:\n");
    lines.op(format!("setp.eq.u64 {done}, {j}, 0"));
    lines.op(format!("@{done} bra $ROWS"));
    lines.op(format!("sub.u64 {j}, {j}, 1"));
    lines.op(format!("setp.lt.u64 {skip}, {padded_x}, {j}"));
    lines.op(format!("@{skip} bra $COLUMNS"));
    let (offset_x, ox) = (lines.reg("rd"), lines.reg("rd"));
    lines.op(format!("sub.u64 {offset_x}, {padded_x}, {j}"));
    lines.op(format!("rem.u64 {remainder}, {offset_x}, {}", g.get("sw")));
    lines.op(format!("div.u64 {ox}, {offset_x}, {}", g.get("sw")));
    lines.op(format!("setp.ne.u64 {misaligned}, {remainder}, 0"));
    lines.op(format!("setp.ge.u64 {beyond}, {ox}, {}", g.get("ow")));
    lines.op(format!("or.pred {misaligned}, {misaligned}, {beyond}"));
    lines.op(format!("@{misaligned} bra $COLUMNS"));
    // x[((((image·oh + oy)·ow + ox)·kh + i)·kw + j)·c + ch]
    let (source, value) = (lines.reg("rd"), lines.reg("f"));
    lines.op(format!("mad.lo.u64 {source}, {image}, {}, {oy}", g.get("oh")));
    lines.op(format!("mad.lo.u64 {source}, {source}, {}, {ox}", g.get("ow")));
    lines.op(format!("mad.lo.u64 {source}, {source}, {}, {i}", g.get("kh")));
    lines.op(format!("mad.lo.u64 {source}, {source}, {}, {j}", g.get("kw")));
    lines.op(format!("mad.lo.u64 {source}, {source}, {}, {ch}", g.get("c")));
    lines.op(format!("mad.lo.u64 {source}, {source}, {bytes}, {x}"));
    lines.op(format!("ld.global.nc.{t} {value}, [{source}]"));
    lines.op(format!("add.rn.{t} {sum}, {sum}, {value}"));
    lines.op("bra.uni $COLUMNS");
    entry.close(name, dtype, &sum)
}
