// The second-order checks (VerifyOptions::order = 2): every registered layer passes them on every rung
// (or is non-differentiable at a kink of its first derivative), and backwards that are right in value
// but do not differentiate correctly pass order 1 and fail order 2 in mp100.
#include <set>
#include <string>
#include <utility>

#include <fmt/format.h>

#include "bpcheck/catch.hpp"
#include "bpcheck/layer.hpp"
#include "bpcheck/verify/verify.hpp"
#include "cli_run.hpp"
#include "helpers.hpp"

namespace {

using bpcheck::Index;
using bpcheck::Matrix;
using bpcheck::ParameterBlock;
using bpcheck::Vector;
using bpcheck::VerificationReport;
using bpcheck::Verdict;
using bpcheck::VerifyOptions;

using bpcheck::testing::find_check;

/// The copy of x that carries no dual tangent (its value only): what a backward reads from a cache
/// of plain numbers, or from a tensor detached from the graph.
template <class T>
T detached(const T& x) {
  return T(bpcheck::value_of(x));
}

/// y = tanh x, dX = dY ⊙ (1 − c²) with c a detached copy of y: right in value, so every first-order
/// check passes, but its derivative misses −2 c ċ dY. Its Hessian (diagonal 0) is still symmetric:
/// only the second-order backward against the oracle sees it.
template <class T>
class TanhDetachedOutput {
 public:
  using scalar_type = T;
  explicit TanhDetachedOutput(Index width) : width_(width) {}
  std::string type_name() const { return "tanh (1 − c², c detached)"; }
  Index input_size() const { return width_; }
  Index output_size() const { return width_; }
  std::vector<ParameterBlock> parameter_blocks() const { return {}; }
  Vector<T> parameters() const { return {}; }
  void set_parameters(const Vector<T>&) {}
  Matrix<T> forward(const Matrix<T>& X) const {
    return X.unaryExpr([](const T& x) {
      using std::tanh;
      return T(tanh(x));
    });
  }
  Matrix<T> backward(const Matrix<T>&, const Matrix<T>& Y, const Matrix<T>& dY, Eigen::Ref<Vector<T>>) const {
    return dY.cwiseProduct(Y.unaryExpr([](const T& y) {
      const T c = detached(y);
      return T(T(1) - c * c);
    }));
  }

 private:
  Index width_;
};

/// y = W x + b, dX = Wᵀ dY from a detached snapshot of W: right in value; d(dX)/dW is lost while
/// d(dW)/dx = u ⊗ I stays, so the Hessian backward differentiates to is not symmetric.
template <class T>
class DenseDetachedWeight {
 public:
  using scalar_type = T;
  DenseDetachedWeight(Index in, Index out) : in_(in), out_(out), theta_(Vector<T>::Zero(out * in + out)) {}
  std::string type_name() const { return "dense (dX from a detached W)"; }
  Index input_size() const { return in_; }
  Index output_size() const { return out_; }
  std::vector<ParameterBlock> parameter_blocks() const {
    return {ParameterBlock{"W", out_, in_, 0}, ParameterBlock{"b", out_, 1, out_ * in_, true}};
  }
  Vector<T> parameters() const { return theta_; }
  void set_parameters(const Vector<T>& theta) { theta_ = theta; }
  Matrix<T> forward(const Matrix<T>& X) const {
    return (W() * X).colwise() + Vector<T>(theta_.tail(out_));
  }
  Matrix<T> backward(const Matrix<T>& X, const Matrix<T>&, const Matrix<T>& dY, Eigen::Ref<Vector<T>> dtheta) const {
    Eigen::Map<Matrix<T>> dW(dtheta.data(), out_, in_);
    dW += dY * X.transpose();
    dtheta.tail(out_) += dY.rowwise().sum();
    const Matrix<T> snapshot = W().unaryExpr([](const T& w) { return detached(w); });
    return snapshot.transpose() * dY;
  }

