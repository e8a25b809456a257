import CHDF5
import Foundation

/// An HDF5 dataset: its shape, stored type, and typed reads.
public final class HDF5Dataset: HDF5Object {
    /// The shape (`[]` for a scalar dataset).
    public func shape() throws -> [Int] {
        try HDF5Reader.dataset(self).shape()
    }

    /// The stored datatype.
    public func dataType() throws -> HDF5DataType {
        try HDF5Reader.dataset(self).dataType()
    }

    /// Reads every element, converted to `T` by HDF5 (float16 → Float, int → Double, …).
    /// - Throws: `.typeMismatch` if the dataset is not numeric; `.tooLarge` past `HDF5Limits.maxBytes`.
    public func read<T: HDF5Numeric>(_ type: T.Type = T.self) throws -> [T] {
        try HDF5Reader.dataset(self).readNumbers(T.self)
    }

    /// Reads a numeric dataset into `buffer`, whose count must equal the dataset's element count (converting
    /// from the stored type): no intermediate array.
    public func read<T: HDF5Numeric>(into buffer: UnsafeMutableBufferPointer<T>) throws {
        try HDF5Reader.dataset(self).readNumbers(into: buffer)
    }

    /// Reads a string dataset (fixed- or variable-length) as a flat list.
    public func readStrings() throws -> [String] {
        try HDF5Reader.dataset(self).readStrings()
    }

    /// True for a dataset libhdf5 reads with one plain copy: native float32, contiguous, unfiltered, with all its
    /// bytes inside the file (storage of exactly the declared size, ending before the end of file). Reading such a
    /// dataset involves no decoding of file structures beyond its header, so the integrity check need not read it.
    public func isPlainContiguousFloat32() -> Bool {
        plainFloat32Extent() != nil
    }

    /// Where a plain contiguous float32 dataset's bytes lie in the file (see `isPlainContiguousFloat32`), or nil.
    public func plainFloat32Extent() -> (offset: Int, size: Int)? {
        HDF5Runtime.quiet()
        defer { _ = HDF5Runtime.takeErrorStack() }
        let t = H5Dget_type(id)
        guard t >= 0 else { return nil }
        defer { H5Tclose(t) }
        guard H5Tequal(t, graft_H5T_NATIVE_FLOAT()) > 0 else { return nil }
        let dcpl = H5Dget_create_plist(id)
        guard dcpl >= 0 else { return nil }
        defer { H5Pclose(dcpl) }
        guard H5Pget_layout(dcpl) == H5D_CONTIGUOUS, H5Pget_nfilters(dcpl) == 0 else { return nil }
        guard let dims = try? HDF5Reader.dataset(self).shape(),
              let count = try? HDF5Shape.elementCount(dims, elementSize: 4, file: file.path, path: path),
              let fileSize = file.sizeInBytes else { return nil }
        guard let (offset, stored) = contiguousExtent(), stored == count * 4, offset <= fileSize,
              stored <= fileSize - offset else { return nil }
        return (offset, stored)
    }

    /// Why the dataset's values would be read from somewhere other than this file (external raw storage, a virtual
    /// dataset mapping other datasets), or nil when they are all inside it. Checked when a dataset is opened, before
    /// any read: an external file list can name `/etc/passwd` or `/dev/zero`.
    func storedOutsideFile() -> String? {
        HDF5Runtime.quiet()
        defer { _ = HDF5Runtime.takeErrorStack() }
        let dcpl = H5Dget_create_plist(id)
        guard dcpl >= 0 else { return "its storage properties cannot be read" }
        defer { H5Pclose(dcpl) }
        let external = H5Pget_external_count(dcpl)
        if external != 0 {
            return "its values are stored in \(external < 0 ? "unreadable" : String(external)) external file\(external == 1 ? "" : "s"); Graft reads only the file it was given"
        }
        if H5Pget_layout(dcpl) == H5D_VIRTUAL {
            return "a virtual dataset, whose values come from other datasets or files; Graft reads only the file it was given"
        }
        return nil
    }

    /// Why reading `declaredBytes` from this dataset would make up data the file does not hold, or nil. Unwritten
    /// storage reads as fill values, so a 146 KB file could declare gigabytes (it once made `predict` allocate
    /// 4.3 GB and exit 0): unfiltered data must be stored whole, and compressed data may inflate at most 1100×
    /// (deflate's limit is about 1032×). Datasets under 64 KiB are not checked.
    func storageProblem(declaredBytes: Int) -> String? {
        guard declaredBytes >= 64 << 10 else { return nil }
        HDF5Runtime.quiet()
        defer { _ = HDF5Runtime.takeErrorStack() }
        let stored = Int(clamping: H5Dget_storage_size(id))
        if stored == 0 { return "declares \(declaredBytes) bytes but none are stored in the file" }
        let dcpl = H5Dget_create_plist(id)
        guard dcpl >= 0 else { return "its storage properties cannot be read" }
        defer { H5Pclose(dcpl) }
        if H5Pget_nfilters(dcpl) == 0 {
            return stored >= declaredBytes ? nil : "declares \(declaredBytes) bytes but only \(stored) are stored in the file"
        }
        let (limit, overflow) = stored.multipliedReportingOverflow(by: 1100)
        return overflow || declaredBytes <= limit ? nil
            : "declares \(declaredBytes) bytes from \(stored) compressed ones, more than any real compression gives"
    }

