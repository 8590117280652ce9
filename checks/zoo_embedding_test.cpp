// embedding: integer inputs, a gradient only with respect to the table; verified on every rung (the
// verifier draws valid indices and never moves them), by hand, and refused indices and options.
#include <string>

#include "bpcheck/layers/embedding.hpp"
#include "zoo_helpers.hpp"

using bpcheck::Index;
using bpcheck::Matrix;
using bpcheck::mp100;
using bpcheck::Vector;
using bpcheck::testing::build;
using bpcheck::testing::real_rungs;
using bpcheck::testing::verify_clean;

TEST_CASE("zoo verify: embedding passes every check on every rung, with indices as inputs", "[zoo][verify]") {
  verify_clean({"embedding", {{"num_embeddings", 5}, {"embedding_dim", 3}}}, 4, 10, 1, 3);
  verify_clean({"embedding", {{"num_embeddings", 1}, {"embedding_dim", 2}}}, 2, 3);
}

TEST_CASE("the verifier gives a layer with index input valid indices and leaves them alone", "[zoo][verify]") {
  // Given inputs that are indices verify as they are; the Taylor and dot-product checks pass only
  // because the direction does not move the indices (a moved index jumps to another table row).
  bpcheck::VerifyOptions o;
  Matrix<mp100> X(3, 2);
  X << mp100(0), mp100(2), mp100(2), mp100(1), mp100(0), mp100(0);
  o.inputs = X;
  bpcheck::testing::require_clean(
      bpcheck::verify_layer({"embedding", {{"num_embeddings", 3}, {"embedding_dim", 2}}}, 3, o), "embedding at given indices");
  const auto e = build<mp100>("embedding", 3, {{"num_embeddings", 3}, {"embedding_dim", 2}});
  CHECK(e.input_is_index());
  CHECK(e.index_count() == 3);
  CHECK(!build<mp100>("tanh", 3).input_is_index());
}

TEMPLATE_LIST_TEST_CASE("embedding: rows of the V × D table by index, dweight gathers dY by index, dX = 0",
                        "[zoo][layers]", real_rungs) {
  using T = TestType;
  auto e = build<T>("embedding", 3, {{"num_embeddings", 3}, {"embedding_dim", 2}});
  // weight = [[1, 2], [3, 4], [5, 6]] (row k = vector of index k), θ = vec(weight) column-major.
  Vector<T> theta(6);
  theta << T(1), T(3), T(5), T(2), T(4), T(6);
  e.set_parameters(theta);
  Matrix<T> X(3, 1);
  X << T(2), T(0), T(2);
  Matrix<T> expected(6, 1);
  expected << T(5), T(6), T(1), T(2), T(5), T(6);
  CHECK(e.forward(X) == expected);
  Matrix<T> dY(6, 1);
  dY << T(1), T(10), T(100), T(1000), T(7), T(70);
  Vector<T> dtheta = Vector<T>::Zero(6);
  const Matrix<T> dX = e.backward(X, expected, dY, dtheta);
  CHECK(dX == Matrix<T>::Zero(3, 1));
  // Index 2 is used twice: its row gets both (1 + 7, 10 + 70); index 0 gets (100, 1000); index 1 nothing.
  Vector<T> expected_dtheta(6);
  expected_dtheta << T(100), T(0), T(8), T(1000), T(0), T(80);
  CHECK(dtheta == expected_dtheta);
  CHECK(e.jacobian_input(X) == Matrix<T>::Zero(6, 3));
}

TEST_CASE("embedding refuses indices out of range or not integers, and bad options", "[zoo][errors]") {
  const auto e = build<double>("embedding", 2, {{"num_embeddings", 3}, {"embedding_dim", 2}});
  Matrix<double> X(2, 1);
  X << 0, 3;
  CHECK_THROWS_WITH(e.forward(X), Catch::Contains("not an index in 0..2"));
  X << -1, 0;
  CHECK_THROWS_AS(e.forward(X), bpcheck::input_error);
  X << 0.5, 1;
  CHECK_THROWS_AS(e.forward(X), bpcheck::input_error);
  X << 2, 1;
  CHECK_NOTHROW(e.forward(X));
  CHECK_THROWS_WITH(build<double>("embedding", 2, {{"embedding_dim", 2}}), Catch::Contains("missing option 'num_embeddings'"));
  CHECK_THROWS_WITH(build<double>("embedding", 2, {{"num_embeddings", 3}, {"embedding_dim", 2}, {"padding_idx", 0}}),
                    Catch::Contains("unknown option 'padding_idx'"));
  CHECK_THROWS_AS(build<mp100>("embedding", 2, {{"num_embeddings", 0}, {"embedding_dim", 2}}), bpcheck::input_error);
}
