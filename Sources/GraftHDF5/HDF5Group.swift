import CHDF5

/// An HDF5 group: children, sub-groups, datasets and attributes.
public final class HDF5Group: HDF5Object {
    static func open(in file: HDF5File, locationID: hid_t, name: String, parentPath: String) throws -> HDF5Group {
        HDF5Runtime.quiet()
        let fullPath = HDF5Path.join(parentPath.isEmpty ? "/" : parentPath, name)
        try file.ensureOpen(fullPath)
        let gid = H5Gopen2(locationID, name, HDF5Runtime.groupAccess)
        guard gid >= 0 else {
            let stack = HDF5Runtime.takeErrorStack()
            if let link = HDF5Group.externalLink(in: locationID, on: name) {
                throw HDF5Error(.outsideFile, file: file.path, path: HDF5Path.join(parentPath.isEmpty ? "/" : parentPath, link),
                                detail: "an external link to another file; Graft reads only the file it was given")
            }
            throw HDF5Error(.missingPath, file: file.path, path: fullPath, detail: stack)
        }
        return HDF5Group(id: gid, file: file, path: name == "/" ? "/" : fullPath)
    }

    /// Where this group's header lies in the file: the same for every hard link to it.
    public var objectAddress: UInt64 { UInt64(graft_object_address(id)) }

    /// The first prefix of `name` (`a`, `a/b`, …) that is an external link, if any.
    static func externalLink(in location: hid_t, on name: String) -> String? {
        defer { _ = HDF5Runtime.takeErrorStack() }
        var prefix = name.hasPrefix("/") ? "/" : ""
        for comp in HDF5Path.components(name) {
            prefix += (prefix.isEmpty || prefix == "/" ? "" : "/") + comp
            let type = graft_link_type(location, prefix, HDF5Runtime.linkAccess)
            if type == H5L_TYPE_EXTERNAL { return prefix }
            if type == H5L_TYPE_ERROR { return nil }
        }
        return nil
    }

    /// True when a link `name` (possibly nested, `a/b/c`) exists below this group.
    public func contains(_ name: String) -> Bool {
        HDF5Runtime.quiet()
        if !name.isEmpty && !name.utf8.contains(UInt8(ascii: "/")) {
            // One link (nearly every call): no path to walk.
            if H5Lexists(id, name, HDF5Runtime.linkAccess) > 0 { return true }
            _ = HDF5Runtime.takeErrorStack()
            return false
        }
        var prefix = name.hasPrefix("/") ? "/" : ""
        for comp in HDF5Path.components(name) {
            prefix += (prefix.isEmpty || prefix == "/" ? "" : "/") + comp
            let exists = H5Lexists(id, prefix, HDF5Runtime.linkAccess)
            if exists <= 0 {
                _ = HDF5Runtime.takeErrorStack()
                return false
            }
        }
        return true
    }

    /// The kind of the object at `name`, or nil when there is none.
    /// (The object header's basic information only: opening the object to ask its type, as this did, builds a
    /// whole dataset — a third of walking a ResNet50 checkpoint. A missing link anywhere on the path fails the
    /// same call.)
    public func kind(of name: String) -> HDF5ObjectKind? {
        HDF5Runtime.quiet()
        var info = H5O_info_t()
        guard H5Oget_info_by_name2(id, name, &info, UInt32(H5O_INFO_BASIC), HDF5Runtime.linkAccess) >= 0 else {
            _ = HDF5Runtime.takeErrorStack()
            return nil
        }
        switch info.type {
        case H5O_TYPE_GROUP: return .group
        case H5O_TYPE_DATASET: return .dataset
        case H5O_TYPE_NAMED_DATATYPE: return .namedType
        default: return .other
        }
    }

