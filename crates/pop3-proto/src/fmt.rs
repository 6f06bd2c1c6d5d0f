//! Allocation-free number formatting for the encoders (`core::fmt` would need a `Write`
//! adapter over `Vec<u8>` and is slower for this one job).

use alloc::vec::Vec;

/// Appends `n` in decimal.
pub(crate) fn push_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

#[cfg(test)]
mod tests {
    use alloc::vec::Vec;

    #[test]
    fn formats_edges() {
        for (n, s) in [
            (0u64, "0"),
            (9, "9"),
            (10, "10"),
            (u64::MAX, "18446744073709551615"),
        ] {
            let mut out = Vec::new();
            super::push_u64(&mut out, n);
            assert_eq!(out, s.as_bytes());
        }
    }
}
