import Foundation
import Testing
import GraftHDF5
import GraftTestSupport

/// Bad files and bad requests throw typed errors that name the file; nothing crashes.
struct HDF5FailureTests {
    /// Opens the file and reads every dataset and attribute in it.
    static func readEverything(_ path: String) throws {
        try HDF5File.open(path).readEverything()
    }

    func expectFileError(_ path: String, _ kinds: Set<HDF5ErrorKind>? = nil, sourceLocation: SourceLocation = #_sourceLocation) {
        do {
            try Self.readEverything(path)
            Issue.record("no error for \(path)", sourceLocation: sourceLocation)
        } catch let error as HDF5Error {
            #expect(error.description.contains(path), sourceLocation: sourceLocation)
            #expect(!error.description.contains("\n"), sourceLocation: sourceLocation)
            if let kinds { #expect(kinds.contains(error.kind), "\(error)", sourceLocation: sourceLocation) }
        } catch {
            Issue.record("untyped error \(error)", sourceLocation: sourceLocation)
        }
    }

    @Test func missingFileAndDirectory() throws {
        expectFileError("/nonexistent/graft/model.h5", [.fileNotFound])
        expectFileError(try TestSupport.makeTemporaryDirectory().path, [.cannotOpen])
    }

    @Test func emptyAndRandomFiles() throws {
        let dir = try TestSupport.makeTemporaryDirectory()
        let empty = dir.appendingPathComponent("empty.h5").path
        FileManager.default.createFile(atPath: empty, contents: Data())
        expectFileError(empty, [.notHDF5])
        var rng = SystemRandomNumberGenerator()
        let random = dir.appendingPathComponent("random.h5").path
        FileManager.default.createFile(atPath: random, contents: Data((0..<4096).map { _ in UInt8.random(in: 0...255, using: &rng) }))
        expectFileError(random, [.notHDF5])
        let text = dir.appendingPathComponent("model.h5").path
        try "not a model".write(toFile: text, atomically: true, encoding: .utf8)
        expectFileError(text, [.notHDF5])
    }

    @Test(arguments: ["keras/tfkeras_lenet.h5", "keras/keras3_lenet.h5", "hdf5/h5py_types.h5"])
    func truncatedAtManyOffsets(_ fixture: String) throws {
        let source = try Data(contentsOf: URL(fileURLWithPath: TestSupport.fixture(fixture)))
        let dir = try TestSupport.makeTemporaryDirectory()
        let offsets = [1, 8, 100, 512, 2048, source.count / 3, source.count / 2, source.count - 4096, source.count - 1]
        for offset in offsets where offset > 0 && offset < source.count {
            let path = dir.appendingPathComponent("cut_\(offset).h5").path
            FileManager.default.createFile(atPath: path, contents: source.prefix(offset))
            expectFileError(path)
        }
    }

    @Test func missingPathsNameTheObject() throws {
        let path = TestSupport.fixture("keras/tfkeras_lenet.h5")
        let file = try HDF5File.open(path)
        do {
            _ = try file.group("/model_weights/no_such_layer")
            Issue.record("missing group opened")
        } catch let e as HDF5Error {
            #expect(e.kind == .missingPath)
            #expect(e.description.contains(path) && e.description.contains("/model_weights/no_such_layer"))
        }
        #expect(throws: HDF5Error.self) { try file.dataset("/model_weights/conv1/conv1/nope:0") }
        #expect(throws: HDF5Error.self) { try file.dataset("/model_weights") }   // a group, not a dataset
        #expect(throws: HDF5Error.self) { try file.root().readStringAttribute("no_such_attribute") }
    }

    @Test func typeMismatchesThrow() throws {
        let path = TestSupport.fixture("hdf5/h5py_types.h5")
        let root = try HDF5File.open(path).root()
        do {
            _ = try root.readAttribute("vlen_utf8", as: Float.self)
            Issue.record("string attribute read as numbers")
        } catch let e as HDF5Error {
            #expect(e.kind == .typeMismatch)
            #expect(e.description.contains(path) && e.description.contains("vlen_utf8"))
        }
        #expect(throws: HDF5Error.self) { try root.readAttribute("fixed_array", as: Int32.self) }
        #expect(throws: HDF5Error.self) { try root.readStringsAttribute("int_scalar") }
        #expect(throws: HDF5Error.self) { try root.dataset("ids_vlen").read(Float.self) }
        #expect(throws: HDF5Error.self) { try root.dataset("f32").readStrings() }
        #expect(throws: HDF5Error.self) { try root.readStringAttribute("fixed_array") }  // three strings, not one
    }

    /// The integrity check opens but does not read plain contiguous float32 datasets; which ones qualify.
    @Test func plainContiguousFloat32Datasets() throws {
        let types = try HDF5File.open(TestSupport.fixture("hdf5/h5py_types.h5"))
        #expect(try types.dataset("f32").isPlainContiguousFloat32())
        #expect(try types.dataset("nested/a/b/kernel:0").isPlainContiguousFloat32())
        #expect(try !types.dataset("gzip_f32").isPlainContiguousFloat32())   // chunked and filtered
        #expect(try !types.dataset("f64").isPlainContiguousFloat32())        // needs conversion
        #expect(try !types.dataset("f16").isPlainContiguousFloat32())
        #expect(try !types.dataset("empty_f32").isPlainContiguousFloat32()) // no storage allocated
        // Cut the file inside a weight's bytes: that dataset no longer qualifies and the check reads it and fails.
        let path = TestSupport.fixture("keras/tfkeras_lenet.h5")
        let source = try Data(contentsOf: URL(fileURLWithPath: path))
        let kernel = try HDF5File.open(path).dataset("/model_weights/fc1/fc1/kernel:0")
        #expect(kernel.isPlainContiguousFloat32())
        let (offset, size) = try #require(kernel.contiguousExtent())
        let dir = try TestSupport.makeTemporaryDirectory()
        let cut = dir.appendingPathComponent("cut.h5").path
        FileManager.default.createFile(atPath: cut, contents: source.prefix(offset + size / 2))
        if let damaged = try? HDF5File.open(cut).dataset("/model_weights/fc1/fc1/kernel:0") {
            #expect(!damaged.isPlainContiguousFloat32())
        }
        expectFileError(cut)
    }

    @Test func hugeDeclaredShapeIsRefusedBeforeAllocating() throws {
        let path = TestSupport.fixture("hdf5/huge_declared.h5")
        let ds = try HDF5File.open(path, policy: .unchecked).dataset("huge")   // the reading code itself
        #expect(try ds.shape() == [1_000_000, 1_000_000])
        do {
            _ = try ds.read(Float.self)
            Issue.record("read 10^12 elements")
        } catch let e as HDF5Error {
            #expect(e.kind == .tooLarge)
            #expect(e.description.contains(path))
        }
    }

    @Test func createInMissingFolderFails() {
        #expect(throws: HDF5Error.self) { try HDF5File.create("/nonexistent/folder/x.h5") }
    }
}

/// String attributes decoded by the checking child are what the parent reads (it never decodes a checked file's
/// variable-length strings itself), until the file on disk changes.
struct CheckedStringAttributeTests {
    @Test func parentUsesTheChildsStringsUntilTheFileChanges() throws {
        let dir = try TestSupport.makeTemporaryDirectory()
        let path = dir.appendingPathComponent("s.h5").path
        try HDF5File.writeAtomically(path) { f in try f.root().setAttribute("names", strings: ["a", "b"], variableLength: true) }
        let all = try HDF5File.open(path).readEverything()
        #expect(all["/@names"] == ["a", "b"])
        HDF5Guard.setStringAttributes(["/@names": ["from the child"]], for: path, stamp: HDF5Guard.fileStamp(path))
        #expect(try HDF5File.open(path).root().readStringsAttribute("names") == ["from the child"])
        try HDF5File.writeAtomically(path) { f in try f.root().setAttribute("names", strings: ["c"], variableLength: true) }
        #expect(try HDF5File.open(path).root().readStringsAttribute("names") == ["c"])
    }
}
