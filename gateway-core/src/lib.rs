//! Airlock's gateway core: everything between an authenticated tool call and its recorded, masked result.
//!
//! Read [`pipeline`] first: one function takes a call through authenticate → classify → decide → hold →
//! execute → mask → record, each step a call into its own module.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

pub mod admin;
pub mod approval;
pub mod audit;
pub mod classify;
pub mod config;
pub mod connector;
pub mod error;
pub mod evidence;
pub mod identity;
pub mod links;
pub mod mask;
pub mod metrics;
pub mod oidc;
pub mod pipeline;
pub mod policy;
pub mod record;
pub mod retention;
pub mod search;
pub mod store;
pub mod vault;

pub use error::{Error, Result};
