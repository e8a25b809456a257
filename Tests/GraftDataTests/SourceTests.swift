import Foundation
import Testing
import GraftTensor
import GraftTestSupport
@testable import GraftData

/// Every source kind, subsets and splits, and the bad-input cases.
struct SourceTests {
    static func path(_ n: String) -> String { TestSupport.fixture("images/\(n)") }

    @Test func classFolderAndCSVAgree() throws {
        let (folder, s1) = try DataSource.load(Self.path("folder"))
        let (csv, s2) = try DataSource.load(Self.path("labels.csv"))
        #expect(s1 == 0 && s2 == 0)
        #expect(folder.classNames == ["cat", "dog"])
        #expect(csv.classNames == ["cat", "dog"])
        #expect(folder.labels == [0, 0, 0, 1, 1, 1])
        #expect(csv.labels == folder.labels)
        #expect(folder.ids.last?.hasSuffix("folder/dog/dog_2.png") == true)
        let pre = Preprocessor(targetShape: [5, 7, 3], fit: .pad, mode: .none)
        let (a, _) = try pre.batch(folder, [0, 5])
        let (b, _) = try pre.batch(csv, [0, 5])
        #expect(a == b)
        #expect(a[0, 2, 3, 1] == 40 && a[1, 4, 6, 2] == 202)
    }

    /// Labels read as floats that are not class indices (NaN, huge, fractional, negative) are one-line errors,
    /// not a trap converting them to Int.
    @Test func labelsThatAreNotClassIndicesAreRefused() {
        let x = Tensor(shape: [2, 2, 2], repeating: 0)
        for bad: Float in [.nan, 1e30, 1.5, -1, .infinity] {
            #expect(throws: DataError.self) { try DataSource.arrays(x: x, y: Tensor(shape: [2], values: [0, bad]), name: "y.npy") }
        }
        #expect((try? DataSource.arrays(x: x, y: Tensor(shape: [2], values: [0, 3]), name: "y.npy"))?.labels == [0, 3])
    }

    @Test func npzAndNpyPairs() throws {
        let (d, _) = try DataSource.load(Self.path("small.npz"))
        #expect(d.count == 4 && d.imageShape == [5, 5, 3] && d.labels == [0, 1, 2, 1] && d.classNames == ["0", "1", "2"])
        let dir = try TestSupport.makeTemporaryDirectory()
        let x = dir.appendingPathComponent("x.npy").path, y = dir.appendingPathComponent("y.npy").path
        try NPY.write(Tensor(shape: [2, 3, 3], values: (0..<18).map(Float.init)), to: x)
        try NPY.write(Tensor([1, 0]), to: y)
        let (p, _) = try DataSource.load("\(x),\(y)")
        #expect(p.imageShape == [3, 3, 1] && p.labels == [1, 0])
        try NPY.write(Tensor([1, 0, 1]), to: y)
        #expect(throws: DataError.self) { try DataSource.load("\(x),\(y)") }
    }

    @Test func subsetsLimitsAndStratifiedSplits() throws {
        let (d, _) = try DataSource.load(Self.path("folder"))
        let dogs = try d.selectingClasses([1])
        #expect(dogs.count == 3 && dogs.labels == [0, 0, 0] && dogs.classNames == ["dog"])
        #expect(d.limitingPerClass(2).labels == [0, 0, 1, 1])
        let (train, val) = try d.stratifiedSplit(fraction: 1.0 / 3, seed: 4)
        #expect(val.labels.sorted() == [0, 1] && train.count == 4)
        let (train2, val2) = try d.stratifiedSplit(fraction: 1.0 / 3, seed: 4)
        #expect(train2.ids == train.ids && val2.ids == val.ids)   // seeded
        #expect(throws: DataError.self) { try d.selectingClasses([7]) }
        #expect(throws: DataError.self) { try d.stratifiedSplit(fraction: 1.5, seed: 1) }
    }

