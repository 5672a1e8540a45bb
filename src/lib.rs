//! iamfs: an AWS account's IAM as a filesystem.

pub mod busy_poll;
pub mod cache;
pub mod cli;
pub mod credentials;
pub mod document;
pub mod error;
pub mod errors;
pub mod fuse;
pub mod iam;
pub mod kernel;
pub mod model;
pub mod mountpoint;
pub mod namespace;
pub mod node;
pub mod policy;
pub mod requests;
pub mod scratch;
pub mod vfs;
