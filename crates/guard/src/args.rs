//! Arguments against the catalog: refuse what the schema does not allow, and build the Cedar
//! record for what it does, without a JSON round trip.

use cedar_policy::RestrictedExpression;
use pact::syntax::ArgType;
use pact::Action;
use serde_json::{Map, Value};

/// Deepest nesting walked when scanning argument strings.
const ARG_DEPTH_MAX: usize = 32;

/// Checked arguments, ready for Cedar.
pub(crate) struct TypedArgs {
    pub(crate) cedar: Vec<(String, RestrictedExpression)>,
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
    for arg in &action.args {
        let Some(value) = args.get(&arg.name) else {
            if arg.required {
                return Err(format!("missing required argument `{}`", arg.name));
            }
            continue;
        };
        let expression = match (arg.arg_type, value) {
            (ArgType::String, Value::String(text)) => {
                if let Some(max_bytes) = arg.max_bytes {
                    if text.len() as u64 > max_bytes {
                        return Err(format!(
                            "argument `{}` is {} bytes; the limit is {max_bytes}",
                            arg.name,
                            text.len()
                        ));
                    }
                }
                if let Some(allowed) = &arg.allowed {
                    if !allowed.iter().any(|candidate| candidate == text) {
                        return Err(format!(
                            "argument `{}` is `{text}`, which is not one of {}",
                            arg.name,
                            allowed
                                .iter()
                                .map(|candidate| format!("`{candidate}`"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ));
                    }
                }
                RestrictedExpression::new_string(text.clone())
            }
            (ArgType::Long, Value::Number(number)) => {
                let Some(long) = number.as_i64() else {
                    return Err(format!(
                        "argument `{}` must be a whole number, got `{number}`",
                        arg.name
                    ));
                };
                if let Some(min) = arg.min {
                    if long < min {
                        return Err(format!(
                            "argument `{}` is {long}; the minimum is {min}",
                            arg.name
                        ));
                    }
                }
                if let Some(max) = arg.max {
                    if long > max {
                        return Err(format!(
                            "argument `{}` is {long}; the maximum is {max}",
                            arg.name
                        ));
                    }
                }
                RestrictedExpression::new_long(long)
            }
            (ArgType::Bool, Value::Bool(flag)) => RestrictedExpression::new_bool(*flag),
            (ArgType::SetString, Value::Array(items)) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    let Value::String(text) = item else {
                        return Err(format!("argument `{}` must be a list of strings", arg.name));
                    };
                    out.push(RestrictedExpression::new_string(text.clone()));
                }
                RestrictedExpression::new_set(out)
            }
            (ArgType::SetLong, Value::Array(items)) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    let Some(long) = item.as_i64() else {
                        return Err(format!(
                            "argument `{}` must be a list of whole numbers",
                            arg.name
                        ));
                    };
                    out.push(RestrictedExpression::new_long(long));
                }
                RestrictedExpression::new_set(out)
            }
            (arg_type, other) => {
                return Err(format!(
                    "argument `{}` must be {}, got {}",
                    arg.name,
                    type_name(arg_type),
                    json_kind(other)
                ))
            }
        };
        cedar.push((arg.name.clone(), expression));
    }
    Ok(TypedArgs { cedar })
}

fn type_name(arg_type: ArgType) -> &'static str {
    match arg_type {
        ArgType::String => "a string",
        ArgType::Long => "a whole number",
        ArgType::Bool => "true or false",
        ArgType::SetString => "a list of strings",
        ArgType::SetLong => "a list of whole numbers",
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
    if depth > ARG_DEPTH_MAX {
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
        if depth > ARG_DEPTH_MAX {
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
