//! The server's one integration-test binary: the API through its router (`api`), trials from
//! the server against a real local agent (`trials`), and one end-to-end scenario per failure
//! pattern (`scenarios`).

mod agent;
mod api;
mod http;
mod scenarios;
mod trials;
