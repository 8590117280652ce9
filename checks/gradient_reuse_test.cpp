// Network::gradient(X, t, out), which reuses the caller's storage, against gradient(X, t): the same
// bits on every rung and layer kind (batch norm couples the samples), after a call on another batch
// size, from storage left dirty by another network, and the same input errors; the gradient without dℓ/dX
// (InputGradient::skip) against the full one.
#include <string>
#include <vector>

#include "bpcheck/io/formats.hpp"
#include "bpcheck/layers/dense.hpp"
#include "bpcheck/network.hpp"
#include "helpers.hpp"

using bpcheck::Gradient;
using bpcheck::Index;
using bpcheck::Matrix;
using bpcheck::ModelSpec;
using bpcheck::Network;
using bpcheck::Vector;
using bpcheck::testing::eps_times;
using bpcheck::testing::real_rungs;

namespace {

/// Same shape and every entry equal (not merely close).
template <class T, int C>
bool same_bits(const Eigen::Matrix<T, Eigen::Dynamic, C>& a, const Eigen::Matrix<T, Eigen::Dynamic, C>& b) {
  return a.rows() == b.rows() && a.cols() == b.cols() && (a.array() == b.array()).all();
}

template <class T>
bool same_gradient(const Gradient<T>& a, const Gradient<T>& b) {
  if (!(a.loss == b.loss) || a.layers.size() != b.layers.size() || !same_bits(a.input, b.input)) return false;
  for (std::size_t k = 0; k < a.layers.size(); ++k)
    if (!same_bits(a.layers[k], b.layers[k])) return false;
  return true;
}

/// Networks with dense, elementwise, batch-coupled (batch norm in training mode), per-sample
/// normalising (layer norm), convolution, softmax and residual layers, each with its loss.
std::vector<ModelSpec> specs() {
  return {
      {6, {{"dense", {{"units", 5}}}, {"tanh", {}}, {"dense", {{"units", 3}}}}, "mse"},
      {6,
       {{"dense", {{"units", 4}}}, {"batch_norm", {}}, {"relu", {}}, {"dense", {{"units", 3}}}},
       "cross_entropy"},
      {6, {{"layer_norm", {}}, {"dense", {{"units", 4}}}, {"gelu", {}}, {"softmax", {}}}, "mse"},
      {6,
       {{"conv1d", {{"channels", 2}, {"length", 3}, {"out_channels", 2}, {"kernel", 2}}},
        {"sigmoid", {}},
        {"dense", {{"units", 3}}}},
       "cross_entropy"},
  };
}

}  // namespace

TEMPLATE_LIST_TEST_CASE("gradient into reused storage equals gradient(X, t) bit for bit, across batch sizes",
                        "[network][reuse]", real_rungs) {
  using T = TestType;
  // Storage left by a larger, different network: wrong count, wrong sizes, nonzero contents.
  Network<T> other({6, {{"dense", {{"units", 7}}}, {"tanh", {}}, {"dense", {{"units", 2}}}, {"tanh", {}},
                        {"dense", {{"units", 2}}}},
                    "mse"});
  other.initialize(5);
  for (const auto& spec : specs()) {
    Network<T> net(spec);
    net.initialize(11);
    INFO("first layer " << spec.layers.front().type << ", loss " << spec.loss);
    Gradient<T> out;
    const auto dirty = bpcheck::generate_batch(other, 3, 4);
    other.gradient(dirty.inputs, dirty.targets, out);
    REQUIRE(out.layers.size() == 5);
    // 3 samples, then 5 (every buffer grows), then 2 (every buffer shrinks), then 5 again.
    for (Index samples : {3, 5, 2, 5}) {
      INFO(samples << " samples");
      const auto batch = bpcheck::generate_batch(net, 100 + std::uint64_t(samples), samples);
      net.gradient(batch.inputs, batch.targets, out);
      const Gradient<T> fresh = net.gradient(batch.inputs, batch.targets);
      CHECK(same_gradient(out, fresh));
      CHECK(out.input.cols() == samples);
    }
  }
}

TEMPLATE_LIST_TEST_CASE("the bitwise comparison of gradients notices a change of a few ε in one entry",
                        "[network][reuse]", real_rungs) {
  using T = TestType;
  Network<T> net(specs()[1]);
  net.initialize(11);
  const auto batch = bpcheck::generate_batch(net, 7, 4);
  Gradient<T> out;
  net.gradient(batch.inputs, batch.targets, out);
  Gradient<T> nudged = out;
  Index at = 0;
  nudged.layers[0].cwiseAbs().maxCoeff(&at);
  nudged.layers[0](at) *= T(1) + eps_times<T>(4);
  CHECK(same_gradient(out, out));
  CHECK_FALSE(same_gradient(nudged, out));
}

