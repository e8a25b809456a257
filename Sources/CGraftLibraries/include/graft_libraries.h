#ifndef GRAFT_LIBRARIES_H
#define GRAFT_LIBRARIES_H
/// 1 when the library is loaded (or loads now): 0 for oneDNN (libdnnl.so.2), 1 for OpenBLAS (libopenblas.so.0).
int graft_library_available(int library);
#endif
