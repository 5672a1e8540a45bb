//! A document's bytes as text, and where in that text a problem is: refusing
//! binary data, empty files and characters IAM refuses, with the line and
//! column (in characters, as an editor counts) of the first bad one.

use super::message::{describe_char, policy_error};
use crate::error::Result;

pub(super) const EMPTY_DOCUMENT: &str = "empty document";

/// The bytes as text, refusing binary data and empty documents.
pub(super) fn decode_text(bytes: &[u8]) -> std::result::Result<&str, String> {
    let text = std::str::from_utf8(bytes).map_err(|err| {
        let offset = err.valid_up_to();
        let (line, column) = position(bytes, offset);
        format!(
            "line {line}, column {column}: not UTF-8 text (byte 0x{:02X}); is this a binary file?",
            bytes[offset]
        )
    })?;
    if let Some(offset) = text.find('\0') {
        let (line, column) = position(bytes, offset);
        return Err(format!(
            "line {line}, column {column}: NUL byte; binary data is not a JSON document"
        ));
    }
    if text.chars().all(char::is_whitespace) {
        return Err(EMPTY_DOCUMENT.to_string());
    }
    Ok(text)
}

/// IAM's parameter pattern for policy documents: tab, line feed, carriage
/// return and U+0020..U+00FF, applied to the raw text.
fn is_policy_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{FF}')
}

pub(super) fn check_policy_characters(text: &str) -> Result<()> {
    match text.char_indices().find(|&(_, c)| !is_policy_char(c)) {
        None => Ok(()),
        Some((offset, c)) => {
            let (line, column) = position(text.as_bytes(), offset);
            Err(policy_error(format!(
                "line {line}, column {column}: character {} is not allowed; IAM accepts only \
                 tab, line feed, carriage return and U+0020 to U+00FF (Latin-1) in a policy document",
                describe_char(c)
            )))
        }
    }
}

/// 1-based line and column (in characters, as an editor counts) of a byte offset.
fn position(bytes: &[u8], offset: usize) -> (usize, usize) {
    let before = &bytes[..offset.min(bytes.len())];
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    (line, char_count(&before[line_start..]) + 1)
}

/// Characters that start within these bytes (UTF-8 continuation bytes don't).
fn char_count(bytes: &[u8]) -> usize {
    bytes.iter().filter(|&&b| (b & 0xC0) != 0x80).count()
}

/// "line L, column C: <serde message>", the column counted in characters
/// (serde_json counts bytes, which an editor would not show for Latin-1 text).
pub(super) fn json_error_message(text: &str, err: &serde_json::Error) -> String {
    let full = err.to_string();
    let suffix = format!(" at line {} column {}", err.line(), err.column());
    let message = full.strip_suffix(&suffix).unwrap_or(&full);
    if err.line() == 0 {
        return message.to_string();
    }
    let line_text = text
        .as_bytes()
        .split(|&b| b == b'\n')
        .nth(err.line() - 1)
        .unwrap_or_default();
    // serde_json says column 0 before the first character of a line; editors start at 1.
    let column = char_count(&line_text[..err.column().min(line_text.len())]).max(1);
    format!("line {}, column {column}: {message}", err.line())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::policy::testing::{assert_mentions, ok, refused, refused_bytes, with_statement};
    use crate::policy::{policy_size, DocumentKind};

    #[test]
    fn latin1_text_passes_and_counts_as_characters() {
        let doc = with_statement(
            json!({"Sid": "Café", "Effect": "Allow", "Action": "s3:*", "Resource": "*"}),
        );
        ok(&doc, DocumentKind::Managed);
        assert_eq!(policy_size("é é"), 2);
    }

    #[test]
    fn escaped_characters_beyond_latin1_pass_since_the_rule_is_on_raw_text() {
        let doc = r#"{"Version":"2012-10-17","Statement":[{"Sid":"x","Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::b/\u4e2d"}]}"#;
        ok(doc, DocumentKind::Managed);
    }

    #[test]
    fn tabs_and_crlf_pass() {
        let doc = "{\r\n\t\"Version\": \"2012-10-17\",\r\n\t\"Statement\": {\"Effect\": \"Allow\", \"Action\": \"*\", \"Resource\": \"*\"}\r\n}\r\n";
        ok(doc, DocumentKind::Managed);
    }

    #[test]
    fn empty_and_whitespace_only_are_refused() {
        for doc in ["", "   ", "\n\t\r\n"] {
            assert_eq!(refused(doc, DocumentKind::Managed), "empty document");
        }
    }

    #[test]
    fn binary_is_refused() {
        let message = refused_bytes(b"{\"Version\"\0}", DocumentKind::Managed);
        assert_mentions(&message, &["line 1, column 11", "NUL", "binary"]);
        let message = refused_bytes(b"{\n  \"a\": \"\xff\xfe\"}", DocumentKind::Managed);
        assert_mentions(&message, &["line 2, column 9", "not UTF-8", "0xFF"]);
    }

    #[test]
    fn characters_beyond_latin1_are_refused_with_position() {
        let doc = "{\n  \"Version\": \"2012-10-17\",\n  \"Statement\": {\"Sid\": \"é中\"}\n}";
        let message = refused(doc, DocumentKind::Managed);
        assert_mentions(
            &message,
            &["line 3, column 26", "U+4E2D", "U+0020 to U+00FF"],
        );
    }

    #[test]
    fn byte_order_mark_is_refused() {
        let doc = "\u{FEFF}{\"Version\":\"2012-10-17\",\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\"}}";
        let message = refused(doc, DocumentKind::Managed);
        assert_mentions(&message, &["line 1, column 1", "byte-order mark"]);
    }

    #[test]
    fn control_characters_other_than_tab_lf_cr_are_refused() {
        let message = refused("{\u{0B}}", DocumentKind::Managed);
        assert_mentions(&message, &["U+000B", "line 1, column 2"]);
    }

    #[test]
    fn json_error_reports_line_and_column_in_a_multi_line_document() {
        let doc = "{\n  \"Version\": \"2012-10-17\",\n  \"Statement\": [\n    {\"Effect\": \"Allow\" \"Action\": \"*\"}\n  ]\n}\n";
        let message = refused(doc, DocumentKind::Managed);
        assert_eq!(message, "line 4, column 24: expected `,` or `}`");
    }

    #[test]
    fn json_error_column_counts_characters_not_bytes() {
        // "é" is two bytes in UTF-8 but one column in an editor.
        let doc = "{\"Sid\": \"é\" x}";
        let message = refused(doc, DocumentKind::Managed);
        assert!(message.starts_with("line 1, column 13: "), "{message}");
    }

    #[test]
    fn json_errors_at_end_and_trailing_text_are_reported() {
        let message = refused("{\n\"Version\": \"2012-10-17\",\n", DocumentKind::Managed);
        assert_mentions(&message, &["line 3, column 1: EOF while parsing"]);
        let message = refused("{} {}", DocumentKind::Managed);
        assert_mentions(&message, &["line 1, column 4: trailing characters"]);
    }
}
