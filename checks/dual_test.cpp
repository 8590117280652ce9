// Dual numbers: arithmetic and each math function's derivative against closed forms, and layers run
// on dual numbers reproducing the columns of their explicit Jacobians.
#include <cmath>
#include <string>
#include <tuple>

#include "bpcheck/layers/activations.hpp"
#include "bpcheck/layers/dense.hpp"
#include "bpcheck/layers/softmax.hpp"
#include "helpers.hpp"

using bpcheck::Dual;
using bpcheck::Index;
using bpcheck::Matrix;
using bpcheck::Vector;
using bpcheck::testing::close;
using bpcheck::testing::eps_times;
using bpcheck::testing::normwise_relative_difference;
using bpcheck::testing::ratio;

namespace {

using dual_rungs = std::tuple<double, bpcheck::mp100>;

template <class T>
using D2 = Dual<T, 2>;

/// x seeded with tangents (1, −2): lane 0 carries f'(x), lane 1 carries −2 f'(x).
template <class T>
D2<T> seeded(const T& x) {
  return D2<T>(x, {T(1), T(-2)});
}

/// f(x) on a dual must give the value f and tangents (f', −2 f') of the closed forms.
template <class T>
void check_function(const std::string& name, const D2<T>& y, const T& value, const T& derivative) {
  const T tol = eps_times<T>(8);
  INFO(name << ": value " << bpcheck::to_string(y.v) << " (expected " << bpcheck::to_string(value) << "), lanes "
            << bpcheck::to_string(y.d[0]) << ", " << bpcheck::to_string(y.d[1]) << " (expected f' = "
            << bpcheck::to_string(derivative) << ")");
  CHECK(close(y.v, value, tol));
  CHECK(close(y.d[0], derivative, tol));
  CHECK(close(y.d[1], T(-2 * derivative), tol));
}

}  // namespace

TEMPLATE_LIST_TEST_CASE("dual arithmetic: sum, difference, product and quotient rules, exactly", "[dual]",
                        dual_rungs) {
  using T = TestType;
  const D2<T> x(T(3), {T(1), T(2)});
  const D2<T> y(T(4), {T(-1), T(3)});
  auto same = [](const D2<T>& a, const T& v, const T& d0, const T& d1) {
    INFO("got " << bpcheck::to_string(a.v) << " + (" << bpcheck::to_string(a.d[0]) << ", "
                << bpcheck::to_string(a.d[1]) << ")ε");
    CHECK(a.v == v);
    CHECK(a.d[0] == d0);
    CHECK(a.d[1] == d1);
  };
  same(x + y, T(7), T(0), T(5));
  same(x - y, T(-1), T(2), T(-1));
  same(-x, T(-3), T(-1), T(-2));
  // (xy)' = x'y + xy': 4·1 + 3·(−1) = 1, 4·2 + 3·3 = 17.
  same(x * y, T(12), T(1), T(17));
  // (x/y)' = (x'y − xy')/y²: (4 + 3)/16 = 7/16, (8 − 9)/16 = −1/16.
  same(x / y, ratio<T>(3, 4), ratio<T>(7, 16), ratio<T>(-1, 16));
  // Constants have zero tangent: 2x, 2 − x, 1/y = −y'/y² = (1/16, −3/16).
  same(x * T(2), T(6), T(2), T(4));
  same(2 * x, T(6), T(2), T(4));
  same(T(2) - x, T(-1), T(-1), T(-2));
  same(x + 1, T(4), T(1), T(2));
  same(T(1) / y, ratio<T>(1, 4), ratio<T>(1, 16), ratio<T>(-3, 16));
  same(x / 2, ratio<T>(3, 2), ratio<T>(1, 2), T(1));
  D2<T> z = x;
  z *= y;
  z += x;
  same(z, T(15), T(2), T(19));
  z -= y;
  same(z, T(11), T(3), T(16));
  z /= y;
  // (11/4)' = (3·4 − 11·(−1))/16 = 23/16 and (16·4 − 11·3)/16 = 31/16.
  same(z, ratio<T>(11, 4), ratio<T>(23, 16), ratio<T>(31, 16));
  // Comparisons look at values only.
  CHECK(x < y);
  CHECK(D2<T>(T(3), {T(9), T(9)}) == x);
  CHECK(x > 2);
  CHECK(x != y);
}

