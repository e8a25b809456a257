import CHDF5

/// Keras's limit on one attribute's size: lists longer than this are split into `name0`, `name1`, ….
public let hdf5AttributeSplitLimit = 64_512

extension HDF5Object {
    /// Names of all attributes on this object, in name order.
    public func attributeNames() throws -> [String] {
        HDF5Runtime.quiet()
        var info = H5O_info_t()
        guard H5Oget_info2(id, &info, UInt32(H5O_INFO_NUM_ATTRS)) >= 0 else { throw failure(.readFailed) }
        var names: [String] = []
        for i in 0..<info.num_attrs {
            let len = H5Aget_name_by_idx(id, ".", H5_INDEX_NAME, H5_ITER_INC, i, nil, 0, graft_H5P_DEFAULT())
            guard len >= 0 else { throw failure(.readFailed) }
            var buf = [CChar](repeating: 0, count: Int(len) + 1)
            guard H5Aget_name_by_idx(id, ".", H5_INDEX_NAME, H5_ITER_INC, i, &buf, buf.count, graft_H5P_DEFAULT()) >= 0 else {
                throw failure(.readFailed)
            }
            names.append(String(decoding: buf.prefix(Int(len)).map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        return names
    }

    /// True when the attribute exists.
    public func hasAttribute(_ name: String) -> Bool {
        HDF5Runtime.quiet()
        let r = H5Aexists(id, name)
        if r < 0 { _ = HDF5Runtime.takeErrorStack() }
        return r > 0
    }

    /// The stored type and shape of an attribute (`[]` for a scalar).
    public func attributeInfo(_ name: String) throws -> (type: HDF5DataType, shape: [Int]) {
        try withAttributeReader(name) { (try $0.dataType(), try $0.shape()) }
    }

    /// Reads a numeric attribute (scalar or array) as a flat list converted to `T`.
    public func readAttribute<T: HDF5Numeric>(_ name: String, as type: T.Type = T.self) throws -> [T] {
        try withAttributeReader(name) { try $0.readNumbers(T.self) }
    }

    /// Reads a string attribute (fixed- or variable-length, scalar or array) as a flat list.
    public func readStringsAttribute(_ name: String) throws -> [String] {
        if let decoded = file.checkedStrings?["\(path)@\(name)"] { return decoded }
        return try withAttributeReader(name) { try $0.readStrings() }
    }

    /// Reads a scalar (or one-element) string attribute.
    public func readStringAttribute(_ name: String) throws -> String {
        let all = try readStringsAttribute(name)
        guard all.count == 1 else {
            throw HDF5Error(.shapeMismatch, file: file.path, path: "\(path)@\(name)",
                            detail: "expected one string, found \(all.count)")
        }
        return all[0]
    }

    /// Reads a list attribute written with Keras's split convention: `name` itself, or `name0`, `name1`, …
    /// concatenated. An empty numeric array (how Keras writes an empty list) reads as `[]`.
    public func readStringListAttribute(_ name: String) throws -> [String] {
        if hasAttribute(name) { return try readListPart(name) }
        var result: [String] = []
        var chunk = 0
        while hasAttribute("\(name)\(chunk)") {
            result += try readListPart("\(name)\(chunk)")
            chunk += 1
        }
        guard chunk > 0 else {
            throw HDF5Error(.missingPath, file: file.path, path: "\(path)@\(name)", detail: "no such attribute")
        }
        return result
    }

    /// True when `name` or its split form `name0` exists.
    public func hasListAttribute(_ name: String) -> Bool {
        hasAttribute(name) || hasAttribute("\(name)0")
    }

    private func readListPart(_ name: String) throws -> [String] {
        let info = try attributeInfo(name)
        if info.type.isNumeric && info.shape.reduce(1, *) == 0 { return [] }
        return try readStringsAttribute(name)
    }

    // MARK: writing

    /// Writes a scalar variable-length UTF-8 string attribute (as h5py writes a Python `str`).
    public func setAttribute(_ name: String, string: String) throws {
        let t = HDF5Strings.makeVariableType(utf8: true)
        defer { H5Tclose(t) }
        try writeAttribute(name, fileType: t, shape: []) { aid in
            HDF5Strings.withCStringPointers([string]) { H5Awrite(aid, t, $0) }
        }
    }

    /// Writes a string array attribute, fixed-length NUL-padded (NumPy `S`, as Keras writes names) or variable-length.
    /// `scalar` writes a single fixed-length string as a scalar.
    public func setAttribute(_ name: String, strings: [String], variableLength: Bool = false, scalar: Bool = false) throws {
        precondition(!scalar || strings.count == 1, "a scalar attribute holds one string")
        let shape = scalar ? [] : [strings.count]
        let utf8 = !HDF5Strings.isASCII(strings)
        if variableLength {
            let t = HDF5Strings.makeVariableType(utf8: utf8)
            defer { H5Tclose(t) }
            try writeAttribute(name, fileType: t, shape: shape) { aid in
                strings.isEmpty ? 0 : HDF5Strings.withCStringPointers(strings) { H5Awrite(aid, t, $0) }
            }
        } else {
            try setFixedStrings(name, strings, size: max(1, strings.map { $0.utf8.count }.max() ?? 1), shape: shape)
        }
    }

    /// Writes a numeric attribute: a scalar when `shape` is `[]`, else an array of that shape.
    public func setAttribute<T: HDF5Numeric>(_ name: String, values: [T], shape: [Int]? = nil,
                                             storage: HDF5StorageType? = nil) throws {
        let dims = shape ?? [values.count]
        let count = try HDF5Shape.elementCount(dims, elementSize: MemoryLayout<T>.stride, file: file.path, path: "\(path)@\(name)")
        guard count == values.count else {
            throw HDF5Error(.shapeMismatch, file: file.path, path: "\(path)@\(name)",
                            detail: "shape \(HDF5Shape.describe(dims)) holds \(count) values, given \(values.count)")
        }
        let t = (storage ?? T.defaultStorage).makeFileType()
        defer { H5Tclose(t) }
        try writeAttribute(name, fileType: t, shape: dims) { aid in
            values.isEmpty ? 0 : values.withUnsafeBytes { H5Awrite(aid, T.hdf5NativeType, $0.baseAddress) }
        }
    }

    /// Writes a scalar numeric attribute.
    public func setAttribute<T: HDF5Numeric>(_ name: String, value: T) throws {
        try setAttribute(name, values: [value], shape: [])
    }

    /// Writes a list of names the way Keras does: fixed-length byte strings, split into `name0`, `name1`, …
    /// when one attribute would exceed 64,512 bytes (NumPy `array_split` chunking). An empty list is written
    /// as an empty float64 array, as NumPy turns `[]` into one. Stale parts from an earlier write are removed.
    public func setStringListAttribute(_ name: String, strings: [String]) throws {
        if let long = strings.first(where: { $0.utf8.count > hdf5AttributeSplitLimit }) {
            throw HDF5Error(.invalidArgument, file: file.path, path: "\(path)@\(name)",
                            detail: "an item of \(long.utf8.count) bytes exceeds the \(hdf5AttributeSplitLimit)-byte attribute limit")
        }
        try removeAttribute(name)
        var stale = 0
        while hasAttribute("\(name)\(stale)") {
            try removeAttribute("\(name)\(stale)")
            stale += 1
        }
        if strings.isEmpty {
            try setAttribute(name, values: [Double](), shape: [0])
            return
        }
        let itemSize = max(1, strings.map { $0.utf8.count }.max() ?? 1)
        var chunks = 1
        func split(_ n: Int) -> [ArraySlice<String>] {
            // numpy.array_split: the first (count % n) parts get one extra element.
            let base = strings.count / n, extra = strings.count % n
            var parts: [ArraySlice<String>] = []
            var start = 0
            for i in 0..<n {
                let len = base + (i < extra ? 1 : 0)
                parts.append(strings[start..<(start + len)])
                start += len
            }
            return parts
        }
        var parts = split(1)
        while parts.contains(where: { $0.count * itemSize > hdf5AttributeSplitLimit }) {
            chunks += 1
            parts = split(chunks)
        }
        if chunks == 1 {
            try setFixedStrings(name, strings, size: itemSize, shape: [strings.count])
        } else {
            for (i, part) in parts.enumerated() {
                try setFixedStrings("\(name)\(i)", Array(part), size: itemSize, shape: [part.count])
            }
        }
    }

    /// Writes NUL-padded fixed-length strings of `size` bytes each (NumPy `S<size>`).
    private func setFixedStrings(_ name: String, _ strings: [String], size: Int, shape: [Int]) throws {
        let t = HDF5Strings.makeFixedType(size: size, utf8: !HDF5Strings.isASCII(strings))
        defer { H5Tclose(t) }
        var bytes = [UInt8](repeating: 0, count: size * strings.count)
        for (i, s) in strings.enumerated() {
            for (j, b) in s.utf8.enumerated() { bytes[i * size + j] = b }
        }
        try writeAttribute(name, fileType: t, shape: shape) { aid in
            bytes.isEmpty ? 0 : bytes.withUnsafeBytes { H5Awrite(aid, t, $0.baseAddress) }
        }
    }

    /// Removes an attribute if present.
    public func removeAttribute(_ name: String) throws {
        guard hasAttribute(name) else { return }
        guard H5Adelete(id, name) >= 0 else { throw failure(.writeFailed, "@\(name)") }
    }

    private func writeAttribute(_ name: String, fileType: hid_t, shape: [Int], _ write: (hid_t) -> herr_t) throws {
        HDF5Runtime.quiet()
        guard fileType >= 0 else { throw failure(.writeFailed) }
        try removeAttribute(name)
        var dims = shape.map { hsize_t($0) }
        let space = shape.isEmpty ? H5Screate(H5S_SCALAR) : H5Screate_simple(Int32(dims.count), &dims, nil)
        guard space >= 0 else { throw failure(.writeFailed) }
        defer { H5Sclose(space) }
        let aid = H5Acreate2(id, name, fileType, space, graft_H5P_DEFAULT(), graft_H5P_DEFAULT())
        guard aid >= 0 else {
            throw HDF5Error(.writeFailed, file: file.path, path: "\(path)@\(name)", detail: HDF5Runtime.takeErrorStack())
        }
        defer { H5Aclose(aid) }
        guard write(aid) >= 0 else {
            throw HDF5Error(.writeFailed, file: file.path, path: "\(path)@\(name)", detail: HDF5Runtime.takeErrorStack())
        }
    }

    private func withAttributeReader<R>(_ name: String, _ body: (HDF5Reader) throws -> R) throws -> R {
        HDF5Runtime.quiet()
        guard hasAttribute(name) else {
            throw HDF5Error(.missingPath, file: file.path, path: "\(path)@\(name)", detail: "no such attribute")
        }
        let aid = H5Aopen(id, name, graft_H5P_DEFAULT())
        guard aid >= 0 else {
            throw HDF5Error(.readFailed, file: file.path, path: "\(path)@\(name)", detail: HDF5Runtime.takeErrorStack())
        }
        defer { H5Aclose(aid) }
        let reader = HDF5Reader(object: self, label: name,
                                openType: { H5Aget_type(aid) }, openSpace: { H5Aget_space(aid) },
                                readInto: { mem, buf in H5Aread(aid, mem, buf) })
        return try body(reader)
    }
}
