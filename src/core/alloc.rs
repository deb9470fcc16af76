//! Allocations whose size comes from the input (a gradient's declared length, a count in
//! a wire message): fallible, so a size the process cannot hold is `ERR_OUT_OF_MEMORY`
//! and the process goes on. Rust's infallible allocations abort on failure, which would
//! take Node down with them.

use std::alloc::{alloc_zeroed, Layout};

use super::error::{Code, Error, Result};

/// Types whose all-zero bit pattern is the value 0.
///
/// # Safety
/// Implementors must be plain numbers for which all-zero bytes are a valid value.
pub unsafe trait Zero: Copy {}
unsafe impl Zero for f32 {}
unsafe impl Zero for f64 {}
unsafe impl Zero for u32 {}

fn out_of_memory(n: usize, size: usize, what: &str) -> Error {
    let bytes = (n as u128) * size as u128;
    let message = if size == 1 {
        format!("{what}: cannot allocate {bytes} bytes")
    } else {
        format!("{what}: cannot allocate {n} values ({bytes} bytes)")
    };
    Error::new(Code::OutOfMemory, message)
}

/// `n` zeros, or `ERR_OUT_OF_MEMORY` naming `what`. Like `vec![0; n]` it asks the
/// allocator for zeroed memory (calloc), so untouched pages cost nothing.
pub fn zeroed<T: Zero>(n: usize, what: &str) -> Result<Vec<T>> {
    if n == 0 || std::mem::size_of::<T>() == 0 {
        return Ok(Vec::new());
    }
    let layout =
        Layout::array::<T>(n).map_err(|_| out_of_memory(n, std::mem::size_of::<T>(), what))?;
    // SAFETY: `layout` has a non-zero size (n > 0, T not zero-sized).
    let ptr = unsafe { alloc_zeroed(layout) }.cast::<T>();
    if ptr.is_null() {
        return Err(out_of_memory(n, std::mem::size_of::<T>(), what));
    }
    // SAFETY: allocated by the global allocator with the layout of `n` T's, every byte
    // zero, which is a valid T (`Zero`); length and capacity `n`.
    Ok(unsafe { Vec::from_raw_parts(ptr, n, n) })
}

/// An empty vector with room for `n` values, or `ERR_OUT_OF_MEMORY` naming `what`.
pub fn with_capacity<T>(n: usize, what: &str) -> Result<Vec<T>> {
    let mut v = Vec::new();
    v.try_reserve_exact(n)
        .map_err(|_| out_of_memory(n, std::mem::size_of::<T>(), what))?;
    Ok(v)
}

/// A copy of `src`, or `ERR_OUT_OF_MEMORY` naming `what` (a caller's array can be larger
/// than what the process has left for a copy).
pub fn copy_of<T: Copy>(src: &[T], what: &str) -> Result<Vec<T>> {
    let mut v = with_capacity(src.len(), what)?;
    v.extend_from_slice(src);
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zeroed_is_zero_and_impossible_sizes_are_errors() {
        let v: Vec<f32> = zeroed(1000, "x").unwrap();
        assert_eq!(v.len(), 1000);
        assert!(v.iter().all(|&x| x == 0.0));
        assert!(zeroed::<f64>(0, "x").unwrap().is_empty());
        // More than any address space: refused, not an abort.
        let e = zeroed::<f32>(usize::MAX / 2, "the aggregate").unwrap_err();
        assert_eq!(e.code, Code::OutOfMemory);
        assert!(
            e.message.starts_with("the aggregate: cannot allocate"),
            "{}",
            e.message
        );
        let e = with_capacity::<u32>(usize::MAX / 8, "indices").unwrap_err();
        assert_eq!(e.code, Code::OutOfMemory);
        let v = with_capacity::<u32>(10, "indices").unwrap();
        assert!(v.capacity() >= 10 && v.is_empty());
        assert_eq!(copy_of(&[1.5f32, -2.0], "x").unwrap(), vec![1.5, -2.0]);
    }
}
