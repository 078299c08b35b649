//! The autodiff side of [`ConvPoolOps`]: on `Autodiff<B>` the two forward operations become
//! nodes of burn's graph whose backward calls the inner backend's gradient kernels.

use super::ConvPoolOps;
use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::{Autodiff, Backend, TensorMetadata, tensor::FloatTensor};

#[derive(Debug)]
struct Conv2dIm2colBackward;

type State = (
    NodeId,
    NodeId,
    [usize; 4],
    [usize; 2],
    [usize; 2],
    [usize; 2],
);

impl<B: Backend + ConvPoolOps> Backward<B, 3> for Conv2dIm2colBackward {
    type State = State;

    fn backward(
        self,
        ops: Ops<Self::State, 3>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_x, node_w, node_b] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (x_state, w_state, x_shape, kernel, stride, padding) = ops.state;
        let x = checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(x_state);
        let weight = checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(w_state);
        if let Some(node) = node_x {
            let gx = B::conv2d_im2col_x_grad(weight, grad.clone(), x_shape, stride, padding);
            grads.register::<B>(node.id, gx);
        }
        if node_w.is_some() || node_b.is_some() {
            let (gw, gb) = B::conv2d_im2col_wb_grad(x, grad, kernel, stride, padding);
            if let Some(node) = node_w {
                grads.register::<B>(node.id, gw);
            }
            if let Some(node) = node_b {
                grads.register::<B>(node.id, gb);
            }
        }
    }
}

#[derive(Debug)]
struct MaxPoolTiledBackward;

impl<B: Backend + ConvPoolOps> Backward<B, 1> for MaxPoolTiledBackward {
    type State = (NodeId, B::IntTensorPrimitive, [usize; 2]);

    fn backward(
        self,
        ops: Ops<Self::State, 1>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_x] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (x_state, indices, kernel) = ops.state;
        let x = checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(x_state);
        if let Some(node) = node_x {
            let gx = B::max_pool2d_tiled_x_grad(x, grad, indices, kernel);
            grads.register::<B>(node.id, gx);
        }
    }
}

#[derive(Debug)]
struct Conv2dPoolBackward;

/// What the fused block's backward needs: the input and weight (checkpointed), the output
/// (ReLU's mask), the pooling winners, and the sizes.
#[derive(Debug, Clone)]
struct PoolState<B: Backend> {
    x: NodeId,
    weight: NodeId,
    output: B::FloatTensorPrimitive,
    indices: B::IntTensorPrimitive,
    stride: [usize; 2],
    padding: [usize; 2],
    pool: [usize; 2],
    relu: bool,
}

impl<B: Backend + ConvPoolOps> Backward<B, 3> for Conv2dPoolBackward {
    type State = PoolState<B>;

    fn backward(
        self,
        ops: Ops<Self::State, 3>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_x, node_w, node_b] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let s = ops.state;
        let x = checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(s.x);
        let weight = checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(s.weight);
        let (gx, gw, gb) = B::conv2d_pool_im2col_grads(
            x,
            weight,
            s.output,
            grad,
            s.indices,
            s.stride,
            s.padding,
            s.pool,
            s.relu,
            node_x.is_some(),
        );
        if let (Some(node), Some(gx)) = (node_x, gx) {
            grads.register::<B>(node.id, gx);
        }
        if let Some(node) = node_w {
            grads.register::<B>(node.id, gw);
        }
        if let Some(node) = node_b {
            grads.register::<B>(node.id, gb);
        }
    }
}

impl<B: Backend + ConvPoolOps, C: CheckpointStrategy> ConvPoolOps for Autodiff<B, C> {
    fn max_pool2d_tiled(x: FloatTensor<Self>, kernel: [usize; 2]) -> FloatTensor<Self> {
        match MaxPoolTiledBackward
            .prepare::<C>([x.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let x_state = prep.checkpoint(&x);
                let (out, indices) = B::max_pool2d_tiled_with_argmax(x.into_primitive(), kernel);
                prep.finish((x_state, indices, kernel), out)
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(B::max_pool2d_tiled(x.into_primitive(), kernel))
            }
        }
    }

    fn conv2d_pool_im2col(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        stride: [usize; 2],
        padding: [usize; 2],
        pool: [usize; 2],
        relu: bool,
    ) -> FloatTensor<Self> {
        match Conv2dPoolBackward
            .prepare::<C>([x.node(), weight.node(), bias.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let x_state = prep.checkpoint(&x);
                let w_state = prep.checkpoint(&weight);
                let (out, indices) = B::conv2d_pool_im2col_with_argmax(
                    x.into_primitive(),
                    weight.into_primitive(),
                    bias.into_primitive(),
                    stride,
                    padding,
                    pool,
                    relu,
                );
                let state = PoolState::<B> {
                    x: x_state,
                    weight: w_state,
                    output: out.clone(),
                    indices,
                    stride,
                    padding,
                    pool,
                    relu,
                };
                prep.finish(state, out)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::conv2d_pool_im2col(
                x.into_primitive(),
                weight.into_primitive(),
                bias.into_primitive(),
                stride,
                padding,
                pool,
                relu,
            )),
        }
    }

    fn conv2d_im2col(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        stride: [usize; 2],
        padding: [usize; 2],
    ) -> FloatTensor<Self> {
        let x_shape: [usize; 4] = x.shape().dims();
        let w_shape: [usize; 4] = weight.shape().dims();
        let kernel = [w_shape[2], w_shape[3]];
        match Conv2dIm2colBackward
            .prepare::<C>([x.node(), weight.node(), bias.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let x_state = prep.checkpoint(&x);
                let w_state = prep.checkpoint(&weight);
                let out = B::conv2d_im2col(
                    x.into_primitive(),
                    weight.into_primitive(),
                    bias.into_primitive(),
                    stride,
                    padding,
                );
                prep.finish((x_state, w_state, x_shape, kernel, stride, padding), out)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::conv2d_im2col(
                x.into_primitive(),
                weight.into_primitive(),
                bias.into_primitive(),
                stride,
                padding,
            )),
        }
    }
}
