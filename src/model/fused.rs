//! Passes run with oneDNN's fused convolutions (see [`super::onednn`]): the evaluation pass
//! and the BN pass, on a CPU, for the zoo's convolutional networks. A pass is a stretch of
//! forward passes in one mode over which the weights do not change, so each convolution
//! reorders its weights (with eval mode's BN folded in) once, at its first batch, and keeps
//! them until the pass ends; the activations run channels-last throughout.

use super::Mode;
use super::onednn::{self, Geometry};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use tch::{Device, Kind, Tensor};

/// Shared by a model and its convolutions: which pass, if any, is running.
#[derive(Debug, Default)]
pub struct FusedPass {
    /// The running pass's number (0: none), so that weights packed for an earlier pass are
    /// never used again.
    generation: Cell<u64>,
    passes: Cell<u64>,
    mode: Cell<Option<Mode>>,
    /// Inside one of the pass's forward passes (a forward in another mode never is).
    forward: Cell<bool>,
    packs: Cell<usize>,
}

impl FusedPass {
    /// Starts a pass of `mode` forwards, which ends when the guard drops (a panic included)
    /// and gives back whatever pass ran before it.
    pub fn begin(&self, mode: Mode) -> PassGuard<'_> {
        let previous = (self.generation.get(), self.mode.get(), self.forward.get());
        self.passes.set(self.passes.get() + 1);
        self.generation.set(self.passes.get());
        self.mode.set(Some(mode));
        self.forward.set(false);
        PassGuard {
            pass: self,
            previous,
        }
    }

    /// Weights packed so far, over every pass.
    pub fn packs(&self) -> usize {
        self.packs.get()
    }

    /// Whether a forward in `mode` belongs to the running pass.
    pub fn runs(&self, mode: Mode) -> bool {
        self.mode.get() == Some(mode)
    }

    /// Marks the span of one forward of the pass (see [`FusedPass::in_forward`]).
    pub fn forward_span(&self) -> ForwardGuard<'_> {
        self.forward.set(true);
        ForwardGuard(self)
    }

    /// Whether the layers are inside a forward of the running pass: then their activations
    /// are channels-last and they may use the fused operators.
    pub fn in_forward(&self) -> bool {
        self.forward.get()
    }
}

pub struct PassGuard<'a> {
    pass: &'a FusedPass,
    previous: (u64, Option<Mode>, bool),
}

impl Drop for PassGuard<'_> {
    fn drop(&mut self) {
        let (generation, mode, forward) = self.previous;
        self.pass.generation.set(generation);
        self.pass.mode.set(mode);
        self.pass.forward.set(forward);
    }
}

pub struct ForwardGuard<'a>(&'a FusedPass);

impl Drop for ForwardGuard<'_> {
    fn drop(&mut self) {
        self.0.forward.set(false);
    }
}

/// Whether this machine runs fused passes at all: a CPU tensor and a libtorch with oneDNN's
/// fused operators.
pub fn supported(device: Device) -> bool {
    device == Device::Cpu && onednn::available()
}

/// `x` [N, C, H, W] with channels-last strides (the same values).
pub fn channels_last(x: &Tensor) -> Tensor {
    x.permute([0, 2, 3, 1]).contiguous().permute([0, 3, 1, 2])
}

/// Whether a forward (or a BN in it) with input `x` can run fused: 4-D float activations on
/// the CPU.
pub fn takes(x: &Tensor) -> bool {
    x.dim() == 4 && x.kind() == Kind::Float && x.device() == Device::Cpu
}

struct Packed {
    generation: u64,
    folded: bool,
    weight: Tensor,
    bias: Option<Tensor>,
}

/// A convolution's weights packed for the running pass.
pub struct PackedConv {
    pass: Rc<FusedPass>,
    slot: RefCell<Option<Packed>>,
}

impl std::fmt::Debug for PackedConv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PackedConv")
    }
}

impl PackedConv {
    pub fn new(pass: Rc<FusedPass>) -> Self {
        Self {
            pass,
            slot: RefCell::new(None),
        }
    }

    /// Whether the convolution should run fused now.
    pub fn active(&self) -> bool {
        self.pass.in_forward()
    }

    /// The packed weight and bias for this pass: `make()`'s (the weight with, if `folded`,
    /// a BN folded in) reordered for inputs like `x`, at the pass's first batch.
    pub fn weights(
        &self,
        folded: bool,
        at: Geometry,
        x: &Tensor,
        make: impl FnOnce() -> (Tensor, Option<Tensor>),
    ) -> (Tensor, Option<Tensor>) {
        let generation = self.pass.generation.get();
        let mut slot = self.slot.borrow_mut();
        let packed = match slot.take() {
            Some(p) if p.generation == generation && p.folded == folded => p,
            _ => {
                let (weight, bias) = make();
                self.pass.packs.set(self.pass.packs.get() + 1);
                let size = x.size();
                let input_size = [size[0], size[1], size[2], size[3]];
                let weight = weight.contiguous();
                let weight = if onednn::runs_direct(&weight.size(), at) {
                    onednn::pack_direct(&weight)
                } else {
                    onednn::pack_weight(&weight, at, input_size)
                };
                Packed {
                    generation,
                    folded,
                    weight,
                    bias: bias.map(|b| b.contiguous()),
                }
            }
        };
        let out = (
            packed.weight.shallow_clone(),
            packed.bias.as_ref().map(Tensor::shallow_clone),
        );
        *slot = Some(packed);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::{FusedPass, Mode};

    #[test]
    fn a_pass_inside_a_pass_gives_the_outer_one_back() {
        let pass = FusedPass::default();
        assert!(!pass.runs(Mode::Eval));
        let outer = pass.begin(Mode::Accumulate);
        {
            let _inner = pass.begin(Mode::Eval);
            assert!(pass.runs(Mode::Eval) && !pass.runs(Mode::Accumulate));
            let _span = pass.forward_span();
            assert!(pass.in_forward());
        }
        assert!(pass.runs(Mode::Accumulate) && !pass.in_forward());
        drop(outer);
        assert!(!pass.runs(Mode::Accumulate) && !pass.in_forward());
    }
}
