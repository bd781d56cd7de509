//! A model's state by name: copied between models, listed and loaded as PyTorch's
//! `state_dict` names it.

use super::{Model, ModelError};
use tch::Tensor;

impl Model {
    /// Copies parameters and BN statistics from a model of the same configuration.
    pub fn copy_from(&self, other: &Model) {
        tch::no_grad(|| {
            self.flat.shallow_clone().copy_(&other.flat);
            for ((_, mine), (_, theirs)) in self.buffers.iter().zip(&other.buffers) {
                mine.shallow_clone().copy_(theirs);
            }
        });
    }

    /// Every named tensor (parameters, then BN statistics), sharing storage with the model.
    pub fn named_state(&self) -> Vec<(String, Tensor)> {
        let params = self.params.iter().map(|p| {
            (
                p.name.clone(),
                self.flat.narrow(0, p.offset, p.numel).view(&p.shape[..]),
            )
        });
        let buffers = self
            .buffers
            .iter()
            .map(|(n, t)| (n.clone(), t.shallow_clone()));
        params.chain(buffers).collect()
    }

    /// Loads tensors saved by [`Model::named_state`] (with `prefix` before each name). Every
    /// name must be present with the same shape.
    pub fn load_named_state(
        &self,
        prefix: &str,
        lookup: &dyn Fn(&str) -> Option<Tensor>,
    ) -> Result<(), ModelError> {
        for (name, target) in self.named_state() {
            let key = format!("{prefix}{name}");
            let source = lookup(&key)
                .ok_or_else(|| ModelError::State(format!("tensor {key} is missing")))?;
            if source.size() != target.size() {
                return Err(ModelError::State(format!(
                    "tensor {key} has shape {:?}, the model expects {:?}",
                    source.size(),
                    target.size()
                )));
            }
            tch::no_grad(|| target.shallow_clone().copy_(&source));
        }
        Ok(())
    }
}
