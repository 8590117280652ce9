#pragma once
// The Layer concept, the type-erased AnyLayer, and the registry that builds layers by name.
//
//   bpcheck::Dense<double> dense(4, 3);                  // 4 inputs, 3 units
//   bpcheck::Matrix<double> X = ...;                     // 4 × batch, one column per sample
//   auto Y = dense.forward(X);                           // 3 × batch
//   bpcheck::Vector<double> dtheta = bpcheck::Vector<double>::Zero(dense.parameter_count());
//   auto dX = dense.backward(X, Y, dY, dtheta);          // VJP: dX = J_xᵀ dY, dθ += J_θᵀ dY
//
// Conventions. A batch is a matrix with one column per sample; vec() stacks columns, so vec(X) is
// sample 0's features, then sample 1's, and the batch Jacobians J_x (out·B × in·B) and
// J_θ (out·B × P) act on vec(X) and on the flat parameter vector θ. θ is the concatenation of the
// layer's blocks in declared order, each block vectorised column-major (vec(W) for a matrix W).
#include <concepts>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bpcheck/scalar.hpp"

namespace bpcheck {

/// One named block of a layer's flat parameter vector: θ[offset, offset + rows·cols) is vec(block).
struct ParameterBlock {
  std::string name;  ///< "W", "b", …
  Index rows = 0;
  Index cols = 0;    ///< 1 for a vector block
  Index offset = 0;  ///< start in the flat parameter vector
  bool is_vector = false;  ///< printed as a flat list rather than nested rows
  Index size() const { return rows * cols; }
};

// clang-format off
/// What every layer provides. A layer is a class template over its scalar; the same source runs on
/// float, double, mp100 and dual numbers.
template <class L>
concept Layer = requires(const L& cl, L& l, const Matrix<typename L::scalar_type>& X,
                         const Vector<typename L::scalar_type>& theta,
                         Eigen::Ref<Vector<typename L::scalar_type>> dtheta) {
  typename L::scalar_type;
  { cl.type_name() } -> std::convertible_to<std::string>;
  { cl.input_size() } -> std::convertible_to<Index>;
  { cl.output_size() } -> std::convertible_to<Index>;
  { cl.parameter_blocks() } -> std::convertible_to<std::vector<ParameterBlock>>;
  { cl.parameters() } -> std::convertible_to<Vector<typename L::scalar_type>>;
  l.set_parameters(theta);
  { cl.forward(X) } -> std::convertible_to<Matrix<typename L::scalar_type>>;
  // backward(X, Y = forward(X), dY, dθ): returns dX = J_xᵀ dY and adds J_θᵀ dY to dθ.
  { cl.backward(X, X, X, dtheta) } -> std::convertible_to<Matrix<typename L::scalar_type>>;
};

/// A layer that also states its Jacobians on a whole batch (out·B × in·B and out·B × P).
template <class L>
concept LayerWithJacobians = Layer<L> && requires(const L& cl, const Matrix<typename L::scalar_type>& X) {
  { cl.jacobian_input(X) } -> std::convertible_to<Matrix<typename L::scalar_type>>;
  { cl.jacobian_parameters(X) } -> std::convertible_to<Matrix<typename L::scalar_type>>;
};
// clang-format on

/// A layer that can add J_θᵀ dY to dθ without forming dX = J_xᵀ dY. Backprop of a training step needs no
/// gradient with respect to the network's input, so Network::gradient with InputGradient::skip calls
/// this for the first layer (for a dense layer it spares one of backward's two matrix products). What it
/// adds must be what backward adds: the verifier compares the two.
template <class L>
concept LayerWithParameterBackward = Layer<L> && requires(const L& cl, const Matrix<typename L::scalar_type>& X,
                                                          Eigen::Ref<Vector<typename L::scalar_type>> dtheta) {
  cl.backward_parameters(X, X, X, dtheta);
};

/// A layer that states its Jacobian as its computation forms it, in absolute values: `absolute_jacobian(X)`
/// is [J_x J_θ] on the batch with every product of local derivatives along every path taken in |·|
/// (diag(s) + s sᵀ for softmax, I + |J_g| for a residual block). It bounds |J| entry by entry, and
/// the rounding of every route to J (backward, forward mode, the stated J) is bounded relative to
/// it, where |J| itself is the small difference of large terms.
template <class L>
concept LayerWithAbsoluteJacobian = Layer<L> && requires(const L& cl, const Matrix<typename L::scalar_type>& X) {
  { cl.absolute_jacobian(X) } -> std::convertible_to<Matrix<typename L::scalar_type>>;
};

/// Total size of a layer's parameter vector.
inline Index parameter_count(const std::vector<ParameterBlock>& blocks) {
  Index n = 0;
  for (const auto& b : blocks) n += b.size();
  return n;
}

/// Whether samples of a batch are processed independently (J_x is block-diagonal over samples).
/// Layers that couple samples (batch norm) declare `static constexpr bool sample_independent = false`.
template <class L>
constexpr bool is_sample_independent() {
  if constexpr (requires { L::sample_independent; })
    return L::sample_independent;
  else
    return true;
}

/// Whether a layer's input holds integer indices (embedding). Such a layer has
/// `bool input_is_index() const` returning true and `Index index_count() const` (valid indices are
/// 0 … index_count − 1). Its output is piecewise constant in the input, so there is no gradient with
/// respect to the input: the verifier draws valid indices and moves only θ.
template <class L>
bool has_index_input(const L& layer) {
  if constexpr (requires { layer.input_is_index(); })
    return layer.input_is_index();
  else
    return false;
}
/// The number of valid indices of a layer with index input (0 for other layers).
template <class L>
Index index_input_count(const L& layer) {
  if constexpr (requires { layer.index_count(); })
    return layer.index_count();
  else
    return 0;
}

/// A layer of any concrete type on scalar T, held by value (copies deep-copy the layer).
template <class T>
class AnyLayer {
 public:
  using scalar_type = T;

