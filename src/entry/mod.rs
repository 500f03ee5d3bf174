//! Entry points, every way into the service in one place: the HTTP handlers with their route
//! table (`http`), the Lambda runners that serve them one function per route, all from one binary
//! that `FUNCTION` points at its route, the stream or a custom resource (`lambda`), the local
//! server that serves them all on one port (`local`), the TTL stream consumer (`stream`), the
//! lifecycle events' publisher on the same stream (`events`), the usage aggregator on verify's
//! log lines (`usage_aggregator`; `local_usage` in the local server), the
//! CloudFormation custom resources (`root_key_resource`, and `api_key_resource` for other
//! stacks' keys, on the protocol of `custom_resource`), the operator CLI (`cli`) and its HTTP
//! check of a served API (`smoke`). `config` builds what they share from the settings read
//! once at start-up.

pub mod api_key_resource;
pub mod cli;
pub mod config;
pub mod custom_resource;
pub mod events;
pub mod http;
pub mod lambda;
pub mod local;
pub mod local_usage;
pub mod root_key_resource;
pub mod smoke;
pub mod stream;
pub mod usage_aggregator;
