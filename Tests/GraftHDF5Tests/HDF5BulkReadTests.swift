import Foundation
import Testing
import GraftHDF5
import GraftTestSupport

/// `HDF5File.readFloats`: positioned reads of plain float32 datasets on all cores, libhdf5 for the rest.
struct HDF5BulkReadTests {
    /// Every kind of dataset a checkpoint holds, read together, equals reading each through libhdf5.
    @Test func equalsLibraryReadsForEveryKindOfDataset() throws {
        let path = try TestSupport.makeTemporaryDirectory().appendingPathComponent("mixed.h5").path
        // 3,000,000 floats (12 MB): several 4 MiB pieces, split over the workers.
        let big = (0..<3_000_000).map { Float($0 % 9973) * 0.25 - 600 }
        let small: [Float] = [1.5, -2.25, .pi, 0, -0, .greatestFiniteMagnitude]
        do {
            let root = try HDF5File.create(path).root()
            try root.createDataset("big", values: big, shape: [1000, 3000])
            try root.createDataset("layer/kernel:0", values: small, shape: [2, 3])
            try root.createDataset("f16", values: small.map(Double.init).map { $0 > 60000 ? 1 : $0 }, shape: [6], storage: .float16)
            try root.createDataset("f64", values: small.map(Double.init), shape: [3, 2], storage: .float64)
            try root.createDataset("i32", values: [Int32(-7), 0, 1 << 20], shape: [3])
            try root.createDataset("gzip", values: Array(big.prefix(50_000)), shape: [50_000], gzipLevel: 4)
            try root.createDataset("scalar", values: [Float(7)], shape: [])
            try root.createDataset("empty", values: [Float](), shape: [0, 4])
        }
        let file = try HDF5File.open(path)
        let names = ["big", "layer/kernel:0", "f16", "f64", "i32", "gzip", "scalar", "empty"]
        let datasets = try names.map { try file.dataset($0) }
        #expect(datasets[0].isPlainContiguousFloat32() && datasets[1].isPlainContiguousFloat32())
        #expect(!datasets[2].isPlainContiguousFloat32() && !datasets[5].isPlainContiguousFloat32())
        let buffers = try datasets.map { ds in
            UnsafeMutableBufferPointer<Float>.allocate(capacity: try ds.shape().reduce(1, *))
        }
        defer { buffers.forEach { $0.deallocate() } }
        for b in buffers { b.initialize(repeating: .nan) }
        try file.readFloats(Array(zip(datasets, buffers)).map { (dataset: $0, buffer: $1) })
        for (name, (ds, b)) in zip(names, zip(datasets, buffers)) {
            let expected = try ds.read(Float.self)
            #expect(Array(b).elementsEqual(expected) { $0.bitPattern == $1.bitPattern }, "\(name)")
        }
        #expect(Array(buffers[0]) == big)
    }

    /// A file cut short after it was opened (libhdf5 still believes the old size): the positioned read comes up
    /// short and the error names the dataset, instead of leaving part of the tensor unset.
    @Test func fileCutAfterOpeningIsAnErrorNamingTheDataset() throws {
        let path = try TestSupport.makeTemporaryDirectory().appendingPathComponent("cut.h5").path
        do {
            let root = try HDF5File.create(path).root()
            try root.createDataset("first", values: [Float](repeating: 1, count: 1000), shape: [1000])
            try root.createDataset("kernel", values: [Float](repeating: 2, count: 2_000_000), shape: [2_000_000])
        }
        let file = try HDF5File.open(path)
        let first = try file.dataset("first"), kernel = try file.dataset("kernel")
        #expect(kernel.isPlainContiguousFloat32())
        let extent = try #require(kernel.contiguousExtent())
        #expect(truncate(path, off_t(extent.offset + extent.size / 2)) == 0)
        let a = UnsafeMutableBufferPointer<Float>.allocate(capacity: 1000)
        let b = UnsafeMutableBufferPointer<Float>.allocate(capacity: 2_000_000)
        defer { a.deallocate(); b.deallocate() }
        let error = #expect(throws: HDF5Error.self) {
            try file.readFloats([(first, a), (kernel, b)])
        }
        #expect(error?.kind == .readFailed)
        #expect(error?.path == "/kernel")
        #expect(error?.description.contains("the file ends early") == true)
    }

    /// Files libhdf5 holds in memory or open for writing are read through libhdf5.
    @Test func inMemoryAndWritableFilesReadThroughTheLibrary() throws {
        let values = (0..<5000).map { Float($0) / 7 }
        let memory = try HDF5File.createInMemory(name: "weights.h5")
        let inMemory = try memory.root().createDataset("w", values: values, shape: [5000])
        let path = try TestSupport.makeTemporaryDirectory().appendingPathComponent("rw.h5").path
        let writable = try HDF5File.create(path)
        let onDisk = try writable.root().createDataset("w", values: values, shape: [5000])
        for (file, ds) in [(memory, inMemory), (writable, onDisk)] {
            let b = UnsafeMutableBufferPointer<Float>.allocate(capacity: 5000)
            defer { b.deallocate() }
            try file.readFloats([(ds, b)])
            #expect(Array(b) == values)
        }
    }
}
