import CImage
import Foundation
import GraftCore

/// Errors reading datasets; each names the file or source.
public struct DataError: GraftError {
    public let source: String
    public let message: String
    public init(_ source: String, _ message: String) {
        self.source = source
        self.message = message
    }
    public var description: String { "\(source): \(message)" }
    /// The file or data source (`fashion-mnist:train`, a folder) as `file`.
    public var context: ErrorContext { ErrorContext(file: source) }
}

/// Reads a whole file, gunzipping it when it is gzip-compressed (by content, not name).
public func readMaybeGzip(_ path: String, limit: Int = 2 << 30) throws -> [UInt8] {
    // A regular file only (a FIFO would block gzopen for ever); plain files are read once, gzip ones by zlib alone.
    if let problem = DataFile.problem(path) { throw DataError(path, problem) }
    guard let head = FileHandle(forReadingAtPath: path) else { throw DataError(path, "cannot open") }
    let magic = (try? head.read(upToCount: 2)) ?? Data()
    try? head.close()
    if magic != Data([0x1F, 0x8B]) { return [UInt8](try DataFile.read(path, limit: limit)) }
    guard let gz = gzopen(path, "rb") else { throw DataError(path, "cannot open gzip stream") }
    defer { gzclose(gz) }
    var out: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 1 << 20)
    while true {
        let n = buffer.withUnsafeMutableBytes { gzread(gz, $0.baseAddress, UInt32($0.count)) }
        if n < 0 { throw DataError(path, "corrupt gzip data") }
        if n == 0 { break }
        buffer.withUnsafeBufferPointer { out.append(contentsOf: UnsafeBufferPointer(rebasing: $0[0..<Int(n)])) }
        if out.count > limit { throw DataError(path, "decompresses to more than \(limit >> 20) MiB") }
    }
    return out
}

/// IDX files as MNIST ships them (`train-images-idx3-ubyte[.gz]`): big-endian header, unsigned bytes.
public enum IDX {
    /// Returns the dimensions and the raw bytes.
    public static func read(_ path: String) throws -> (shape: [Int], bytes: [UInt8]) {
        let (shape, b, start) = try readInPlace(path)
        return (shape, Array(b[start..<(start + shape.reduce(1, *))]))
    }

    /// The dimensions, and the file's bytes with where the values start in them (no copy of the values). The
    /// dimensions' product is checked against what the file really holds, without overflow.
    public static func readInPlace(_ path: String) throws -> (shape: [Int], bytes: [UInt8], start: Int) {
        let b = try readMaybeGzip(path)
        guard b.count >= 4, b[0] == 0, b[1] == 0 else { throw DataError(path, "not an IDX file (bad magic)") }
        guard b[2] == 0x08 else { throw DataError(path, "IDX element type 0x\(String(b[2], radix: 16)) is not supported (unsigned bytes only)") }
        let rank = Int(b[3])
        guard rank >= 1, b.count >= 4 + 4 * rank else { throw DataError(path, "truncated IDX header") }
        var shape: [Int] = []
        for d in 0..<rank {
            let o = 4 + 4 * d
            shape.append(Int(b[o]) << 24 | Int(b[o + 1]) << 16 | Int(b[o + 2]) << 8 | Int(b[o + 3]))
        }
        let start = 4 + 4 * rank
        var count = 1
        for side in shape {
            let (product, overflow) = count.multipliedReportingOverflow(by: side)
            guard !overflow, product <= b.count - start else {
                throw DataError(path, "truncated: header declares \(shape.map(String.init).joined(separator: "×")) values, file holds \(b.count - start)")
            }
            count = product
        }
        return (shape, b, start)
    }
}
