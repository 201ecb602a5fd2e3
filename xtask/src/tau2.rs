//! `cargo xtask tau2-cases`: turns the tau2-bench retail tasks into test cases for the pact written
//! from the same policy.
//!
//! Every action in every task's `evaluation_criteria.actions` becomes one case, in order, with the
//! task as its session and `allow` as the expected decision: the pact must replay what the
//! benchmark counts as correct with zero false denials. The hand-written cases of
//! `examples/tau2-retail/policy-cases.yaml` (what the policy forbids) follow them.
//!
//! The generator checks each call against the pact's catalog before writing it (the action exists,
//! every argument is declared with the right type, enums hold, nothing required is missing), so a
//! catalog that drifts from the tasks fails here with a message rather than as a wall of failing
//! cases. Each replay names the one unconditional permit of its action as the deciding rule.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{bail, Context as _};
use pact::syntax::ArgType;
use pact::{Effect, Pact};
use serde_json::Value;

const TASKS_PATH: &str = "testdata/tau2-retail/tasks.json";
const PACT_PATH: &str = "examples/tau2-retail/pact.yaml";
const POLICY_CASES_PATH: &str = "examples/tau2-retail/policy-cases.yaml";
const CASES_PATH: &str = "examples/tau2-retail/cases.yaml";

/// Regenerates `examples/tau2-retail/cases.yaml` under the workspace root `root`.
pub fn write_cases(root: &Path) -> anyhow::Result<()> {
    let cases = render_cases(root)?;
    let path = root.join(CASES_PATH);
    std::fs::write(&path, cases.text).with_context(|| format!("writing `{}`", path.display()))?;
    println!(
        "wrote {CASES_PATH}: {} replayed actions from {} tasks ({} without actions), {} policy cases",
        cases.n_replays, cases.n_tasks, cases.n_tasks_empty, cases.n_policy_cases
    );
    Ok(())
}

/// The generated file and what went into it.
pub struct Cases {
    pub text: String,
    pub n_tasks: usize,
    pub n_tasks_empty: usize,
    pub n_replays: usize,
    pub n_policy_cases: usize,
}

/// Builds the cases file from the files under `root`, without writing it.
pub fn render_cases(root: &Path) -> anyhow::Result<Cases> {
    let read = |relative: &str| {
        std::fs::read_to_string(root.join(relative))
            .with_context(|| format!("reading `{relative}`"))
    };
    let tasks: Value = serde_json::from_str(&read(TASKS_PATH)?)
        .with_context(|| format!("`{TASKS_PATH}` is not JSON"))?;
    let pact_text = read(PACT_PATH)?;
    let checked = pact::check(&pact_text);
    let Some(pact) = checked.pact else {
        let problems: Vec<String> = checked
            .diagnostics
            .iter()
            .map(|diagnostic| diagnostic.render(PACT_PATH))
            .collect();
        bail!("the pact does not check:\n{}", problems.join("\n"));
    };
    let policy_cases = read(POLICY_CASES_PATH)?;
    render(&tasks, &pact, &policy_cases)
}