TEMPLATE_LIST_TEST_CASE("dual math functions: derivatives equal their closed forms", "[dual]", dual_rungs) {
  using T = TestType;
  using std::exp;
  using std::log;
  using std::sqrt;
  const T pi = bpcheck::pi<T>();
  const T rpi = sqrt(pi);
  const T e = exp(T(1));
  const T r3 = sqrt(T(3));
  check_function<T>("exp(ln 2)", exp(seeded(log(T(2)))), T(2), T(2));
  check_function<T>("log(4)", log(seeded(T(4))), log(T(4)), ratio<T>(1, 4));
  check_function<T>("log1p(3)", log1p(seeded(T(3))), log(T(4)), ratio<T>(1, 4));
  check_function<T>("expm1(ln 3)", expm1(seeded(log(T(3)))), T(2), T(3));
  check_function<T>("sqrt(9/4)", sqrt(seeded(ratio<T>(9, 4))), ratio<T>(3, 2), ratio<T>(1, 3));
  check_function<T>("tanh(ln(3)/2)", tanh(seeded(T(log(T(3)) / 2))), ratio<T>(1, 2), ratio<T>(3, 4));
  // erf' = 2e^{−x²}/√π: at 1, 2/(e√π); at 0, 2/√π.
  using std::erf;
  check_function<T>("erf(1)", erf(seeded(T(1))), T(erf(T(1))), T(2) / (e * rpi));
  check_function<T>("erf(0)", erf(seeded(T(0))), T(0), T(2) / rpi);
  check_function<T>("erfc(1)", erfc(seeded(T(1))), T(T(1) - erf(T(1))), T(-2) / (e * rpi));
  check_function<T>("sin(π/6)", sin(seeded(T(pi / 6))), ratio<T>(1, 2), T(r3 / 2));
  check_function<T>("cos(π/3)", cos(seeded(T(pi / 3))), ratio<T>(1, 2), T(-r3 / 2));
  check_function<T>("pow(4, 3/2)", pow(seeded(T(4)), ratio<T>(3, 2)), T(8), T(3));
  check_function<T>("pow(1/2, −2)", pow(seeded(ratio<T>(1, 2)), T(-2)), T(4), T(-16));
  check_function<T>("abs(−3)", abs(seeded(T(-3))), T(3), T(-1));
  check_function<T>("abs(5/2)", abs(seeded(ratio<T>(5, 2))), ratio<T>(5, 2), T(1));
}

// ---- layers on dual numbers --------------------------------------------------------------------

namespace {

/// Runs `forward` on dual<T> with lane j seeded along vec(X)'s entry j and returns the tangents as the
/// out·B × in·B Jacobian (vec(X) has at most dual_width entries here: one pass).
template <class T, class LayerOnDual>
Matrix<T> jacobian_by_lanes(const LayerOnDual& layer, const Matrix<T>& X) {
  using D = bpcheck::dual<T>;
  REQUIRE(X.size() <= bpcheck::dual_width);
  Matrix<D> Xd = bpcheck::matrix_cast<D>(X);
  for (Index j = 0; j < X.size(); ++j) Xd(j).d[std::size_t(j)] = T(1);
  const Matrix<D> Yd = layer.forward(Xd);
  Matrix<T> J(Yd.size(), X.size());
  for (Index r = 0; r < Yd.size(); ++r)
    for (Index j = 0; j < X.size(); ++j) J(r, j) = Yd(r).d[std::size_t(j)];
  return J;
}

template <class T>
Matrix<T> sample_inputs() {
  Matrix<T> X(3, 2);
  X << ratio<T>(1, 3), T(-2),      //
      ratio<T>(-5, 4), ratio<T>(7, 5),  //
      T(2), ratio<T>(-1, 9);
  return X;
}

}  // namespace

