//! RFC 8785 JSON Canonicalization Scheme (JCS) over `serde_json::Value`.
//!
//! Canonical form: no whitespace; object members sorted by the UTF-16 code units of their
//! names; strings escaped with the minimal JSON escapes (`\"`, `\\`, `\b`, `\f`, `\n`, `\r`,
//! `\t`, other controls as `\u00xx`), everything else as raw UTF-8; numbers in ECMAScript
//! `Number.prototype.toString` form.
//!
//! Number policy: integers are accepted only within the IEEE-754 exact range
//! `-(2^53-1)..=2^53-1` (a larger integer would silently change value under JCS, which treats
//! every number as a double); finite non-integers are formatted exactly as ECMAScript does.
//! NaN and infinities cannot occur in a `serde_json::Value`.
//!
//! Duplicate member names cannot be detected here because `serde_json::Value` keeps only the
//! last one; [`parse_object`] parses text and rejects duplicates before canonicalizing.

use serde_json::Value;
use std::fmt::Write as _;

/// The largest integer magnitude that JCS can carry exactly (2^53 - 1).
pub const JSON_INTEGER_MAX: u64 = (1 << 53) - 1;

/// Maximum nesting depth of arrays and objects, so canonicalization cannot overflow the stack.
pub const JSON_DEPTH_MAX: usize = 64;

/// Why a JSON value has no canonical form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CanonicalError {
    /// An integer outside the range a double represents exactly.
    #[error("integer `{0}` is outside the exact range of JSON numbers (±2^53-1)")]
    IntegerRange(String),
    /// Nested deeper than [`JSON_DEPTH_MAX`].
    #[error("json is nested deeper than {JSON_DEPTH_MAX} levels")]
    TooDeep,
    /// The text is not valid JSON.
    #[error("invalid json: {0}")]
    Syntax(String),
    /// The same member name appears twice in one object.
    #[error("duplicate member name `{0}`")]
    DuplicateKey(String),
}

/// Canonical bytes of `value` per RFC 8785.
pub fn canonicalize(value: &Value) -> Result<Vec<u8>, CanonicalError> {
    let mut out = String::new();
    write_value(&mut out, value, 0)?;
    Ok(out.into_bytes())
}

fn write_value(out: &mut String, value: &Value, depth: usize) -> Result<(), CanonicalError> {
    if depth > JSON_DEPTH_MAX {
        return Err(CanonicalError::TooDeep);
    }
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(number) => write_number(out, number)?,
        Value::String(text) => write_string(out, text),
        Value::Array(items) => {
            out.push('[');
            for (item_idx, item) in items.iter().enumerate() {
                if item_idx > 0 {
                    out.push(',');
                }
                write_value(out, item, depth + 1)?;
            }
            out.push(']');
        }
        Value::Object(members) => {
            let mut sorted: Vec<(&String, &Value)> = members.iter().collect();
            sorted.sort_by(|(a, _), (b, _)| a.encode_utf16().cmp(b.encode_utf16()));
            out.push('{');
            for (member_idx, (name, member)) in sorted.into_iter().enumerate() {
                if member_idx > 0 {
                    out.push(',');
                }
                write_string(out, name);
                out.push(':');
                write_value(out, member, depth + 1)?;
            }
            out.push('}');
        }
    }
    Ok(())
}

