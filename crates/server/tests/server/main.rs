//! The server's one integration-test binary: the API through its router (`api`), trials from
//! the server against a real local agent (`trials`), one end-to-end scenario per failure
//! pattern (`scenarios`), and what an MCP gateway asks of the server (`gateway`).

mod agent;
mod api;
mod gateway;
mod http;
mod scenarios;
mod trials;
