//! How deeply a JSON text nests. The intake measures every contact before it stores it, so
//! that a contact nested past `MAX_JSON_DEPTH` fails its own row (`invalid_row`) instead of
//! reaching a worker whose parser refuses it, and with it the whole batch.

/// The deepest nesting of arrays and objects a contact may have (the contact object is 1).
pub const MAX_JSON_DEPTH: usize = 32;

/// Whether `json` nests at most `max` levels deep. A text with no more than `max` opening
/// brackets cannot nest deeper, and a contact has a handful: its bytes are only counted (a
/// loop the compiler vectorises), and only a text with more brackets is walked.
pub fn nests_within(json: &str, max: usize) -> bool {
    // '[' is 0x5B and '{' 0x7B: the only bytes that are '{' with bit 0x20 set. Counted in
    // u8 lanes, 255 bytes at a time, which the compiler turns into vector compares.
    let opening: usize = json
        .as_bytes()
        .chunks(255)
        .map(|chunk| {
            let n: u8 = chunk.iter().map(|&b| u8::from(b | 0x20 == b'{')).sum();
            usize::from(n)
        })
        .sum();
    opening <= max || json_depth(json) <= max
}

/// The deepest nesting of arrays and objects in `json` (0 for a scalar). Brackets inside
/// strings do not count. The text is assumed to be JSON already checked for syntax.
pub fn json_depth(json: &str) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    let (mut in_string, mut escaped) = (false, false);
    for byte in json.bytes() {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_counts_arrays_and_objects_but_not_brackets_in_strings() {
        let cases = [
            ("1", 0),
            ("\"[{\"", 0),
            ("{}", 1),
            (r#"{"a": [1, 2]}"#, 2),
            (r#"{"a": "x\"]}{[", "b": {"c": [{}]}}"#, 4),
            (r#"{"a": "\\", "b": [[]]}"#, 3),
            (r#"[[], [[]], []]"#, 3),
        ];
        for (json, expected) in cases {
            assert_eq!(json_depth(json), expected, "{json}");
        }
        let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
        assert_eq!(json_depth(&deep), 5000);
    }

    #[test]
    fn nests_within_agrees_with_the_depth_whether_or_not_it_counts_only() {
        let wide = format!("[{}]", vec!["{}"; 40].join(","));
        let in_strings = format!(r#"{{"a": "{}"}}"#, "[".repeat(40));
        let deep = format!("{}{}", "[".repeat(33), "]".repeat(33));
        let cases = [
            ("{}", true),
            (r#"{"a": [[{}]]}"#, true),
            (wide.as_str(), true),
            (in_strings.as_str(), true),
            (deep.as_str(), false),
        ];
        for (json, within) in cases {
            assert_eq!(nests_within(json, MAX_JSON_DEPTH), within, "{json}");
            assert_eq!(json_depth(json) <= MAX_JSON_DEPTH, within, "{json}");
        }
        assert!(nests_within(&deep, 33));
        assert!(!nests_within(&deep, 32));
    }

    #[test]
    fn a_stored_row_no_parser_reads_fails_alone_as_invalid_row() {
        let fields = std::collections::HashMap::new();
        let rules = crate::validate::Rules {
            dedupe_on: crate::validate::Identifier::Phone,
            default_region: None,
            fields: &fields,
            today: time::macros::date!(2026 - 12 - 02),
            date_format: Default::default(),
        };
        let deep = format!(
            r#"{{"phone": "+212612345678", "x": {}1{}}}"#,
            "[".repeat(500),
            "]".repeat(500)
        );
        let errors = crate::validate::validate_stored_text(&deep, &rules).unwrap_err();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].code, crate::validate::ErrorCode::InvalidRow);
        assert!(
            errors[0].message.contains("cannot be read"),
            "{}",
            errors[0].message
        );
        let marked = crate::validate::invalid_row("why".into()).to_string();
        let errors = crate::validate::validate_stored_text(&marked, &rules).unwrap_err();
        assert_eq!(errors[0].message, "why");
        assert!(
            crate::validate::validate_stored_text(r#"{"phone": "+212612345678"}"#, &rules).is_ok()
        );
    }
}
