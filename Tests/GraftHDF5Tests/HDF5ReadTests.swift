import Foundation
import Testing
import GraftHDF5
import GraftTestSupport

/// Reads files written by h5py (tools/make_fixtures.py) and compares with the values it recorded.
struct HDF5ReadTests {
    static let path = TestSupport.fixture("hdf5/h5py_types.h5")

    struct Expected: Decodable {
        struct Dataset: Decodable { let dtype: String; let shape: [Int]; let values: [Double] }
        let datasets: [String: Dataset]
        let strings: [String: [String]]
        let split_layer_names: [String]
    }

    static func expected() throws -> Expected {
        let data = try Data(contentsOf: URL(fileURLWithPath: TestSupport.fixture("hdf5/h5py_types.json")))
        return try JSONDecoder().decode(Expected.self, from: data)
    }

    static func numpyName(_ type: HDF5DataType) -> String {
        switch type {
        case .float(let bits): return "float\(bits)"
        case .integer(let bits, let signed): return (signed ? "int" : "uint") + "\(bits)"
        default: return type.description
        }
    }

    @Test func everyNumericDtypeReadsAsWritten() throws {
        let file = try HDF5File.open(Self.path)
        let expect = try Self.expected()
        #expect(expect.datasets.count == 14)
        for (name, e) in expect.datasets {
            let ds = try file.dataset("/\(name)")
            #expect(try ds.shape() == e.shape, "\(name)")
            #expect(Self.numpyName(try ds.dataType()) == e.dtype, "\(name)")
            #expect(try ds.read(Double.self) == e.values, "\(name) as Double")
            if e.dtype.hasPrefix("float") {
                let floats = try ds.read(Float.self)
                #expect(floats == e.values.map { Float($0) }, "\(name) as Float")
            }
        }
        // Integers keep their exact values when read as their own type.
        #expect(try file.dataset("i64").read(Int64.self) == [-(1 << 62), -1, 0, 1 << 62])
        #expect(try file.dataset("u64").read(UInt64.self) == [0, 1, 1 << 40, 1 << 53])
        #expect(try file.dataset("u8").read(UInt8.self) == [0, 1, 200, 255])
        #expect(try file.dataset("i8").read(Int8.self) == [-128, -1, 0, 127])
    }

    @Test func gzipChunkedDatasetReadsTransparently() throws {
        let file = try HDF5File.open(Self.path)
        let ds = try file.dataset("gzip_f32")
        let storage = ds.storage()
        #expect(storage.chunked)
        #expect(storage.filters.contains { $0.contains("deflate") })
        #expect(try ds.read(Double.self) == (try Self.expected()).datasets["gzip_f32"]?.values)
    }

    @Test func nestedPathsAndChildren() throws {
        let file = try HDF5File.open(Self.path)
        let root = try file.root()
        #expect(root.contains("nested/a/b/kernel:0"))
        #expect(!root.contains("nested/a/x"))
        #expect(root.kind(of: "nested/a") == .group)
        #expect(try root.group("nested").group("a/b").dataset("kernel:0").read(Float.self) == [0, 1, 2, 3, 4, 5])
        let children = try root.children()
        #expect(children.contains(HDF5Child(name: "nested", kind: .group)))
        #expect(children.contains(HDF5Child(name: "f32", kind: .dataset)))
        #expect(children.map(\.name) == children.map(\.name).sorted())
    }

    @Test func stringDatasets() throws {
        let file = try HDF5File.open(Self.path)
        let expect = try Self.expected()
        #expect(try file.dataset("ids_vlen").readStrings() == expect.strings["ids_vlen"])
        #expect(try file.dataset("ids_fixed").readStrings() == expect.strings["ids_fixed"])
        #expect(try file.dataset("ids_vlen").dataType() == .string(variableLength: true, size: 0, utf8: true))
    }

    @Test func everyStringAttributeKind() throws {
        let root = try HDF5File.open(Self.path).root()
        #expect(try root.readStringAttribute("vlen_utf8") == "héllo wörld ✓")
        #expect(try root.readStringAttribute("vlen_ascii") == "plain ascii")
        #expect(try root.readStringAttribute("fixed_nullpad") == "conv1")
        #expect(try root.readStringAttribute("fixed_spacepad") == "dense")
        #expect(try root.readStringAttribute("fixed_nullterm") == "bn")
        #expect(try root.readStringsAttribute("fixed_array") == ["conv1", "bn", "dense_1"])
        #expect(try root.readStringsAttribute("vlen_array") == ["x", "yy", "zzz ✓"])
        #expect(try root.attributeInfo("fixed_array").shape == [3])
        #expect(try root.attributeInfo("fixed_nullpad").shape == [])
        if case .string(let vlen, let size, _) = try root.attributeInfo("fixed_spacepad").type {
            #expect(!vlen && size == 8)
        } else {
            Issue.record("fixed_spacepad is not a string")
        }
    }

    @Test func numericAttributes() throws {
        let root = try HDF5File.open(Self.path).root()
        #expect(try root.readAttribute("int_scalar", as: Int.self) == [42])
        #expect(try root.readAttribute("float_matrix", as: Float.self) == [1.5, -2.0, 3.25, 4.0])
        #expect(try root.attributeInfo("float_matrix").shape == [2, 2])
        #expect(try root.attributeNames().contains("graft_fixture"))
    }

    @Test func splitAttributeReadsAsOneList() throws {
        let file = try HDF5File.open(Self.path)
        let split = try file.group("/split")
        #expect(!split.hasAttribute("layer_names"))
        #expect(split.hasAttribute("layer_names0") && split.hasAttribute("layer_names1"))
        #expect(try split.readStringListAttribute("layer_names") == (try Self.expected()).split_layer_names)
        // Keras writes an empty list as an empty float64 array.
        #expect(try file.root().readStringListAttribute("empty_names") == [])
    }
}
