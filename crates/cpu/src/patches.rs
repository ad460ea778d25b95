//! Convolution patches on NHWC images: im2col (images → `[n, OH, OW, KH·KW·C]` patches) and
//! its adjoint col2im (every patch value added back to its pixel). Both copy runs of
//! `KW·C` contiguous values per window row (clipped at the image's edges, zeros for
//! padding) and split the images over the pool's workers; each image is independent, so
//! the result does not depend on the thread count.

use natgrad_ir::{Scalar, Window};
use rayon::ThreadPool;
use rayon::prelude::*;

/// Below this many patch values per task, images are not split further.
const MIN_TASK_VALUES: usize = 1 << 14;

/// One image's geometry.
#[derive(Clone, Copy)]
struct Geometry {
    height: usize,
    width: usize,
    channels: usize,
    positions: [usize; 2],
    window: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
}

impl Geometry {
    fn image_len(&self) -> usize {
        self.height * self.width * self.channels
    }

    fn patches_len(&self) -> usize {
        self.positions[0] * self.positions[1] * self.window[0] * self.window[1] * self.channels
    }

    /// Visits every window row of one image in order, in up to three runs:
    /// `visit(patch_offset, Some(pixel_offset), len)` for the part inside the image and
    /// `visit(patch_offset, None, len)` for the padding on either side.
    fn for_each_run(&self, mut visit: impl FnMut(usize, Option<usize>, usize)) {
        let [kh, kw] = self.window;
        let c = self.channels;
        let row_len = kw * c;
        let mut offset = 0;
        for oy in 0..self.positions[0] {
            for ox in 0..self.positions[1] {
                let left = (ox * self.stride[1]) as isize - self.padding[1] as isize;
                let first = left.max(0) as usize;
                let end = ((left + kw as isize).max(0) as usize).min(self.width);
                for i in 0..kh {
                    let y =
                        (oy * self.stride[0] + i).checked_sub(self.padding[0]).filter(|&y| y < self.height);
                    match y {
                        Some(y) if first < end => {
                            let before = (first as isize - left) as usize * c;
                            let len = (end - first) * c;
                            visit(offset, None, before);
                            visit(offset + before, Some((y * self.width + first) * c), len);
                            visit(offset + before + len, None, row_len - before - len);
                        }
                        _ => visit(offset, None, row_len),
                    }
                    offset += row_len;
                }
            }
        }
    }
}

/// im2col (`adjoint` false: `x` images, `out` patches) or col2im (`x` patches, `out`
/// images) over NHWC images of shape `image`, on `pool`.
pub fn patches<T: Scalar>(
    pool: &ThreadPool,
    x: &[T],
    [n, height, width, channels]: [usize; 4],
    window: &Window,
    adjoint: bool,
    out: &mut [T],
) {
    let Some(positions) = window.positions([height, width]) else { return };
    let g = Geometry {
        height,
        width,
        channels,
        positions,
        window: window.kernel,
        stride: window.stride,
        padding: window.padding,
    };
    let (image_len, patches_len) = (g.image_len(), g.patches_len());
    if n == 0 || image_len == 0 || patches_len == 0 {
        out.fill(T::zero());
        return;
    }
    let per_task = MIN_TASK_VALUES.div_ceil(patches_len).max(1);
    pool.install(|| {
        if adjoint {
            let (x, out) = (&x[..n * patches_len], &mut out[..n * image_len]);
            out.par_chunks_mut(image_len)
                .zip(x.par_chunks(patches_len))
                .with_min_len(per_task)
                .for_each(|(image, patches)| col2im(&g, patches, image));
        } else {
            let (x, out) = (&x[..n * image_len], &mut out[..n * patches_len]);
            out.par_chunks_mut(patches_len)
                .zip(x.par_chunks(image_len))
                .with_min_len(per_task)
                .for_each(|(patches, image)| im2col(&g, image, patches));
        }
    });
}

fn im2col<T: Scalar>(g: &Geometry, image: &[T], patches: &mut [T]) {
    g.for_each_run(|to, from, len| match from {
        Some(from) => patches[to..to + len].copy_from_slice(&image[from..from + len]),
        None => patches[to..to + len].fill(T::zero()),
    });
}

fn col2im<T: Scalar>(g: &Geometry, patches: &[T], image: &mut [T]) {
    image.fill(T::zero());
    g.for_each_run(|from, to, len| {
        if let Some(to) = to {
            for (pixel, &value) in image[to..to + len].iter_mut().zip(&patches[from..from + len]) {
                *pixel = *pixel + value;
            }
        }
    });
}
