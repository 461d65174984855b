// cladbench::nn::MLP and CNN (cpp/torch/nn.hpp) against LibTorch autograd of the reference model
// (reference_logits), in double: the gradients of params and of x through torch's cross-entropy,
// within 1e-10, for every kernel engine linked in and both layouts. Then what a LibTorch user relies
// on: one registered parameter, layers() as views, ->to(kDouble), train()/eval(), a save/load round
// trip into a fresh module, and clear errors.
#include <iostream>
#include <sstream>

#include "../torch/nn.hpp"

using namespace cladbench;

namespace {

int failures = 0;

void expect(bool ok, const std::string& what) {
  if (!ok) {
    std::cerr << "FAIL: " << what << "\n";
    ++failures;
  }
}

template <class F>
void expect_throws(F f, const std::string& needle) {
  try {
    f();
    expect(false, "no error, expected one containing '" + needle + "'");
  } catch (const std::exception& e) {
    expect(std::string(e.what()).find(needle) != std::string::npos,
           "error '" + std::string(e.what()).substr(0, 300) + "' lacks '" + needle + "'");
  }
}

void check_gradients(nn::KernelModule& module, const std::string& what) {
  module.to(torch::kDouble);
  const ModelShape& shape = module.shape();
  torch::Tensor x = torch::randn({5, shape.input_size()}, torch::kDouble).requires_grad_();
  const torch::Tensor y = torch::randint(shape.classes(), {5}, torch::kLong);
  torch::nn::functional::cross_entropy(module.forward(x), y).backward();

  torch::Tensor ref_p = module.params.detach().clone().requires_grad_();
  torch::Tensor ref_x = x.detach().clone().requires_grad_();
  torch::nn::functional::cross_entropy(reference_logits(ref_p, ref_x, shape, parse_layout(module.layout())), y)
      .backward();
  const double e_p = max_rel_err(module.params.grad(), ref_p.grad());
  const double e_x = max_rel_err(x.grad(), ref_x.grad());
  std::cout << what << ": d_params " << e_p << ", d_x " << e_x << "\n";
  expect(module.params.grad().scalar_type() == torch::kDouble, what + ": double gradient");
  expect(x.grad().abs().max().item<double>() > 0 && module.params.grad().abs().max().item<double>() > 0,
         what + ": nonzero gradients");
  expect(e_p < 1e-10 && e_x < 1e-10, what + ": gradients within 1e-10 of autograd of reference_logits");

  // The fused loss agrees with cross_entropy over the composable op.
  const torch::Tensor fused = module.loss(x.detach(), y);
  const torch::Tensor composed = torch::nn::functional::cross_entropy(module.forward(x.detach()), y);
  expect(std::abs(fused.item<double>() - composed.item<double>()) < 1e-12, what + ": loss() = cross_entropy");
}

}  // namespace

int main() {
  torch::manual_seed(0);
  std::vector<std::string> engines;
  for (const char* engine : {"clad", "manual"})
    if (find_kernels("mlp", engine, Layout::RowMajor)) engines.push_back(engine);
  for (const std::string& engine : engines) {
    for (const char* layout : {"rowmajor", "colmajor"}) {
      const std::string tag = std::string(" ") + engine + " " + layout;
      nn::MLP mlp({9, 7, 5, 3}, engine, layout);
      check_gradients(*mlp, "MLP" + tag);
      nn::CNN cnn(2, 40, "3k5p2,4k3p2", 6, 3, engine, layout);
      check_gradients(*cnn, "CNN" + tag);
    }
  }

  // One parameter, initialised as every engine is; layers() are [out, in] views into it.
  nn::MLP mlp({6, 4, 3}, engines.front(), "colmajor", 7);
  const auto named = mlp->named_parameters();
  expect(named.size() == 1 && named.contains("params"), "one parameter, named params");
  const std::vector<torch::Tensor> init = init_params(mlp->shape(), 7);
  const std::vector<torch::Tensor> layers = mlp->layers();
  expect(layers.size() == 4 && layers[0].sizes() == torch::IntArrayRef({4, 6}), "layers: W0 [4, 6]");
  for (size_t i = 0; i < layers.size(); ++i) expect(torch::equal(layers[i], init[i]), "layers() = init_params");
  expect(layers[0].data_ptr() >= mlp->params.data_ptr() &&
             layers[3].data_ptr<float>() < mlp->params.data_ptr<float>() + mlp->params.numel(),
         "layers are views into params");

  // train() and eval() change nothing.
  const torch::Tensor x = torch::randn({3, 6});
  mlp->eval();
  const torch::Tensor in_eval = mlp->forward(x);
  mlp->train();
  expect(torch::equal(in_eval, mlp->forward(x)), "train() and eval() give the same logits");

  // A save/load round trip into a fresh module with another seed.
  {
    torch::NoGradGuard no_grad;
    mlp->params.add_(0.5);
  }
  std::stringstream stream;
  torch::save(mlp, stream);
  nn::MLP fresh({6, 4, 3}, engines.front(), "colmajor", 99);
  torch::load(fresh, stream);
  expect(torch::equal(fresh->params, mlp->params), "save/load round trip");
  expect(torch::equal(fresh->forward(x), mlp->forward(x)), "the loaded module computes the same logits");

  // Clear errors.
  expect_throws([&] { mlp->forward(x.to(torch::kDouble)); }, "has Float parameters but x is Double");
  expect_throws([&] { mlp->forward(torch::randn({3, 5})); }, "x must be [batch, 6]");
  expect_throws([] { nn::MLP({6}, "manual"); }, "at least two");
  expect_throws([] { nn::MLP({6, 3}, "nonesuch"); }, "is not built");
  expect_throws([] { nn::MLP({6, 3}, "manual", "diagonal"); }, "layout");
  expect_throws([] { nn::CNN(1, 10, "4k8p4", 5, 2, "manual"); }, "leaves no output step");
  expect_throws([] { nn::CNN(1, 10, "4k3", 5, 2, "manual"); }, "is not <c_out>k<kernel>p<pool>");

  std::cout << (failures ? "FAILED" : "all passed") << " (engines:";
  for (const std::string& e : engines) std::cout << " " << e;
  std::cout << ")\n";
  return failures ? 1 : 0;
}
