//! iamfs: an AWS account's IAM as a filesystem.

pub mod cache;
pub mod cli;
pub mod credentials;
pub mod document;
pub mod error;
pub mod error_log;
pub mod fuse;
pub mod iam;
pub mod kernel;
pub mod kernel_requests;
pub mod keyed;
pub mod manpage;
pub mod model;
pub mod mount_options;
pub mod mountpoint;
pub mod namespace;
pub mod node;
pub mod platform;
pub mod policy;
pub mod scratch;
pub mod session;
pub mod status_cmd;
pub mod vfs;