 private:
  Matrix<T> W() const { return Eigen::Map<const Matrix<T>>(theta_.data(), out_, in_); }
  Index in_, out_;
  Vector<T> theta_;
};

VerifyOptions second_order(int points = 4) {
  VerifyOptions o;
  o.order = 2;
  o.points = points;
  return o;
}

}  // namespace

TEST_CASE("second order: every registered layer passes on every rung, or is non-differentiable at a kink",
          "[verify][second-order]") {
  // tanh's backward takes (1 − y)(1 + y) near 0, whose derivative on dual numbers keeps its digits
  // (4e/(1 + e)²'s rounds e = e^{−2|x|} to 1 at |x| ≈ 1e-8 in float), and a group of two values
  // normalises as sign(c)/√(1 + eps/c²) (c/s's derivative cancels to eps beside 1): no rung loses the
  // digits of its second derivative any more.
  const std::set<std::pair<std::string, std::string>> advice{};
  const Index input_size = 4, units = 3, batch = 2;
  for (const auto& type : bpcheck::layer_types()) {
    const bpcheck::OptionKnobs knobs{std::vector<int>(bpcheck::layer_option_knob_count, 0), input_size, units, batch};
    const bpcheck::LayerSpec spec{type.name, type.options(knobs)};
    VerifyOptions o = second_order(4);
    o.batch = batch;
    const VerificationReport r = bpcheck::verify_layer(spec, input_size, o);
    INFO(type.name << " " << spec.options.dump() << "\n" << bpcheck::format_table(r));
    CHECK(r.passed());
    bool judged = false;
    for (const auto& c : r.checks) {
      if (c.check.rfind("second-order", 0) != 0) continue;
      INFO(c.check << " [" << c.precision << "]");
      if (c.verdict == Verdict::unstable && advice.count({type.name, c.precision}) == 1) continue;
      CHECK((c.verdict == Verdict::pass || c.verdict == Verdict::non_differentiable));
      judged = judged || (c.check == "second-order backward" && c.precision == "mp100" && c.verdict == Verdict::pass);
    }
    // A layer whose every point sits on a kink of f′ would say nothing; none of the registry's does.
    CHECK(judged);
  }
}

TEST_CASE("second order: order 1 runs no second-order check, and a bad order is refused", "[verify][second-order]") {
  const bpcheck::LayerSpec tanh{"tanh", {}};
  const VerificationReport first = bpcheck::verify_layer(tanh, 3, VerifyOptions{});
  CHECK(find_check(first, "second-order backward", "mp100") == nullptr);
  const VerificationReport second = bpcheck::verify_layer(tanh, 3, second_order(1));
  for (const char* check : {"second-order backward", "second-order identity"})
    for (const char* p : {"float", "double", "mp100"}) {
      INFO(check << " " << p);
      const auto* c = find_check(second, check, p);
      REQUIRE(c != nullptr);
      CHECK(c->verdict == Verdict::pass);
    }
  VerifyOptions bad;
  bad.order = 3;
  CHECK_THROWS_WITH(bpcheck::verify_layer(tanh, 3, bad), Catch::Contains("order must be 1") && Catch::Contains("not 3"));
}

TEST_CASE("second order: a backward from a detached copy of its output passes order 1 and fails order 2 in mp100",
          "[verify][second-order][mutant]") {
  const auto make = []<class T>(bpcheck::rung<T>) { return TanhDetachedOutput<T>(3); };
  const VerificationReport first = bpcheck::verify_layer(make, VerifyOptions{});
  INFO(bpcheck::format_table(first));
  CHECK(first.passed());
  const VerificationReport second = bpcheck::verify_layer(make, second_order());
  INFO(bpcheck::format_table(second));
  CHECK(!second.passed());
  const auto* backward = find_check(second, "second-order backward", "mp100");
  REQUIRE(backward != nullptr);
  CHECK(backward->verdict == Verdict::fail);
  CHECK_THAT(backward->message, Catch::Contains("does not differentiate correctly"));
  // The same bug in float and double, called wrong as in mp100.
  for (const char* p : {"float", "double"}) CHECK(find_check(second, "second-order backward", p)->verdict == Verdict::fail);
  // Its Hessian, diagonal and 0, is symmetric: the identity alone cannot see this bug.
  CHECK(find_check(second, "second-order identity", "mp100")->verdict == Verdict::pass);
}

