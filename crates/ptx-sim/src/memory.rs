//! Simulated device memory: allocations at distinct addresses with unmapped gaps between
//! them, every access bounds- and alignment-checked (what `compute-sanitizer memcheck`
//! reports on a GPU is an error here).

use std::collections::BTreeMap;

/// Where the first allocation starts (a device-like address, far from 0).
const BASE: u64 = 0x7f00_0000_0000;

/// Unmapped bytes after each allocation, so an access just past its end faults.
const GAP: u64 = 4096;

/// Device memory: allocations by base address.
#[derive(Default)]
pub struct Memory {
    allocations: BTreeMap<u64, Vec<u8>>,
    next: u64,
}

impl Memory {
    /// Allocates `bytes` zeroed bytes and returns their address (256-byte aligned, as
    /// `cudaMalloc`).
    pub fn allocate(&mut self, bytes: usize) -> u64 {
        self.allocate_filled(bytes, 0)
    }

    /// Allocates `bytes` bytes of `0xff` (NaN in f32 and f64): what code that reads memory
    /// before writing it then computes shows in its results.
    pub fn allocate_poisoned(&mut self, bytes: usize) -> u64 {
        self.allocate_filled(bytes, 0xff)
    }

    fn allocate_filled(&mut self, bytes: usize, fill: u8) -> u64 {
        let base = if self.next == 0 { BASE } else { self.next };
        self.allocations.insert(base, vec![fill; bytes]);
        self.next = (base + bytes as u64 + GAP).next_multiple_of(256);
        base
    }

    /// Frees the allocation at `address` (later accesses to it fault).
    pub fn free(&mut self, address: u64) {
        self.allocations.remove(&address);
    }

    /// The allocation holding `[address, address + len)`, and the offset in it.
    fn locate(&self, address: u64, len: usize) -> Result<(u64, usize), String> {
        let (&base, data) = self
            .allocations
            .range(..=address)
            .next_back()
            .ok_or_else(|| format!("address {address:#x} is below every allocation"))?;
        let offset = (address - base) as usize;
        if offset + len > data.len() {
            return Err(format!(
                "{len} bytes at {address:#x} are outside the allocation at {base:#x} of {} bytes \
                 (offset {offset})",
                data.len()
            ));
        }
        Ok((base, offset))
    }

    /// `len` bytes at `address`, which must be aligned to `align`.
    pub fn read(&self, address: u64, len: usize, align: usize) -> Result<&[u8], String> {
        if !address.is_multiple_of(align as u64) {
            return Err(format!("a misaligned {len}-byte access at {address:#x}"));
        }
        let (base, offset) = self.locate(address, len)?;
        Ok(&self.allocations[&base][offset..offset + len])
    }

    /// The `len` bytes at `address`, mutably, aligned to `align`.
    pub fn write(&mut self, address: u64, len: usize, align: usize) -> Result<&mut [u8], String> {
        if !address.is_multiple_of(align as u64) {
            return Err(format!("a misaligned {len}-byte access at {address:#x}"));
        }
        let (base, offset) = self.locate(address, len)?;
        Ok(&mut self.allocations.get_mut(&base).expect("located")[offset..offset + len])
    }

    /// A value of `bytes` (4 or 8) bytes at `address`, little-endian, zero-extended.
    pub fn load(&self, address: u64, bytes: usize) -> Result<u64, String> {
        let data = self.read(address, bytes, bytes)?;
        let mut b = [0u8; 8];
        b[..bytes].copy_from_slice(data);
        Ok(u64::from_le_bytes(b))
    }

    /// Stores the low `bytes` bytes of `value` at `address`.
    pub fn store(&mut self, address: u64, bytes: usize, value: u64) -> Result<(), String> {
        self.write(address, bytes, bytes)?.copy_from_slice(&value.to_le_bytes()[..bytes]);
        Ok(())
    }
}