    /// The direct children, in name order, each with its kind.
    public func children() throws -> [HDF5Child] {
        HDF5Runtime.quiet()
        var info = H5G_info_t()
        guard H5Gget_info(id, &info) >= 0 else { throw failure(.readFailed) }
        var result: [HDF5Child] = []
        result.reserveCapacity(Int(info.nlinks))
        for i in 0..<info.nlinks {
            let len = H5Lget_name_by_idx(id, ".", H5_INDEX_NAME, H5_ITER_INC, i, nil, 0, graft_H5P_DEFAULT())
            guard len >= 0 else { throw failure(.readFailed) }
            var buf = [CChar](repeating: 0, count: Int(len) + 1)
            guard H5Lget_name_by_idx(id, ".", H5_INDEX_NAME, H5_ITER_INC, i, &buf, buf.count, graft_H5P_DEFAULT()) >= 0 else {
                throw failure(.readFailed)
            }
            let childName = String(decoding: buf.prefix(Int(len)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
            if graft_link_type_by_idx(id, i, HDF5Runtime.linkAccess) == H5L_TYPE_EXTERNAL {
                throw error(.outsideFile, childName, "an external link to another file; Graft reads only the file it was given")
            }
            result.append(HDF5Child(name: childName, kind: kind(of: childName) ?? .other))
        }
        return result
    }

    /// Opens the sub-group at `name` (relative, possibly nested, or absolute).
    public func group(_ name: String) throws -> HDF5Group {
        if !name.isEmpty {
            do { return try HDF5Group.open(in: file, locationID: id, name: name, parentPath: path) }
            catch let e as HDF5Error where e.kind == .outsideFile { throw e }
            catch {}
        }
        // Why it failed (looked up only then: asking first doubled the library calls of a walk).
        guard kind(of: name) == .group else {
            if contains(name) { throw error(.typeMismatch, name, "is not a group") }
            throw error(.missingPath, name)
        }
        return try HDF5Group.open(in: file, locationID: id, name: name, parentPath: path)
    }

    /// Opens the dataset at `name` (relative, possibly nested, or absolute).
    public func dataset(_ name: String) throws -> HDF5Dataset {
        HDF5Runtime.quiet()
        var stack = ""
        if !name.isEmpty {
            try file.ensureOpen(HDF5Path.join(path, name))
            let did = H5Dopen2(id, name, HDF5Runtime.datasetAccess)
            if did >= 0 {
                let ds = HDF5Dataset(id: did, file: file, path: HDF5Path.join(path, name))
                if let elsewhere = ds.storedOutsideFile() { throw error(.outsideFile, name, elsewhere) }
                return ds
            }
            stack = HDF5Runtime.takeErrorStack()
            if let link = HDF5Group.externalLink(in: id, on: name) {
                throw error(.outsideFile, link, "an external link to another file; Graft reads only the file it was given")
            }
        }
        // Why it failed (looked up only then: asking first doubled the library calls of a walk).
        guard kind(of: name) == .dataset else {
            if contains(name) { throw error(.typeMismatch, name, "is not a dataset") }
            throw error(.missingPath, name)
        }
        throw error(.cannotOpen, name, stack)
    }

    /// Creates a sub-group (and any missing intermediate groups), or opens it if it exists.
    @discardableResult
    public func createGroup(_ name: String) throws -> HDF5Group {
        HDF5Runtime.quiet()
        if let k = kind(of: name) {
            guard k == .group else { throw error(.typeMismatch, name, "exists and is not a group") }
            return try group(name)
        }
        let lcpl = try makeIntermediateLinkPList()
        defer { H5Pclose(lcpl) }
        let gid = H5Gcreate2(id, name, lcpl, graft_H5P_DEFAULT(), graft_H5P_DEFAULT())
        guard gid >= 0 else { throw failure(.writeFailed, name) }
        return HDF5Group(id: gid, file: file, path: HDF5Path.join(path, name))
    }

    /// Writes a numeric dataset of `shape` (row-major, `values.count` must equal the product),
    /// stored as `storage` (default: the element's own type), gzip-compressed at `gzipLevel` (1-9) if given.
    /// An existing link of the same name is replaced.
    @discardableResult
    public func createDataset<T: HDF5Numeric>(
        _ name: String, values: [T], shape: [Int], storage: HDF5StorageType? = nil, gzipLevel: Int? = nil
    ) throws -> HDF5Dataset {
        HDF5Runtime.quiet()
        let count = try HDF5Shape.elementCount(shape, elementSize: MemoryLayout<T>.stride, file: file.path, path: HDF5Path.join(path, name))
        guard count == values.count else {
            throw error(.shapeMismatch, name, "shape \(HDF5Shape.describe(shape)) holds \(count) values, given \(values.count)")
        }
        let ftype = (storage ?? T.defaultStorage).makeFileType()
        guard ftype >= 0 else { throw failure(.writeFailed, name) }
        defer { H5Tclose(ftype) }
        let did = try createRawDataset(name, fileType: ftype, shape: shape, gzipLevel: gzipLevel)
        let ds = HDF5Dataset(id: did, file: file, path: HDF5Path.join(path, name))
        if count > 0 {
            let status = values.withUnsafeBytes { buf in
                H5Dwrite(did, T.hdf5NativeType, graft_H5S_ALL(), graft_H5S_ALL(), graft_H5P_DEFAULT(), buf.baseAddress)
            }
            guard status >= 0 else { throw failure(.writeFailed, name) }
        }
        return ds
    }

    /// Writes a 1-D dataset of variable-length UTF-8 strings (as h5py does for `dtype=h5py.string_dtype()`).
    @discardableResult
    public func createStringDataset(_ name: String, strings: [String]) throws -> HDF5Dataset {
        HDF5Runtime.quiet()
        let ftype = HDF5Strings.makeVariableType(utf8: true)
        defer { H5Tclose(ftype) }
        let did = try createRawDataset(name, fileType: ftype, shape: [strings.count], gzipLevel: nil)
        let ds = HDF5Dataset(id: did, file: file, path: HDF5Path.join(path, name))
        if strings.isEmpty { return ds }
        let status = HDF5Strings.withCStringPointers(strings) { ptrs in
            H5Dwrite(did, ftype, graft_H5S_ALL(), graft_H5S_ALL(), graft_H5P_DEFAULT(), ptrs)
        }
        guard status >= 0 else { throw failure(.writeFailed, name) }
        return ds
    }

    /// Removes the link `name` (the space is not reclaimed, as in HDF5 itself).
    public func remove(_ name: String) throws {
        HDF5Runtime.quiet()
        guard contains(name) else { throw error(.missingPath, name) }
        guard H5Ldelete(id, name, graft_H5P_DEFAULT()) >= 0 else { throw failure(.writeFailed, name) }
    }

    private func makeIntermediateLinkPList() throws -> hid_t {
        let lcpl = H5Pcreate(graft_H5P_LINK_CREATE())
        guard lcpl >= 0, H5Pset_create_intermediate_group(lcpl, 1) >= 0 else { throw failure(.writeFailed) }
        return lcpl
    }

    private func createRawDataset(_ name: String, fileType: hid_t, shape: [Int], gzipLevel: Int?) throws -> hid_t {
        if contains(name) { try remove(name) }
        var dims = shape.map { hsize_t($0) }
        let space = shape.isEmpty ? H5Screate(H5S_SCALAR) : H5Screate_simple(Int32(shape.count), &dims, nil)
        guard space >= 0 else { throw failure(.writeFailed, name) }
        defer { H5Sclose(space) }
        let lcpl = try makeIntermediateLinkPList()
        defer { H5Pclose(lcpl) }
        let dcpl = H5Pcreate(graft_H5P_DATASET_CREATE())
        guard dcpl >= 0 else { throw failure(.writeFailed, name) }
        defer { H5Pclose(dcpl) }
        if let level = gzipLevel, !shape.isEmpty, !shape.contains(0) {
            guard (0...9).contains(level) else { throw error(.invalidArgument, name, "gzip level \(level) not in 0...9") }
            var chunk = HDF5Shape.chunkShape(shape, elementSize: H5Tget_size(fileType)).map { hsize_t($0) }
            guard H5Pset_chunk(dcpl, Int32(chunk.count), &chunk) >= 0,
                  H5Pset_deflate(dcpl, UInt32(level)) >= 0 else { throw failure(.writeFailed, name) }
        }
        let did = H5Dcreate2(id, name, fileType, space, lcpl, dcpl, graft_H5P_DEFAULT())
        guard did >= 0 else { throw failure(.writeFailed, name) }
        return did
    }
}

/// Shape arithmetic with overflow and size checks.
public enum HDF5Shape {
    /// The number of elements in `shape`, refusing negative dimensions and totals past `HDF5Limits.maxBytes`.
    public static func elementCount(_ shape: [Int], elementSize: Int, file: String, path: String) throws -> Int {
        var count = 1
        for d in shape {
            guard d >= 0 else {
                throw HDF5Error(.invalidArgument, file: file, path: path, detail: "negative dimension in \(describe(shape))")
            }
            let (p, overflow) = count.multipliedReportingOverflow(by: d)
            guard !overflow else { throw HDF5Error(.tooLarge, file: file, path: path, detail: "shape \(describe(shape)) overflows") }
            count = p
        }
        let (bytes, overflow) = count.multipliedReportingOverflow(by: max(elementSize, 1))
        guard !overflow, bytes <= HDF5Limits.maxBytes else {
            throw HDF5Error(.tooLarge, file: file, path: path,
                            detail: "shape \(describe(shape)) needs more than \(HDF5Limits.maxBytes >> 30) GiB")
        }
        return count
    }

    /// `(3, 3, 64, 128)`, or `()` for a scalar, as NumPy prints shapes.
    public static func describe(_ shape: [Int]) -> String {
        shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
    }

    /// A chunk shape of at most about 1 MiB: the whole array when small, else leading axes halved.
    static func chunkShape(_ shape: [Int], elementSize: Int) -> [Int] {
        var chunk = shape
        let target = 1 << 20
        func bytes() -> Int { chunk.reduce(max(elementSize, 1), *) }
        var axis = 0
        while bytes() > target && axis < chunk.count {
            if chunk[axis] > 1 { chunk[axis] = (chunk[axis] + 1) / 2 } else { axis += 1 }
        }
        return chunk
    }
}

/// The groups a recursive walk has entered, so that it enters each once: hard links may make a group its own
/// descendant (a cycle that a walk would follow for ever), and several links may lead to one group.
public struct HDF5VisitedGroups {
    private var seen = Set<UInt64>()

    public init() {}

    /// True the first time `group` (by its object address) is met.
    public mutating func firstVisit(_ group: HDF5Group) -> Bool { seen.insert(group.objectAddress).inserted }
}
