import Foundation
import Testing
import GraftData
import GraftHDF5
import GraftKeras
import GraftNN
import GraftTensor
import GraftTestSupport
import ZIPFoundation
@testable import GraftTrain

/// Features written in every format, in source order with ids and labels, equal to the model's own outputs.
struct FeatureExtractionTests {
    static func setup() throws -> (Model, any ImageSource, Preprocessor, Tensor) {
        let model = try Zoo.build("lenet5", options: Zoo.Options(classes: 2, inputShape: [32, 32, 3], seed: 2))
        let (source, _) = try DataSource.load(TestSupport.fixture("images/folder"))
        let pre = Preprocessor(targetShape: [32, 32, 3], fit: .resize, mode: .scale(1.0 / 255))
        let (x, _) = try pre.batch(source, Array(0..<source.count))
        let reference = try model.cut(at: "conv3").predict([x])[0]   // (6, 1, 1, 120)
        return (model, source, pre, reference)
    }

    @Test(arguments: FeatureFormat.allCases)
    func everyFormatHoldsTheSameRows(_ format: FeatureFormat) throws {
        let (model, source, pre, reference) = try Self.setup()
        var extractor = FeatureExtractor(model: try model.cut(at: "conv3"), preprocessor: pre)
        extractor.batchSize = 4   // two batches, the second partial
        extractor.showProgress = false
        let dir = try TestSupport.makeTemporaryDirectory()
        let path = dir.appendingPathComponent("features.\(format.rawValue)").path
        let (rows, width) = try extractor.extract(source, to: path)
        #expect(rows == 6 && width == 120)
        let want = reference.scalars
        var got: [Float] = [], labels: [Int] = [], ids: [String] = []
        switch format {
        case .npy:
            got = try NPY.read(path).scalars
            labels = try NPY.read(dir.appendingPathComponent("labels.npy").path).scalars.map { Int($0) }
            ids = try String(contentsOfFile: dir.appendingPathComponent("ids.txt").path, encoding: .utf8).split(separator: "\n").map(String.init)
        case .npz:
            let archive = try Archive(url: URL(fileURLWithPath: path), accessMode: .read)
            func array(_ n: String) throws -> Data {
                var d = Data()
                _ = try archive.extract(try #require(archive["\(n).npy"])) { d.append($0) }
                return d
            }
            got = try NPY.decode(try array("features"), file: "features").scalars
            labels = try NPY.decode(try array("labels"), file: "labels").scalars.map { Int($0) }
            ids = Self.decodeUnicodeArray(try array("ids"))
        case .h5:
            let root = try HDF5File.open(path).root()
            got = try root.dataset("features").read(Float.self)
            #expect(try root.dataset("features").shape() == [6, 120])
            labels = try root.dataset("labels").read(Int64.self).map { Int($0) }
            ids = try root.dataset("ids").readStrings()
            #expect(try root.readStringsAttribute("class_names") == ["cat", "dog"])
        case .csv:
            let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n")
            #expect(lines.first?.hasPrefix("id,label,f0,f1,") == true)
            for line in lines.dropFirst() {
                let fields = line.split(separator: ",").map(String.init)
                ids.append(fields[0])
                labels.append(Int(fields[1]) ?? -1)
                got += fields.dropFirst(2).compactMap { Float($0) }
            }
        }
        #expect(got.count == want.count)
        #expect(zip(got, want).allSatisfy { abs($0 - $1) <= 1e-6 * max(1, abs($1)) })
        #expect(labels == source.labels)
        #expect(ids == source.ids)
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasPrefix(".") }
        #expect(leftovers.isEmpty)
    }

    /// Reads a 1-D NumPy `<U<n>` array (UTF-32LE, NUL-padded).
    static func decodeUnicodeArray(_ data: Data) -> [String] {
        let bytes = [UInt8](data)
        let headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
        let header = String(decoding: bytes[10..<(10 + headerLength)], as: UTF8.self)
        guard let r = header.range(of: "<U"), let width = Int(header[r.upperBound...].prefix { $0.isNumber }) else { return [] }
        let body = Array(bytes[(10 + headerLength)...])
        return stride(from: 0, to: body.count, by: 4 * width).map { start in
            var s = ""
            for k in 0..<width {
                let o = start + 4 * k
                let v = UInt32(body[o]) | UInt32(body[o + 1]) << 8 | UInt32(body[o + 2]) << 16 | UInt32(body[o + 3]) << 24
                if v == 0 { break }
                if let u = Unicode.Scalar(v) { s.unicodeScalars.append(u) }
            }
            return s
        }
    }

    /// Features that are zero for every image are reported (a layer whose weights are zero here), once, naming the
    /// layer; ordinary features are not.
    @Test func featuresThatAreAllZeroAreReported() throws {
        let (model, source, pre, _) = try Self.setup()
        let cut = try model.cut(at: "conv3")
        var said: [String] = []
        var extractor = FeatureExtractor(model: cut, preprocessor: pre)
        extractor.showProgress = false
        extractor.warn = { said.append($0) }
        let dir = try TestSupport.makeTemporaryDirectory()
        try extractor.extract(source, to: dir.appendingPathComponent("a.npy").path)
        #expect(said.isEmpty, "\(said)")
        let conv3 = try #require(cut.flattenedLayers.first { $0.name == "conv3" })
        for v in conv3.variables { v.variable.value = Tensor(shape: v.variable.value.shape) }
        extractor = FeatureExtractor(model: cut, preprocessor: pre)
        extractor.showProgress = false
        extractor.warn = { said.append($0) }
        try extractor.extract(source, to: dir.appendingPathComponent("b.npy").path)
        #expect(said == ["layer conv3: all 120 features are zero for every image (below 1e-6): check the preprocessing and the layer (dead ReLUs, a checkpoint whose weights are zero)"], "\(said)")
        #expect(FeatureExtractor.zeroFeaturesWarning([0, 0, 1, 2], layer: "x")?.contains("2 of the 4 features") == true)
        #expect(FeatureExtractor.zeroFeaturesWarning([0, 1, 1, 2], layer: "x") == nil)
    }

    /// Interrupted part-way (a recipe's Ctrl-C), extraction stops at the next batch and leaves no file, whole or not.
    @Test func anInterruptStopsExtractionLeavingNothing() throws {
        let (model, source, pre, _) = try Self.setup()
        var extractor = FeatureExtractor(model: try model.cut(at: "conv3"), preprocessor: pre)
        extractor.showProgress = false
        extractor.batchSize = 2
        extractor.interruptCheck = Interrupt.simulated(SIGINT, afterChecks: 1)
        let dir = try TestSupport.makeTemporaryDirectory()
        do {
            try extractor.extract(source, to: dir.appendingPathComponent("f.npz").path)
            Issue.record("not interrupted")
        } catch let e as InterruptedError {
            #expect(e.signal == SIGINT)
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).isEmpty)
    }

    @Test func poolingAndBadOutputNames() throws {
        let (model, source, pre, _) = try Self.setup()
        var extractor = FeatureExtractor(model: try model.cut(at: "conv2"), preprocessor: pre)
        extractor.showProgress = false
        let dir = try TestSupport.makeTemporaryDirectory()
        extractor.pooling = .none
        #expect(try extractor.extract(source, to: dir.appendingPathComponent("a.npy").path).features == 10 * 10 * 16)
        extractor.pooling = .max
        #expect(try extractor.extract(source, to: dir.appendingPathComponent("b.npy").path).features == 16)
        #expect(throws: TrainError.self) { try extractor.extract(source, to: dir.appendingPathComponent("c.parquet").path) }
    }
}
