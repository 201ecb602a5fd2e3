//! Durations as written in pacts: a whole number and a unit (`30s`, `15m`, `24h`, `14d`, `2w`).

/// Parses a duration into milliseconds. Returns a lowercase message on error.
pub fn parse_duration_ms(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("duration `{text}` has no unit; use s, m, h, d or w"))?;
    let (digits, unit) = text.split_at(split);
    let amount: u64 = digits
        .parse()
        .map_err(|_| format!("duration `{text}` must start with a whole number"))?;
    let unit_ms: u64 = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "w" => 604_800_000,
        _ => {
            return Err(format!(
                "duration `{text}` has unknown unit `{unit}`; use s, m, h, d or w"
            ))
        }
    };
    let total = amount
        .checked_mul(unit_ms)
        .ok_or_else(|| format!("duration `{text}` is too long"))?;
    if total == 0 {
        return Err(format!("duration `{text}` must be longer than zero"));
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(parse_duration_ms("24h"), Ok(86_400_000));
        assert_eq!(parse_duration_ms("1m"), Ok(60_000));
        assert_eq!(parse_duration_ms("14d"), Ok(14 * 86_400_000));
        assert_eq!(parse_duration_ms("250ms"), Ok(250));
        assert!(parse_duration_ms("24").is_err());
        assert!(parse_duration_ms("h").is_err());
        assert!(parse_duration_ms("3y").is_err());
        assert!(parse_duration_ms("0s").is_err());
        assert!(parse_duration_ms("99999999999999999999d").is_err());
    }
}
