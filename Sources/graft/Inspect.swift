import ArgumentParser
import Foundation
import GraftHDF5
import GraftKeras

/// `graft inspect FILE`: the HDF5 tree, and for Keras files what kind of checkpoint it is.
struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print an HDF5 file's tree and, for Keras checkpoints, what the file holds.",
        discussion: """
        Examples:
          graft inspect model.h5
          graft inspect --no-tree model.weights.h5
          graft inspect --json model.h5
        """)

    @Argument(help: "An HDF5 file (.h5, .weights.h5).")
    var file: String

    @Option(name: .customLong("max-value-chars"), help: "Shorten attribute values to about this many characters.")
    var maxValueChars = 72

    @Flag(name: .customLong("no-tree"), help: "Print only the Keras recognition line.")
    var noTree = false

    @Flag(help: "Print JSON: the Keras facts and every object with its kind, dtype and shape.")
    var json = false

    func run() throws {
        let h5 = try HDF5File.open(file)
        if json {
            var objects: [[String: Any]] = []
            var visited = HDF5VisitedGroups()
            func walk(_ g: HDF5Group) throws {
                guard visited.firstVisit(g) else { return }
                for c in try g.children() {
                    let path = g.path == "/" ? "/\(c.name)" : "\(g.path)/\(c.name)"
                    switch c.kind {
                    case .group:
                        objects.append(["path": path, "kind": "group"])
                        try walk(try g.group(c.name))
                    case .dataset:
                        let ds = try g.dataset(c.name)
                        objects.append(["path": path, "kind": "dataset", "dtype": "\(try ds.dataType())", "shape": try ds.shape()])
                    default:
                        objects.append(["path": path, "kind": c.kind.rawValue])
                    }
                }
            }
            try walk(try h5.root())
            var object: [String: Any] = ["file": file, "objects": objects]
            if let info = try KerasFileInfo.recognize(h5) {
                object["keras"] = ["format": info.format.rawValue, "keras_version": info.kerasVersion ?? NSNull(),
                                   "backend": info.backend ?? NSNull(), "model_class": info.modelClass ?? NSNull(),
                                   "model_name": info.modelName ?? NSNull(), "layers": info.layerCount, "weights": info.weightCount,
                                   "parameters": info.parameterCount] as [String: Any]
            } else {
                object["keras"] = NSNull()
            }
            print(String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self))
            return
        }
        if !noTree {
            for line in try HDF5Tree.render(h5, maxValueChars: maxValueChars) { print(line) }
            print("")
        }
        if let info = try KerasFileInfo.recognize(h5) {
            print(HDF5Tree.printable(info.paragraph))
        } else {
            print("Not a Keras checkpoint: no model_config, layer_names or layers/ group at the root.")
        }
    }
}