TEMPLATE_LIST_TEST_CASE("dense on dual numbers: tangent lanes reproduce the columns of J_x and J_θ",
                        "[dual][layers]", dual_rungs) {
  using T = TestType;
  using D = bpcheck::dual<T>;
  bpcheck::Dense<T> dense(3, 2);
  Vector<T> theta(8);
  theta << ratio<T>(1, 2), T(-1), ratio<T>(2, 3), ratio<T>(1, 7), T(3), ratio<T>(-3, 4), ratio<T>(1, 5), T(-2);
  dense.set_parameters(theta);
  const Matrix<T> X = sample_inputs<T>();

  bpcheck::Dense<D> dual_dense(3, 2);
  dual_dense.set_parameters(bpcheck::vector_cast<D>(theta));
  const Matrix<T> Jx = jacobian_by_lanes<T>(dual_dense, X);
  CHECK(normwise_relative_difference(Jx, dense.jacobian_input(X)) <= eps_times<T>(4));

  // J_θ: the 8 parameters fill the 8 lanes exactly; X is a constant.
  static_assert(bpcheck::dual_width == 8, "the parameter-lane seeding below assumes 8 lanes");
  Vector<D> theta_d = bpcheck::vector_cast<D>(theta);
  for (Index j = 0; j < 8; ++j) theta_d(j).d[std::size_t(j)] = T(1);
  dual_dense.set_parameters(theta_d);
  const Matrix<D> Yd = dual_dense.forward(bpcheck::matrix_cast<D>(X));
  Matrix<T> Jp(Yd.size(), 8);
  for (Index r = 0; r < Yd.size(); ++r)
    for (Index j = 0; j < 8; ++j) Jp(r, j) = Yd(r).d[std::size_t(j)];
  CHECK(normwise_relative_difference(Jp, dense.jacobian_parameters(X)) <= eps_times<T>(4));
  // The value part is the plain forward pass.
  Matrix<T> values(Yd.rows(), Yd.cols());
  for (Index i = 0; i < Yd.size(); ++i) values(i) = Yd(i).v;
  CHECK(normwise_relative_difference(values, dense.forward(X)) <= eps_times<T>(4));
}

TEMPLATE_LIST_TEST_CASE("gelu, tanh, softplus and softmax on dual numbers reproduce their explicit J_x",
                        "[dual][layers]", dual_rungs) {
  using T = TestType;
  using D = bpcheck::dual<T>;
  const Matrix<T> X = sample_inputs<T>();
  const T tol = eps_times<T>(16);
  for (const auto mode : {bpcheck::GeluApproximation::none, bpcheck::GeluApproximation::tanh}) {
    INFO("gelu " << (mode == bpcheck::GeluApproximation::none ? "none" : "tanh"));
    const Matrix<T> J = bpcheck::Gelu<T>(3, mode).jacobian_input(X);
    CHECK(normwise_relative_difference(jacobian_by_lanes<T>(bpcheck::Gelu<D>(3, mode), X), J) <= tol);
  }
  CHECK(normwise_relative_difference(jacobian_by_lanes<T>(bpcheck::Tanh<D>(3), X),
                                     bpcheck::Tanh<T>(3).jacobian_input(X)) <= tol);
  CHECK(normwise_relative_difference(jacobian_by_lanes<T>(bpcheck::Softplus<D>(3), X),
                                     bpcheck::Softplus<T>(3).jacobian_input(X)) <= tol);
  CHECK(normwise_relative_difference(jacobian_by_lanes<T>(bpcheck::Softmax<D>(3), X),
                                     bpcheck::Softmax<T>(3).jacobian_input(X)) <= tol);
  CHECK(normwise_relative_difference(jacobian_by_lanes<T>(bpcheck::LogSoftmax<D>(3), X),
                                     bpcheck::LogSoftmax<T>(3).jacobian_input(X)) <= tol);
}

namespace {
/// C(i, j) = Σ_k A(i, k) B(k, j) with dual arithmetic, one coefficient at a time: the product rule
/// without Eigen's matrix kernels.
template <class D>
Matrix<D> dual_product_by_coefficients(const Matrix<D>& A, const Matrix<D>& B) {
  Matrix<D> C(A.rows(), B.cols());
  for (Index i = 0; i < A.rows(); ++i)
    for (Index j = 0; j < B.cols(); ++j) {
      D sum(0);
      for (Index k = 0; k < A.cols(); ++k) sum = sum + A(i, k) * B(k, j);
      C(i, j) = sum;
    }
  return C;
}

/// A dual matrix whose values and every lane are distinct small integers (exact in any rung).
template <class D>
Matrix<D> dual_integer_matrix(Index rows, Index cols, int offset) {
  Matrix<D> M(rows, cols);
  for (Index i = 0; i < M.size(); ++i) {
    M(i) = D(double((i * 7 + offset) % 11) - 5);
    for (std::size_t l = 0; l < M(i).d.size(); ++l) M(i).d[l] = double((i * 3 + l * 5 + offset) % 13) - 6;
  }
  return M;
}

template <class D>
bool dual_matrices_equal(const Matrix<D>& X, const Matrix<D>& Y) {
  if (X.rows() != Y.rows() || X.cols() != Y.cols()) return false;
  for (Index i = 0; i < X.size(); ++i) {
    if (X(i).v != Y(i).v) return false;
    for (std::size_t l = 0; l < X(i).d.size(); ++l)
      if (X(i).d[l] != Y(i).d[l]) return false;
  }
  return true;
}
}  // namespace

