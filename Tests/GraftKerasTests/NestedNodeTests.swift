import Foundation
import Testing
import GraftNN
import GraftTensor
@testable import GraftKeras

/// How configs number the calls of a nested model: from 1 for a model built on its own input (tf-keras for
/// Functional and Sequential, Keras 3 for Functional only), from 0 otherwise; Graft reads and writes the same.
struct NestedNodeTests {
    /// A Functional model calling a nested `inner` (its class, its config) once, with node `index`.
    static func config(innerClass: String, inner: String, index: Int, keras3: Bool) -> String {
        let inbound = keras3
            ? #"[{"args": [{"class_name": "__keras_tensor__", "config": {"shape": [null, 4], "keras_history": ["x", 0, 0]}}], "kwargs": {}}]"#
            : #"[[["x", 0, 0, {}]]]"#
        let head = keras3
            ? #"[{"args": [{"class_name": "__keras_tensor__", "config": {"shape": [null, 3], "keras_history": ["inner", \#(index), 0]}}], "kwargs": {}}]"#
            : #"[[["inner", \#(index), 0, {}]]]"#
        return """
        {"class_name": "Functional", "config": {"name": "outer", "layers": [
          {"class_name": "InputLayer", "name": "x", "config": {"name": "x", "batch_input_shape": [null, 4]}, "inbound_nodes": []},
          {"class_name": "\(innerClass)", "name": "inner", "config": \(inner), "inbound_nodes": \(inbound)},
          {"class_name": "Dense", "name": "head", "config": {"name": "head", "units": 2}, "inbound_nodes": \(head)}],
         "input_layers": [["x", 0, 0]], "output_layers": [["head", 0, 0]]}}
        """
    }

    static let functionalInner = """
    {"name": "inner", "layers": [
      {"class_name": "InputLayer", "name": "i", "config": {"name": "i", "batch_input_shape": [null, 4]}, "inbound_nodes": []},
      {"class_name": "Dense", "name": "d", "config": {"name": "d", "units": 3}, "inbound_nodes": [[["i", 0, 0, {}]]]}],
     "input_layers": [["i", 0, 0]], "output_layers": [["d", 0, 0]]}
    """
    static let sequentialInner = """
    {"name": "inner", "layers": [
      {"class_name": "InputLayer", "config": {"name": "i", "batch_input_shape": [null, 4]}},
      {"class_name": "Dense", "config": {"name": "d", "units": 3}}]}
    """

    @Test(arguments: [("Functional", true, 1), ("Functional", false, 1), ("Sequential", true, 0), ("Sequential", false, 1)])
    func nestedCallsAreNumberedAsKerasDoes(_ cls: String, _ keras3: Bool, _ index: Int) throws {
        let inner = cls == "Functional" ? Self.functionalInner : Self.sequentialInner
        let model = try KerasModelBuilder.build(json: Self.config(innerClass: cls, inner: inner, index: index, keras3: keras3),
                                                kerasVersion: keras3 ? "3.15" : "2.15")
        #expect(model.nodes.map(\.layer.name) == ["x", "inner", "head"])
        // Written back in the same style, the reference carries the same number.
        let written = try KerasConfigEncoder.json(model, style: keras3 ? .keras3 : .keras2)
        let expected = keras3 ? #""keras_history":["inner",\#(index),0]"# : #"["inner",\#(index),0,{}]"#
        #expect(written.contains(expected), "\(written)")
        let again = try KerasModelBuilder.build(json: written, kerasVersion: keras3 ? "3.15" : "2.15")
        #expect(again.parameterCounts.total == model.parameterCounts.total)
    }

    /// A writer that numbered a nested model's call 0 anyway (earlier Graft versions) is still read.
    @Test func aCallNumberedZeroIsStillRead() throws {
        let model = try KerasModelBuilder.build(json: Self.config(innerClass: "Functional", inner: Self.functionalInner, index: 0, keras3: false),
                                                kerasVersion: "2.15")
        #expect(model.outputShapes == [[2]])
    }
}
