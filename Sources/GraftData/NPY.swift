import Foundation
import GraftCore
import GraftFiles
import GraftTensor

/// Errors reading or writing NumPy files; each names the file.
public struct NPYError: GraftError {
    public let file: String
    public let message: String
    public var description: String { "\(file): \(message)" }
    public var context: ErrorContext { ErrorContext(file: file) }
}

/// NumPy `.npy` files (format versions 1, 2 and 3; C order; `<f4`, `<f8`, `|u1`, `<i4`, `<i8` read as Float32).
public enum NPY {
    /// The dtype of an array in a file.
    public enum DType: String, Sendable { case float32 = "<f4", float64 = "<f8", uint8 = "|u1", int32 = "<i4", int64 = "<i8" }

    /// Reads an array as Float32 values with its shape.
    public static func read(_ path: String) throws -> Tensor {
        let data: Data
        do { data = try DataFile.read(path) } catch let e as DataError { throw NPYError(file: path, message: e.message) }
        return try decode(data, file: path)
    }

    /// Decodes `.npy` bytes.
    public static func decode(_ data: Data, file: String) throws -> Tensor {
        let bytes = [UInt8](data)
        guard bytes.count >= 10, bytes[0] == 0x93, Array(bytes[1..<6]) == Array("NUMPY".utf8) else {
            throw NPYError(file: file, message: "not a NumPy .npy file (bad magic)")
        }
        let major = bytes[6]
        let headerLength: Int, start: Int
        switch major {
        case 1:
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
            start = 10
        case 2, 3:
            guard bytes.count >= 12 else { throw NPYError(file: file, message: "truncated header") }
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8 | Int(bytes[10]) << 16 | Int(bytes[11]) << 24
            start = 12
        default:
            throw NPYError(file: file, message: "unsupported .npy format version \(major)")
        }
        guard start + headerLength <= bytes.count else { throw NPYError(file: file, message: "truncated header") }
        let header = String(decoding: bytes[start..<(start + headerLength)], as: UTF8.self)
        let (descr, fortran, shape) = try parseHeader(header, file: file)
        if fortran { throw NPYError(file: file, message: "Fortran-order arrays are not supported; save with C order") }
        guard let dtype = DType(rawValue: descr == "<u1" ? "|u1" : descr) else {
            throw NPYError(file: file, message: "dtype \(descr) is not supported (float32 <f4, float64 <f8, uint8 |u1, int32 <i4, int64 <i8)")
        }
        var count = 1
        for d in shape {
            let (p, o) = count.multipliedReportingOverflow(by: d)
            guard !o, d >= 0, p <= 1 << 32 else { throw NPYError(file: file, message: "shape \(Shape.describe(shape)) is too large") }
            count = p
        }
        let itemSize: Int = [.float32: 4, .float64: 8, .uint8: 1, .int32: 4, .int64: 8][dtype] ?? 4
        let body = start + headerLength
        guard bytes.count - body >= count * itemSize else {
            throw NPYError(file: file, message: "truncated data: shape \(Shape.describe(shape)) needs \(count * itemSize) bytes, file has \(bytes.count - body)")
        }
        var values = [Float](repeating: 0, count: count)
        bytes.withUnsafeBytes { raw in
            let p = raw.baseAddress! + body
            switch dtype {
            case .float32: for i in 0..<count { values[i] = p.loadUnaligned(fromByteOffset: i * 4, as: Float.self) }
            case .float64: for i in 0..<count { values[i] = Float(p.loadUnaligned(fromByteOffset: i * 8, as: Double.self)) }
            case .uint8: for i in 0..<count { values[i] = Float(p.load(fromByteOffset: i, as: UInt8.self)) }
            case .int32: for i in 0..<count { values[i] = Float(p.loadUnaligned(fromByteOffset: i * 4, as: Int32.self)) }
            case .int64: for i in 0..<count { values[i] = Float(p.loadUnaligned(fromByteOffset: i * 8, as: Int64.self)) }
            }
        }
        return Tensor(shape: shape, values: values)
    }

