//! Backends: where observations come from and where actions go. Each implements
//! [`Observer`](crate::observe::Observer) and [`Actuator`](crate::act::Actuator).

pub mod kubernetes;
pub mod sim;
