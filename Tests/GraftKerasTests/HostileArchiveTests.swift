import Foundation
import Testing
import GraftData
import GraftTensor
import GraftNN
import GraftTestSupport
import ZIPFoundation
@testable import GraftKeras

/// Crafted `.keras` and `.npz` archives: sizes are counted as the bytes inflate, whatever the headers declare, and
/// archives holding two entries of one name are refused.
struct HostileArchiveTests {
    /// A zip holding `entries` (name, size, byte) in order, deflated; bytes made on the fly, never all in memory.
    static func zip(_ entries: [(name: String, data: Data?, size: Int, byte: UInt8)], named: String) throws -> String {
        let url = try TestSupport.makeTemporaryDirectory("graft-zip").appendingPathComponent(named)
        let archive = try Archive(url: url, accessMode: .create)
        for e in entries {
            let size = e.data?.count ?? e.size
            try archive.addEntry(with: e.name, type: .file, uncompressedSize: Int64(size), compressionMethod: .deflate) { pos, n in
                if let d = e.data { return d.subdata(in: Int(pos)..<(Int(pos) + n)) }
                return Data(repeating: e.byte, count: n)
            }
        }
        return url.path
    }

    /// Rewrites every uncompressed-size field of the zip (local headers and central directory) to `declared`.
    static func lie(about path: String, declared: UInt32) throws {
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        func put(_ at: Int) { for k in 0..<4 { bytes[at + k] = UInt8((declared >> (8 * UInt32(k))) & 0xFF) } }
        var i = 0
        while i + 30 < bytes.count {
            if bytes[i] == 0x50 && bytes[i + 1] == 0x4B && bytes[i + 2] == 0x03 && bytes[i + 3] == 0x04 { put(i + 22) }
            if bytes[i] == 0x50 && bytes[i + 1] == 0x4B && bytes[i + 2] == 0x01 && bytes[i + 3] == 0x02 { put(i + 24) }
            i += 1
        }
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }

    static let fixture = TestSupport.fixture("parity/keras3_convnet_sequential.keras")

    static func entry(_ name: String) throws -> Data {
        let archive = try Archive(url: URL(fileURLWithPath: fixture), accessMode: .read)
        var data = Data()
        _ = try archive.extract(try #require(archive[name])) { data.append($0) }
        return data
    }

    static func expectKerasError(_ path: String, _ words: [String], sourceLocation: SourceLocation = #_sourceLocation) {
        do {
            _ = try KerasLoader.load(path)
            Issue.record("loaded", sourceLocation: sourceLocation)
        } catch let e as KerasError {
            for w in words { #expect(e.message.contains(w), "\(e)", sourceLocation: sourceLocation) }
        } catch {
            Issue.record("untyped \(error)", sourceLocation: sourceLocation)
        }
    }

    /// Two config.json entries: Keras reads the last, a plain reader the first.
    @Test func duplicateEntriesAreRefused() throws {
        let config = try Self.entry("config.json"), weights = try Self.entry("model.weights.h5")
        let path = try Self.zip([("config.json", config, 0, 0), ("config.json", Data("{}".utf8), 0, 0),
                                 ("model.weights.h5", weights, 0, 0)], named: "dup.keras")
        Self.expectKerasError(path, ["two entries named config.json"])
        let npz = try Self.zip([("x.npy", NPY.encode(Tensor(shape: [1, 2, 2], values: [1, 2, 3, 4])), 0, 0),
                                ("y.npy", NPY.encode(Tensor(shape: [1], values: [0])), 0, 0),
                                ("y.npy", NPY.encode(Tensor(shape: [1], values: [1])), 0, 0)], named: "dup.npz")
        #expect(throws: DataError.self) { _ = try DataSource.npz(npz) }
    }

    /// A config that declares 2,200 bytes and inflates to 100 MB of spaces (it was read whole: 1.5 GB, 4.3 GB peak).
    @Test func configThatInflatesPastItsDeclaredSize() throws {
        let path = try Self.zip([("config.json", nil, 100 << 20, 0x20), ("model.weights.h5", try Self.entry("model.weights.h5"), 0, 0)],
                                named: "bomb.keras")
        try Self.lie(about: path, declared: 2200)
        Self.expectKerasError(path, ["config.json", "inflates to more than 64 MiB"])
    }

    /// Weights that inflate far past what the model's parameters can fill (3 MB to 2.9 GB in $TMPDIR before).
    @Test func weightsThatInflatePastTheModelsSize() throws {
        let path = try Self.zip([("config.json", try Self.entry("config.json"), 0, 0), ("metadata.json", try Self.entry("metadata.json"), 0, 0),
                                 ("model.weights.h5", nil, 80 << 20, 0)], named: "weights-bomb.keras")
        Self.expectKerasError(path, ["model.weights.h5", "inflates to more than"])
        // Nothing staged is left behind.
        let staged = try FileManager.default.contentsOfDirectory(atPath: FileManager.default.temporaryDirectory.path)
            .filter { $0.hasPrefix("graft-keras-") }
        for s in staged {
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent(s)
            let size = (try? FileManager.default.attributesOfItem(atPath: dir.appendingPathComponent("model.weights.h5").path)[.size] as? Int) ?? 0
            #expect(size < 70 << 20, "\(s) holds \(size) bytes")
        }
    }

    /// A 2 KB config declaring three Dense layers of 8 GiB kernels and 1 GiB biases (each under the per-tensor limit):
    /// the build stops at the first one that passes what the file can hold, before allocating it (this ended in
    /// "failed to allocate 8589934592 bytes", signal 6, under a 6 GiB address-space limit).
    @Test func parametersBeyondWhatTheFileHolds() throws {
        var layers = [#"{"class_name": "InputLayer", "config": {"batch_shape": [null, 8], "name": "in"}}"#]
        for i in 0..<6 {
            layers.append(#"{"class_name": "Dense", "config": {"name": "d\#(i)", "units": \#(i % 2 == 0 ? 1 << 28 : 8)}}"#)
        }
        let config = #"{"class_name": "Sequential", "config": {"name": "s", "layers": [\#(layers.joined(separator: ", "))]}}"#
        let path = try Self.zip([("config.json", Data(config.utf8), 0, 0), ("metadata.json", try Self.entry("metadata.json"), 0, 0),
                                 ("model.weights.h5", try Self.entry("model.weights.h5"), 0, 0)], named: "huge-dense.keras")
        Self.expectKerasError(path, ["layer d0", "parameters would need 9.0 GiB", "1.0 GiB allowed", "its weights file has"])
        // As an architecture alone it is bounded by half the machine's memory; a 1 GiB budget here stands for that,
        // so the test does not depend on this machine's size.
        let json = try TestSupport.makeTemporaryDirectory("graft-budget").appendingPathComponent("arch.json")
        try Data(config.utf8).write(to: json)
        #expect(throws: KerasError.self) { _ = try Initializer.$budget.withValue(ParameterBudget(bytes: 1 << 30, reason: "test")) {
            try KerasLoader.loadArchitecture(json.path)
        } }
    }

    /// The checks leave an ordinary archive loading.
    @Test func ordinaryArchivesStillLoad() throws {
        #expect(try KerasLoader.load(Self.fixture).report.isComplete)
        let npz = try Self.zip([("x.npy", NPY.encode(Tensor(shape: [1, 2, 2], values: [1, 2, 3, 4])), 0, 0),
                                ("y.npy", NPY.encode(Tensor(shape: [1], values: [0])), 0, 0)], named: "ok.npz")
        #expect(try DataSource.npz(npz).count == 1)
    }
}
