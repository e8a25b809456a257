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

/// Refuses every external link traversal (a file names another file: Graft reads only the file it was given).
static herr_t graft_refuse_external_link(const char *parent_file, const char *parent_group, const char *child_file,
        const char *child_object, unsigned *acc_flags, hid_t fapl, void *data) {
    (void)parent_file; (void)parent_group; (void)child_file; (void)child_object; (void)acc_flags; (void)fapl; (void)data;
    return -1;
}

/// An access property list of class `cls` (link, group or dataset access) that refuses external links and follows
/// at most 16 soft links on one path (a soft-link cycle ends there). The caller keeps it for the process.
static inline hid_t graft_safe_access_plist(hid_t cls) {
    hid_t p = H5Pcreate(cls);
    if (p < 0) return p;
    if (H5Pset_nlinks(p, 16) < 0 || H5Pset_elink_cb(p, graft_refuse_external_link, NULL) < 0) {
        H5Pclose(p);
        return -1;
    }
    return p;
}
static inline hid_t graft_H5P_LINK_ACCESS(void) { return H5P_LINK_ACCESS; }
static inline hid_t graft_H5P_GROUP_ACCESS(void) { return H5P_GROUP_ACCESS; }
static inline hid_t graft_H5P_DATASET_ACCESS(void) { return H5P_DATASET_ACCESS; }

/// The type of link `name` in `loc` (H5L_TYPE_HARD, _SOFT, _EXTERNAL, …), or H5L_TYPE_ERROR.
static inline H5L_type_t graft_link_type(hid_t loc, const char *name, hid_t lapl) {
    H5L_info_t info;
    if (H5Lget_info(loc, name, &info, lapl) < 0) return H5L_TYPE_ERROR;
    return info.type;
}

/// The type of the link at index `i` (name order) of group `loc`, or H5L_TYPE_ERROR.
static inline H5L_type_t graft_link_type_by_idx(hid_t loc, hsize_t i, hid_t lapl) {
    H5L_info_t info;
    if (H5Lget_info_by_idx(loc, ".", H5_INDEX_NAME, H5_ITER_INC, i, &info, lapl) < 0) return H5L_TYPE_ERROR;
    return info.type;
}

/// Where an open object's header lies in its file (unique per object within one file), or HADDR_UNDEF.
static inline haddr_t graft_object_address(hid_t obj) {
    H5O_info_t info;
    if (H5Oget_info2(obj, &info, H5O_INFO_BASIC) < 0) return HADDR_UNDEF;
    return info.addr;
}

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

#include <malloc.h>
/// The heap ends where its last allocation ends (no top padding, the free tail returned to the system): a read or
/// write past it faults. For the integrity-check child (see HDF5IntegrityCheck.tightenHeap).
static inline void graft_tighten_heap(void) {
    mallopt(M_TOP_PAD, 0);
    mallopt(M_TRIM_THRESHOLD, 0);
    malloc_trim(0);
}
