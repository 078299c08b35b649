//! Functions on tensors, no parameters: activations, probabilities, losses and the shape
//! arithmetic of sliding windows.
pub mod activation;
pub mod loss;
pub mod pool;
pub mod prob;
pub mod window;
