// A residual MLP, a model none of cladbench's built-in ones is: two tanh layers with a skip
// connection around the second, then a linear read-out,
//
//   h1 = tanh(W1 x + b1),  h2 = tanh(W2 h1 + b2),  y = W3 (h1 + h2) + b3,
//
// written on the kernel contract (cladbench_model.hpp) from the layer library; Clad writes its
// gradients. Used from Python by examples/resmlp/train.py (cladbench.compile_model) and from C++ by
// train_resmlp.cpp (cladbench_add_model in cpp/CMakeLists.txt). Weights are stored as torch's
// nn.Linear keeps them, W [out x in] then b, layer after layer.
#include "cladbench_model.hpp"

namespace resmlp {

using namespace cladbench::layers;

constexpr int kIn = 784, kHidden = 64, kOut = 10;

// params: W1 b1 W2 b2 W3 b3.
constexpr long kW1 = 0, kB1 = kW1 + kHidden * kIn;
constexpr long kW2 = kB1 + kHidden, kB2 = kW2 + kHidden * kHidden;
constexpr long kW3 = kB2 + kHidden, kB3 = kW3 + kOut * kHidden;
constexpr long kParams = kB3 + kOut;

// ws, per sample: z1 h1 z2 h2 s y.
constexpr long kZ1 = 0, kH1 = kZ1 + kHidden, kZ2 = kH1 + kHidden, kH2 = kZ2 + kHidden, kS = kH2 + kHidden;
constexpr long kY = kS + kHidden, kWorkspace = kY + kOut;

constexpr cladbench::ModelSizes kSizes{
    .params = kParams, .inputs = kIn, .outputs = kOut, .workspace = kWorkspace, .output_offset = kY};

template <class T>
void forward(const T* params, const T* x, int batch, T* ws) {
  T* z1 = ws + kZ1 * batch;
  T* h1 = ws + kH1 * batch;
  T* z2 = ws + kZ2 * batch;
  T* h2 = ws + kH2 * batch;
  T* s = ws + kS * batch;
  T* y = ws + kY * batch;
  dense(x, params + kW1, params + kB1, z1, batch, kIn, kHidden, 1);
  tanh_act(z1, h1, batch * kHidden);
  dense(h1, params + kW2, params + kB2, z2, batch, kHidden, kHidden, 1);
  tanh_act(z2, h2, batch * kHidden);
  add(h1, h2, s, batch * kHidden);  // the skip connection
  dense(s, params + kW3, params + kB3, y, batch, kHidden, kOut, 1);
}

}  // namespace resmlp

CLADBENCH_MODEL(resmlp, resmlp::forward, resmlp::kSizes)
