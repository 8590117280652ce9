#pragma once
// The one-argument functions of <cmath> that the scalar types which compute in another type and round
// the result once (Emulated in mp100, the 16-bit rungs in float) provide: one list, so that a function
// a layer starts to call is added to every such rung at once. X(f) is expanded for each name.
#define BPCHECK_ROUNDED_UNARY_FUNCTIONS(X) \
  X(exp)                                   \
  X(expm1)                                 \
  X(exp2)                                  \
  X(log)                                   \
  X(log1p)                                 \
  X(log2)                                  \
  X(log10)                                 \
  X(sqrt)                                  \
  X(cbrt)                                  \
  X(tanh)                                  \
  X(sinh)                                  \
  X(cosh)                                  \
  X(sin)                                   \
  X(cos)                                   \
  X(tan)                                   \
  X(asin)                                  \
  X(acos)                                  \
  X(atan)                                  \
  X(erf)                                   \
  X(erfc)
