//! Numbers as people read them, in reports, tables and progress lines.

/// A number as people read it: integers whole, others to 4 significant digits (very
/// small ones in scientific notation).
pub fn fmt(v: f64) -> String {
    let abs = v.abs();
    if v == 0.0 {
        return "0".into();
    }
    if !v.is_finite() || (v == v.trunc() && abs < 1e6) {
        return format!("{v}");
    }
    if !(1e-3..1e6).contains(&abs) {
        return format!("{v:.3e}");
    }
    let decimals = (3 - abs.log10().floor() as i32).max(0) as usize;
    let text = format!("{v:.decimals$}");
    // Rounding up can carry into a new digit (9.99995 -> "10.000"): one decimal fewer.
    match text.trim_start_matches('-').split('.').next() {
        Some(int) if int.len() > abs.log10().floor() as usize + 1 && decimals > 0 => {
            let fewer = decimals - 1;
            format!("{v:.fewer$}")
        }
        _ => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_well() {
        assert_eq!(fmt(4521.1717430383), "4521");
        assert_eq!(fmt(3.694845505), "3.695");
        assert_eq!(fmt(0.012346), "0.01235");
        assert_eq!(fmt(400.0), "400");
        assert_eq!(fmt(4e-5), "4.000e-5");
        assert_eq!(fmt(27.41234), "27.41");
        assert_eq!(fmt(9.99995), "10.00");
        assert_eq!(fmt(-0.0), "0");
        assert_eq!(fmt(3.9e38), "3.900e38");
    }
}
