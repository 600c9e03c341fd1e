//! Consumer groups: assignment, rebalances, commits, lag, churn and crashes.

#[path = "../common/mod.rs"]
mod common;

mod assignment;
mod churn;
mod commits;
mod crash;
mod fast_path;
mod lag;
mod rebalance;
mod wait_for_assignment;