TEST_CASE("second order: a dense backward from a detached weight fails both second-order checks in mp100",
          "[verify][second-order][mutant]") {
  const auto make = []<class T>(bpcheck::rung<T>) { return DenseDetachedWeight<T>(3, 2); };
  const VerificationReport first = bpcheck::verify_layer(make, VerifyOptions{});
  INFO(bpcheck::format_table(first));
  CHECK(first.passed());
  for (const bool projections : {false, true}) {
    VerifyOptions o = second_order();
    if (projections) o.full_jacobian_limit = 0;  // the same bug judged through projections of H v
    const VerificationReport second = bpcheck::verify_layer(make, o);
    INFO("projections " << projections << "\n" << bpcheck::format_table(second));
    CHECK(!second.passed());
    CHECK(find_check(second, "second-order backward", "mp100")->verdict == Verdict::fail);
    CHECK(find_check(second, "second-order identity", "mp100")->verdict == Verdict::fail);
    CHECK(find_check(second, "second-order identity", "double")->verdict == Verdict::fail);
  }
}

TEST_CASE("second order: a kink of the first derivative is reported non-differentiable, never a wrong Hessian",
          "[verify][second-order]") {
  // relu at an input of exactly 0 (its first derivative jumps there), reported as it is.
  Matrix<bpcheck::mp100> X(3, 1);
  X << bpcheck::mp100(0), bpcheck::mp100(0.5), bpcheck::mp100(-0.25);
  VerifyOptions o = second_order(1);
  o.inputs = X;
  o.resample_kinks = false;
  o.full_jacobian_limit = 0;  // projections: the first-order kink search needs J in full; this one does not
  const VerificationReport r = bpcheck::verify_layer(bpcheck::LayerSpec{"relu", {}}, 3, o);
  INFO(bpcheck::format_table(r));
  const auto* smooth = find_check(r, "second-order smoothness", "mp100");
  REQUIRE(smooth != nullptr);
  CHECK(smooth->verdict == Verdict::non_differentiable);
  CHECK_THAT(smooth->message, Catch::Contains("kink"));
  CHECK(find_check(r, "second-order backward", "mp100") == nullptr);
  for (const auto& c : r.checks) CHECK(c.verdict != Verdict::fail);
  // Off the kink the same layer passes.
  X(0) = bpcheck::mp100(0.125);
  o.inputs = X;
  const VerificationReport off = bpcheck::verify_layer(bpcheck::LayerSpec{"relu", {}}, 3, o);
  INFO(bpcheck::format_table(off));
  CHECK(find_check(off, "second-order smoothness", "mp100")->verdict == Verdict::pass);
  CHECK(find_check(off, "second-order backward", "mp100")->verdict == Verdict::pass);
}

TEST_CASE("bpcheck verify --order 2 adds the second-order checks, and another order exits 2", "[cli][verify][second-order]") {
  using namespace bpcheck::testing;
  const std::string model = write_file("second_order_model.json", model_text);
  const Run run = bpcheck_run("verify --model '" + model + "' --order 2 --points 1 --no-timings");
  INFO(run.out << run.err);
  CHECK(run.code == 0);
  CHECK_THAT(run.out, Catch::Contains("second-order backward      mp100  pass"));
  const Run plain = bpcheck_run("verify --model '" + model + "' --points 1 --no-timings");
  CHECK(plain.code == 0);
  CHECK_THAT(plain.out, !Catch::Contains("second-order"));
  for (const char* bad : {"3", "0", "two"}) {
    const std::string line = one_error_line(bpcheck_run("verify --model '" + model + "' --order " + std::string(bad)));
    CHECK_THAT(line, Catch::Contains("--order") && Catch::Contains("1 (first-order checks) or 2"));
  }
}
