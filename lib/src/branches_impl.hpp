#pragma once
// Definitions behind bpcheck/layers/branches.hpp, included only by the instantiation units.
#include <string>

#include "bpcheck/layers/branches.hpp"

namespace bpcheck {

template <class T, bool Independent>
Branches<T, Independent>::Branches(Index input_size, std::vector<Branch> branches, Join join)
    : input_size_(input_size), branches_(std::move(branches)), join_(join) {
  const std::string name = type_name();
  if (branches_.size() < 2)
    throw input_error(name + ": needs at least two branches (one branch is a plain sequence of layers)");
  for (std::size_t b = 0; b < branches_.size(); ++b) {
    Index width = input_size_;
    offsets_.emplace_back();
    for (std::size_t k = 0; k < branches_[b].size(); ++k) {
      const auto& l = branches_[b][k];
      if (l.input_size() != width)
        throw input_error(name + ": branch " + std::to_string(b) + ", layer " + std::to_string(k) + " takes " +
                          std::to_string(l.input_size()) + " inputs but receives " + std::to_string(width));
      width = l.output_size();
      offsets_.back().push_back(parameter_count_);
      parameter_count_ += l.parameter_count();
    }
    widths_.push_back(width);
    row_offsets_.push_back(output_size_);
    output_size_ = join_ == Join::concat ? output_size_ + width : width;
    if (join_ == Join::add && width != widths_.front())
      throw input_error(name + ": branch " + std::to_string(b) + " gives " + std::to_string(width) +
                        " features but branch 0 gives " + std::to_string(widths_.front()) +
                        "; a sum needs the same width");
  }
}

template <class T, bool Independent>
std::vector<ParameterBlock> Branches<T, Independent>::parameter_blocks() const {
  std::vector<ParameterBlock> blocks;
  for (std::size_t b = 0; b < branches_.size(); ++b)
    for (std::size_t k = 0; k < branches_[b].size(); ++k)
      for (auto block : branches_[b][k].parameter_blocks()) {
        block.name = std::to_string(b) + "." + std::to_string(k) + "." + block.name;
        block.offset += offsets_[b][k];
        blocks.push_back(std::move(block));
      }
  return blocks;
}

template <class T, bool Independent>
Vector<T> Branches<T, Independent>::parameters() const {
  Vector<T> theta(parameter_count_);
  for (std::size_t b = 0; b < branches_.size(); ++b)
    for (std::size_t k = 0; k < branches_[b].size(); ++k)
      theta.segment(offsets_[b][k], branches_[b][k].parameter_count()) = branches_[b][k].parameters();
  return theta;
}

template <class T, bool Independent>
void Branches<T, Independent>::set_parameters(const Vector<T>& theta) {
  if (theta.size() != parameter_count_)
    throw input_error(type_name() + ": expected " + std::to_string(parameter_count_) + " parameters, got " +
                      std::to_string(theta.size()));
  for (std::size_t b = 0; b < branches_.size(); ++b)
    for (std::size_t k = 0; k < branches_[b].size(); ++k)
      branches_[b][k].set_parameters(theta.segment(offsets_[b][k], branches_[b][k].parameter_count()));
}

template <class T, bool Independent>
std::vector<Matrix<T>> Branches<T, Independent>::activations(std::size_t b, const Matrix<T>& X) const {
  std::vector<Matrix<T>> xs{X};
  for (const auto& l : branches_[b]) xs.push_back(l.forward(xs.back()));
  return xs;
}

template <class T, bool Independent>
void Branches<T, Independent>::add_rows(std::size_t b, const Matrix<T>& from, Matrix<T>& to, Index batch) const {
  if (join_ == Join::add) {
    to += from;
    return;
  }
  // concat: sample s's rows s·width_b … of the branch go to s·out + off_b … of the output
  const Index w = widths_[b];
  for (Index s = 0; s < batch; ++s) to.middleRows(s * output_size_ + row_offsets_[b], w) += from.middleRows(s * w, w);
}

template <class T, bool Independent>
Matrix<T> Branches<T, Independent>::forward(const Matrix<T>& X) const {
  expect_rows(X, input_size_, type_name());
  Matrix<T> Y = Matrix<T>::Zero(output_size_, X.cols());
  for (std::size_t b = 0; b < branches_.size(); ++b) {
    const Matrix<T> y = activations(b, X).back();
    if (join_ == Join::add)
      Y += y;
    else
      Y.middleRows(row_offsets_[b], widths_[b]) = y;
  }
  return Y;
}

template <class T, bool Independent>
Matrix<T> Branches<T, Independent>::backward(const Matrix<T>& X, const Matrix<T>&, const Matrix<T>& dY,
                                             Eigen::Ref<Vector<T>> dtheta) const {
  Matrix<T> dX = Matrix<T>::Zero(X.rows(), X.cols());
  for (std::size_t b = 0; b < branches_.size(); ++b) {
    const auto xs = activations(b, X);
    Matrix<T> delta = join_ == Join::add ? dY : Matrix<T>(dY.middleRows(row_offsets_[b], widths_[b]));
    for (std::size_t k = branches_[b].size(); k-- > 0;) {
      Eigen::Ref<Vector<T>> dk = dtheta.segment(offsets_[b][k], branches_[b][k].parameter_count());
      delta = branches_[b][k].backward(xs[k], xs[k + 1], delta, dk);
    }
    dX += delta;
  }
  return dX;
}

template <class T, bool Independent>
Matrix<T> Branches<T, Independent>::jacobian_input(const Matrix<T>& X) const {
  const Index B = X.cols();
  Matrix<T> J = Matrix<T>::Zero(output_size_ * B, X.size());
  for (std::size_t b = 0; b < branches_.size(); ++b) {
    const auto xs = activations(b, X);
    Matrix<T> Jb = Matrix<T>::Identity(X.size(), X.size());
    for (std::size_t k = 0; k < branches_[b].size(); ++k) Jb = (branches_[b][k].jacobian_input(xs[k]) * Jb).eval();
    add_rows(b, Jb, J, B);
  }
  return J;
}

template <class T, bool Independent>
Matrix<T> Branches<T, Independent>::jacobian_parameters(const Matrix<T>& X) const {
  const Index B = X.cols();
  Matrix<T> J = Matrix<T>::Zero(output_size_ * B, parameter_count_);
  for (std::size_t b = 0; b < branches_.size(); ++b) {
    const auto xs = activations(b, X);
    // P = J_{b,m} ⋯ J_{b,k+1}, grown one factor to the right per step from the identity
    Matrix<T> P = Matrix<T>::Identity(widths_[b] * B, widths_[b] * B);
    for (std::size_t k = branches_[b].size(); k-- > 0;) {
      const Index pk = branches_[b][k].parameter_count();
      if (pk > 0) {
        Matrix<T> columns = Matrix<T>::Zero(output_size_ * B, pk);
        add_rows(b, Matrix<T>(P * branches_[b][k].jacobian_parameters(xs[k])), columns, B);
        J.middleCols(offsets_[b][k], pk) = columns;
      }
      P = (P * branches_[b][k].jacobian_input(xs[k])).eval();
    }
  }
  return J;
}

template <class T, bool Independent>
Matrix<T> Branches<T, Independent>::absolute_jacobian(const Matrix<T>& X) const {
  const Index B = X.cols(), n = X.size();
  Matrix<T> J = Matrix<T>::Zero(output_size_ * B, n + parameter_count_);
  for (std::size_t b = 0; b < branches_.size(); ++b) {
    const auto xs = activations(b, X);
    // P = |J_{b,m}| ⋯ |J_{b,k+1}|, grown one factor to the right per step from the identity
    Matrix<T> P = Matrix<T>::Identity(widths_[b] * B, widths_[b] * B);
    for (std::size_t k = branches_[b].size(); k-- > 0;) {
      const Matrix<T> A = branches_[b][k].absolute_jacobian(xs[k]);
      const Index nk = xs[k].size(), pk = branches_[b][k].parameter_count();
      if (pk > 0) {
        Matrix<T> columns = Matrix<T>::Zero(output_size_ * B, pk);
        add_rows(b, Matrix<T>(P * A.rightCols(pk)), columns, B);
        J.middleCols(n + offsets_[b][k], pk) = columns;
      }
      P = (P * A.leftCols(nk)).eval();
    }
    Matrix<T> input_columns = Matrix<T>::Zero(output_size_ * B, n);
    add_rows(b, P, input_columns, B);
    J.leftCols(n) += input_columns;
  }
  return J;
}

static_assert(LayerWithAbsoluteJacobian<Branches<double>>, "add/concat must state its absolute Jacobian");
static_assert(LayerWithJacobians<Branches<double>>, "add/concat must satisfy the Layer concept with Jacobians");

}  // namespace bpcheck
