//! JSON string literals for the machine-readable output of `lsusctl --json`
//! and `lsus-bench --json`.
//!
//! Those objects are small and flat and written by hand; a JSON library
//! would be a dependency for this one function.

/// Returns `s` as a JSON string literal (RFC 8259: `"` and `\` escaped,
/// control characters as `\n`, `\r`, `\t` or `\u00XX`).
///
/// ```
/// assert_eq!(lsus_proto::json::string("a\"b\n"), r#""a\"b\n""#);
/// ```
pub fn string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::string;

    #[test]
    fn quotes_backslashes_and_control_characters_are_escaped() {
        assert_eq!(string("a\"b\\c\nd\u{1}"), "\"a\\\"b\\\\c\\nd\\u0001\"");
        assert_eq!(string("\r\t"), "\"\\r\\t\"");
        assert_eq!(string("ünï"), "\"ünï\"");
        assert_eq!(string(""), "\"\"");
    }
}
