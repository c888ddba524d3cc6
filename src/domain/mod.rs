//! Pure types and rules: no I/O, no framework types. Everything here can be tested with
//! plain unit tests, and the rest of the service trusts a value once it has one of these types.

pub mod audit;
pub mod ballot;
pub mod campaign;
pub mod import;
pub mod keyed;
pub mod phone;
pub mod pow;
pub mod rate;
pub mod rating;
pub mod record;
pub mod results;
pub mod review;
pub mod risk;
pub mod score;
pub mod staff;
pub mod token;
