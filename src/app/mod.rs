//! The application on top of the core (Cargo feature `mnist`): data, training, prediction,
//! pictures of the network, the web server and atomic file I/O.
pub mod data;
pub mod explain;
pub mod fsio;
pub mod interop;
pub mod predict;
pub mod serve;
pub mod session;
pub mod train;
