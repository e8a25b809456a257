import Foundation
import Testing
import GraftHDF5
import GraftTestSupport

/// Writes every dtype, shape and attribute kind with GraftHDF5 and reads it back.
struct HDF5WriteTests {
    func scratch(_ name: String) throws -> String {
        try TestSupport.makeTemporaryDirectory().appendingPathComponent(name).path
    }

    @Test func roundTripEveryStorageType() throws {
        let path = try scratch("types.h5")
        let values: [Double] = [0, 1, 2, 3, 4, 5, 6, 100]
        do {
            let root = try HDF5File.create(path).root()
            for storage in HDF5StorageType.allCases {
                try root.createDataset("as_\(storage.rawValue)", values: values, shape: [2, 2, 2], storage: storage)
            }
            try root.createDataset("f32_native", values: [Float(1.5), -2.25, .pi], shape: [3])
            try root.createDataset("i64_extremes", values: [Int64.min, -1, Int64.max], shape: [3])
            try root.createDataset("u64_extremes", values: [UInt64.max, 0], shape: [2])
            try root.createDataset("scalar", values: [7.0], shape: [])
            try root.createDataset("empty", values: [Float](), shape: [0, 4])
            try root.createDataset("deep/er/kernel:0", values: [Float](repeating: 0.5, count: 6), shape: [2, 3])
            try root.createStringDataset("ids", strings: ["a.png", "b/ç.jpg", ""])
        }
        let root = try HDF5File.open(path).root()
        for storage in HDF5StorageType.allCases {
            let ds = try root.dataset("as_\(storage.rawValue)")
            #expect(try ds.shape() == [2, 2, 2])
            #expect(try ds.read(Double.self) == values, "\(storage)")
            #expect(HDF5ReadTests.numpyName(try ds.dataType()) == storage.rawValue)
        }
        #expect(try root.dataset("f32_native").read(Float.self) == [1.5, -2.25, .pi])
        #expect(try root.dataset("i64_extremes").read(Int64.self) == [Int64.min, -1, Int64.max])
        #expect(try root.dataset("u64_extremes").read(UInt64.self) == [UInt64.max, 0])
        #expect(try root.dataset("scalar").shape() == [])
        #expect(try root.dataset("scalar").read(Double.self) == [7.0])
        #expect(try root.dataset("empty").shape() == [0, 4])
        #expect(try root.dataset("empty").read(Float.self) == [])
        #expect(try root.group("deep").group("er").dataset("kernel:0").read(Float.self) == [Float](repeating: 0.5, count: 6))
        #expect(try root.dataset("ids").readStrings() == ["a.png", "b/ç.jpg", ""])
    }

    @Test func float16StorageRoundsLikeIEEEHalf() throws {
        let path = try scratch("half.h5")
        do {
            try HDF5File.create(path).root()
                .createDataset("h", values: [Float(1.0 / 3.0), 65504, 1e-8, -2.5], shape: [4], storage: .float16)
        }
        let read = try HDF5File.open(path).dataset("h").read(Float.self)
        #expect(read == [0.333251953125, 65504, 0, -2.5])
    }

    @Test func gzipWriteReadsBackAndIsSmaller() throws {
        let plain = try scratch("plain.h5"), zipped = try scratch("zipped.h5")
        let values = (0..<200_000).map { Float($0 % 7) }
        do {
            try HDF5File.create(plain).root().createDataset("x", values: values, shape: [400, 500])
            try HDF5File.create(zipped).root().createDataset("x", values: values, shape: [400, 500], gzipLevel: 6)
        }
        let ds = try HDF5File.open(zipped).dataset("x")
        #expect(ds.storage().chunked)
        #expect(ds.storage().filters.contains { $0.contains("deflate") })
        #expect(try ds.read(Float.self) == values)
        let size = { (p: String) in (try FileManager.default.attributesOfItem(atPath: p)[.size] as? Int) ?? 0 }
        #expect(try size(zipped) * 10 < size(plain))
    }