TEST_CASE("mp100 dual matrix products (lane by lane) equal the product rule coefficient by coefficient",
          "[dual]") {
  using D = bpcheck::dual<bpcheck::mp100>;
  // Integers: every sum is exact, so any order of summation must give the same numbers.
  const Matrix<D> A = dual_integer_matrix<D>(5, 7, 1), B = dual_integer_matrix<D>(7, 3, 2);
  const Matrix<D> expected = dual_product_by_coefficients(A, B);
  SECTION("plain, transposed operands and a row-major result") {
    CHECK(dual_matrices_equal<D>(A * B, expected));
    const Matrix<D> At = A.transpose(), Bt = B.transpose();
    CHECK(dual_matrices_equal<D>(At.transpose() * Bt.transpose(), expected));
    const Eigen::Matrix<D, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> R = A * B;
    CHECK(dual_matrices_equal<D>(Matrix<D>(R), expected));
  }
  SECTION("scaled and accumulated into an existing matrix") {
    Matrix<D> C = dual_integer_matrix<D>(5, 3, 3);
    const Matrix<D> before = C;
    C.noalias() += D(2.0) * A * B;
    Matrix<D> want(5, 3);
    for (Index i = 0; i < want.size(); ++i) want(i) = before(i) + D(2.0) * expected(i);
    CHECK(dual_matrices_equal<D>(C, want));
  }
  SECTION("a lane that holds zeros in one operand") {
    Matrix<D> Z = A;
    for (Index i = 0; i < Z.size(); ++i) Z(i).d[3] = 0;
    CHECK(dual_matrices_equal<D>(Z * B, dual_product_by_coefficients<D>(Z, B)));
  }
  SECTION("with fewer active lanes, the active ones are unchanged and the others stay zero") {
    Matrix<D> A3 = A, B3 = B;
    for (Index i = 0; i < A3.size(); ++i)
      for (std::size_t l = 3; l < A3(i).d.size(); ++l) A3(i).d[l] = 0;
    for (Index i = 0; i < B3.size(); ++i)
      for (std::size_t l = 3; l < B3(i).d.size(); ++l) B3(i).d[l] = 0;
    Matrix<D> C;
    {
      const bpcheck::ActiveLanes active{3};
      C = A3 * B3;
      CHECK(bpcheck::dual_detail::lanes<bpcheck::mp100, bpcheck::dual_width>() == 3);
    }
    CHECK(bpcheck::dual_detail::lanes<bpcheck::mp100, bpcheck::dual_width>() == bpcheck::dual_width);
    CHECK(dual_matrices_equal<D>(C, dual_product_by_coefficients<D>(A3, B3)));
  }
}

TEST_CASE("mp100 matrix products equal their sums coefficient by coefficient, in every storage order",
          "[dual][mp100]") {
  using bpcheck::mp100;
  using RowMajorMatrix = Eigen::Matrix<mp100, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  // Integers: exact in any order of summation.
  Matrix<mp100> A(6, 9), B(9, 4);
  for (Index i = 0; i < A.size(); ++i) A(i) = double((i * 7) % 11) - 5;
  for (Index i = 0; i < B.size(); ++i) B(i) = double((i * 5) % 13) - 6;
  Matrix<mp100> expected = Matrix<mp100>::Zero(6, 4);
  for (Index i = 0; i < 6; ++i)
    for (Index j = 0; j < 4; ++j)
      for (Index k = 0; k < 9; ++k) expected(i, j) += A(i, k) * B(k, j);
  const Matrix<mp100> At = A.transpose(), Bt = B.transpose();
  CHECK(Matrix<mp100>(A * B) == expected);
  CHECK(Matrix<mp100>(At.transpose() * B) == expected);  // a row-major left operand (dX = Wᵀ dY)
  CHECK(Matrix<mp100>(A * Bt.transpose()) == expected);  // a row-major right operand (dW = dY Xᵀ)
  CHECK(Matrix<mp100>(At.transpose() * Bt.transpose()) == expected);
  const RowMajorMatrix R = A * B;
  CHECK(Matrix<mp100>(R) == expected);
  Matrix<mp100> C = Matrix<mp100>::Constant(6, 4, mp100(3));
  C.noalias() += mp100(2) * (At.transpose() * B);
  CHECK(C == Matrix<mp100>((mp100(2) * expected).array() + mp100(3)));
  C.noalias() -= A * B;
  CHECK(C == Matrix<mp100>(expected.array() + mp100(3)));
}
