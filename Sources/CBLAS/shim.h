// OpenBLAS's CBLAS interface (Debian libopenblas-dev, pthread build).
#ifndef GRAFT_CBLAS_SHIM_H
#define GRAFT_CBLAS_SHIM_H
#include <cblas.h>
#endif