    @Test func roundTripEveryAttributeKind() throws {
        let path = try scratch("attrs.h5")
        do {
            let root = try HDF5File.create(path).root()
            try root.setAttribute("model_config", string: String(repeating: "{\"x\": 1} ", count: 20_000))
            try root.setAttribute("utf8", string: "größe ✓")
            try root.setAttribute("fixed_scalar", strings: ["conv1"], scalar: true)
            try root.setAttribute("fixed_array", strings: ["a", "bb", "ccc"])
            try root.setAttribute("vlen_array", strings: ["x", "ÿy"], variableLength: true)
            try root.setAttribute("int", value: Int64(-5))
            try root.setAttribute("doubles", values: [1.0, 2.0, 3.0, 4.0, 5.0, 6.0], shape: [2, 3])
            try root.setAttribute("u8s", values: [UInt8(1), 2, 255])
            let g = try root.createGroup("layer")
            try g.setAttribute("weight_names", strings: ["layer/kernel:0", "layer/bias:0"])
            // Overwriting replaces the value.
            try root.setAttribute("int", value: Int64(6))
        }
        let root = try HDF5File.open(path).root()
        #expect(try root.readStringAttribute("model_config").count == 180_000)
        #expect(try root.readStringAttribute("utf8") == "größe ✓")
        #expect(try root.readStringAttribute("fixed_scalar") == "conv1")
        #expect(try root.attributeInfo("fixed_scalar").shape == [])
        #expect(try root.readStringsAttribute("fixed_array") == ["a", "bb", "ccc"])
        #expect(try root.attributeInfo("fixed_array").type == .string(variableLength: false, size: 3, utf8: false))
        #expect(try root.readStringsAttribute("vlen_array") == ["x", "ÿy"])
        #expect(try root.readAttribute("int", as: Int64.self) == [6])
        #expect(try root.readAttribute("doubles", as: Double.self) == [1, 2, 3, 4, 5, 6])
        #expect(try root.attributeInfo("doubles").shape == [2, 3])
        #expect(try root.readAttribute("u8s", as: UInt8.self) == [1, 2, 255])
        #expect(try root.group("layer").readStringsAttribute("weight_names") == ["layer/kernel:0", "layer/bias:0"])
    }

    @Test func longListsSplitLikeKeras() throws {
        let path = try scratch("split.h5")
        let many = (0..<3000).map { "conv_block_\($0)_with_a_rather_long_name" }
        let few = ["a", "b"]
        do {
            let root = try HDF5File.create(path).root()
            try root.setStringListAttribute("layer_names", strings: many)
            try root.createGroup("small").setStringListAttribute("layer_names", strings: few)
            try root.createGroup("empty").setStringListAttribute("weight_names", strings: [])
            // Rewriting a split list with a short one removes the stale parts.
            let again = try root.createGroup("rewritten")
            try again.setStringListAttribute("names", strings: many)
            try again.setStringListAttribute("names", strings: few)
        }
        let root = try HDF5File.open(path).root()
        #expect(!root.hasAttribute("layer_names"))
        #expect(root.hasAttribute("layer_names0") && root.hasAttribute("layer_names1"))
        let itemSize = many.map(\.utf8.count).max() ?? 0
        var part = 0
        while root.hasAttribute("layer_names\(part)") {
            let shape = try root.attributeInfo("layer_names\(part)").shape
            #expect(shape[0] * itemSize <= hdf5AttributeSplitLimit)
            part += 1
        }
        #expect(part == Int((Double(many.count * itemSize) / Double(hdf5AttributeSplitLimit)).rounded(.up)))
        #expect(try root.readStringListAttribute("layer_names") == many)
        #expect(try root.group("small").readStringListAttribute("layer_names") == few)
        #expect(try root.group("small").hasAttribute("layer_names"))
        #expect(try root.group("empty").readStringListAttribute("weight_names") == [])
        #expect(try root.group("empty").attributeInfo("weight_names").type == .float(bits: 64))
        let rewritten = try root.group("rewritten")
        #expect(try rewritten.readStringListAttribute("names") == few)
        #expect(!rewritten.hasAttribute("names0"))
    }

    @Test func shapeMismatchAndHugeShapesAreRefusedBeforeWriting() throws {
        let path = try scratch("bad.h5")
        let root = try HDF5File.create(path).root()
        #expect(throws: HDF5Error.self) { try root.createDataset("x", values: [Float](repeating: 0, count: 5), shape: [2, 3]) }
        do {
            try root.createDataset("huge", values: [Float](), shape: [1_000_000, 1_000_000])
            Issue.record("a 10^12-element dataset was accepted")
        } catch let e as HDF5Error {
            #expect(e.kind == .tooLarge)
        }
        #expect(throws: HDF5Error.self) { try root.createDataset("neg", values: [Float](), shape: [-1, 0]) }
    }

    @Test func atomicWriteLeavesOldFileWhenBodyFails() throws {
        let dir = try TestSupport.makeTemporaryDirectory()
        let path = dir.appendingPathComponent("model.h5").path
        try HDF5File.writeAtomically(path) { file in
            try file.root().setAttribute("version", value: Int64(1))
        }
        struct Boom: Error {}
        #expect(throws: Boom.self) {
            try HDF5File.writeAtomically(path) { file in
                try file.root().setAttribute("version", value: Int64(2))
                throw Boom()
            }
        }
        #expect(try HDF5File.open(path).root().readAttribute("version", as: Int64.self) == [1])
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir.path)
        #expect(leftovers == ["model.h5"])
        try HDF5File.writeAtomically(path) { file in
            try file.root().setAttribute("version", value: Int64(3))
        }
        #expect(try HDF5File.open(path).root().readAttribute("version", as: Int64.self) == [3])
    }

    @Test func closeRefusesWhileObjectsAreOpen() throws {
        let path = try scratch("close.h5")
        let file = try HDF5File.create(path)
        let group = try file.root().createGroup("g")
        #expect(throws: HDF5Error.self) { try file.close() }
        _ = group
    }
}