    /// A folder copy with one class folder emptied, a corrupt file, or a CSV row pointing nowhere.
    @Test func badSourcesFailClearlyOrAreSkippedWhenAsked() throws {
        let dir = try TestSupport.makeTemporaryDirectory()
        let fm = FileManager.default
        let data = dir.appendingPathComponent("data").path
        try fm.copyItem(atPath: Self.path("folder"), toPath: data)
        try fm.createDirectory(atPath: "\(data)/empty_class", withIntermediateDirectories: true)
        do {
            _ = try DataSource.load(data)
            Issue.record("empty class folder accepted")
        } catch let e as DataError {
            #expect(e.description.contains("empty_class"))
        }
        try fm.removeItem(atPath: "\(data)/empty_class")
        try Data("not an image".utf8).write(to: URL(fileURLWithPath: "\(data)/cat/broken.png"))
        do {
            _ = try DataSource.load(data)
            Issue.record("corrupt image accepted")
        } catch let e as DataError {
            #expect(e.description.contains("broken.png"))
        }
        let (skipping, skipped) = try DataSource.load(data, skipBad: true)
        #expect(skipped == 1 && skipping.count == 6)
        let csv = dir.appendingPathComponent("rows.csv").path
        try "path,label\ndata/cat/cat_0.png,cat\ndata/cat/missing.png,cat\n".write(toFile: csv, atomically: true, encoding: .utf8)
        do {
            _ = try DataSource.load(csv)
            Issue.record("missing file accepted")
        } catch let e as DataError {
            #expect(e.description.contains("rows.csv:3") && e.description.contains("missing.png"))
        }
        #expect(try DataSource.load(csv, skipBad: true).skipped == 1)
        try "path,label\ndata/cat/cat_0.png,-4\n".write(toFile: csv, atomically: true, encoding: .utf8)
        #expect(throws: DataError.self) { try DataSource.load(csv) }
        #expect(throws: DataError.self) { try DataSource.load("no/such/folder") }
        // A corrupt file that passes the header check fails when its batch is decoded, naming it.
        let truncated = dir.appendingPathComponent("t").path
        try fm.createDirectory(atPath: "\(truncated)/a", withIntermediateDirectories: true)
        try fm.copyItem(atPath: Self.path("truncated.jpg"), toPath: "\(truncated)/a/t.jpg")
        let (t, _) = try DataSource.load(truncated)
        do {
            _ = try Preprocessor(targetShape: [4, 4, 3], fit: .resize, mode: .none).batch(t, [0])
            Issue.record("truncated JPEG decoded")
        } catch let e as DataError {
            #expect(e.description.contains("t.jpg"))
        }
    }

    @Test func loaderIsDeterministicAndOrdered() throws {
        let (d, _) = try DataSource.load(Self.path("folder"))
        let pre = Preprocessor(targetShape: [5, 7, 3], fit: .pad, mode: .scale(1.0 / 255))
        let aug = try Augmenter(spec: "flip:h,rotate:20,noise:0.05,brightness:0.1")
        let batches = epochBatches(count: d.count, batchSize: 2, shuffle: true, seed: 3)
        func run() throws -> [Tensor] {
            let loader = BatchLoader(source: d, batches: batches, preprocessor: pre, augmenter: aug, seed: 11)
            var out: [Tensor] = []
            while let b = try loader.next() { out.append(b.x) }
            return out
        }
        let first = try run(), second = try run()
        #expect(first.count == 3)
        #expect(first == second)
        #expect(epochBatches(count: 6, batchSize: 4, shuffle: false, seed: 0) == [[0, 1, 2, 3], [4, 5]])
    }

    /// IDX images stay bytes shared by every subset; a batch gets the same floats an in-memory float dataset gives,
    /// at the stored size and fitted to another.
    @Test func idxImagesAsBytesMatchFloats() throws {
        let dir = try TestSupport.makeTemporaryDirectory()
        let (n, h, w) = (7, 5, 4)
        var rng = SplitMix64(seed: 3)
        let pixels = (0..<(n * h * w)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        let labels: [UInt8] = [0, 2, 1, 2, 0, 1, 2]
        func idx(_ dims: [Int], _ body: [UInt8]) -> Data {
            var d = Data([0, 0, 8, UInt8(dims.count)])
            for v in dims { d.append(contentsOf: [UInt8(v >> 24 & 255), UInt8(v >> 16 & 255), UInt8(v >> 8 & 255), UInt8(v & 255)]) }
            return d + Data(body)
        }
        let images = dir.appendingPathComponent("i.idx").path, labelFile = dir.appendingPathComponent("l.idx").path
        try idx([n, h, w], pixels).write(to: URL(fileURLWithPath: images))
        try idx([n], labels).write(to: URL(fileURLWithPath: labelFile))
        let bytes = try DataSource.load("idx:\(images),\(labelFile)").source
        let floats = ImageDataset(imageShape: [h, w, 1], pixels: pixels.map(Float.init), labels: labels.map(Int.init),
                                  ids: (0..<n).map(String.init), classNames: ["0", "1", "2"])
        let a = try bytes.selectingClasses([2, 1]), b = try floats.selectingClasses([2, 1])
        #expect(a.labels == b.labels && a.ids == b.ids && a.count == 5)
        for target in [[h, w, 1], [8, 6, 3]] {
            for fit in [ImageFit.resize, .pad] {
                let size = target.reduce(1, *)
                var x = [Float](repeating: -1, count: size * a.count), y = x
                for i in 0..<a.count {
                    try x.withUnsafeMutableBufferPointer { try a.fill(i, target: target, fit: fit, into: $0.baseAddress! + i * size) }
                    try y.withUnsafeMutableBufferPointer { try b.fill(i, target: target, fit: fit, into: $0.baseAddress! + i * size) }
                }
                #expect(x == y, "\(target) \(fit)")
            }
        }
        // A header whose dimensions multiply past Int.max, or past what the file holds, is an error, not a trap.
        try idx([1 << 31, 1 << 31, 1 << 31, 4], []).write(to: URL(fileURLWithPath: images))
        #expect { try DataSource.load("idx:\(images),\(labelFile)") } throws: { "\($0)".contains("truncated") && "\($0)".contains(images) }
    }
}
