//! A realistic benchmark workload: a 100-rule pact with 1,000 canaries and a mix of requests
//! that are allowed, denied by a forbid, denied by default and sent to review. Shared by
//! `pactum bench guard` and the criterion benchmark so both time the same thing.

use serde_json::json;

use crate::Request;

/// Number of actions in the fixture pact; each has two rules (a permit and a forbid).
pub const FIXTURE_ACTIONS: usize = 50;
/// Canaries in the fixture pact.
pub const FIXTURE_CANARIES: usize = 1_000;

/// The fixture pact's source: 50 actions, 100 rules, 2 counters, 1,000 canaries.
pub fn pact_text() -> String {
    let mut text =
        String::from("pact: bench-agent\nversion: 1\nagent: bench/agent\ntier: high\nactions:\n");
    for idx in 0..FIXTURE_ACTIONS {
        text.push_str(&format!(
            "  tool_{idx}:\n    reversibility: {}\n    category: cat_{}\n    args:\n      customer_id: string\n      amount_cents: long\n      note: {{ type: string, required: false, max_bytes: 4096 }}\n      channel: {{ type: string, required: false, enum: [email, chat, phone] }}\n",
            if idx % 3 == 0 { "irreversible" } else { "reversible" },
            idx % 7
        ));
    }
    text.push_str("rules:\n");
    for idx in 0..FIXTURE_ACTIONS {
        let require = if idx % 3 == 0 {
            ", require_approval: true"
        } else {
            ""
        };
        text.push_str(&format!(
            "  - {{ id: permit-{idx}, permit: tool_{idx}, when: \"context.args.amount_cents <= {} && context.counters.spend_24h <= 1000000000\"{require} }}\n",
            10_000 + idx * 100
        ));
        text.push_str(&format!(
            "  - {{ id: forbid-{idx}, forbid: tool_{idx}, when: \"context.args has channel && context.args.channel == \\\"phone\\\" && context.args.amount_cents > 500\" }}\n"
        ));
    }
    text.push_str("counters:\n  spend_24h: { sum: amount_cents, of: \"*\", window: 24h }\n  calls_1m: { count: calls, of: \"*\", window: 1m }\ncanaries:\n");
    for idx in 0..FIXTURE_CANARIES {
        text.push_str(&format!(
            "  - pct-canary-{:016x}\n",
            (idx as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15)
        ));
    }
    text
}

/// A repeating mix of requests: about half allowed, the rest denied or sent to review.
pub fn requests() -> Vec<Request> {
    let mut out = Vec::new();
    for idx in 0..FIXTURE_ACTIONS {
        let action = format!("tool_{idx}");
        let args = [
            json!({"customer_id": format!("cus_{idx:06}"), "amount_cents": 1_250, "note": "Customer reports the blender arrived with a cracked jar; photos attached in ticket 48213.", "channel": "email"}),
            json!({"customer_id": format!("cus_{idx:06}"), "amount_cents": 900, "channel": "phone"}),
            json!({"customer_id": format!("cus_{idx:06}"), "amount_cents": 250_000}),
            json!({"customer_id": format!("cus_{idx:06}"), "amount_cents": 300, "note": "Follow-up on order #W2378156: replacement shipped via UPS 1Z999AA10123456784."}),
        ];
        for args in args {
            out.push(Request {
                agent: None,
                action: action.clone(),
                args: args.as_object().cloned().unwrap_or_default(),
                session: format!("session-{}", idx % 17),
                ..Request::default()
            });
        }
    }
    out
}
