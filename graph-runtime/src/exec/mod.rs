//! Executors: `eager` runs node by node through Candle.

pub mod eager;
