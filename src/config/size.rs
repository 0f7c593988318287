//! Size strings such as `8GiB`, `512 MiB`, `1M`, `100kb` or `123`.

/// Parses a size in bytes. Rules:
///
/// - a number, optionally with a decimal fraction (`1.5GiB`), then optional spaces, then an optional
///   unit; surrounding whitespace is ignored;
/// - no unit or `B` means bytes;
/// - `K`, `M`, `G`, `T`, `P`, `E` and `KiB` ... `EiB` are binary (powers of 1024);
/// - `KB`, `MB`, `GB`, `TB`, `PB`, `EB` are decimal (powers of 1000);
/// - units are case-insensitive (`100kb` is 100,000 bytes, `1m` is 1 MiB).
///
/// Returns `None` for anything else, for a result that overflows `u64` and for a fraction that does
/// not come to a whole number of bytes (`0.5B`).
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let number_end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, unit) = s.split_at(number_end);
    let multiplier = unit_multiplier(unit.trim_start())?;

    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    // "5." and ".5" are sloppy enough to be typos; insist on digits on both sides of a point.
    if whole.is_empty() || (number.contains('.') && fraction.is_empty()) {
        return None;
    }
    let whole: u64 = whole.parse().ok()?;
    let mut bytes = whole.checked_mul(multiplier)?;
    if !fraction.is_empty() {
        // Exact integer arithmetic: fraction_digits * multiplier / 10^digits must be whole.
        let digits = u32::try_from(fraction.len()).ok()?;
        let scale = 10u128.checked_pow(digits)?;
        let numerator = fraction
            .parse::<u128>()
            .ok()?
            .checked_mul(u128::from(multiplier))?;
        if numerator % scale != 0 {
            return None;
        }
        bytes = bytes.checked_add(u64::try_from(numerator / scale).ok()?)?;
    }
    Some(bytes)
}

/// Bytes per unit, or `None` for an unknown unit.
fn unit_multiplier(unit: &str) -> Option<u64> {
    let unit = unit.to_ascii_lowercase();
    let (prefix, rest) = match unit.char_indices().next() {
        None => return Some(1),
        Some((_, c)) => unit.split_at(c.len_utf8()),
    };
    if prefix == "b" && rest.is_empty() {
        return Some(1);
    }
    let power = match prefix {
        "k" => 1,
        "m" => 2,
        "g" => 3,
        "t" => 4,
        "p" => 5,
        "e" => 6,
        _ => return None,
    };
    let base: u64 = match rest {
        "" | "ib" => 1024,
        "b" => 1000,
        _ => return None,
    };
    base.checked_pow(power)
}
