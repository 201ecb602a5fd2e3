//! Arguments against the catalog: refuse what the schema does not allow, and build the Cedar
//! value each argument's kind calls for, without a JSON round trip.
//!
//! - `string`, `long`, `bool`: copied, after `enum`, `max_bytes`, `min` and `max`.
//! - `path`: refused if empty, holding a NUL byte, longer than `max_bytes` (as sent) or not
//!   absolute; otherwise lexically normalised ([`normalize_path`]): `//` and `.` dropped, `..`
//!   resolved (`..` at the root stays at the root), no trailing `/` except for the root.
//!   Conditions see the normalised string, so `like "/srv/docs/*"` cannot be escaped with
//!   `/srv/docs/../etc/passwd`. Symlinks are not resolved: the guard does no IO, so whoever
//!   holds the file system (the gateway) must resolve them before the call reaches the tool.
//!   Cedar's `*` matches `/` as well, so `like "/srv/docs/*"` covers the whole tree below the
//!   folder but not the folder itself; the idiom is
//!   `context.args.path == "/srv/docs" || context.args.path like "/srv/docs/*"`.
//! - `url`: parsed (WHATWG rules, the `url` crate) into the record `{scheme, host, port, path,
//!   query}`: host lowercased (`""` if none), the explicit port else the scheme's default (`0`
//!   if it has none), the path with dot segments removed, the query (`""` if none). A relative
//!   or unparsable URL is refused.
//! - `object`: a JSON object -> a Cedar record, members converted by their kind; undeclared
//!   members are refused and required ones required. `set`: a JSON array -> a Cedar set of
//!   items converted by their kind, at most [`SET_ITEMS_MAX`] of them. Nesting is bounded by
//!   [`pact::ARG_DEPTH_MAX`]. Cedar has no quantifier, so a condition cannot say "every path in
//!   the set is under `/srv/docs`": compare the set with a fixed list (`[...].containsAll(
//!   context.args.paths)`), forbid known members (`.contains("/etc/passwd")`), or decide one call
//!   per path.
//!
//! When normalising changed a path, [`TypedArgs::normalized`] holds the arguments as conditions
//! saw them, for the verdict. Actions whose arguments are all scalars pay nothing for any of it.

use std::borrow::Cow;
use std::fmt;

use cedar_policy::RestrictedExpression;
use pact::{Action, Arg, ArgKind};
use serde_json::{Map, Value};

/// Most items accepted in one set (a JSON array) anywhere in the arguments.
pub const SET_ITEMS_MAX: usize = 1024;

/// Deepest nesting walked when scanning argument strings for canaries or sizing the request.
/// Deeper than any checked argument can be ([`pact::ARG_DEPTH_MAX`]): undeclared shapes are
/// refused by [`check_args`], and this bound only keeps the walks before it finite.
const SCAN_DEPTH_MAX: usize = 32;

/// Longest piece of an argument's value quoted in a refusal, in bytes.
const QUOTED_BYTES_MAX: usize = 120;

/// Checked arguments, ready for Cedar.
pub(crate) struct TypedArgs {
    pub(crate) cedar: Vec<(String, RestrictedExpression)>,
    /// The arguments as conditions saw them (paths normalised, URLs as sent), only when
    /// normalising changed at least one path.
    pub(crate) normalized: Option<Map<String, Value>>,
}

/// Where a value sits in the arguments, for messages: `path`, `edits[2].oldText`. Built on the
/// stack and only formatted when something is refused.
#[derive(Clone, Copy)]
enum Place<'a> {
    Arg(&'a str),
    Member(&'a Place<'a>, &'a str),
    Item(&'a Place<'a>, usize),
}

impl fmt::Display for Place<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Place::Arg(name) => f.write_str(name),
            Place::Member(parent, name) => write!(f, "{parent}.{name}"),
            Place::Item(parent, item_idx) => write!(f, "{parent}[{item_idx}]"),
        }
    }
}

/// Checks every argument against the action's declared arguments.
pub(crate) fn check_args(action: &Action, args: &Map<String, Value>) -> Result<TypedArgs, String> {
    for name in args.keys() {
        if action.arg(name).is_none() {
            return Err(format!(
                "argument `{name}` is not declared for action `{}`",
                action.name
            ));
        }
    }
    let mut cedar = Vec::with_capacity(args.len());
    let mut changed = false;
    for arg in &action.args {
        let Some(value) = args.get(&arg.name) else {
            if arg.required {
                return Err(format!("missing required argument `{}`", arg.name));
            }
            continue;
        };
        let expression = convert(arg, value, &Place::Arg(&arg.name), 0, &mut changed)?;
        cedar.push((arg.name.clone(), expression));
    }
    let normalized = changed.then(|| {
        args.iter()
            .map(|(name, value)| {
                let value = match action.arg(name) {
                    Some(arg) => as_seen(arg, value),
                    None => value.clone(),
                };
                (name.clone(), value)
            })
            .collect()
    });
    Ok(TypedArgs { cedar, normalized })
}

