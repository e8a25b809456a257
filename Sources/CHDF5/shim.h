// Thin shim over libhdf5 for Swift: HDF5 exposes its predefined types and
// property-list defaults as macros that call H5open(), which Swift cannot import.
#ifndef GRAFT_CHDF5_SHIM_H
#define GRAFT_CHDF5_SHIM_H
#include <hdf5.h>

static inline hid_t graft_H5P_DEFAULT(void) { return H5P_DEFAULT; }
static inline hid_t graft_H5S_ALL(void) { return H5S_ALL; }
static inline hid_t graft_H5P_FILE_ACCESS(void) { return H5P_FILE_ACCESS; }
static inline hid_t graft_H5FD_SEC2(void) { return H5FD_SEC2; }
static inline hid_t graft_H5P_LINK_CREATE(void) { return H5P_LINK_CREATE; }
static inline hid_t graft_H5P_DATASET_CREATE(void) { return H5P_DATASET_CREATE; }

static inline unsigned graft_H5F_ACC_RDONLY(void) { return H5F_ACC_RDONLY; }
static inline unsigned graft_H5F_ACC_RDWR(void) { return H5F_ACC_RDWR; }
static inline unsigned graft_H5F_ACC_TRUNC(void) { return H5F_ACC_TRUNC; }
static inline unsigned graft_H5F_ACC_EXCL(void) { return H5F_ACC_EXCL; }
static inline hid_t graft_H5E_DEFAULT(void) { return H5E_DEFAULT; }
static inline size_t graft_H5T_VARIABLE(void) { return H5T_VARIABLE; }

static inline hid_t graft_H5T_NATIVE_FLOAT(void) { return H5T_NATIVE_FLOAT; }
static inline haddr_t graft_HADDR_UNDEF(void) { return HADDR_UNDEF; }
static inline hid_t graft_H5T_NATIVE_DOUBLE(void) { return H5T_NATIVE_DOUBLE; }
static inline hid_t graft_H5T_NATIVE_INT8(void) { return H5T_NATIVE_INT8; }
static inline hid_t graft_H5T_NATIVE_INT16(void) { return H5T_NATIVE_INT16; }
static inline hid_t graft_H5T_NATIVE_INT32(void) { return H5T_NATIVE_INT32; }
static inline hid_t graft_H5T_NATIVE_INT64(void) { return H5T_NATIVE_INT64; }
static inline hid_t graft_H5T_NATIVE_UINT8(void) { return H5T_NATIVE_UINT8; }
static inline hid_t graft_H5T_NATIVE_UINT16(void) { return H5T_NATIVE_UINT16; }
static inline hid_t graft_H5T_NATIVE_UINT32(void) { return H5T_NATIVE_UINT32; }
static inline hid_t graft_H5T_NATIVE_UINT64(void) { return H5T_NATIVE_UINT64; }
static inline hid_t graft_H5T_IEEE_F32LE(void) { return H5T_IEEE_F32LE; }
static inline hid_t graft_H5T_IEEE_F64LE(void) { return H5T_IEEE_F64LE; }
static inline hid_t graft_H5T_STD_I8LE(void) { return H5T_STD_I8LE; }
static inline hid_t graft_H5T_STD_I16LE(void) { return H5T_STD_I16LE; }
static inline hid_t graft_H5T_STD_I32LE(void) { return H5T_STD_I32LE; }
static inline hid_t graft_H5T_STD_I64LE(void) { return H5T_STD_I64LE; }
static inline hid_t graft_H5T_STD_U8LE(void) { return H5T_STD_U8LE; }
static inline hid_t graft_H5T_STD_U16LE(void) { return H5T_STD_U16LE; }
static inline hid_t graft_H5T_STD_U32LE(void) { return H5T_STD_U32LE; }
static inline hid_t graft_H5T_STD_U64LE(void) { return H5T_STD_U64LE; }
static inline hid_t graft_H5T_C_S1(void) { return H5T_C_S1; }

/// Returns the little-endian IEEE half-precision type (HDF5 1.10 has no predefined one).
/// The caller owns the returned id and must H5Tclose it.
static inline hid_t graft_make_f16le(void) {
    hid_t t = H5Tcopy(H5T_IEEE_F32LE);
    if (t < 0) return t;
    if (H5Tset_fields(t, 15, 10, 5, 0, 10) < 0 || H5Tset_size(t, 2) < 0 ||
        H5Tset_ebias(t, 15) < 0 || H5Tset_precision(t, 16) < 0) {
        H5Tclose(t);
        return -1;
    }
    return t;
}
#endif