    /// Where a contiguous dataset's bytes lie in the file (offset, size), or nil when not allocated or not contiguous.
    public func contiguousExtent() -> (offset: Int, size: Int)? {
        HDF5Runtime.quiet()
        defer { _ = HDF5Runtime.takeErrorStack() }
        let offset = hsize_t(H5Dget_offset(id))
        let stored = H5Dget_storage_size(id)
        guard offset != hsize_t(graft_HADDR_UNDEF()), offset <= hsize_t(Int.max), stored <= hsize_t(Int.max) else { return nil }
        return (Int(offset), Int(stored))
    }

    /// Storage layout: whether chunked, and the names of the filters applied (`deflate`, `shuffle`, …).
    public func storage() -> (chunked: Bool, filters: [String]) {
        HDF5Runtime.quiet()
        let dcpl = H5Dget_create_plist(id)
        guard dcpl >= 0 else {
            _ = HDF5Runtime.takeErrorStack()
            return (false, [])
        }
        defer { H5Pclose(dcpl) }
        let chunked = H5Pget_layout(dcpl) == H5D_CHUNKED
        var filters: [String] = []
        let n = H5Pget_nfilters(dcpl)
        if n > 0 {
            for i in 0..<UInt32(n) {
                var flags: UInt32 = 0
                var nelmts: Int = 0
                var name = [CChar](repeating: 0, count: 64)
                var config: UInt32 = 0
                let f = H5Pget_filter2(dcpl, i, &flags, &nelmts, nil, name.count, &name, &config)
                if f >= 0 {
                    let n = String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                    filters.append(n.isEmpty ? "filter \(f)" : n)
                }
            }
        }
        return (chunked, filters)
    }
}

/// Shared reading logic for datasets and attributes (both are a type, a dataspace and a read call).
struct HDF5Reader {
    let object: HDF5Object
    let label: String?            // attribute name, or nil for a dataset
    let openType: () -> hid_t
    let openSpace: () -> hid_t
    let readInto: (hid_t, UnsafeMutableRawPointer) -> herr_t

    static func dataset(_ ds: HDF5Dataset) -> HDF5Reader {
        HDF5Runtime.quiet()
        let id = ds.id
        return HDF5Reader(object: ds, label: nil,
                          openType: { H5Dget_type(id) }, openSpace: { H5Dget_space(id) },
                          readInto: { mem, buf in
                              H5Dread(id, mem, graft_H5S_ALL(), graft_H5S_ALL(), graft_H5P_DEFAULT(), buf)
                          })
    }

    private var where_: String {
        label.map { "\(object.path)@\($0)" } ?? object.path
    }

    private func err(_ kind: HDF5ErrorKind, _ detail: String) -> HDF5Error {
        HDF5Error(kind, file: object.file.path, path: where_, detail: detail)
    }

    private func withType<R>(_ body: (hid_t) throws -> R) throws -> R {
        let t = openType()
        guard t >= 0 else { throw err(.readFailed, HDF5Runtime.takeErrorStack()) }
        defer { H5Tclose(t) }
        return try body(t)
    }

    func dataType() throws -> HDF5DataType {
        try withType { HDF5DataType(typeID: $0) }
    }

    func shape() throws -> [Int] {
        let s = openSpace()
        guard s >= 0 else { throw err(.readFailed, HDF5Runtime.takeErrorStack()) }
        defer { H5Sclose(s) }
        switch H5Sget_simple_extent_type(s) {
        case H5S_SCALAR: return []
        case H5S_NULL: return [0]
        default:
            let rank = H5Sget_simple_extent_ndims(s)
            guard rank >= 0 else { throw err(.readFailed, HDF5Runtime.takeErrorStack()) }
            var dims = [hsize_t](repeating: 0, count: Int(rank))
            guard H5Sget_simple_extent_dims(s, &dims, nil) >= 0 else {
                throw err(.readFailed, HDF5Runtime.takeErrorStack())
            }
            return try dims.map { d in
                guard d <= hsize_t(Int.max) else { throw err(.tooLarge, "dimension \(d)") }
                return Int(d)
            }
        }
    }