/// One value against its declared argument (or member, or set item); sets `changed` when a path
/// was normalised into something other than what was sent.
fn convert(
    arg: &Arg,
    value: &Value,
    place: &Place<'_>,
    depth: usize,
    changed: &mut bool,
) -> Result<RestrictedExpression, String> {
    match (&arg.kind, value) {
        (ArgKind::String, Value::String(text)) => {
            check_bytes(arg, text, place)?;
            if let Some(allowed) = &arg.allowed {
                if !allowed.iter().any(|candidate| candidate == text) {
                    return Err(format!(
                        "argument `{place}` is `{}`, which is not one of {}",
                        quoted(text),
                        allowed
                            .iter()
                            .map(|candidate| format!("`{candidate}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                }
            }
            Ok(RestrictedExpression::new_string(text.clone()))
        }
        (ArgKind::Long, Value::Number(number)) => {
            let Some(long) = number.as_i64() else {
                return Err(format!(
                    "argument `{place}` must be a whole number, got `{number}`"
                ));
            };
            if let Some(min) = arg.min {
                if long < min {
                    return Err(format!(
                        "argument `{place}` is {long}; the minimum is {min}"
                    ));
                }
            }
            if let Some(max) = arg.max {
                if long > max {
                    return Err(format!(
                        "argument `{place}` is {long}; the maximum is {max}"
                    ));
                }
            }
            Ok(RestrictedExpression::new_long(long))
        }
        (ArgKind::Bool, Value::Bool(flag)) => Ok(RestrictedExpression::new_bool(*flag)),
        (ArgKind::Path, Value::String(text)) => {
            check_bytes(arg, text, place)?;
            let normal = checked_path(text, place)?;
            if matches!(normal, Cow::Owned(_)) {
                *changed = true;
            }
            Ok(RestrictedExpression::new_string(normal.into_owned()))
        }
        (ArgKind::Url, Value::String(text)) => {
            check_bytes(arg, text, place)?;
            url_record(text, place)
        }
        (ArgKind::Set(item), Value::Array(items)) => {
            check_depth(depth, place)?;
            if items.len() > SET_ITEMS_MAX {
                return Err(format!(
                    "argument `{place}` has {} items; the limit is {SET_ITEMS_MAX}",
                    items.len()
                ));
            }
            let mut out = Vec::with_capacity(items.len());
            for (item_idx, value) in items.iter().enumerate() {
                let item_place = Place::Item(place, item_idx);
                out.push(convert(item, value, &item_place, depth + 1, changed)?);
            }
            Ok(RestrictedExpression::new_set(out))
        }
        (ArgKind::Object(members), Value::Object(entries)) => {
            check_depth(depth, place)?;
            for name in entries.keys() {
                if arg.member(name).is_none() {
                    return Err(format!(
                        "argument `{place}` has the member `{}`, which is not declared",
                        quoted(name)
                    ));
                }
            }
            let mut pairs = Vec::with_capacity(entries.len());
            for member in members {
                let member_place = Place::Member(place, &member.name);
                let Some(value) = entries.get(&member.name) else {
                    if member.required {
                        return Err(format!("missing required argument `{member_place}`"));
                    }
                    continue;
                };
                let expression = convert(member, value, &member_place, depth + 1, changed)?;
                pairs.push((member.name.clone(), expression));
            }
            RestrictedExpression::new_record(pairs)
                .map_err(|err| format!("argument `{place}`: {err}"))
        }
        (kind, other) => Err(format!(
            "argument `{place}` must be {}, got {}",
            kind_name(kind),
            json_kind(other)
        )),
    }
}

fn check_bytes(arg: &Arg, text: &str, place: &Place<'_>) -> Result<(), String> {
    match arg.max_bytes {
        Some(max_bytes) if text.len() as u64 > max_bytes => Err(format!(
            "argument `{place}` is {} bytes; the limit is {max_bytes}",
            text.len()
        )),
        _ => Ok(()),
    }
}

fn check_depth(depth: usize, place: &Place<'_>) -> Result<(), String> {
    if depth >= pact::ARG_DEPTH_MAX {
        return Err(format!(
            "argument `{place}` nests lists and objects more than {} deep",
            pact::ARG_DEPTH_MAX
        ));
    }
    Ok(())
}

/// A `path` argument checked and normalised.
fn checked_path<'a>(text: &'a str, place: &Place<'_>) -> Result<Cow<'a, str>, String> {
    if text.is_empty() {
        return Err(format!(
            "argument `{place}` is an empty path; paths must be absolute (start with `/`)"
        ));
    }
    if text.contains('\0') {
        return Err(format!(
            "argument `{place}` holds a NUL byte, which no path may"
        ));
    }
    if !text.starts_with('/') {
        return Err(format!(
            "argument `{place}` is `{}`, a relative path; paths must be absolute (start with `/`)",
            quoted(text)
        ));
    }
    Ok(normalize_path(text))
}

/// Lexical normalisation of an absolute path: `//` and `.` segments dropped, `..` resolved
/// against the segments before it (`..` at the root stays at the root), no trailing `/` except
/// for the root itself. Borrows when the path is already normal, so an owned result always
/// differs from the input.
pub(crate) fn normalize_path(text: &str) -> Cow<'_, str> {
    let is_normal = text == "/"
        || (text.starts_with('/')
            && text
                .split('/')
                .skip(1)
                .all(|segment| !matches!(segment, "" | "." | "..")));
    if is_normal {
        return Cow::Borrowed(text);
    }
    let mut segments: Vec<&str> = Vec::new();
    for segment in text.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            other => segments.push(other),
        }
    }
    if segments.is_empty() {
        return Cow::Owned("/".to_string());
    }
    let mut out = String::with_capacity(text.len());
    for segment in segments {
        out.push('/');
        out.push_str(segment);
    }
    Cow::Owned(out)
}

/// A `url` argument as the record conditions see ([`pact::URL_CEDAR_TYPE`]).
fn url_record(text: &str, place: &Place<'_>) -> Result<RestrictedExpression, String> {
    let parsed = url::Url::parse(text).map_err(|err| {
        format!(
            "argument `{place}` is `{}`, which is not an absolute URL: {err}",
            quoted(text)
        )
    })?;
    let host = parsed
        .host_str()
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    let port = parsed.port_or_known_default().map_or(0, i64::from);
    RestrictedExpression::new_record([
        (
            "scheme".to_string(),
            RestrictedExpression::new_string(parsed.scheme().to_string()),
        ),
        ("host".to_string(), RestrictedExpression::new_string(host)),
        ("port".to_string(), RestrictedExpression::new_long(port)),
        (
            "path".to_string(),
            RestrictedExpression::new_string(parsed.path().to_string()),
        ),
        (
            "query".to_string(),
            RestrictedExpression::new_string(parsed.query().unwrap_or_default().to_string()),
        ),
    ])
    .map_err(|err| format!("argument `{place}`: {err}"))
}

/// A checked value as conditions saw it, in JSON: paths normalised, everything else (URLs
/// included) as sent. Only walks into what holds a path or URL.
fn as_seen(arg: &Arg, value: &Value) -> Value {
    match (&arg.kind, value) {
        (ArgKind::Path, Value::String(text)) => Value::String(normalize_path(text).into_owned()),
        (ArgKind::Set(item), Value::Array(items)) if item.kind.has_path_or_url() => {
            Value::Array(items.iter().map(|value| as_seen(item, value)).collect())
        }
        (ArgKind::Object(_), Value::Object(entries)) if arg.kind.has_path_or_url() => {
            Value::Object(
                entries
                    .iter()
                    .map(|(name, value)| {
                        let value = match arg.member(name) {
                            Some(member) => as_seen(member, value),
                            None => value.clone(),
                        };
                        (name.clone(), value)
                    })
                    .collect(),
            )
        }
        _ => value.clone(),
    }
}

/// At most [`QUOTED_BYTES_MAX`] bytes of `text`, cut at a character boundary.
fn quoted(text: &str) -> Cow<'_, str> {
    if text.len() <= QUOTED_BYTES_MAX {
        return Cow::Borrowed(text);
    }
    let mut end = QUOTED_BYTES_MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!("{}...", text.get(..end).unwrap_or_default()))
}