fn render(tasks: &Value, pact: &Pact, policy_cases: &str) -> anyhow::Result<Cases> {
    let tasks = tasks.as_array().context("tasks.json is a list of tasks")?;
    let mut body = String::new();
    let mut n_replays = 0;
    let mut empty_task_ids = Vec::new();
    for task in tasks {
        let task_id = match task.get("id") {
            Some(Value::String(id)) => id.clone(),
            Some(Value::Number(id)) => id.to_string(),
            _ => bail!("a task without an `id`"),
        };
        let actions = task
            .pointer("/evaluation_criteria/actions")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        if actions.is_empty() {
            empty_task_ids.push(task_id);
            continue;
        }
        for (call_idx, call) in actions.iter().enumerate() {
            let name = call
                .get("name")
                .and_then(Value::as_str)
                .with_context(|| format!("task {task_id}: an action without a `name`"))?;
            let args = call
                .get("arguments")
                .cloned()
                .unwrap_or_else(|| Value::Object(Default::default()));
            let call_label = format!("task {task_id}, call {}: `{name}`", call_idx + 1);
            check_call(pact, name, &args).with_context(|| call_label.clone())?;
            let permit = deciding_permit(pact, name).with_context(|| call_label.clone())?;
            let request = serde_json::json!({
                "action": name,
                "args": args,
                "session": format!("task-{task_id}"),
            });
            writeln!(
                body,
                "  - name: {}",
                flow(&Value::String(format!(
                    "task {task_id}, call {} of {}: {name}",
                    call_idx + 1,
                    actions.len()
                )))
            )?;
            writeln!(body, "    request: {}", flow(&request))?;
            writeln!(body, "    expect: allow")?;
            writeln!(body, "    rules: [{}]", flow(&Value::String(permit)))?;
            n_replays += 1;
        }
    }
    let (policy_body, n_policy_cases) = policy_case_items(policy_cases)?;

    let mut text = String::new();
    writeln!(
        text,
        "# GENERATED by `cargo xtask tau2-cases`; do not edit. Edit {POLICY_CASES_PATH} or the\n\
         # generator (xtask/src/tau2.rs) and regenerate.\n\
         #\n\
         # Run: pactum pact test {PACT_PATH} {CASES_PATH}\n\
         #\n\
         # 1. Replays ({n_replays} cases): every action of every task in {TASKS_PATH}\n\
         #    (`evaluation_criteria.actions`, tau2-bench @ a2c02472), in order, one session per task.\n\
         #    The benchmark counts these calls as correct, so each must be allowed. Tasks {} list no\n\
         #    actions. Many tasks list only the calls that change the database, without the lookups\n\
         #    before them; see README.md for what that means for the pact.\n\
         # 2. Policy cases ({n_policy_cases} cases, copied from {POLICY_CASES_PATH}): what the policy\n\
         #    forbids, and the allowed calls around them that set up the guard's counters.",
        empty_task_ids.join(" and ")
    )?;
    text.push_str("cases:\n");
    text.push_str(&body);
    text.push_str(&policy_body);
    Ok(Cases {
        text,
        n_tasks: tasks.len(),
        n_tasks_empty: empty_task_ids.len(),
        n_replays,
        n_policy_cases,
    })
}

/// Checks one call against the catalog as the guard would: known action, declared arguments of the
/// declared types, enums, bounds and byte limits, required arguments present.
fn check_call(pact: &Pact, name: &str, args: &Value) -> anyhow::Result<()> {
    let Some(action) = pact.action(name) else {
        bail!("the pact has no action `{name}`");
    };
    let Some(args) = args.as_object() else {
        bail!("`arguments` is not a map");
    };
    for (arg_name, value) in args {
        let Some(arg) = action.arg(arg_name) else {
            bail!("argument `{arg_name}` is not declared in the pact");
        };
        let type_ok = match arg.arg_type {
            ArgType::String => value.is_string(),
            ArgType::Long => value.is_i64(),
            ArgType::Bool => value.is_boolean(),
            ArgType::SetString => value
                .as_array()
                .is_some_and(|items| items.iter().all(Value::is_string)),
            ArgType::SetLong => value
                .as_array()
                .is_some_and(|items| items.iter().all(Value::is_i64)),
        };
        if !type_ok {
            bail!("argument `{arg_name}` is {value}, not a {:?}", arg.arg_type);
        }
        if let (Some(allowed), Some(text)) = (&arg.allowed, value.as_str()) {
            if !allowed.iter().any(|candidate| candidate == text) {
                bail!("argument `{arg_name}` is `{text}`, not one of {allowed:?}");
            }
        }
        if let Some(number) = value.as_i64() {
            if arg.min.is_some_and(|min| number < min) || arg.max.is_some_and(|max| number > max) {
                bail!("argument `{arg_name}` is {number}, outside its bounds");
            }
        }
        if let (Some(max_bytes), Some(text)) = (arg.max_bytes, value.as_str()) {
            if text.len() as u64 > max_bytes {
                bail!(
                    "argument `{arg_name}` is {} bytes, over its max_bytes of {max_bytes}",
                    text.len()
                );
            }
        }
    }
    for arg in &action.args {
        if arg.required && !args.contains_key(&arg.name) {
            bail!("required argument `{}` is missing", arg.name);
        }
    }
    Ok(())
}

