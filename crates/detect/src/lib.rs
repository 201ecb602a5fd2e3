//! Detectors: text -> findings (canaries, prompt injection, authority claims).