    func readNumbers<T: HDF5Numeric>(_: T.Type) throws -> [T] {
        let type = try dataType()
        guard type.isNumeric else {
            throw err(.typeMismatch, "stored as \(type), read as \(T.self)")
        }
        let dims = try shape()
        let count = try HDF5Shape.elementCount(dims, elementSize: MemoryLayout<T>.stride, file: object.file.path, path: where_)
        if count == 0 { return [] }
        try requireStored(elements: count, type: type)
        // Uninitialised storage: a generic `[T](repeating:count:)` initialises element by element.
        return try [T](unsafeUninitializedCapacity: count) { buf, initialized in
            let status = readInto(T.hdf5NativeType, UnsafeMutableRawPointer(buf.baseAddress!))
            guard status >= 0 else { throw err(.readFailed, HDF5Runtime.takeErrorStack()) }
            initialized = count
        }
    }

    func readNumbers<T: HDF5Numeric>(into buffer: UnsafeMutableBufferPointer<T>) throws {
        let type = try dataType()
        guard type.isNumeric else {
            throw err(.typeMismatch, "stored as \(type), read as \(T.self)")
        }
        let dims = try shape()
        let count = try HDF5Shape.elementCount(dims, elementSize: MemoryLayout<T>.stride, file: object.file.path, path: where_)
        guard count == buffer.count else {
            throw err(.invalidArgument, "holds \(count) values, read into \(buffer.count)")
        }
        try requireStored(elements: count, type: type)
        guard count > 0, let base = buffer.baseAddress else { return }
        guard readInto(T.hdf5NativeType, UnsafeMutableRawPointer(base)) >= 0 else {
            throw err(.readFailed, HDF5Runtime.takeErrorStack())
        }
    }

    /// For a dataset: refuses to read values the file does not hold (see `HDF5Dataset.storageProblem`).
    private func requireStored(elements: Int, type: HDF5DataType) throws {
        guard label == nil, let ds = object as? HDF5Dataset else { return }
        let size = try withType { Int(H5Tget_size($0)) }
        let (bytes, overflow) = elements.multipliedReportingOverflow(by: max(size, 1))
        if let problem = ds.storageProblem(declaredBytes: overflow ? Int.max : bytes) { throw err(.tooLarge, problem) }
    }

    func readStrings() throws -> [String] {
        let dims = try shape()
        return try withType { ftype in
            let type = HDF5DataType(typeID: ftype)
            guard case .string(let vlen, let size, let utf8) = type else {
                throw err(.typeMismatch, "stored as \(type), read as strings")
            }
            let count = try HDF5Shape.elementCount(dims, elementSize: vlen ? MemoryLayout<UnsafeRawPointer>.size : size,
                                                   file: object.file.path, path: where_)
            if count == 0 { return [] }
            if vlen {
                let mem = HDF5Strings.makeVariableType(utf8: utf8)
                defer { H5Tclose(mem) }
                var ptrs = [UnsafeMutablePointer<CChar>?](repeating: nil, count: count)
                let status = ptrs.withUnsafeMutableBytes { readInto(mem, $0.baseAddress!) }
                defer { for p in ptrs where p != nil { H5free_memory(p) } }
                guard status >= 0 else { throw err(.readFailed, HDF5Runtime.takeErrorStack()) }
                return ptrs.map { $0.map { String(cString: $0) } ?? "" }
            } else {
                let mem = H5Tcopy(ftype)
                defer { H5Tclose(mem) }
                let pad = H5Tget_strpad(ftype)
                var bytes = [UInt8](repeating: 0, count: count * size)
                let status = bytes.withUnsafeMutableBytes { readInto(mem, $0.baseAddress!) }
                guard status >= 0 else { throw err(.readFailed, HDF5Runtime.takeErrorStack()) }
                return (0..<count).map { i in
                    HDF5Strings.decodeFixed(bytes[(i * size)..<((i + 1) * size)], spacePadded: pad == H5T_STR_SPACEPAD)
                }
            }
        }
    }
}

/// String type helpers.
enum HDF5Strings {
    /// A variable-length C string type; caller closes it.
    static func makeVariableType(utf8: Bool) -> hid_t {
        let t = H5Tcopy(graft_H5T_C_S1())
        H5Tset_size(t, graft_H5T_VARIABLE())
        H5Tset_cset(t, utf8 ? H5T_CSET_UTF8 : H5T_CSET_ASCII)
        return t
    }

    /// A fixed-length, NUL-padded string type of `size` bytes (NumPy's `S<size>`); caller closes it.
    static func makeFixedType(size: Int, utf8: Bool) -> hid_t {
        let t = H5Tcopy(graft_H5T_C_S1())
        H5Tset_size(t, max(size, 1))
        H5Tset_strpad(t, H5T_STR_NULLPAD)
        H5Tset_cset(t, utf8 ? H5T_CSET_UTF8 : H5T_CSET_ASCII)
        return t
    }

