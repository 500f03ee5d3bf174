//! Who may do what: authentication, the permission model, a rolled secret's limits, what an
//! attacker sees, the caps on every request, faults.

mod attacker_view;
mod auth;
pub mod bounds;
pub mod faults;
pub mod leaks;
mod permissions;
mod takeover;
