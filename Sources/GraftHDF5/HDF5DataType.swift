import CHDF5

/// A numeric element type that can be read from and written to HDF5.
public protocol HDF5Numeric: Sendable, Numeric {
    /// The in-memory HDF5 type id (a predefined native type; never closed).
    static var hdf5NativeType: hid_t { get }
    /// The storage type used when writing this element type without an explicit `HDF5StorageType`.
    static var defaultStorage: HDF5StorageType { get }
}

extension Float: HDF5Numeric {
    public static var hdf5NativeType: hid_t { graft_H5T_NATIVE_FLOAT() }
    public static var defaultStorage: HDF5StorageType { .float32 }
}
extension Double: HDF5Numeric {
    public static var hdf5NativeType: hid_t { graft_H5T_NATIVE_DOUBLE() }
    public static var defaultStorage: HDF5StorageType { .float64 }
}
extension Int8: HDF5Numeric {
    public static var hdf5NativeType: hid_t { graft_H5T_NATIVE_INT8() }
    public static var defaultStorage: HDF5StorageType { .int8 }
}
extension Int16: HDF5Numeric {
    public static var hdf5NativeType: hid_t { graft_H5T_NATIVE_INT16() }
    public static var defaultStorage: HDF5StorageType { .int16 }
}
extension Int32: HDF5Numeric {
    public static var hdf5NativeType: hid_t { graft_H5T_NATIVE_INT32() }
    public static var defaultStorage: HDF5StorageType { .int32 }
}
extension Int64: HDF5Numeric {
    public static var hdf5NativeType: hid_t { graft_H5T_NATIVE_INT64() }
    public static var defaultStorage: HDF5StorageType { .int64 }
}
extension Int: HDF5Numeric {
    public static var hdf5NativeType: hid_t {
        MemoryLayout<Int>.size == 8 ? graft_H5T_NATIVE_INT64() : graft_H5T_NATIVE_INT32()
    }
    public static var defaultStorage: HDF5StorageType { MemoryLayout<Int>.size == 8 ? .int64 : .int32 }
}
extension UInt8: HDF5Numeric {
    public static var hdf5NativeType: hid_t { graft_H5T_NATIVE_UINT8() }
    public static var defaultStorage: HDF5StorageType { .uint8 }
}
extension UInt16: HDF5Numeric {
    public static var hdf5NativeType: hid_t { graft_H5T_NATIVE_UINT16() }
    public static var defaultStorage: HDF5StorageType { .uint16 }
}
extension UInt32: HDF5Numeric {
    public static var hdf5NativeType: hid_t { graft_H5T_NATIVE_UINT32() }
    public static var defaultStorage: HDF5StorageType { .uint32 }
}
extension UInt64: HDF5Numeric {
    public static var hdf5NativeType: hid_t { graft_H5T_NATIVE_UINT64() }
    public static var defaultStorage: HDF5StorageType { .uint64 }
}

/// How numbers are stored in the file (little-endian, as NumPy and Keras write them).
public enum HDF5StorageType: String, Sendable, CaseIterable {
    case float16, float32, float64
    case int8, int16, int32, int64
    case uint8, uint16, uint32, uint64

    /// Creates the file type; the caller closes it with `H5Tclose`.
    func makeFileType() -> hid_t {
        switch self {
        case .float16: return graft_make_f16le()
        case .float32: return H5Tcopy(graft_H5T_IEEE_F32LE())
        case .float64: return H5Tcopy(graft_H5T_IEEE_F64LE())
        case .int8: return H5Tcopy(graft_H5T_STD_I8LE())
        case .int16: return H5Tcopy(graft_H5T_STD_I16LE())
        case .int32: return H5Tcopy(graft_H5T_STD_I32LE())
        case .int64: return H5Tcopy(graft_H5T_STD_I64LE())
        case .uint8: return H5Tcopy(graft_H5T_STD_U8LE())
        case .uint16: return H5Tcopy(graft_H5T_STD_U16LE())
        case .uint32: return H5Tcopy(graft_H5T_STD_U32LE())
        case .uint64: return H5Tcopy(graft_H5T_STD_U64LE())
        }
    }
}

/// A description of a stored HDF5 datatype, as found in a file.
public enum HDF5DataType: Sendable, Equatable, CustomStringConvertible {
    /// IEEE float of the given width in bits (16, 32, 64).
    case float(bits: Int)
    /// Integer of the given width in bits.
    case integer(bits: Int, signed: Bool)
    /// A string: variable-length, or fixed-length of `size` bytes; `utf8` when the character set is UTF-8.
    case string(variableLength: Bool, size: Int, utf8: Bool)
    /// Any other class (compound, enum, opaque, …), by HDF5 class name.
    case other(String)

    public var isNumeric: Bool {
        switch self {
        case .float, .integer: return true
        default: return false
        }
    }

    public var isString: Bool {
        if case .string = self { return true }
        return false
    }

    /// NumPy-like name: `float32`, `int64`, `uint8`, `string`, `string[12]`.
    public var description: String {
        switch self {
        case .float(let bits): return "float\(bits)"
        case .integer(let bits, let signed): return (signed ? "int" : "uint") + "\(bits)"
        case .string(let vlen, let size, let utf8):
            return (vlen ? "string" : "string[\(size)]") + (utf8 ? "(utf-8)" : "")
        case .other(let name): return name
        }
    }

    /// Reads the description of an open HDF5 datatype id.
    init(typeID t: hid_t) {
        let size = H5Tget_size(t)
        switch H5Tget_class(t) {
        case H5T_FLOAT:
            self = .float(bits: size * 8)
        case H5T_INTEGER:
            self = .integer(bits: size * 8, signed: H5Tget_sign(t) != H5T_SGN_NONE)
        case H5T_STRING:
            let vlen = H5Tis_variable_str(t) > 0
            self = .string(variableLength: vlen, size: vlen ? 0 : size, utf8: H5Tget_cset(t) == H5T_CSET_UTF8)
        case H5T_COMPOUND: self = .other("compound")
        case H5T_ENUM: self = .other("enum")
        case H5T_OPAQUE: self = .other("opaque")
        case H5T_ARRAY: self = .other("array")
        case H5T_VLEN: self = .other("vlen")
        case H5T_REFERENCE: self = .other("reference")
        case H5T_BITFIELD: self = .other("bitfield")
        case H5T_TIME: self = .other("time")
        default: self = .other("unknown")
        }
    }
}