TEMPLATE_LIST_TEST_CASE("gradient into reused storage rejects a batch or targets that do not fit the model",
                        "[network][reuse]", real_rungs) {
  using T = TestType;
  Network<T> net(specs()[0]);
  net.initialize(11);
  const auto batch = bpcheck::generate_batch(net, 7, 4);
  Gradient<T> out;
  net.gradient(batch.inputs, batch.targets, out);
  const Gradient<T> before = out;

  const Matrix<T> too_few_features = batch.inputs.topRows(5);
  CHECK_THROWS_AS(net.gradient(too_few_features, batch.targets, out), bpcheck::input_error);
  CHECK_THROWS_WITH(net.gradient(too_few_features, batch.targets, out),
                    Catch::Contains("model takes 6 inputs per sample, got 5"));
  const Matrix<T> fewer_samples = batch.inputs.leftCols(3);
  CHECK_THROWS_AS(net.gradient(fewer_samples, batch.targets, out), bpcheck::input_error);
  const Matrix<T> empty(6, 0);
  CHECK_THROWS_AS(net.gradient(empty, batch.targets, out), bpcheck::input_error);
  // Shapes are checked before anything is written.
  CHECK(same_gradient(out, before));
}

TEMPLATE_LIST_TEST_CASE("gradient without the input gradient gives the same dθ bit for bit and an empty dX",
                        "[network][reuse]", real_rungs) {
  using T = TestType;
  auto all = specs();
  // Parameterless layers first: backprop stops at the first dense layer.
  all.push_back({6, {{"tanh", {}}, {"relu", {}}, {"dense", {{"units", 4}}}, {"tanh", {}}, {"dense", {{"units", 2}}}},
                 "mse"});
  // No parameters at all: the gradient is the loss alone.
  all.push_back({6, {{"tanh", {}}, {"softmax", {}}}, "mse"});
  for (const auto& spec : all) {
    Network<T> net(spec);
    net.initialize(13);
    INFO("first layer " << spec.layers.front().type << ", loss " << spec.loss);
    const auto batch = bpcheck::generate_batch(net, 21, 4);
    const Gradient<T> full = net.gradient(batch.inputs, batch.targets);
    Gradient<T> out = full;  // dirty storage, input included
    net.gradient(batch.inputs, batch.targets, out, bpcheck::InputGradient::skip);
    CHECK(out.input.size() == 0);
    CHECK(out.loss == full.loss);
    REQUIRE(out.layers.size() == full.layers.size());
    for (std::size_t k = 0; k < full.layers.size(); ++k) {
      INFO("layer " << k);
      CHECK(same_bits(out.layers[k], full.layers[k]));
    }
    const Gradient<T> fresh = net.gradient(batch.inputs, batch.targets, bpcheck::InputGradient::skip);
    CHECK(same_gradient(out, fresh));
  }
}

TEMPLATE_LIST_TEST_CASE("dense backward_parameters adds exactly backward's dθ, onto what dθ holds",
                        "[network][reuse]", real_rungs) {
  using T = TestType;
  bpcheck::Dense<T> dense(5, 3);
  Vector<T> theta(dense.parameters().size());
  for (Index i = 0; i < theta.size(); ++i) theta(i) = T(0.1) * T(int(i % 7) - 3);
  dense.set_parameters(theta);
  Matrix<T> X(5, 4), dY(3, 4);
  for (Index i = 0; i < X.size(); ++i) X(i) = T(0.25) * T(int(i % 5) - 2);
  for (Index i = 0; i < dY.size(); ++i) dY(i) = T(0.5) * T(int(i % 3) - 1) + T(0.125);
  const Matrix<T> Y = dense.forward(X);
  const Vector<T> start = Vector<T>::Constant(theta.size(), T(1));
  Vector<T> with_dx = start, without_dx = start;
  (void)dense.backward(X, Y, dY, with_dx);
  dense.backward_parameters(X, Y, dY, without_dx);
  CHECK(same_bits(with_dx, without_dx));
  CHECK_FALSE(same_bits(with_dx, start));
  // Through the type-erased layer as the network calls it.
  const bpcheck::AnyLayer<T> any = dense;
  CHECK(any.has_parameter_backward());
  Vector<T> erased = start;
  any.backward_parameters(X, Y, dY, erased);
  CHECK(same_bits(erased, with_dx));
}