  template <Layer L>
    requires std::same_as<typename L::scalar_type, T>
  AnyLayer(L layer)  // NOLINT: implicit, any Layer converts
      : self_(std::make_unique<Model<L>>(std::move(layer))) {}

  AnyLayer(const AnyLayer& o) : self_(o.self_->clone()) {}
  AnyLayer(AnyLayer&&) noexcept = default;
  AnyLayer& operator=(const AnyLayer& o) {
    if (this != &o) self_ = o.self_->clone();
    return *this;
  }
  AnyLayer& operator=(AnyLayer&&) noexcept = default;

  std::string type_name() const { return self_->type_name(); }
  Index input_size() const { return self_->input_size(); }
  Index output_size() const { return self_->output_size(); }
  std::vector<ParameterBlock> parameter_blocks() const { return self_->parameter_blocks(); }
  Index parameter_count() const { return bpcheck::parameter_count(parameter_blocks()); }
  Vector<T> parameters() const { return self_->parameters(); }
  /// A Ref, so that a network sets each layer from a segment of its θ without a copy where the layer
  /// takes one too (Dense); a layer taking `const Vector<T>&` gets the segment copied.
  void set_parameters(Eigen::Ref<const Vector<T>> theta) { self_->set_parameters(theta); }
  Matrix<T> forward(const Matrix<T>& X) const { return self_->forward(X); }
  Matrix<T> backward(const Matrix<T>& X, const Matrix<T>& Y, const Matrix<T>& dY,
                     Eigen::Ref<Vector<T>> dtheta) const {
    return self_->backward(X, Y, dY, dtheta);
  }
  /// Adds J_θᵀ dY to dθ like backward, without dX: the layer's own backward_parameters if it states one
  /// (LayerWithParameterBackward), else backward with its dX discarded.
  void backward_parameters(const Matrix<T>& X, const Matrix<T>& Y, const Matrix<T>& dY,
                           Eigen::Ref<Vector<T>> dtheta) const {
    self_->backward_parameters(X, Y, dY, dtheta);
  }
  /// Whether the layer states its own backward_parameters.
  bool has_parameter_backward() const { return self_->has_parameter_backward(); }
  bool has_jacobians() const { return self_->has_jacobians(); }
  bool sample_independent() const { return self_->sample_independent(); }
  /// See has_index_input: true for a layer whose input holds integer indices.
  bool input_is_index() const { return self_->input_is_index(); }
  Index index_count() const { return self_->index_count(); }
  /// J_x on the batch; throws bpcheck::error for a layer that states no Jacobians.
  Matrix<T> jacobian_input(const Matrix<T>& X) const { return self_->jacobian_input(X); }
  /// J_θ on the batch; throws bpcheck::error for a layer that states no Jacobians.
  Matrix<T> jacobian_parameters(const Matrix<T>& X) const { return self_->jacobian_parameters(X); }
  /// Whether the layer states an absolute Jacobian (LayerWithAbsoluteJacobian).
  bool has_absolute_jacobian() const { return self_->has_absolute_jacobian(); }
  /// The stated absolute Jacobian; for a layer that states none, |[J_x J_θ]| (throws bpcheck::error
  /// for a layer that states no Jacobians either).
  Matrix<T> absolute_jacobian(const Matrix<T>& X) const { return self_->absolute_jacobian(X); }

