//! What runs in Lambda and around it: the template, the function binary under a Runtime API,
//! settings, the CLI and smoke check, the console, the custom resources, retention.

mod api_key_resource;
mod cli;
mod console;
pub mod deploy;
mod events;
mod retention;
mod runtime;
mod settings;
mod smoke;
