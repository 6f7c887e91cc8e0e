//! Names from the records in human-readable output, made harmless.
//!
//! Model, version and feature names come from the input, so they may hold a
//! line break that forges a log line, an ANSI escape that rewrites a
//! terminal, or, in Slack's `mrkdwn`, `<!channel>` and `<https://…|click>`.
//! Every human-readable text the observers write goes through these
//! functions; the JSON bodies keep the names exactly (JSON escapes them).

use std::borrow::Cow;
use std::fmt::Write;

/// Whether `c` must not appear as it is in a line of human text: C0 and C1
/// control characters (line breaks, ESC of ANSI sequences, DEL) and the
/// Unicode bidirectional overrides, which reorder what a reader sees.
fn is_unsafe(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `text` with each control character written as an escape: `\n`, `\r`,
/// `\t`, or `\u{1b}`. Text without one is borrowed as it is.
pub(crate) fn escape_control(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unsafe) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        push_escaped(&mut out, c);
    }
    Cow::Owned(out)
}

fn push_escaped(out: &mut String, c: char) {
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c if is_unsafe(c) => {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        }
        c => out.push(c),
    }
}

/// `text` for Slack's `mrkdwn` and message `text`: `&`, `<` and `>` become
/// `&amp;`, `&lt;` and `&gt;`, as Slack's "Escaping text" asks, so that a
/// name cannot mention `@channel` or plant a link; control characters are
/// escaped as by [`escape_control`].
pub(crate) fn slack(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => push_escaped(&mut out, c),
        }
    }
    out
}

/// The first line of a response body, shortened and with its control
/// characters escaped, for a failure's detail.
pub(crate) fn snippet(body: &str) -> String {
    let line = body.lines().next().unwrap_or("").trim();
    let cut = (0..=line.len().min(200)).rev().find(|&i| line.is_char_boundary(i)).unwrap_or(0);
    escape_control(&line[..cut]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_and_clean_text_borrowed() {
        assert!(matches!(escape_control("fraud v3"), Cow::Borrowed("fraud v3")));
        assert_eq!(
            escape_control("m\nINFO forged\r\t\u{1b}[31mred\u{7f}\u{85}"),
            "m\\nINFO forged\\r\\t\\u{1b}[31mred\\u{7f}\\u{85}"
        );
        assert_eq!(escape_control("a\u{202e}b"), "a\\u{202e}b");
        assert_eq!(escape_control("é ü 模型"), "é ü 模型");
    }

    #[test]
    fn slack_text_cannot_mention_or_link() {
        assert_eq!(
            slack("<!channel> <https://evil|click> & co\n"),
            "&lt;!channel&gt; &lt;https://evil|click&gt; &amp; co\\n"
        );
    }
}