fn kind_name(kind: &ArgKind) -> &'static str {
    match kind {
        ArgKind::String => "a string",
        ArgKind::Long => "a whole number",
        ArgKind::Bool => "true or false",
        ArgKind::Path => "an absolute path (a string)",
        ArgKind::Url => "a URL (a string)",
        ArgKind::Set(_) => "a list",
        ArgKind::Object(_) => "an object",
    }
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// Calls `visit(argument path, text)` for every string in the arguments, keys included.
pub(crate) fn for_each_string(args: &Map<String, Value>, visit: &mut dyn FnMut(&str, &str)) {
    for (name, value) in args {
        walk(name, value, 0, visit);
    }
}

fn walk(path: &str, value: &Value, depth: usize, visit: &mut dyn FnMut(&str, &str)) {
    if depth > SCAN_DEPTH_MAX {
        return;
    }
    match value {
        Value::String(text) => visit(path, text),
        Value::Array(items) => {
            for item in items {
                walk(path, item, depth + 1, visit);
            }
        }
        Value::Object(entries) => {
            for (key, item) in entries {
                visit(path, key);
                walk(path, item, depth + 1, visit);
            }
        }
        _ => {}
    }
}

/// Approximate encoded size of the arguments, for the request size limit.
pub(crate) fn json_bytes(args: &Map<String, Value>) -> usize {
    fn size(value: &Value, depth: usize) -> usize {
        if depth > SCAN_DEPTH_MAX {
            return 0;
        }
        match value {
            Value::String(text) => text.len() + 2,
            Value::Array(items) => {
                items
                    .iter()
                    .map(|item| size(item, depth + 1) + 1)
                    .sum::<usize>()
                    + 2
            }
            Value::Object(entries) => {
                entries
                    .iter()
                    .map(|(key, item)| key.len() + 3 + size(item, depth + 1))
                    .sum::<usize>()
                    + 2
            }
            _ => 8,
        }
    }
    args.iter()
        .map(|(key, value)| key.len() + 3 + size(value, 0))
        .sum()
}
