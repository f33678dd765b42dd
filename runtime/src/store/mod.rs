//! Storage helpers.
