//! Identities: their CRUD, the uniqueness of `externalId`, keys that name one, an identity's
//! key list, the delete guard, permissions and refused input.

mod crud;
mod keys;
