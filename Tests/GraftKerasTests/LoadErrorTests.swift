import Foundation
import Testing
import GraftHDF5
import GraftNN
import GraftTensor
import GraftTestSupport
@testable import GraftKeras

/// Bad architectures and bad weights fail with messages that name the file, the layer and the tensor.
struct LoadErrorTests {
    /// A copy of a parity fixture with its model_config rewritten by `edit`.
    func tamperedConfig(_ fixture: String, _ edit: (inout [String: Any]) -> Void) throws -> String {
        let dir = try TestSupport.makeTemporaryDirectory()
        let copy = dir.appendingPathComponent(fixture).path
        try FileManager.default.copyItem(atPath: TestSupport.fixture("parity/\(fixture)"), toPath: copy)
        let file = try HDF5File.open(copy, writable: true)
        let root = try file.root()
        let json = try root.readStringAttribute("model_config")
        var object = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any] ?? [:]
        edit(&object)
        let data = try JSONSerialization.data(withJSONObject: object)
        try root.setAttribute("model_config", string: String(decoding: data, as: UTF8.self))
        return copy
    }

    func layers(_ object: [String: Any]) -> [[String: Any]] {
        ((object["config"] as? [String: Any])?["layers"] as? [[String: Any]]) ?? []
    }

    func setLayers(_ object: inout [String: Any], _ layers: [[String: Any]]) {
        var config = object["config"] as? [String: Any] ?? [:]
        config["layers"] = layers
        object["config"] = config
    }

    func expectError(_ path: String, containing parts: [String], architecture: String? = nil,
                     sourceLocation: SourceLocation = #_sourceLocation) {
        do {
            _ = try KerasLoader.load(path, architecture: architecture)
            Issue.record("loaded \(path)", sourceLocation: sourceLocation)
        } catch {
            let text = "\(error)"
            #expect(!text.contains("\n"), sourceLocation: sourceLocation)
            for p in parts { #expect(text.contains(p), "\(text)", sourceLocation: sourceLocation) }
        }
    }

    @Test func unsupportedLayerNamesClassAndLayer() throws {
        let path = try tamperedConfig("tfkeras_mini_xception.h5") { o in
            var ls = layers(o)
            if let i = ls.firstIndex(where: { ($0["name"] as? String) == "gmp" }) { ls[i]["class_name"] = "ConvLSTM3D" }
            setLayers(&o, ls)
        }
        expectError(path, containing: [path, "ConvLSTM3D", "gmp"])
    }

    /// Layer sizes a hostile config declares (found by tools/fuzz: 10^12 filters aborted the allocation, a stride of
    /// 0 divided by zero, a dilation of Int.max overflowed, a bit flip turning `"groups": 1` into 0 divided by zero) are
    /// refused while the model is built, naming the layer, before anything is allocated.
    @Test(arguments: [("stem_conv", "filters", 1_000_000_000_000, "too large"), ("stem_conv", "filters", -3, "invalid"),
                      ("up", "size", 1_000_000, "from 1 to 65536"), ("stem_conv", "strides", 0, "from 1 to 65536"),
                      ("stem_conv", "dilation_rate", Int.max, "from 1 to 65536"), ("stem_conv", "kernel_size", 1 << 40, "too large"),
                      ("stem_conv", "groups", 0, "groups must be at least 1"), ("stem_conv", "groups", -2, "groups must be at least 1")])
    func hugeOrNegativeLayerSizesAreRefused(_ layer: String, _ key: String, _ value: Int, _ says: String) throws {
        let path = try tamperedConfig("tfkeras_mini_xception.h5") { o in
            var ls = layers(o)
            var target = ls.firstIndex(where: { ($0["name"] as? String) == layer })
            if target == nil, key == "size" {
                // No UpSampling2D in this model: turn the stem convolution's input into one.
                target = ls.firstIndex(where: { ($0["class_name"] as? String) == "ZeroPadding2D" })
                if let t = target { ls[t]["class_name"] = "UpSampling2D"; ls[t]["config"] = ["name": ls[t]["name"] ?? "up", "size": [1, 1]] }
            }
            if let t = target, var cfg = ls[t]["config"] as? [String: Any] {
                cfg[key] = ["size", "strides", "dilation_rate", "kernel_size"].contains(key) ? [value, value] : value
                ls[t]["config"] = cfg
            }
            setLayers(&o, ls)
        }
        expectError(path, containing: [path, says])
    }

    /// A whole-number double beyond Int (1e300 filters) is "not an integer", not a trap converting it.
    @Test func hugeDoubleWhereAnIntegerBelongsIsAnError() throws {
        let path = try tamperedConfig("tfkeras_mini_xception.h5") { o in
            var ls = layers(o)
            if let t = ls.firstIndex(where: { ($0["name"] as? String) == "stem_conv" }), var cfg = ls[t]["config"] as? [String: Any] {
                cfg["filters"] = 1e300
                ls[t]["config"] = cfg
            }
            setLayers(&o, ls)
        }
        expectError(path, containing: [path, "filters"])
    }

    @Test func unknownInboundLayerIsNamed() throws {
        let path = try tamperedConfig("keras3_mini_xception.h5") { o in
            var ls = layers(o)
            if let i = ls.firstIndex(where: { ($0["name"] as? String) == "add" }),
               var nodes = ls[i]["inbound_nodes"] as? [[String: Any]], var args = nodes[0]["args"] as? [[Any]],
               var t = args[0][0] as? [String: Any], var cfg = t["config"] as? [String: Any] {
                cfg["keras_history"] = ["no_such_layer", 0, 0]
                t["config"] = cfg
                args[0][0] = t
                nodes[0]["args"] = args
                ls[i]["inbound_nodes"] = nodes
            }
            setLayers(&o, ls)
        }
        expectError(path, containing: [path, "no_such_layer", "add"])
    }

    @Test func cyclicInboundNodesFail() throws {
        let path = try tamperedConfig("tfkeras_mini_xception.h5") { o in
            var ls = layers(o)
            // stem_conv now takes its input from stem_relu, which depends on stem_conv.
            if let i = ls.firstIndex(where: { ($0["name"] as? String) == "stem_conv" }) {
                ls[i]["inbound_nodes"] = [[["stem_relu", 0, 0, [String: Any]()]]]
            }
            setLayers(&o, ls)
        }
        expectError(path, containing: [path, "can never be computed"])
    }

    @Test func shapeMismatchListsBothShapes() throws {
        // Architecture with one more filter than the checkpoint holds.
        let arch = try tamperedConfig("tfkeras_convnet_sequential.h5") { o in
            var ls = layers(o)
            if let i = ls.firstIndex(where: { ($0["class_name"] as? String) == "Conv2D" }), var c = ls[i]["config"] as? [String: Any] {
                c["filters"] = 7
                ls[i]["config"] = c
            }
            setLayers(&o, ls)
        }
        let weights = TestSupport.fixture("parity/tfkeras_convnet_sequential_weights.h5")
        expectError(weights, containing: [weights, "conv_s2/kernel: checkpoint (3, 3, 3, 6) vs model (3, 3, 3, 7)"], architecture: arch)
    }

    @Test func missingAndUnexpectedWeightsAreListed() throws {
        let arch = try tamperedConfig("tfkeras_convnet_sequential.h5") { o in
            var ls = layers(o)
            if let i = ls.firstIndex(where: { (($0["config"] as? [String: Any])?["name"] as? String) == "predictions" }),
               var c = ls[i]["config"] as? [String: Any] {
                c["name"] = "new_head"
                ls[i]["config"] = c
                ls[i]["name"] = "new_head"
            }
            setLayers(&o, ls)
        }
        let weights = TestSupport.fixture("parity/tfkeras_convnet_sequential_weights.h5")
        expectError(weights, containing: ["missing from checkpoint: new_head/kernel, new_head/bias", "not in model: predictions/bias, predictions/kernel"],
                    architecture: arch)
        // Opting in to a partial load by pattern.
        let loaded = try KerasLoader.loadArchitecture(arch)
        let tensors = try KerasWeights.readLegacy(try HDF5File.open(weights).root(), model: loaded, source: weights)
        var partial = tensors
        partial["predictions/kernel"] = nil
        partial["predictions/bias"] = nil
        let report = try KerasWeights.apply(partial, to: loaded, source: weights, allowMissing: ["new_head/*"])
        #expect(report.applied.count == loaded.namedVariables.count - 2)
    }

    @Test func weightsOnlyWithoutArchitectureSaysWhatToDo() {
        let weights = TestSupport.fixture("parity/keras3_nested.weights.h5")
        expectError(weights, containing: [weights, "weights only", "architecture"])
    }

    @Test func notKerasFilesFail() throws {
        expectError(TestSupport.fixture("hdf5/h5py_types.h5"), containing: ["not a Keras checkpoint"])
        expectError("/nonexistent/model.h5", containing: ["/nonexistent/model.h5", "not found"])
        let dir = try TestSupport.makeTemporaryDirectory()
        let zip = dir.appendingPathComponent("broken.keras").path
        let data = try Data(contentsOf: URL(fileURLWithPath: TestSupport.fixture("parity/keras3_nested.keras")))
        FileManager.default.createFile(atPath: zip, contents: data.prefix(data.count / 2))
        expectError(zip, containing: [zip])
    }
}
