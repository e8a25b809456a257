import CHDF5
import Foundation

/// The integrity check a parent process runs in a child before handing a file to libhdf5 (see `HDF5Guard`): the
/// `graft-hdf5-check` helper and the hidden `graft check-hdf5` command both run this.
public enum HDF5IntegrityCheck {
    /// Reads every group, attribute and dataset of `file`, then writes the decoded string attributes to
    /// `stringsTo` (`StringAttributesFile`) when given.
    public static func run(file: String, stringsTo: String?) throws {
        tightenHeap()
        let strings = try HDF5File.open(file, policy: .unchecked).readEverything()   // this is the check
        if let stringsTo {
            try StringAttributesFile.encode(strings).write(to: URL(fileURLWithPath: stringsTo))
        }
    }

    /// The check as a child process runs it: 0 when the whole file read, else 1 with the error written to `fd` as
    /// one line a parent decodes back into the same typed error (`decodeChildError`).
    public static func runAsChild(file: String, stringsTo: String?, errorsTo fd: Int32 = 2) -> Int32 {
        do {
            try run(file: file, stringsTo: stringsTo)
            return 0
        } catch {
            let line = Array(encodeChildError(error).utf8.prefix(8000)) + [10]
            _ = line.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            return 1
        }
    }

    /// An `HDF5Error` as its fields separated by U+001F (`H5E␟kind␟file␟path␟detail`), any other error as its
    /// description; newlines become spaces.
    static func encodeChildError(_ error: any Error) -> String {
        let text: String
        if let e = error as? HDF5Error {
            text = ["H5E", e.kind.rawValue, e.file, e.path ?? "", e.detail].joined(separator: "\u{1F}")
        } else {
            text = "Error: \(error)"
        }
        return String(text.map { $0.isNewline ? " " : $0 })
    }

    /// The child's error line as the error it was: an `HDF5Error` again, or `HDF5CheckError` with its text.
    static func decodeChildError(_ text: String, file: String) -> any Error {
        let line = text.split(separator: "\n").first.map(String.init) ?? ""
        let fields = line.split(separator: "\u{1F}", omittingEmptySubsequences: false).map(String.init)
        if fields.count == 5, fields[0] == "H5E", let kind = HDF5ErrorKind(rawValue: fields[1]) {
            return HDF5Error(kind, file: fields[2], path: fields[3].isEmpty ? nil : fields[3], detail: fields[4])
        }
        if line.isEmpty { return HDF5Error(.readFailed, file: file, detail: "unreadable HDF5 file") }
        return HDF5CheckError(file: file, description: line.hasPrefix("Error: ") ? String(line.dropFirst(7)) : line)
    }

    /// Makes the heap end where its last allocation ends (no top padding, the free tail returned), so that a read
    /// or write past it faults in this checking process. libhdf5 1.10.8 reads attribute messages of some damaged
    /// object headers from far outside their buffer (H5A__compact_build_table): with glibc's default 128 KiB of
    /// padding that read landed in mapped memory, the check passed, and the parent then crashed on the same file
    /// (found by tools/fuzz, case 19073 of seed 7).
    static func tightenHeap() {
        graft_tighten_heap()
    }
}

/// How the checking child hands its decoded string attributes to the parent: the attribute count, then for each
/// attribute its key, its value count and each value; counts are little-endian UInt32, strings a UInt32 byte length
/// and their UTF-8 bytes. Anything short of exactly that (a cut at any byte) is refused. (It was JSON
/// through Foundation's JSONSerialization, which took 15% of the check for ResNet50's 100 KB model config.)
public enum StringAttributesFile {
    public static func encode(_ values: [String: [String]]) -> Data {
        var out = Data()
        func put(_ n: Int) { withUnsafeBytes(of: UInt32(truncatingIfNeeded: n).littleEndian) { out.append(contentsOf: $0) } }
        func put(_ s: String) {
            let bytes = Array(s.utf8)
            put(bytes.count)
            out.append(contentsOf: bytes)
        }
        put(values.count)
        for (key, list) in values {
            put(key)
            put(list.count)
            for v in list { put(v) }
        }
        return out
    }

    /// The attributes, or nil when the bytes are not a whole, well-formed file.
    public static func decode(_ data: Data) -> [String: [String]]? {
        let bytes = [UInt8](data)
        var at = 0
        func count() -> Int? {
            guard bytes.count - at >= 4 else { return nil }
            let n = Int(bytes[at]) | Int(bytes[at + 1]) << 8 | Int(bytes[at + 2]) << 16 | Int(bytes[at + 3]) << 24
            at += 4
            return n
        }
        func string() -> String? {
            guard let n = count(), bytes.count - at >= n else { return nil }
            defer { at += n }
            return String(validating: bytes[at..<(at + n)], as: UTF8.self)
        }
        guard let entries = count(), entries <= (bytes.count - at) / 8 else { return nil }
        var values: [String: [String]] = [:]
        for _ in 0..<entries {
            guard let key = string(), let n = count(), n <= (bytes.count - at) / 4 else { return nil }
            var list: [String] = []
            list.reserveCapacity(n)
            for _ in 0..<n {
                guard let v = string() else { return nil }
                list.append(v)
            }
            values[key] = list
        }
        return at == bytes.count ? values : nil
    }
}
