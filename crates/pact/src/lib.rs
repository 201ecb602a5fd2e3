//! The pact language: YAML or JSON source -> checked pact, with Cedar schema and policies.
