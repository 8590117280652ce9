#pragma once
// The families of templates on the scalar that the library instantiates explicitly, and what one
// rung's instantiation of each consists of; the headers carry the matching `extern template`.
// instantiate_fast.cpp (float, double and their duals), instantiate_mp100.cpp and
// instantiate_dual_mp100.cpp instantiate every family once for their rungs: one unit per rung group,
// so each rung's Eigen kernels are instantiated once, and mp100 apart (compiled at -O1; see
// lib/CMakeLists.txt). The class lists are the families' own (BPCHECK_<FAMILY>_CLASSES in each
// header): a new layer of an existing family is one line there, not here.
#include "bpcheck/layers/activations.hpp"
#include "bpcheck/layers/attention.hpp"
#include "bpcheck/layers/conv.hpp"
#include "bpcheck/layers/dense.hpp"
#include "bpcheck/layers/dropout.hpp"
#include "bpcheck/layers/embedding.hpp"
#include "bpcheck/layers/extra_activations.hpp"
#include "bpcheck/layers/norms.hpp"
#include "bpcheck/layers/pool.hpp"
#include "bpcheck/layers/residual.hpp"
#include "bpcheck/layers/softmax.hpp"
#include "bpcheck/verify/finite_difference.hpp"
#include "bpcheck/verify/jvp.hpp"
#include "branches_impl.hpp"
#include "io_impl.hpp"
#include "jvp_impl.hpp"
#include "layer_table.hpp"
#include "losses_impl.hpp"
#include "network_impl.hpp"
#include "products_impl.hpp"
#include "verify_fd_instantiations.hpp"
#include "verify_jvp_instantiations.hpp"

#define BPCHECK_INSTANTIATE_LAYERS(T)                   \
  BPCHECK_DENSE_CLASSES(BPCHECK_TEMPLATE_CLASS, T)       \
  BPCHECK_ACTIVATIONS_CLASSES(BPCHECK_TEMPLATE_CLASS, T) \
  BPCHECK_SOFTMAX_CLASSES(BPCHECK_TEMPLATE_CLASS, T)     \
  template Matrix<T> softmax_columns<T>(const Matrix<T>&); \
  template Matrix<T> log_softmax_columns<T>(const Matrix<T>&);

#define BPCHECK_INSTANTIATE_EXTRA_ACTIVATIONS(T)               \
  BPCHECK_EXTRA_ACTIVATIONS_CLASSES(BPCHECK_TEMPLATE_CLASS, T) \
  BPCHECK_DROPOUT_CLASSES(BPCHECK_TEMPLATE_CLASS, T)

#define BPCHECK_INSTANTIATE_NORMS(T) BPCHECK_NORMS_CLASSES(BPCHECK_TEMPLATE_CLASS, T)

#define BPCHECK_INSTANTIATE_CONV_POOL(T)          \
  BPCHECK_CONV_CLASSES(BPCHECK_TEMPLATE_CLASS, T) \
  BPCHECK_POOL_CLASSES(BPCHECK_TEMPLATE_CLASS, T)

#define BPCHECK_INSTANTIATE_COMPOSITES(T)             \
  BPCHECK_RESIDUAL_CLASSES(BPCHECK_TEMPLATE_CLASS, T)  \
  BPCHECK_BRANCHES_CLASSES(BPCHECK_TEMPLATE_CLASS, T)  \
  BPCHECK_ATTENTION_CLASSES(BPCHECK_TEMPLATE_CLASS, T) \
  BPCHECK_EMBEDDING_CLASSES(BPCHECK_TEMPLATE_CLASS, T)

/// The families on every rung: the layers, the network, the losses and the registry.
#define BPCHECK_INSTANTIATE_EVERY_RUNG(T)  \
  BPCHECK_INSTANTIATE_PRODUCTS(T)          \
  BPCHECK_INSTANTIATE_LAYERS(T)            \
  BPCHECK_INSTANTIATE_EXTRA_ACTIVATIONS(T) \
  BPCHECK_INSTANTIATE_NORMS(T)             \
  BPCHECK_INSTANTIATE_CONV_POOL(T)         \
  BPCHECK_INSTANTIATE_COMPOSITES(T)        \
  BPCHECK_INSTANTIATE_NETWORK(T)           \
  BPCHECK_INSTANTIATE_LOSSES(T)            \
  BPCHECK_INSTANTIATE_MAKE_LAYER(T)

/// The families on the real rungs (float, double, mp100) only: the oracles, which run on dual
/// numbers themselves, and the JSON formats.
#define BPCHECK_INSTANTIATE_REAL_RUNGS(T) \
  BPCHECK_INSTANTIATE_FD(T)               \
  BPCHECK_INSTANTIATE_JVP(T)              \
  BPCHECK_INSTANTIATE_FORMATS(T)
