//! The job placeholders of dispatcher templates (`{model}`, `{job_id}`, ...),
//! shared by the command and HTTP dispatchers so that both read a template
//! the same way.

use monitor_core::event::RetrainJob;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::Value as Json;

/// The job's value of a placeholder.
type Value = fn(&RetrainJob) -> String;

/// The placeholders of templates, and the job's value of each.
const PLACEHOLDERS: [(&str, Value); 5] = [
    ("{model}", |job| job.model.clone()),
    ("{version}", |job| job.version.clone()),
    ("{job_id}", |job| job.job_id.to_string()),
    ("{seq}", |job| job.seq.to_string()),
    ("{reason}", RetrainJob::reason_summary),
];

/// Every byte but RFC 3986's unreserved `A-Z a-z 0-9 - . _ ~` is encoded, so
/// a value never adds a path segment, a query parameter or a fragment.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// Whether `text` holds a placeholder.
pub(crate) fn has_placeholder(text: &str) -> bool {
    PLACEHOLDERS.iter().any(|(name, _)| text.contains(name))
}

/// Replaces the job placeholders in `template`.
pub(crate) fn substitute(template: &str, job: &RetrainJob) -> String {
    substitute_with(template, job, str::to_owned)
}

/// Percent-encodes `value` as one URL component (see [`COMPONENT`]).
pub(crate) fn encode_component(value: &str) -> String {
    utf8_percent_encode(value, COMPONENT).to_string()
}

/// Replaces each placeholder in `template` by `encode` of its value, in one
/// pass: a value that holds a placeholder's name is inserted as it is, not
/// replaced in turn.
pub(crate) fn substitute_with(template: &str, job: &RetrainJob, encode: impl Fn(&str) -> String) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let tail = &rest[open..];
        match PLACEHOLDERS.iter().find(|(name, _)| tail.starts_with(name)) {
            Some((name, value)) => {
                out.push_str(&encode(&value(job)));
                rest = &tail[name.len()..];
            }
            None => {
                out.push('{');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Where the authority (`scheme://user@host:port`) of a URL text ends.
pub(crate) fn authority_end(url: &str) -> usize {
    let start = url.find("://").map_or(0, |i| i + 3);
    url[start..].find(['/', '\\', '?', '#']).map_or(url.len(), |i| start + i)
}

/// Whether a path segment is `.` or `..`, which URL parsing removes or
/// follows (`%2e` counts as a dot there).
fn is_dot_segment(segment: &str) -> bool {
    matches!(segment.to_ascii_lowercase().as_str(), "." | ".." | "%2e" | ".%2e" | "%2e." | "%2e%2e")
}

/// The generic preset's URL for `job`: the template's placeholders in its
/// path, query and fragment replaced by their percent-encoded values; its
/// scheme, host and port as they are.
pub(crate) fn fill_url(template: &str, job: &RetrainJob) -> std::result::Result<url::Url, String> {
    let (head, rest) = template.split_at(authority_end(template));
    let (rest, fragment) = rest.split_once('#').map_or((rest, None), |(r, f)| (r, Some(f)));
    let (path, query) = rest.split_once('?').map_or((rest, None), |(p, q)| (p, Some(q)));
    let mut text = head.to_owned();
    let filled = substitute_with(path, job, encode_component);
    // Encoded values hold no separator, so the segments pair up.
    for (before, after) in path.split(['/', '\\']).zip(filled.split(['/', '\\'])) {
        if before != after && is_dot_segment(after) {
            return Err(format!(
                "the job's values make the URL path segment `{before}` into `{after}`, which would change the path; not sent"
            ));
        }
    }
    text.push_str(&filled);
    if let Some(query) = query {
        text.push('?');
        text.push_str(&substitute_with(query, job, encode_component));
    }
    if let Some(fragment) = fragment {
        text.push('#');
        text.push_str(&substitute_with(fragment, job, encode_component));
    }
    url::Url::parse(&text).map_err(|e| format!("the URL with the job's values is invalid: {e}"))
}

/// Fills a body template: placeholders in every string, `"{job}"` as the job.
pub(crate) fn fill(template: &Json, job: &RetrainJob, job_json: &Json) -> Json {
    match template {
        Json::String(s) if s == "{job}" => job_json.clone(),
        Json::String(s) => Json::String(substitute(s, job)),
        Json::Array(items) => Json::Array(items.iter().map(|i| fill(i, job, job_json)).collect()),
        Json::Object(map) => Json::Object(map.iter().map(|(k, v)| (k.clone(), fill(v, job, job_json))).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use uuid::Uuid;

    use super::*;

    fn job(model: &str) -> RetrainJob {
        RetrainJob {
            job_id: Uuid::nil(),
            model: model.into(),
            version: "v3".into(),
            reasons: vec![],
            created_at: Utc::now(),
            seq: 4,
        }
    }

    #[test]
    fn placeholders_are_replaced() {
        assert_eq!(
            substitute("{model}/{version}/{job_id}/{seq}/{reason}", &job("fraud")),
            "fraud/v3/00000000-0000-0000-0000-000000000000/4/"
        );
    }

    #[test]
    fn values_that_look_like_placeholders_are_not_replaced_again() {
        let job = job("{version}");
        assert_eq!(substitute("{model}:{version}:{unknown}:{", &job), "{version}:v3:{unknown}:{");
        assert_eq!(substitute_with("<{model}>", &job, |v| v.to_uppercase()), "<{VERSION}>");
    }

    #[test]
    fn components_keep_only_unreserved_bytes() {
        assert_eq!(encode_component("a-b.c_d~e"), "a-b.c_d~e");
        assert_eq!(encode_component("../x?y=1&z#é /"), "..%2Fx%3Fy%3D1%26z%23%C3%A9%20%2F");
        assert_eq!(encode_component("%2e"), "%252e");
    }
}
