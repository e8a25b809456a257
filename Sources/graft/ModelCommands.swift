import ArgumentParser
import Foundation
import GraftCore
import GraftData
import GraftKeras
import GraftNN
import GraftTensor

/// Options naming a model file, shared by every command that loads one.
struct ModelOptions: ParsableArguments {
    @Argument(help: "A Keras checkpoint: .h5 (full model or weights), .weights.h5 or .keras.")
    var model: String

    @Option(help: "Architecture for a weights-only file: a full-model .h5, a .keras archive or a model config .json.")
    var architecture: String?

    @Flag(help: "Refuse a checkpoint whose weights hold NaN or infinite values (by default: a warning).")
    var strict = false

    func load() throws -> LoadedModel {
        let loaded = try KerasLoader.load(model, architecture: architecture)
        if let warning = loaded.report.nonFiniteWarning {
            if strict { throw CLIError("\(model): \(warning); refused (--strict)") }
            FileHandle.standardError.write(Data("warning: \(model): \(warning)\n".utf8))
        }
        return loaded
    }
}

/// `graft summary MODEL`: the Keras-like layer table and parameter counts.
struct Summary: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print a model's layers, output shapes and parameter counts.",
        discussion: """
        Examples:
          graft summary model.h5
          graft summary weights.h5 --architecture zoo:resnet50 --json
          graft summary model.json        (an architecture alone, as model.to_json() writes it)
        """)

    @OptionGroup var options: ModelOptions

    @Flag(help: "Print JSON (layers with class, output shape, parameters, inputs; the three counts).")
    var json = false

    func run() throws {
        // A model config alone (Keras's `model_from_json`): the architecture with initial weights.
        let model = options.model.hasSuffix(".json") && options.architecture == nil
            ? try KerasLoader.loadArchitecture(options.model) : try options.load().model
        guard json else {
            print(model.summary())
            return
        }
        let layers: [[String: Any]] = model.nodes.map { node in
            ["name": node.layer.name, "class": node.layer.kerasClassName,
             "output_shape": [NSNull()] + node.outputShape.map { $0 < 0 ? NSNull() as Any : $0 as Any },
             "params": node.layer.parameterCount, "inputs": node.inputs.map { model.nodes[$0].layer.name }]
        }
        let c = model.parameterCounts
        let object: [String: Any] = ["name": model.name, "class": model.kerasClassName, "layers": layers,
                                     "total_params": c.total, "trainable_params": c.trainable, "non_trainable_params": c.nonTrainable]
        print(String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self))
    }
}

/// `graft predict MODEL --input X.npy --output Y.npy`: run a model (or up to one layer) on a NumPy batch.
struct Predict: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a model on a float32 NHWC .npy array and write the outputs as .npy.",
        discussion: """
        Examples:
          graft predict model.h5 --input x.npy --output y.npy
          graft predict model.keras --input x.npy --output features.npy --layer global_average_pooling2d --batch 8
        """)

    @OptionGroup var options: ModelOptions

    @Option(help: "Input array (.npy, NHWC; float32, float64 or uint8).")
    var input: String

    @Option(help: "Where to write the output array (.npy, float32).")
    var output: String

    @Option(help: "Images per forward pass.")
    var batch = 32

    @Option(help: "Write this layer's output instead of the model's.")
    var layer: String?

    func validate() throws {
        try OptionChecks.batch(batch)
    }

    func run() throws {
        let loaded = try options.load()
        let model = loaded.model
        let x = try NPY.read(input)
        guard model.inputNodes.count == 1 else { throw CLIError("\(options.model): predict supports single-input models only") }
        let want = model.inputShapes[0]
        let given = Array(x.shape.dropFirst())
        guard x.rank == want.count + 1, zip(given, want).allSatisfy({ $1 < 0 || $0 == $1 }) else {
            throw CLIError("\(input): shape \(Shape.describe(x.shape)) does not fit model input \(Shape.describe([-1] + want))")
        }
        guard x.shape[0] > 0, x.count > 0 else { throw CLIError("\(input): holds no samples (shape \(Shape.describe(x.shape)))") }
        var target = model.outputNodes[0]
        if let layer {
            guard let idx = model.nodeIndex(ofLayer: layer) else {
                throw CLIError("\(options.model): no layer named \(layer) (see graft summary)")
            }
            target = idx
        }
        let n = x.shape[0]
        let per = x.count / max(n, 1)
        var parts: [Tensor] = []
        var start = 0
        while start < n {
            let end = min(start + batch, n)
            let values = x.withUnsafeBufferPointer { Array($0[(start * per)..<(end * per)]) }
            let chunk = Tensor(shape: [end - start] + given, values: values)
            parts.append(try model.run([chunk], targets: [target])[0])
            start = end
        }
        let y = parts.count == 1 ? parts[0] : try Tensor.concatenate(parts, axis: 0)
        try NPY.write(y, to: output)
        print("\(output): \(Shape.describe(y.shape)) float32")
    }
}

/// A one-line command-line error.
struct CLIError: GraftError {
    let description: String
    let context: ErrorContext
    init(_ description: String, file: String? = nil, key: String? = nil) {
        (self.description, context) = (description, ErrorContext(file: file, key: key))
    }
}
