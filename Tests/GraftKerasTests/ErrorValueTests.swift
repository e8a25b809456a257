import Foundation
import GraftCore
import GraftNN
import GraftTensor
import GraftTestSupport
import Testing
@testable import GraftKeras

/// Errors a library user can act on in code: their origin, the file, layer, tensor or key as values, and a failed
/// weight load's whole report.
struct ErrorValueTests {
    /// Weights that do not fit come back as `WeightLoadError`: what was applied, what is missing, unused and
    /// mismatched (with both shapes), not a sentence.
    @Test func aLoadThatDoesNotFitKeepsItsReport() throws {
        let model = try Zoo.build("lenet5", options: Zoo.Options(classes: 10, inputShape: [28, 28, 1], seed: 1))
        var tensors = Dictionary(uniqueKeysWithValues: model.namedVariables.map { ($0.path, $0.variable.value) })
        let paths = model.namedVariables.map(\.path)
        let (wrong, gone) = (paths[0], paths[1])
        let shape = tensors[wrong]!.shape
        tensors[wrong] = Tensor(shape: shape.dropLast() + [shape.last! + 1])
        tensors[gone] = nil
        tensors["extra/kernel"] = Tensor(shape: [2])
        #expect {
            try KerasWeights.apply(tensors, to: model, source: "w.h5")
        } throws: { error in
            guard let e = error as? WeightLoadError else { return false }
            let r = e.report
            return e.origin == .input && e.file == "w.h5" && e.context.file == "w.h5" && e.context.tensor == wrong
                && r.mismatched == [.init(path: wrong, checkpoint: Array(shape.dropLast()) + [shape.last! + 1], model: shape)]
                && r.missing == [gone] && r.unused == ["extra/kernel"] && r.applied.count == paths.count - 2
                && "\(e)".hasPrefix("w.h5: weights do not fit model")
        }
        // A missing tensor the caller allows is neither missing nor an error.
        tensors[wrong] = model.namedVariables[0].variable.value
        tensors["extra/kernel"] = nil
        let report = try KerasWeights.apply(tensors, to: model, source: "w.h5", allowMissing: [gone.prefix(while: { $0 != "/" }) + "/*"])
        #expect(report.isComplete && report.missing.isEmpty && report.applied.count == paths.count - 1)
    }

    /// A Lambda layer is refused with the reason: its Python code would have to run.
    @Test func lambdaLayersAreRefusedWithTheReason() throws {
        let config = """
        {"class_name": "Sequential", "config": {"name": "s", "layers": [
          {"class_name": "InputLayer", "config": {"name": "in", "batch_input_shape": [null, 8, 3]}},
          {"class_name": "Lambda", "config": {"name": "scale_by_two", "function": ["4wEAAAAAAAAA", null, null]}}]}}
        """
        #expect { try KerasModelBuilder.build(json: config, kerasVersion: "2.15") } throws: {
            let text = "\($0)"
            return ($0 as? GraftError)?.context == ErrorContext(layer: "scale_by_two") && text.contains("Lambda")
                && text.contains("never runs code from a file")
        }
    }

    /// A config Graft cannot build names the layer; reading it from a file adds the file, keeping the layer.
    @Test func configErrorsCarryTheLayerAndTheFile() throws {
        let config = """
        {"class_name": "Sequential", "config": {"name": "s", "layers": [
          {"class_name": "InputLayer", "config": {"name": "in", "batch_input_shape": [null, 8, 3]}},
          {"module": "wavelets.layers", "class_name": "WaveletPool", "config": {"name": "wave", "levels": 2}}]}}
        """
        #expect { try KerasModelBuilder.build(json: config, kerasVersion: "3.0") } throws: {
            ($0 as? GraftError)?.context == ErrorContext(layer: "wave")
                && "\($0)" == "layer wave: unsupported layer class wavelets.layers.WaveletPool"
        }
        let dir = try TestSupport.makeTemporaryDirectory()
        let path = dir.appendingPathComponent("model.json").path
        try config.write(toFile: path, atomically: true, encoding: .utf8)
        #expect { try KerasLoader.loadArchitecture(path) } throws: {
            let e = $0 as? KerasError
            return e?.context == ErrorContext(file: path, layer: "wave") && e?.origin == .input && "\($0)".hasPrefix(path)
        }
        #expect { try KerasLoader.load("/nonexistent/m.h5") } throws: {
            ($0 as? GraftError)?.context.file == "/nonexistent/m.h5"
        }
    }
}
