import Foundation
import GraftCore
import Testing

struct RuntimeOptionsTests {
    /// The command line's GRAFT_* variables become settings through `RuntimeOptions(environment:)`; the library
    /// itself reads none. Out-of-range values are ignored, not trapped on.
    @Test func settingsFromTheCommandLinesVariables() {
        let r = RuntimeOptions(environment: ["GRAFT_NUM_THREADS": "3", "GRAFT_BUFFER_POOL_MB": "16", "GRAFT_DNNL": "0", "GRAFT_SIMD": "0",
                                             "GRAFT_HDF5_CHECK_TIMEOUT": "7.5", "GRAFT_HDF5_CHECK_FORK": "0"])
        #expect(r.threads == 3 && r.workers == 3 && r.bufferPoolBytes == 16 << 20 && r.bufferPoolLimit == 16 << 20)
        #expect(r.compute == ComputeOptions(oneDNN: false, simd: false))
        #expect(r.hdf5 == HDF5OpenPolicy(timeout: 7.5, fork: false))
        let hostile = RuntimeOptions(environment: ["GRAFT_NUM_THREADS": "9223372036854775807", "GRAFT_BUFFER_POOL_MB": "-1",
                                                   "GRAFT_DNNL": "nan", "GRAFT_HDF5_CHECK_TIMEOUT": "inf"])
        #expect(hostile.threads == nil && hostile.bufferPoolBytes == nil && hostile.compute.oneDNN && hostile.hdf5.timeout == nil)
        #expect(RuntimeOptions(environment: ["GRAFT_HDF5_CHECK_TIMEOUT": "1e300"]).hdf5.timeout == 86_400)
        #expect(RuntimeOptions(environment: [:]) == RuntimeOptions())
        #expect(RuntimeOptions().hdf5 == .standard && RuntimeOptions().hdf5.checkInChild)
    }

    /// Settings chosen around a piece of work hold inside it (nested too) and nowhere else; the process's stay.
    @Test func settingsChosenForOnePieceOfWork() async {
        let process = RuntimeOptions.current
        let one = RuntimeOptions(threads: 1, compute: ComputeOptions(fusion: false))
        RuntimeOptions.with(one) {
            #expect(RuntimeOptions.current == one && ComputeOptions.current.fusion == false)
            ComputeOptions.with(ComputeOptions(oneDNN: false)) {
                #expect(RuntimeOptions.current.threads == 1)   // only the compute paths changed
                #expect(ComputeOptions.current == ComputeOptions(oneDNN: false))
            }
            #expect(ComputeOptions.current.fusion == false && ComputeOptions.current.oneDNN)
            #expect(RuntimeOptions.process == process)
        }
        // A task running at the same time keeps the process's settings.
        await withTaskGroup(of: RuntimeOptions.self) { group in
            group.addTask { await RuntimeOptions.with(one) { () async -> RuntimeOptions in
                try? await Task.sleep(nanoseconds: 20_000_000)
                return RuntimeOptions.current
            } }
            group.addTask { RuntimeOptions.current }
            var seen: [RuntimeOptions] = []
            for await r in group { seen.append(r) }
            #expect(seen.contains(one) && seen.contains(process))
        }
        #expect(RuntimeOptions.current == process)
    }
}

struct NamePatternTests {
    @Test func shellPatterns() {
        #expect(NamePattern.matches("block5_*", "block5_conv1"))
        #expect(!NamePattern.matches("block5_*", "block4_conv1"))
        #expect(NamePattern.matches("conv?_block1_*", "conv2_block1_1_conv"))
        #expect(!NamePattern.matches("conv?_block1_*", "conv12_block1_1_conv"))
        #expect(NamePattern.matches("predictions/*", "predictions/kernel"))
        #expect(NamePattern.matches("*", "outer/inner/kernel"))        // `*` crosses `/`, as weight paths need
        #expect(NamePattern.matches("block[45]_*", "block4_pool") && !NamePattern.matches("block[45]_*", "block3_pool"))
        #expect(NamePattern.matches("dense\\*", "dense*") && !NamePattern.matches("dense\\*", "dense_1"))
        #expect(!NamePattern.matches("dense", "dense_1") && NamePattern.matches("", ""))
    }
}

struct GraftErrorTests {
    struct Plain: GraftError {
        var description: String { "bad" }
        var context: ErrorContext { ErrorContext(key: "k") }
    }

    @Test func originAndContext() {
        #expect(Plain().origin == .input)
        #expect(InternalError("broken").origin == .internal)
        let inner = ErrorContext(layer: "conv1", tensor: "conv1/kernel")
        #expect(inner.merging(ErrorContext(file: "m.h5")) == ErrorContext(file: "m.h5", layer: "conv1", tensor: "conv1/kernel"))
        #expect(ErrorContext(file: "a").merging(ErrorContext(file: "b")).file == "b")
        #expect("\(ErrorContext(file: "m.h5", key: "epochs"))" == "file=m.h5 key=epochs")
    }
}
