//! The autodiff side of [`ConvPoolOps`]: on `Autodiff<B>` its operations are nodes of
//! burn's graph whose backward calls the inner backend's [`ConvPoolGrads`].

use super::ops::{ConvGeometry, ConvPoolGrads, ConvPoolOps, FusedBackward, FusedBlock};
use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::{Autodiff, Backend, TensorMetadata, tensor::FloatTensor};

/// The convolution's node: its input and weight (checkpointed) and sizes.
#[derive(Debug, Clone)]
struct ConvState {
    x: NodeId,
    weight: NodeId,
    x_shape: [usize; 4],
    kernel: [usize; 2],
    geometry: ConvGeometry,
}

#[derive(Debug)]
struct Conv2dBackward;

impl<B: ConvPoolGrads> Backward<B, 3> for Conv2dBackward {
    type State = ConvState;

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
        if let Some(node) = node_x {
            let gx = B::conv2d_with_bias_x_grad(weight, grad.clone(), s.x_shape, s.geometry);
            grads.register::<B>(node.id, gx);
        }
        if node_w.is_some() || node_b.is_some() {
            let (gw, gb) = B::conv2d_with_bias_wb_grad(x, grad, s.kernel, s.geometry);
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

impl<B: ConvPoolGrads> Backward<B, 1> for MaxPoolTiledBackward {
    /// The input's shape, the winners and the window.
    type State = ([usize; 4], B::IntTensorPrimitive, [usize; 2]);

    fn backward(
        self,
        ops: Ops<Self::State, 1>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        let [node_x] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (x_shape, winners, window) = ops.state;
        if let Some(node) = node_x {
            let gx = B::max_pool2d_tiled_x_grad(x_shape, grad, winners, window);
            grads.register::<B>(node.id, gx);
        }
    }
}

#[derive(Debug)]
struct Conv2dPoolBackward;

/// What the fused block's backward needs: the input and weight (checkpointed), the output
/// (ReLU's mask), the pooling winners, and the block.
#[derive(Debug, Clone)]
struct PoolState<B: Backend> {
    x: NodeId,
    weight: NodeId,
    output: B::FloatTensorPrimitive,
    winners: B::IntTensorPrimitive,
    block: FusedBlock,
}

impl<B: ConvPoolGrads> Backward<B, 3> for Conv2dPoolBackward {
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
        let g = B::conv2d_max_pool_grads(FusedBackward {
            x: checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(s.x),
            weight: checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(s.weight),
            relu_output: s.block.relu.then_some(s.output),
            winners: s.winners,
            grad,
            block: s.block,
            input_grad: node_x.is_some(),
        });
        if let (Some(node), Some(gx)) = (node_x, g.x) {
            grads.register::<B>(node.id, gx);
        }
        if let Some(node) = node_w {
            grads.register::<B>(node.id, g.weight);
        }
        if let Some(node) = node_b {
            grads.register::<B>(node.id, g.bias);
        }
    }
}

#[derive(Debug)]
struct DenseBackward;

impl<B: ConvPoolGrads> Backward<B, 3> for DenseBackward {
    /// The input and the weight (checkpointed).
    type State = (NodeId, NodeId);

    fn backward(
        self,
        ops: Ops<Self::State, 3>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_x, node_w, node_b] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (x, weight) = ops.state;
        if let Some(node) = node_x {
            let weight = checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(weight);
            grads.register::<B>(node.id, B::dense_x_grad(weight, grad.clone()));
        }
        if node_w.is_some() || node_b.is_some() {
            let x = checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(x);
            let (gw, gb) = B::dense_wb_grad(x, grad);
            if let Some(node) = node_w {
                grads.register::<B>(node.id, gw);
            }
            if let Some(node) = node_b {
                grads.register::<B>(node.id, gb);
            }
        }
    }
}

impl<B: ConvPoolOps + ConvPoolGrads, C: CheckpointStrategy> ConvPoolOps for Autodiff<B, C> {
    fn dense(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        match DenseBackward
            .prepare::<C>([x.node(), weight.node(), bias.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let state = (prep.checkpoint(&x), prep.checkpoint(&weight));
                let out = B::dense(
                    x.into_primitive(),
                    weight.into_primitive(),
                    bias.into_primitive(),
                );
                prep.finish(state, out)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::dense(
                x.into_primitive(),
                weight.into_primitive(),
                bias.into_primitive(),
            )),
        }
    }

    fn conv2d_with_bias(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        geometry: ConvGeometry,
    ) -> FloatTensor<Self> {
        let x_shape: [usize; 4] = x.shape().dims();
        let w_shape: [usize; 4] = weight.shape().dims();
        match Conv2dBackward
            .prepare::<C>([x.node(), weight.node(), bias.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let state = ConvState {
                    x: prep.checkpoint(&x),
                    weight: prep.checkpoint(&weight),
                    x_shape,
                    kernel: [w_shape[2], w_shape[3]],
                    geometry,
                };
                let out = B::conv2d_with_bias(
                    x.into_primitive(),
                    weight.into_primitive(),
                    bias.into_primitive(),
                    geometry,
                );
                prep.finish(state, out)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::conv2d_with_bias(
                x.into_primitive(),
                weight.into_primitive(),
                bias.into_primitive(),
                geometry,
            )),
        }
    }

    fn conv2d_max_pool(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        block: FusedBlock,
    ) -> FloatTensor<Self> {
        match Conv2dPoolBackward
            .prepare::<C>([x.node(), weight.node(), bias.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let x_state = prep.checkpoint(&x);
                let w_state = prep.checkpoint(&weight);
                let (out, winners) = B::conv2d_max_pool_with_winners(
                    x.into_primitive(),
                    weight.into_primitive(),
                    bias.into_primitive(),
                    block,
                );
                let state = PoolState::<B> {
                    x: x_state,
                    weight: w_state,
                    output: out.clone(),
                    winners,
                    block,
                };
                prep.finish(state, out)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::conv2d_max_pool(
                x.into_primitive(),
                weight.into_primitive(),
                bias.into_primitive(),
                block,
            )),
        }
    }

    fn max_pool2d_tiled(x: FloatTensor<Self>, window: [usize; 2]) -> FloatTensor<Self> {
        match MaxPoolTiledBackward
            .prepare::<C>([x.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let x_shape: [usize; 4] = x.shape().dims();
                let (out, winners) = B::max_pool2d_tiled_with_winners(x.into_primitive(), window);
                prep.finish((x_shape, winners, window), out)
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(B::max_pool2d_tiled(x.into_primitive(), window))
            }
        }
    }
}
