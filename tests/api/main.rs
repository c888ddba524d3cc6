//! Black-box tests over HTTP against the real application, on both deployments.

mod helpers;

mod audit_chain;
pub mod ballots;
mod blocks;
mod browser;
mod campaign_admin;
mod campaigns_read;
mod challenge;
mod citizen_auth;
mod counters;
mod durability;
mod errors;
mod health;
mod limits;
mod process;
mod ratings;
mod recovery;
pub mod results;
mod review;
mod risk;
mod sms_gateways;
mod staff_auth;
mod surveys;
