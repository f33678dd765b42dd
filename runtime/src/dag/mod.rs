//! DAG.
