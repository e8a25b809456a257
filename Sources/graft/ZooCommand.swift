import ArgumentParser
import GraftKeras
import GraftNN
import GraftTrain

/// `graft zoo NAME --output FILE.h5`: a built-in architecture, freshly initialised, as a Keras checkpoint.
struct ZooCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "zoo",
        abstract: "Write a built-in architecture (\(Zoo.names.joined(separator: ", "))) as a Keras .h5 checkpoint.",
        discussion: """
        Examples:
          graft zoo lenet5 --input-shape 28,28,1 --output lenet.h5
          graft zoo mobilenetv2 --classes 10 --input-shape 96,96,3 --output mnv2.h5
        """)

    @Argument(help: "Architecture name.")
    var name: String

    @Option(help: "Output file (.h5, Keras legacy full model).")
    var output: String

    @Option(help: "Classes in the output layer (default: 10 for lenet5, 1000 for the others).")
    var classes: Int?

    @Flag(name: .customLong("no-top"), help: "Leave out the classifier (keras.applications include_top=False).")
    var noTop = false

    @Option(name: .customLong("input-shape"), help: "Input size as H,W,C (default: the architecture's own).")
    var inputShape: String?

    @Option(help: "Seed for the initial weights.")
    var seed: UInt64 = 0

    @Option(help: "tiled only: t×t kernels in turn in each tiled convolution (1 is a plain convolution).")
    var tiles: Int = 2

    func run() throws {
        let shape = try inputShape.map { try OptionChecks.size($0, "--input-shape", channels: true) }
        if let classes { try OptionChecks.whole(classes, FineTuneLimits.classes, "--classes") }
        try OptionChecks.whole(tiles, 1...64, "--tiles")
        try Initializer.$budget.withValue(.machine()) {
            try write(Zoo.build(name, options: Zoo.Options(classes: classes, includeTop: !noTop, inputShape: shape, seed: seed,
                                                           tiles: tiles)))
        }
    }

    func write(_ model: Model) throws {
        try KerasWriter.writeLegacyH5(model, to: output, graftVersion: graftVersion)
        let counts = model.parameterCounts
        print("\(output): \(model.name), \(grouped(counts.total)) parameters, random weights (seed \(seed)): an architecture to train, not a pretrained model")
    }
}
