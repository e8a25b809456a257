import ArgumentParser

/// The `graft` command line: parsing and printing only; the work lives in the libraries.
@main
struct Graft: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "graft",
        abstract: "Transfer learning for convolutional networks, from and back to Keras checkpoints.",
        version: graftVersion,
        subcommands: [Inspect.self, Summary.self, Predict.self, ZooCommand.self, FineTune.self, Evaluate.self, Extract.self, Export.self, Run.self, DataBench.self]
    )
}

/// The Graft release this binary was built from.
let graftVersion = "0.1.0-dev"
