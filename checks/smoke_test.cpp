// The layer library builds and runs on every real rung.
#include "bpcheck/network.hpp"
#include "helpers.hpp"

TEMPLATE_LIST_TEST_CASE("a tanh network's backprop equals its explicit Jacobian product", "[network]",
                        bpcheck::testing::real_rungs) {
  using T = TestType;
  bpcheck::ModelSpec spec{3, {{"dense", {{"units", 4}}}, {"tanh", {}}, {"dense", {{"units", 2}}}}, "mse"};
  bpcheck::Network<T> net(spec);
  net.initialize(7);
  bpcheck::Matrix<T> X(3, 2);
  X << T(1) / 3, T(-1) / 2, T(2) / 7, T(1) / 5, T(-3) / 4, T(1) / 9;
  bpcheck::Targets<T> t;
  t.values = bpcheck::Matrix<T>::Constant(2, 2, T(1) / 4);
  const auto g = net.gradient(X, t);
  const auto e = net.explicit_gradient(X, t);
  for (std::size_t k = 0; k < g.layers.size(); ++k) {
    const T d = bpcheck::testing::max_relative_difference<T>(g.layers[k], e.layers[k]);
    CHECK(d <= T(64) * bpcheck::scalar_traits<T>::epsilon());
  }
}
