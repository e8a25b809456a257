import ArgumentParser
import GraftKeras
import GraftNN

/// `graft export MODEL --output OUT`: write any loadable model in a format Keras loads.
struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a model as .h5 (Keras legacy full model), .weights.h5 (Keras 3 weights) or .keras (Keras 3 archive).",
        discussion: """
        Examples:
          graft export runs/lenet/final.h5 --output lenet.keras
          graft export model.keras --output model.h5 --weights-only
        """)

    @OptionGroup var options: ModelOptions

    @Option(help: "Output file: .h5, .weights.h5 or .keras.")
    var output: String

    @Flag(name: .customLong("weights-only"), help: "With .h5: a Keras 2 save_weights-style file (no architecture).")
    var weightsOnly = false

    func run() throws {
        let loaded = try options.load()
        let model = loaded.model
        // A tiled convolution Keras can express is written as that layer (tiles 1×1: Conv2D; one tile per output
        // position: LocallyConnected2D, tf-keras's .h5 only); any other Keras could not load.
        let keras3 = !output.hasSuffix(".h5") || output.hasSuffix(".weights.h5")
        if let tiled = model.flattenedLayers.compactMap({ $0 as? TiledConv2D }).first(where: {
            $0.kerasEquivalent == nil || ($0.kerasEquivalent == "LocallyConnected2D" && keras3)
        }) {
            let t = "\(tiled.tiles[0])×\(tiled.tiles[1])"
            let hint = tiled.kerasEquivalent == nil ? "" : " (as LocallyConnected2D it goes to an .h5, which tf-keras reads)"
            throw CLIError("layer \(tiled.name): Keras has no tiled convolution (TiledConv2D, tiles \(t)), so it could not load this model\(hint); Graft's own checkpoints (fine-tune's final.h5) keep it")
        }
        let format: String
        if output.hasSuffix(".weights.h5") {
            try KerasWriter.writeKeras3Weights(model, to: output, task: loaded.task)
            format = "Keras 3 weights"
        } else if output.hasSuffix(".keras") {
            try KerasWriter.writeKerasArchive(model, to: output, task: loaded.task)
            format = "Keras 3 .keras archive"
        } else if output.hasSuffix(".h5") {
            try KerasWriter.writeLegacyH5(model, to: output, weightsOnly: weightsOnly, graftVersion: graftVersion, task: loaded.task)
            format = weightsOnly ? "Keras weights-only .h5" : "Keras legacy full-model .h5"
        } else {
            throw ValidationError("--output must end in .h5, .weights.h5 or .keras, got \(output)")
        }
        print("\(output): \(format), \(grouped(model.parameterCounts.total)) parameters")
    }
}
