//! The application on top of the core (Cargo feature `app`; `mnist` is an alias): the `netcalc`
//! command ([`cli`]), data, training (on one process or, over MPI, on several: [`distributed`]), prediction, pictures of the network, PyTorch interop, the
//! web server and atomic file I/O.
pub mod cli;
pub mod data;
pub mod distributed;
pub mod explain;
pub mod fsio;
pub mod images;
pub mod interop;
pub mod onnx;
pub mod predict;
pub mod serve;
pub mod session;
pub mod train;
