//! Priority factors of pending jobs (`sprio`): what the multifactor plugin weighs.

/// One pending job's weighted priority factors, as `sprio` prints them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobPriority {
    pub job_id: u64,
    pub partition: super::name::Name,
    pub user: super::name::Name,
    pub priority: f64,
    pub age: f64,
    pub fairshare: f64,
    pub job_size: f64,
    pub partition_factor: f64,
    pub qos: f64,
    /// Sum of the weighted TRES factors (`cpu=62,mem=31` -> 93).
    pub tres: f64,
}