fn write_string(out: &mut String, text: &str) {
    out.push('"');
    for ch in text.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn write_number(out: &mut String, number: &serde_json::Number) -> Result<(), CanonicalError> {
    if let Some(unsigned) = number.as_u64() {
        if unsigned > JSON_INTEGER_MAX {
            return Err(CanonicalError::IntegerRange(unsigned.to_string()));
        }
        let _ = write!(out, "{unsigned}");
        return Ok(());
    }
    if let Some(signed) = number.as_i64() {
        if signed.unsigned_abs() > JSON_INTEGER_MAX {
            return Err(CanonicalError::IntegerRange(signed.to_string()));
        }
        let _ = write!(out, "{signed}");
        return Ok(());
    }
    match number.as_f64() {
        Some(float) => {
            out.push_str(&format_ecmascript(float));
            Ok(())
        }
        None => Err(CanonicalError::IntegerRange(number.to_string())),
    }
}

/// ECMAScript `Number.prototype.toString(10)` for a finite double (RFC 8785 section 3.2.2.3).
pub fn format_ecmascript(value: f64) -> String {
    if value == 0.0 || !value.is_finite() {
        // -0 serializes as 0; non-finite values never reach here from a `Value`.
        return "0".to_owned();
    }
    let negative = value < 0.0;
    // `{:e}` prints the shortest digits that round-trip, e.g. `1.2345e-7`.
    let shortest = format!("{:e}", value.abs());
    // Among the shortest digit strings, ECMAScript takes the one closest to the value, and the
    // even one on a tie; Rust's shortest form may pick the other of a tie. The correctly rounded
    // form with the same number of digits is the closest one.
    let n_shortest_digits = shortest
        .split('e')
        .next()
        .unwrap_or_default()
        .chars()
        .filter(char::is_ascii_digit)
        .count();
    let rounded = format!("{:.*e}", n_shortest_digits.saturating_sub(1), value.abs());
    let scientific = if rounded.parse::<f64>() == Ok(value.abs()) {
        rounded
    } else {
        shortest
    };
    let (mantissa, exponent_text) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let digits: String = mantissa.chars().filter(|c| c.is_ascii_digit()).collect();
    let exponent: i32 = exponent_text.parse().unwrap_or(0);
    let n_digits = digits.len() as i32;
    // ECMAScript's n: the position of the decimal point relative to the digit string.
    let point = exponent + 1;
    let mut out = String::new();
    if negative {
        out.push('-');
    }
    if n_digits <= point && point <= 21 {
        out.push_str(&digits);
        for _ in 0..(point - n_digits) {
            out.push('0');
        }
    } else if 0 < point && point <= 21 {
        let (int_part, frac_part) = digits
            .split_at_checked(point as usize)
            .unwrap_or((&digits, ""));
        out.push_str(int_part);
        out.push('.');
        out.push_str(frac_part);
    } else if -6 < point && point <= 0 {
        out.push_str("0.");
        for _ in 0..(-point) {
            out.push('0');
        }
        out.push_str(&digits);
    } else {
        let exp = point - 1;
        let sign = if exp < 0 { '-' } else { '+' };
        let (first, rest) = digits.split_at_checked(1).unwrap_or(("0", ""));
        out.push_str(first);
        if !rest.is_empty() {
            out.push('.');
            out.push_str(rest);
        }
        let _ = write!(out, "e{sign}{}", exp.abs());
    }
    out
}

/// Parses JSON text, rejecting duplicate member names at any depth and nesting deeper than
/// [`JSON_DEPTH_MAX`].
pub fn parse_value(text: &str) -> Result<Value, CanonicalError> {
    let value: Value =
        serde_json::from_str(text).map_err(|err| CanonicalError::Syntax(err.to_string()))?;
    // serde_json keeps the last duplicate silently; a second pass with a map visitor that
    // refuses duplicates catches them.
    let mut deserializer = serde_json::Deserializer::from_str(text);
    serde::de::Deserializer::deserialize_any(&mut deserializer, DuplicateCheck { depth: 0 })
        .map_err(|err| {
            let message = err.to_string();
            match message.strip_prefix("duplicate member name ") {
                Some(rest) => CanonicalError::DuplicateKey(
                    rest.split(" at line")
                        .next()
                        .unwrap_or(rest)
                        .trim_matches('`')
                        .to_owned(),
                ),
                None if message.starts_with("json is nested") => CanonicalError::TooDeep,
                None => CanonicalError::Syntax(message),
            }
        })?;
    Ok(value)
}

/// Parses JSON text that must be an object; see [`parse_value`].
pub fn parse_object(text: &str) -> Result<Value, CanonicalError> {
    parse_value(text)
}

struct DuplicateCheck {
    depth: usize,
}

impl<'de> serde::de::DeserializeSeed<'de> for DuplicateCheck {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for DuplicateCheck {
    type Value = ();

    fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
        formatter.write_str("json")
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        if self.depth >= JSON_DEPTH_MAX {
            return Err(serde::de::Error::custom("json is nested too deep"));
        }
        while seq
            .next_element_seed(DuplicateCheck {
                depth: self.depth + 1,
            })?
            .is_some()
        {}
        Ok(())
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        if self.depth >= JSON_DEPTH_MAX {
            return Err(serde::de::Error::custom("json is nested too deep"));
        }
        let mut seen = std::collections::HashSet::new();
        while let Some(name) = map.next_key::<String>()? {
            if !seen.insert(name.clone()) {
                return Err(serde::de::Error::custom(format!(
                    "duplicate member name `{name}`"
                )));
            }
            map.next_value_seed(DuplicateCheck {
                depth: self.depth + 1,
            })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(text: &str) -> String {
        String::from_utf8(canonicalize(&parse_value(text).unwrap()).unwrap()).unwrap()
    }

    /// RFC 8785 appendix B: IEEE-754 bit patterns and their canonical text.
    #[test]
    fn rfc8785_number_examples() {
        let cases: &[(u64, &str)] = &[
            (0x0000000000000000, "0"),
            (0x8000000000000000, "0"),
            (0x0000000000000001, "5e-324"),
            (0x8000000000000001, "-5e-324"),
            (0x7fefffffffffffff, "1.7976931348623157e+308"),
            (0xffefffffffffffff, "-1.7976931348623157e+308"),
            (0x4340000000000000, "9007199254740992"),
            (0xc340000000000000, "-9007199254740992"),
            (0x4430000000000000, "295147905179352830000"),
            (0x44b52d02c7e14af5, "9.999999999999997e+22"),
            (0x44b52d02c7e14af6, "1e+23"),
            (0x44b52d02c7e14af7, "1.0000000000000001e+23"),
            (0x444b1ae4d6e2ef4e, "999999999999999700000"),
            (0x444b1ae4d6e2ef4f, "999999999999999900000"),
            (0x444b1ae4d6e2ef50, "1e+21"),
            (0x3eb0c6f7a0b5ed8c, "9.999999999999997e-7"),
            (0x3eb0c6f7a0b5ed8d, "0.000001"),
            (0x41b3de4355555553, "333333333.3333332"),
            (0x41b3de4355555554, "333333333.33333325"),
            (0x41b3de4355555555, "333333333.3333333"),
            (0x41b3de4355555556, "333333333.3333334"),
            (0x41b3de4355555557, "333333333.33333343"),
            (0xbecbf647612f3696, "-0.0000033333333333333333"),
            (0x43143ff3c1cb0959, "1424953923781206.2"),
        ];
        for (bits, want) in cases {
            assert_eq!(
                format_ecmascript(f64::from_bits(*bits)),
                *want,
                "bits {bits:#x}"
            );
        }
    }

    /// RFC 8785 section 3.2.2 example (adapted: the big integer is replaced by a float literal
    /// because integers beyond 2^53 are refused by policy).
    #[test]
    fn rfc8785_sorting_and_strings() {
        let input = r#"{
            "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
            "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
            "literals": [null, true, false]
        }"#;
        let want = r#"{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}"#;
        assert_eq!(canon(input), want);
    }

    /// RFC 8785 section 3.2.3: sorting by UTF-16 code units, not by UTF-8 bytes or code points.
    #[test]
    fn rfc8785_utf16_sort_order() {
        let input = r#"{"\u20ac":"Euro Sign","\r":"Carriage Return","\ufb33":"Hebrew Letter Dalet With Dagesh","1":"One","\ud83d\ude00":"Emoji: Grinning Face","\u0080":"Control","\u00f6":"Latin Small Letter O With Diaeresis"}"#;
        let got = canon(input);
        let order: Vec<&str> = [
            "Carriage Return",
            "One",
            "Control",
            "Latin Small",
            "Euro Sign",
            "Emoji",
            "Hebrew",
        ]
        .to_vec();
        let mut last = 0;
        for needle in order {
            let at = got.find(needle).unwrap();
            assert!(at > last, "`{needle}` out of order in {got}");
            last = at;
        }
    }

    #[test]
    fn integers_beyond_2_pow_53_are_refused() {
        assert_eq!(canon("[9007199254740991]"), "[9007199254740991]");
        assert!(matches!(
            canonicalize(&parse_value("[9007199254740992]").unwrap()),
            Err(CanonicalError::IntegerRange(_))
        ));
        assert!(matches!(
            canonicalize(&parse_value("[-9007199254740992]").unwrap()),
            Err(CanonicalError::IntegerRange(_))
        ));
    }

    #[test]
    fn duplicates_and_depth_are_refused() {
        assert_eq!(
            parse_value(r#"{"a":1,"b":{"c":1,"c":2}}"#),
            Err(CanonicalError::DuplicateKey("c".into()))
        );
        let deep = format!("{}{}", "[".repeat(100), "]".repeat(100));
        assert_eq!(parse_value(&deep), Err(CanonicalError::TooDeep));
        assert!(matches!(parse_value("{"), Err(CanonicalError::Syntax(_))));
    }
}