/// The id of the one unconditional permit of `name`: the rule a replayed call is allowed by.
fn deciding_permit(pact: &Pact, name: &str) -> anyhow::Result<String> {
    let Some(action_idx) = pact.action_idx(name) else {
        bail!("the pact has no action `{name}`");
    };
    let permits: Vec<(usize, &pact::Rule)> = pact
        .rules()
        .iter()
        .enumerate()
        .filter(|(_, rule)| rule.effect == Effect::Permit && rule.action_idxs.contains(&action_idx))
        .collect();
    let [(rule_idx, rule)] = permits.as_slice() else {
        bail!(
            "`{name}` has {} permits; the generator expects exactly one",
            permits.len()
        );
    };
    let conditional = pact.doc().rules.get(*rule_idx).is_some_and(|rule_doc| {
        rule_doc.when.is_some() || rule_doc.unless.is_some() || rule_doc.review_when.is_some()
    });
    if conditional || rule.require_approval || rule.require_authority.is_some() {
        bail!(
            "permit `{}` of `{name}` has conditions or requirements; the generator cannot tell \
             which rules decide a replay",
            rule.id
        );
    }
    Ok(rule.id.clone())
}

/// The list items of a hand-written cases file: everything after its `cases:` line, which must
/// be indented by two spaces like the generated items. Returns them and how many there are.
fn policy_case_items(text: &str) -> anyhow::Result<(String, usize)> {
    let mut lines = text.lines();
    if !lines.by_ref().any(|line| line.trim_end() == "cases:") {
        bail!("`{POLICY_CASES_PATH}` has no top-level `cases:` line");
    }
    let mut out = String::new();
    let mut n_cases = 0;
    for line in lines {
        if !line.is_empty() && !line.starts_with("  ") && !line.starts_with('#') {
            bail!("`{POLICY_CASES_PATH}`: after `cases:`, every line is indented by two spaces, found `{line}`");
        }
        if line.starts_with("  - ") {
            n_cases += 1;
        }
        out.push_str(line);
        out.push('\n');
    }
    Ok((out, n_cases))
}

/// A JSON value as a YAML flow node. JSON is YAML 1.2; the spaces after `:` and `,` keep it
/// readable and safe for YAML parsers that want them.
fn flow(value: &Value) -> String {
    match value {
        Value::Object(entries) => {
            let items: Vec<String> = entries
                .iter()
                .map(|(key, item)| format!("{}: {}", Value::String(key.clone()), flow(item)))
                .collect();
            format!("{{{}}}", items.join(", "))
        }
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(flow).collect();
            format!("[{}]", items.join(", "))
        }
        scalar => scalar.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn root() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default()
    }

    #[test]
    fn committed_cases_are_current() {
        let cases = render_cases(&root()).unwrap();
        let committed = std::fs::read_to_string(root().join(CASES_PATH)).unwrap();
        assert!(
            cases.text == committed,
            "{CASES_PATH} is stale: run `cargo xtask tau2-cases`"
        );
    }

    #[test]
    fn every_task_action_is_replayed() {
        let cases = render_cases(&root()).unwrap();
        assert_eq!(cases.n_tasks, 114);
        assert_eq!(cases.n_replays, 550);
        assert_eq!(cases.n_tasks_empty, 2);
        assert!(cases.n_policy_cases > 0);
    }

    #[test]
    fn flow_is_json_with_spaces() {
        let value = serde_json::json!({"a": "x: \"y\"", "b": [1, "#W1"], "c": {}});
        assert_eq!(
            flow(&value),
            r##"{"a": "x: \"y\"", "b": [1, "#W1"], "c": {}}"##
        );
    }
}
