import Foundation
import Testing
import GraftTensor
import GraftTestSupport
@testable import GraftData

/// NumPy files written by NumPy itself (tools/make_fixtures.py), and ones Graft must refuse.
struct NPYTests {
    static let expected: [Float] = (0..<24).map { Float($0) / 4 - 2 }

    @Test(arguments: ["f4", "f8", "f4_v2", "f4_v3"])
    func readsFloatFiles(_ name: String) throws {
        let t = try NPY.read(TestSupport.fixture("npy/\(name).npy"))
        #expect(t.shape == [2, 3, 4])
        #expect(t.scalars == Self.expected)
    }

    @Test func readsIntegerFiles() throws {
        #expect(try NPY.read(TestSupport.fixture("npy/u1.npy")).scalars == (0..<24).map { Float($0 * 10 % 256) })
        #expect(try NPY.read(TestSupport.fixture("npy/i8.npy")).scalars == (-12..<12).map(Float.init))
        #expect(try NPY.read(TestSupport.fixture("npy/scalar.npy")).shape == [])
    }

    @Test(arguments: ["fortran", "big_endian", "complex"])
    func refusesUnsupportedLayouts(_ name: String) {
        let path = TestSupport.fixture("npy/\(name).npy")
        do {
            _ = try NPY.read(path)
            Issue.record("\(name) accepted")
        } catch let e as NPYError {
            #expect(e.description.hasPrefix(path))
        } catch {
            Issue.record("untyped \(error)")
        }
    }

    @Test func roundTripAndTruncation() throws {
        let dir = try TestSupport.makeTemporaryDirectory()
        let path = dir.appendingPathComponent("x.npy").path
        let t = Tensor(shape: [3, 1, 2], values: [1, -2, 3.5, 4, 5, 6])
        try NPY.write(t, to: path)
        #expect(try NPY.read(path) == t)
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        let headerLength = Int(data[8]) | Int(data[9]) << 8
        #expect((10 + headerLength) % 64 == 0)   // NumPy aligns the data to 64 bytes
        #expect(data.count == 10 + headerLength + 6 * 4)
        for cut in [0, 5, 9, 40, data.count - 1] {
            #expect(throws: NPYError.self) { try NPY.decode(data.prefix(cut), file: "cut") }
        }
        #expect(throws: NPYError.self) { try NPY.read(dir.appendingPathComponent("missing.npy").path) }
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir.path)
        #expect(leftovers == ["x.npy"])
    }

    /// Crafted headers: a `descr` found inside another key's string is no key, `fortran_order: 1` is Fortran order as
    /// Python reads it, and duplicate or unknown keys are refused.
    @Test func headersAreParsedAsPythonLiterals() throws {
        func header(_ text: String) -> Data {
            var h = text
            h += String(repeating: " ", count: (64 - (10 + h.utf8.count + 1) % 64) % 64) + "\n"
            var d = Data([0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(h.utf8.count & 0xFF), UInt8(h.utf8.count >> 8)])
            d.append(contentsOf: Array(h.utf8))
            d.append(contentsOf: [UInt8](repeating: 0, count: 64))
            return d
        }
        let ok = header("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }")
        #expect(try NPY.decode(ok, file: "ok").shape == [2, 3])
        for bad in ["{'note': \"'descr': '<f4'\", 'descr2': '<f8', 'fortran_order': False, 'shape': (2,), }",
                    "{'descr': '<f4', 'fortran_order': 1, 'shape': (2, 3), }",
                    "{'descr': '<f4', 'descr': '<f8', 'fortran_order': False, 'shape': (2,), }",
                    "{'fortran_order': False, 'shape': (2,), }",
                    "{'descr': '<f4', 'fortran_order': maybe, 'shape': (2,), }",
                    "{'descr': '<f4', 'fortran_order': False, 'shape': (2, -3), }",
                    "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)"] {
            #expect(throws: NPYError.self, "\(bad)") { try NPY.decode(header(bad), file: "crafted") }
        }
        #expect(try NPY.decode(header("{'descr': '<f4', 'fortran_order': 0, 'shape': (2,), }"), file: "zero").shape == [2])
    }
}
