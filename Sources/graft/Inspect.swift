import ArgumentParser
import GraftHDF5
import GraftKeras

/// `graft inspect FILE`: the HDF5 tree, and for Keras files what kind of checkpoint it is.
struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print an HDF5 file's tree and, for Keras checkpoints, what the file holds.")

    @Argument(help: "An HDF5 file (.h5, .weights.h5).")
    var file: String

    @Option(name: .customLong("max-value-chars"), help: "Shorten attribute values to about this many characters.")
    var maxValueChars = 72

    @Flag(name: .customLong("no-tree"), help: "Print only the Keras recognition line.")
    var noTree = false

    func run() throws {
        let h5 = try HDF5File.open(file)
        if !noTree {
            for line in try HDF5Tree.render(h5, maxValueChars: maxValueChars) { print(line) }
            print("")
        }
        if let info = try KerasFileInfo.recognize(h5) {
            print(info.paragraph)
        } else {
            print("Not a Keras checkpoint: no model_config, layer_names or layers/ group at the root.")
        }
    }
}