 private:
  struct Concept {
    virtual ~Concept() = default;
    virtual std::unique_ptr<Concept> clone() const = 0;
    virtual std::string type_name() const = 0;
    virtual Index input_size() const = 0;
    virtual Index output_size() const = 0;
    virtual std::vector<ParameterBlock> parameter_blocks() const = 0;
    virtual Vector<T> parameters() const = 0;
    virtual void set_parameters(Eigen::Ref<const Vector<T>>) = 0;
    virtual Matrix<T> forward(const Matrix<T>&) const = 0;
    virtual Matrix<T> backward(const Matrix<T>&, const Matrix<T>&, const Matrix<T>&,
                               Eigen::Ref<Vector<T>>) const = 0;
    virtual void backward_parameters(const Matrix<T>&, const Matrix<T>&, const Matrix<T>&,
                                     Eigen::Ref<Vector<T>>) const = 0;
    virtual bool has_parameter_backward() const = 0;
    virtual bool has_jacobians() const = 0;
    virtual bool sample_independent() const = 0;
    virtual bool input_is_index() const = 0;
    virtual Index index_count() const = 0;
    virtual Matrix<T> jacobian_input(const Matrix<T>&) const = 0;
    virtual Matrix<T> jacobian_parameters(const Matrix<T>&) const = 0;
    virtual bool has_absolute_jacobian() const = 0;
    virtual Matrix<T> absolute_jacobian(const Matrix<T>&) const = 0;
  };
  template <class L>
  struct Model final : Concept {
    L layer;
    explicit Model(L l) : layer(std::move(l)) {}
    std::unique_ptr<Concept> clone() const override { return std::make_unique<Model>(layer); }
    std::string type_name() const override { return layer.type_name(); }
    Index input_size() const override { return layer.input_size(); }
    Index output_size() const override { return layer.output_size(); }
    std::vector<ParameterBlock> parameter_blocks() const override { return layer.parameter_blocks(); }
    Vector<T> parameters() const override { return layer.parameters(); }
    void set_parameters(Eigen::Ref<const Vector<T>> theta) override { layer.set_parameters(theta); }
    Matrix<T> forward(const Matrix<T>& X) const override { return layer.forward(X); }
    Matrix<T> backward(const Matrix<T>& X, const Matrix<T>& Y, const Matrix<T>& dY,
                       Eigen::Ref<Vector<T>> dtheta) const override {
      return layer.backward(X, Y, dY, dtheta);
    }
    void backward_parameters(const Matrix<T>& X, const Matrix<T>& Y, const Matrix<T>& dY,
                             Eigen::Ref<Vector<T>> dtheta) const override {
      if constexpr (LayerWithParameterBackward<L>)
        layer.backward_parameters(X, Y, dY, dtheta);
      else
        (void)layer.backward(X, Y, dY, dtheta);
    }
    bool has_parameter_backward() const override { return LayerWithParameterBackward<L>; }
    bool has_jacobians() const override { return LayerWithJacobians<L>; }
    bool sample_independent() const override { return is_sample_independent<L>(); }
    bool input_is_index() const override { return has_index_input(layer); }
    Index index_count() const override { return index_input_count(layer); }
    Matrix<T> jacobian_input(const Matrix<T>& X) const override {
      if constexpr (LayerWithJacobians<L>)
        return layer.jacobian_input(X);
      else
        throw error("layer '" + layer.type_name() + "' states no explicit Jacobian J_x");
    }
    Matrix<T> jacobian_parameters(const Matrix<T>& X) const override {
      if constexpr (LayerWithJacobians<L>)
        return layer.jacobian_parameters(X);
      else
        throw error("layer '" + layer.type_name() + "' states no explicit Jacobian J_θ");
    }
    bool has_absolute_jacobian() const override { return LayerWithAbsoluteJacobian<L>; }
    Matrix<T> absolute_jacobian(const Matrix<T>& X) const override {
      if constexpr (LayerWithAbsoluteJacobian<L>) {
        return layer.absolute_jacobian(X);
      } else {
        const Matrix<T> Jx = jacobian_input(X), Jt = jacobian_parameters(X);
        Matrix<T> J(Jx.rows(), Jx.cols() + Jt.cols());
        J << Jx, Jt;
        using std::abs;
        return J.unaryExpr([](const T& v) { return T(abs(v)); });
      }
    }
  };
  std::unique_ptr<Concept> self_;
};

/// A layer as named in a model spec: its type and its options ({"type": "dense", "units": 8}).
struct LayerSpec {
  std::string type;
  nlohmann::json options = nlohmann::json::object();  ///< every key but "type"
};

/// The names the registry knows, in documentation order.
const std::vector<std::string>& layer_type_names();

/// How a registered layer's output width follows from its input.
enum class LayerShape {
  elementwise,   ///< y_i = f(x_i): the input's width, J_x diagonal
  same_width,    ///< the input's width, entries coupled or moved (softmax, flatten)
  from_options,  ///< width and parameters follow from the options (dense, conv, attention, …)
};

/// What picks a layer's options when the property suite generates one: `knobs` are
/// layer_option_knob_count small non-negative integers (all 0 picks the simplest options), the sizes
/// are those the options must fit.
struct OptionKnobs {
  std::vector<int> knobs;
  Index input_size = 1;
  Index units = 1;  ///< the width of a layer that chooses one (dense)
  Index batch = 1;
};
inline constexpr int layer_option_knob_count = 8;

/// A registered layer type as the registry's table states it (less its factory, which is per rung).
struct LayerTypeInfo {
  std::string name;
  std::string summary;  ///< one line: what it computes (docs/layers.md lists every one)
  LayerShape shape;
  /// Valid options for `knobs.input_size` inputs and a batch of `knobs.batch`: conv and pooling
  /// shapes that divide the width, heads that divide the embedding, a residual branch that keeps it.
  nlohmann::json (*options)(const OptionKnobs& knobs);
};

/// Every registered layer type, in documentation order.
const std::vector<LayerTypeInfo>& layer_types();
/// The registered layer type `name`; throws input_error("unknown layer type …", naming the known ones).
const LayerTypeInfo& layer_type(const std::string& name);

/// Builds a registered layer on scalar T with zero parameters. Throws input_error for an unknown
/// type, an unknown or ill-typed option, or a size that is not positive.
template <class T>
AnyLayer<T> make_layer(const LayerSpec& spec, Index input_size);

#define BPCHECK_EXTERN_MAKE_LAYER(T) extern template AnyLayer<T> make_layer<T>(const LayerSpec&, Index);
BPCHECK_ALL_RUNGS(BPCHECK_EXTERN_MAKE_LAYER)
#undef BPCHECK_EXTERN_MAKE_LAYER

// ---- helpers shared by layer implementations --------------------------------------------------

/// Checks a batch's row count against a layer's input size; throws input_error naming both.
template <class T>
void expect_rows(const Matrix<T>& X, Index rows, const std::string& who) {
  if (X.rows() != rows)
    throw input_error(who + ": expected " + std::to_string(rows) + " features per sample, got " +
                      std::to_string(X.rows()));
  if (X.cols() == 0) throw input_error(who + ": empty batch (0 samples)");
}

/// kron(I_B, A): the batch Jacobian of a sample-independent map whose per-sample Jacobian is A.
template <class T>
Matrix<T> block_diagonal(const std::vector<Matrix<T>>& blocks) {
  Index rows = 0, cols = 0;
  for (const auto& b : blocks) rows += b.rows(), cols += b.cols();
  Matrix<T> J = Matrix<T>::Zero(rows, cols);
  Index r = 0, c = 0;
  for (const auto& b : blocks) {
    J.block(r, c, b.rows(), b.cols()) = b;
    r += b.rows();
    c += b.cols();
  }
  return J;
}

}  // namespace bpcheck
