// What valleys needs of a TorchScript module beyond tch 0.24's CModule: its buffers and its
// submodules with their type names (to find batch norm), per-submodule training flags, and
// attributes (a BN layer's momentum). tch keeps its module pointer private, so the module is
// owned here and every call goes through this file. Errors never cross the boundary as C++
// exceptions: each function returns a malloc'd message (freed by vj_free_error) or NULL.

#include <torch/script.h>

#include "../shim_errors.h"

#include <cstdlib>
#include <string>

using Module = torch::jit::Module;

namespace {

using valleys_shim::guarded;

c10::Device device_of(int device) {
  return device < 0 ? c10::Device(c10::kCPU) : c10::Device(c10::kCUDA, device);
}

// The submodule called `name` ("" for the module itself), as named_modules() names it.
Module find(const Module &root, const char *name) {
  if (name[0] == '\0') return root;
  for (const auto &item : root.named_modules()) {
    if (item.name == name) return item.value;
  }
  throw std::runtime_error(std::string("no submodule named ") + name);
}

}  // namespace

extern "C" {

typedef void (*vj_tensor_cb)(void *data, const char *name, torch::Tensor *tensor);
typedef void (*vj_module_cb)(void *data, const char *name, const char *type);

void vj_free_error(char *error) { std::free(error); }

char *vj_load(const char *path, int device, Module **out) {
  return guarded([&] { *out = new Module(torch::jit::load(path, device_of(device))); });
}

void vj_free(Module *module) { delete module; }

// A deep copy: its own parameters and buffers, the same code.
char *vj_clone(const Module *module, Module **out) {
  return guarded([&] { *out = new Module(module->deepcopy()); });
}

char *vj_save(const Module *module, const char *path) {
  return guarded([&] { module->save(path); });
}

char *vj_forward(Module *module, const torch::Tensor *input, torch::Tensor **out) {
  return guarded([&] {
    c10::IValue result = module->forward({*input});
    if (!result.isTensor()) {
      throw std::runtime_error("forward returned a " + result.tagKind() +
                               ", expected one tensor of logits");
    }
    *out = new torch::Tensor(result.toTensor());
  });
}

char *vj_named_parameters(const Module *module, void *data, vj_tensor_cb cb) {
  return guarded([&] {
    for (const auto &item : module->named_parameters(true)) {
      cb(data, item.name.c_str(), new torch::Tensor(item.value));
    }
  });
}

char *vj_named_buffers(const Module *module, void *data, vj_tensor_cb cb) {
  return guarded([&] {
    for (const auto &item : module->named_buffers(true)) {
      cb(data, item.name.c_str(), new torch::Tensor(item.value));
    }
  });
}

// Every submodule, the module itself first (named ""), with its qualified type name, e.g.
// __torch__.torch.nn.modules.batchnorm.BatchNorm2d.
char *vj_named_modules(const Module *module, void *data, vj_module_cb cb) {
  return guarded([&] {
    for (const auto &item : module->named_modules()) {
      auto type = item.value.type()->name();
      std::string type_name = type ? type->qualifiedName() : std::string("?");
      cb(data, item.name.c_str(), type_name.c_str());
    }
  });
}

// Sets the `training` flag of submodule `name` and everything below it.
char *vj_set_training(Module *module, const char *name, bool on) {
  return guarded([&] { find(*module, name).train(on); });
}

// A float attribute of submodule `name`: *found = 0 when it is absent or None.
char *vj_double_attr(const Module *module, const char *name, const char *attr, int *found,
                     double *value) {
  return guarded([&] {
    *found = 0;
    Module sub = find(*module, name);
    if (!sub.hasattr(attr)) return;
    c10::IValue v = sub.attr(attr);
    if (v.isDouble()) {
      *value = v.toDouble();
      *found = 1;
    } else if (v.isInt()) {
      *value = static_cast<double>(v.toInt());
      *found = 1;
    }
  });
}

}  // extern "C"
