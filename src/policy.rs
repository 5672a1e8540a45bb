//! Local checks of documents and names before any IAM call.
//! (Being written: see the helper's task.)
