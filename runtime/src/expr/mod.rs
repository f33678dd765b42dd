//! Expressions (filled in below).