    static func decodeFixed(_ slice: ArraySlice<UInt8>, spacePadded: Bool) -> String {
        var end = slice.firstIndex(of: 0) ?? slice.endIndex
        if spacePadded {
            while end > slice.startIndex && slice[end - 1] == 0x20 { end -= 1 }
        }
        return String(decoding: slice[slice.startIndex..<end], as: UTF8.self)
    }

    /// Calls `body` with an array of C string pointers valid for the call.
    static func withCStringPointers<R>(_ strings: [String], _ body: (UnsafeRawPointer) -> R) -> R {
        let owned: [UnsafeMutablePointer<CChar>] = strings.map { strdup($0)! }
        defer { owned.forEach { free($0) } }
        var ptrs: [UnsafeMutablePointer<CChar>?] = owned
        return ptrs.withUnsafeMutableBytes { body(UnsafeRawPointer($0.baseAddress!)) }
    }

    static func isASCII(_ strings: [String]) -> Bool {
        strings.allSatisfy { $0.utf8.allSatisfy { $0 < 0x80 } }
    }
}

extension HDF5Dataset {
    /// Writes `values` as rows `[start, start + rows)` along the first axis of this dataset (streaming writes).
    public func writeRows(_ values: [Float], start: Int) throws {
        HDF5Runtime.quiet()
        let dims = try shape()
        guard let first = dims.first else { throw HDF5Error(.invalidArgument, file: file.path, path: path, detail: "scalar dataset has no rows") }
        let rowSize = dims.dropFirst().reduce(1, *)
        guard rowSize > 0, values.count % rowSize == 0 else {
            throw HDF5Error(.shapeMismatch, file: file.path, path: path, detail: "\(values.count) values are not whole rows of \(rowSize)")
        }
        let rows = values.count / rowSize
        guard start >= 0, start + rows <= first else {
            throw HDF5Error(.shapeMismatch, file: file.path, path: path, detail: "rows \(start)..<\(start + rows) outside \(first)")
        }
        if rows == 0 { return }
        let space = H5Dget_space(id)
        guard space >= 0 else { throw failure(.writeFailed) }
        defer { H5Sclose(space) }
        var offset = [hsize_t](repeating: 0, count: dims.count)
        offset[0] = hsize_t(start)
        var count = dims.map { hsize_t($0) }
        count[0] = hsize_t(rows)
        guard H5Sselect_hyperslab(space, H5S_SELECT_SET, &offset, nil, &count, nil) >= 0 else { throw failure(.writeFailed) }
        let memory = H5Screate_simple(Int32(count.count), &count, nil)
        guard memory >= 0 else { throw failure(.writeFailed) }
        defer { H5Sclose(memory) }
        let status = values.withUnsafeBytes { H5Dwrite(id, graft_H5T_NATIVE_FLOAT(), memory, space, graft_H5P_DEFAULT(), $0.baseAddress) }
        guard status >= 0 else { throw failure(.writeFailed) }
    }
}

extension HDF5Group {
    /// Creates a float dataset of `shape` to fill with `writeRows` (chunked by rows, gzip when `gzipLevel` is given).
    public func createEmptyDataset(_ name: String, shape: [Int], gzipLevel: Int? = nil) throws -> HDF5Dataset {
        _ = try HDF5Shape.elementCount(shape, elementSize: 4, file: file.path, path: HDF5Path.join(path, name))
        HDF5Runtime.quiet()
        if contains(name) { try remove(name) }
        let ftype = HDF5StorageType.float32.makeFileType()
        defer { H5Tclose(ftype) }
        var dims = shape.map { hsize_t($0) }
        let space = H5Screate_simple(Int32(dims.count), &dims, nil)
        guard space >= 0 else { throw failure(.writeFailed, name) }
        defer { H5Sclose(space) }
        let dcpl = H5Pcreate(graft_H5P_DATASET_CREATE())
        defer { H5Pclose(dcpl) }
        if let level = gzipLevel, !shape.contains(0) {
            var chunk = HDF5Shape.chunkShape(shape, elementSize: 4).map { hsize_t($0) }
            H5Pset_chunk(dcpl, Int32(chunk.count), &chunk)
            H5Pset_deflate(dcpl, UInt32(level))
        }
        let did = H5Dcreate2(id, name, ftype, space, graft_H5P_DEFAULT(), dcpl, graft_H5P_DEFAULT())
        guard did >= 0 else { throw failure(.writeFailed, name) }
        return HDF5Dataset(id: did, file: file, path: HDF5Path.join(path, name))
    }
}
