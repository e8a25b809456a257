// OpenBLAS's CBLAS interface (Debian libopenblas-dev, pthread build).
#ifndef GRAFT_CBLAS_SHIM_H
#define GRAFT_CBLAS_SHIM_H
// Headers only: the library itself is loaded on first use (CGraftLibraries), not linked.
#if __has_include("/usr/include/x86_64-linux-gnu/openblas-pthread/cblas.h")
#include "/usr/include/x86_64-linux-gnu/openblas-pthread/cblas.h"
#else
#include <cblas.h>
#endif
#endif
