// Golub–Kahan–Lanczos on a network's Jacobian products, in double or mp100 (see report_lanczos.hpp).
#include "report_lanczos.hpp"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>

#include "bpcheck/dual.hpp"
#include "bpcheck/error.hpp"
#include "bpcheck/random.hpp"
#include "report_svd.hpp"

namespace bpcheck::report {

namespace {

template <class T>
using Product = std::function<Vector<T>(const Vector<T>&)>;

/// Removes from w its components along the (orthonormal) basis; twice, so that orthogonality holds to
/// the precision's rounding however much cancels ("twice is enough").
template <class T>
void orthogonalise(Vector<T>& w, const std::vector<Vector<T>>& basis) {
  for (int pass = 0; pass < 2; ++pass)
    for (const auto& b : basis) w -= T(b.dot(w)) * b;
}

template <class T>
Vector<T> random_unit(Index n, const std::vector<Vector<T>>& basis, Random& rng) {
  for (;;) {
    Vector<T> w(n);
    for (Index i = 0; i < n; ++i) w(i) = T(rng.symmetric());
    orthogonalise(w, basis);
    const T norm = w.norm();
    if (norm > T(0)) return (w / norm).eval();
  }
}

/// k steps of bidiagonalisation of A (m × n, n ≤ m): the Ritz values, decreasing, as exact mp100 numbers
/// of B_k's entries handed to the SVD (double when it resolves them, mp100 otherwise).
template <class T>
SingularValues bidiagonal_singular_values(const Product<T>& A, const Product<T>& At, Index m, Index n, int steps,
                                          std::uint64_t seed) {
  Random rng(seed ^ 0x6c616e637a6f73ULL);
  using std::max;
  const T tiny = T(100) * scalar_traits<T>::epsilon();
  std::vector<Vector<T>> V, U;
  std::vector<T> alpha, beta;
  V.push_back(random_unit<T>(n, V, rng));
  T scale = 0;  // the largest α, β so far: a lower bound of ‖A‖, the scale of "zero"
  for (int j = 0; j < steps; ++j) {
    Vector<T> u = A(V[j]);
    if (j > 0) u -= beta[j - 1] * U[j - 1];
    orthogonalise(u, U);
    T a = u.norm();
    scale = max(scale, a);
    // A zero α: A·v_j lies in span(U) (a zero singular value); the next u is any unit vector orthogonal to U.
    if (!(a > tiny * scale)) {
      a = 0;
      u = random_unit<T>(m, U, rng);
    } else {
      u /= a;
    }
    alpha.push_back(a);
    U.push_back(std::move(u));
    if (j + 1 == steps) break;
    Vector<T> w = At(U[j]) - alpha[j] * V[j];
    orthogonalise(w, V);
    T b = w.norm();
    scale = max(scale, b);
    // A zero β: span(V) is invariant; restart with a unit vector orthogonal to it.
    if (!(b > tiny * scale)) {
      b = 0;
      w = random_unit<T>(n, V, rng);
    } else {
      w /= b;
    }
    beta.push_back(b);
    V.push_back(std::move(w));
  }
  Matrix<mp100> B = Matrix<mp100>::Zero(steps, steps);
  for (int j = 0; j < steps; ++j) {
    B(j, j) = mp100(alpha[j]);
    if (j + 1 < steps) B(j, j + 1) = mp100(beta[j]);
  }
  return singular_values(B);
}

/// The products P·v and Pᵀ·u of layers [first, last) at x, in T: P·v from one forward pass on dual<T>
/// (one tangent lane), Pᵀ·u from the layers' backward.
template <class T>
SpectrumEstimate run(const Network<mp100>& exact, const Vector<mp100>& x, std::size_t first, std::size_t last,
                     int max_steps, std::uint64_t seed) {
  const Network<T> net = exact.template rebind<T>();
  const Network<dual<T>> tangent = net.template rebind<dual<T>>();
  std::vector<Matrix<T>> acts{vector_cast<T>(x)};
  for (std::size_t i = first; i < last; ++i) acts.push_back(net.layer(i).forward(acts.back()));
  const Index n = acts.front().size(), m = acts.back().size();
  const Product<T> P = [&](const Vector<T>& v) -> Vector<T> {
    const ActiveLanes lanes(1);
    Matrix<dual<T>> Z(n, 1);
    for (Index i = 0; i < n; ++i) {
      Z(i) = dual<T>(acts.front()(i));
      Z(i).d[0] = v(i);
    }
    for (std::size_t i = first; i < last; ++i) Z = tangent.layer(i).forward(Z);
    Vector<T> r(Z.size());
    for (Index i = 0; i < Z.size(); ++i) r(i) = Z(i).d[0];
    return r;
  };
  const Product<T> Pt = [&](const Vector<T>& u) -> Vector<T> {
    Matrix<T> d = u;
    for (std::size_t i = last; i-- > first;) {
      Vector<T> dtheta = Vector<T>::Zero(net.layer(i).parameter_count());
      d = net.layer(i).backward(acts[i - first], acts[i - first + 1], d, dtheta);
    }
    return Eigen::Map<const Vector<T>>(d.data(), d.size());
  };
  // Run on the orientation with n ≤ m, whose σ_min is the min(m, n)-th singular value.
  const bool wide = n > m;
  const Index rows = wide ? n : m, cols = wide ? m : n;
  const int steps = int(std::min<Index>(cols, max_steps));
  const SingularValues s = wide ? bidiagonal_singular_values<T>(Pt, P, rows, cols, steps, seed)
                                : bidiagonal_singular_values<T>(P, Pt, rows, cols, steps, seed);
  SpectrumEstimate e;
  e.precision = scalar_name<T>();
  e.steps = steps;
  e.dimension = cols;
  e.exact = steps == cols;
  e.values = s.values;
  e.rank = s.rank;
  e.sigma_max = s.sigma_max;
  e.sigma_min = s.sigma_min;
  e.cond = s.cond;
  // In double B's tiny entries are rounding, not rank: singular only by mp100's floor.
  e.singular = s.singular && (std::is_same_v<T, mp100> || s.sigma_max == 0);
  return e;
}

}  // namespace

SpectrumEstimate product_spectrum(const Network<mp100>& net, const Vector<mp100>& x, std::size_t first,
                                  std::size_t last, const LanczosOptions& options,
                                  const std::vector<double>& layer_norms) {
  if (first >= last || last > net.depth()) throw error("product_spectrum: an empty range of layers");
  Index widest = x.size();
  for (std::size_t i = first; i < last; ++i) widest = std::max(widest, net.layer(i).output_size());
  const bool mp100_affordable = widest <= options.max_mp100_width;
  if (!options.double_first) {
    SpectrumEstimate e = run<mp100>(net, x, first, last, options.max_steps, options.seed);
    e.norm_product = e.sigma_max;
    return e;
  }
  SpectrumEstimate e = run<double>(net, x, first, last, options.max_steps, options.seed);
  // ∏‖J_i‖: double's products are exact for a perturbation of each J_i by about u·‖J_i‖, so P by about
  // u·∏‖J_i‖ (times the depth), whatever cancellation makes ‖P‖ itself smaller.
  double norms = 1;
  if (last - first == 1) {
    norms = e.sigma_max;
  } else {
    Vector<mp100> xi = x;
    for (std::size_t i = first; i < last; ++i) {
      double ni = i < layer_norms.size() ? layer_norms[i] : 0;
      if (!(ni > 0)) {
        LanczosOptions one = options;
        one.max_steps = std::min(options.max_steps, 16);  // σ_max converges first
        ni = run<double>(net, xi, i, i + 1, one.max_steps, options.seed).sigma_max;
      }
      norms *= ni;
      if (i + 1 < last) {
        const Matrix<mp100> next = net.layer(i).forward(Matrix<mp100>(xi));
        xi = Eigen::Map<const Vector<mp100>>(next.data(), next.size());
      }
    }
  }
  e.norm_product = norms;
  if (e.sigma_min > 1e-8 * norms && std::isfinite(e.cond)) return e;  // at least ~6 of σ_min's digits hold
  if (mp100_affordable) {
    SpectrumEstimate m = run<mp100>(net, x, first, last, options.max_steps, options.seed);
    m.norm_product = norms;
    return m;
  }
  e.resolved = false;
  return e;
}

}  // namespace bpcheck::report