    /// Parses `{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }` as the Python literal it is (NumPy reads
    /// it with `ast.literal_eval`): exactly the keys descr, fortran_order and shape, each once, at the top level (a
    /// `descr` inside another key's string value is no key), fortran_order True/False or an integer (any non-zero
    /// one is true, as in Python), shape a tuple of whole numbers.
    static func parseHeader(_ h: String, file: String) throws -> (String, Bool, [Int]) {
        func bad(_ why: String) -> NPYError { NPYError(file: file, message: "malformed header (\(why))") }
        let c = Array(h.unicodeScalars)
        var i = 0
        func skipSpace() { while i < c.count, c[i] == " " || c[i] == "\t" || c[i] == "\n" || c[i] == "\r" { i += 1 } }
        func expect(_ ch: Unicode.Scalar) throws {
            skipSpace()
            guard i < c.count, c[i] == ch else { throw bad("expected \(ch)") }
            i += 1
        }
        func string() throws -> String {
            skipSpace()
            guard i < c.count, c[i] == "'" || c[i] == "\"" else { throw bad("expected a quoted string") }
            let q = c[i]
            i += 1
            var out = String.UnicodeScalarView()
            while i < c.count, c[i] != q { out.append(c[i]); i += 1 }
            guard i < c.count else { throw bad("unterminated string") }
            i += 1
            return String(out)
        }
        func word() -> String {
            skipSpace()
            var out = String.UnicodeScalarView()
            while i < c.count, c[i].properties.isAlphabetic || ("0"..."9").contains(c[i]) || c[i] == "-" || c[i] == "+" {
                out.append(c[i]); i += 1
            }
            return String(out)
        }
        var descr: String?, fortran: Bool?, shape: [Int]?
        try expect("{")
        while true {
            skipSpace()
            if i < c.count, c[i] == "}" { i += 1; break }
            let key = try string()
            try expect(":")
            switch key {
            case "descr":
                guard descr == nil else { throw bad("descr given twice") }
                descr = try string()
            case "fortran_order":
                guard fortran == nil else { throw bad("fortran_order given twice") }
                let w = word()
                if w == "True" { fortran = true } else if w == "False" { fortran = false }
                else if let n = Int(w) { fortran = n != 0 } else { throw bad("fortran_order is \(w.isEmpty ? "not a literal" : w)") }
            case "shape":
                guard shape == nil else { throw bad("shape given twice") }
                try expect("(")
                var dims: [Int] = []
                while true {
                    skipSpace()
                    if i < c.count, c[i] == ")" { i += 1; break }
                    var w = word()
                    if w.hasSuffix("L") { w.removeLast() }
                    guard let n = Int(w), n >= 0 else { throw NPYError(file: file, message: "bad shape entry \(w)") }
                    dims.append(n)
                    skipSpace()
                    if i < c.count, c[i] == "," { i += 1 }
                }
                shape = dims
            default:
                throw bad("unknown key \(key)")
            }
            skipSpace()
            if i < c.count, c[i] == "," { i += 1 }
        }
        guard let descr else { throw NPYError(file: file, message: "header has no descr") }
        guard let fortran else { throw NPYError(file: file, message: "header has no fortran_order") }
        guard let shape else { throw NPYError(file: file, message: "header has no shape") }
        return (descr, fortran, shape)
    }

    /// The `.npy` version 1 header for an array of `shape` and NumPy `descr` (`<f4`, `<i8`, `<U12`), padded so the
    /// data starts on a 64-byte boundary.
    public static func header(shape: [Int], descr: String) -> Data {
        let shapeText = shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
        var header = "{'descr': '\(descr)', 'fortran_order': False, 'shape': \(shapeText), }"
        let unpadded = 10 + header.utf8.count + 1
        header += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
        var data = Data([0x93] + Array("NUMPY".utf8) + [1, 0])
        let n = header.utf8.count
        data.append(contentsOf: [UInt8(n & 0xFF), UInt8(n >> 8)])
        data.append(contentsOf: Array(header.utf8))
        return data
    }

    /// Encodes a Float32 tensor as `.npy` version 1 bytes.
    public static func encode(_ t: Tensor) -> Data {
        var data = header(shape: t.shape, descr: "<f4")
        t.withUnsafeBufferPointer { data.append(UnsafeBufferPointer(start: $0.baseAddress, count: $0.count)) }
        return data
    }

    /// Encodes strings as a NumPy unicode array (`<U<n>`, UTF-32LE), which `numpy.load` reads without pickle.
    public static func encodeStrings(_ strings: [String]) -> Data {
        let width = max(1, strings.map { $0.unicodeScalars.count }.max() ?? 1)
        var data = header(shape: [strings.count], descr: "<U\(width)")
        for s in strings {
            var scalars = s.unicodeScalars.map { $0.value }
            scalars += [UInt32](repeating: 0, count: width - scalars.count)
            scalars.withUnsafeBufferPointer { data.append(Data(buffer: $0)) }
        }
        return data
    }

    /// Writes a tensor as float32 `.npy`, atomically (temporary file in the same folder, then rename).
    public static func write(_ t: Tensor, to path: String) throws {
        do {
            try AtomicWrite.write(encode(t), to: path)
        } catch {
            throw NPYError(file: path, message: error.reason)
        }
    }
}
