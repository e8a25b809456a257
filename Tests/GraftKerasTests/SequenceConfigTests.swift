import Foundation
import Testing
import GraftNN
import GraftTensor
@testable import GraftKeras

/// Crafted sequence-layer configs end in one error naming the layer or key, before anything large is allocated;
/// a bad token id or mask at run time likewise.
struct SequenceConfigTests {
    static func sequential(input: String, _ layer: String) -> String {
        """
        {"class_name": "Sequential", "config": {"name": "s", "layers": [
          {"class_name": "InputLayer", "config": {"name": "in", "batch_input_shape": [null, \(input)]}},
          \(layer)]}}
        """
    }

    @Test(arguments: [
        ("6, 4", #"{"class_name": "LSTM", "config": {"name": "x", "units": 1000000000}}"#, "x"),
        ("6, 4", #"{"class_name": "GRU", "config": {"name": "x", "units": 0}}"#, "x"),
        ("6, 4", #"{"class_name": "LSTM", "config": {"name": "x", "units": 4, "dropout": 1.5}}"#, "dropout"),
        ("6, 4", #"{"class_name": "LSTM", "config": {"name": "x", "units": 4, "time_major": true}}"#, "time_major"),
        ("6", #"{"class_name": "Embedding", "config": {"name": "x", "input_dim": 1000000000000, "output_dim": 8}}"#, "x"),
        ("6", #"{"class_name": "Embedding", "config": {"name": "x", "input_dim": 100000, "output_dim": 100000}}"#, "x"),
        ("6, 4", #"{"class_name": "Bidirectional", "config": {"name": "x", "merge_mode": "xor", "layer": {"class_name": "LSTM", "config": {"name": "l", "units": 2}}}}"#, "merge_mode"),
        ("6, 4", #"{"class_name": "Bidirectional", "config": {"name": "x", "layer": {"class_name": "Dense", "config": {"name": "d", "units": 2}}}}"#, "x"),
        ("6000, 4", #"{"class_name": "TimeDistributed", "config": {"name": "x", "layer": {"class_name": "RepeatVector", "config": {"name": "r", "n": 65536}}}}"#, "x"),
        ("6, 4, 4, 2", #"{"class_name": "ConvLSTM2D", "config": {"name": "x", "filters": 100000000, "kernel_size": [3, 3]}}"#, "x"),
        ("6, 4, 4, 2", #"{"class_name": "ConvLSTM2D", "config": {"name": "x", "filters": 2, "kernel_size": [3, 3], "data_format": "channels_first"}}"#, "x"),
        ("6, 4", #"{"class_name": "MultiHeadAttention", "config": {"name": "x", "num_heads": 2, "key_dim": 2, "attention_axes": [2]}}"#, "x"),
        // Graft's ConvLSTM2D takes no mask: refused rather than computed unmasked.
        ("6, 4, 4, 2", #"{"class_name": "Masking", "config": {"name": "m", "mask_value": 0.0}}, {"class_name": "ConvLSTM2D", "config": {"name": "x", "filters": 2, "kernel_size": [3, 3]}}"#, "x"),
    ])
    func craftedConfigsAreRefused(_ input: String, _ layer: String, _ named: String) throws {
        let config = Self.sequential(input: input, layer)
        #expect(performing: { try KerasModelBuilder.build(json: config, kerasVersion: "3.15") }, throws: { error in
            let text = "\(error)"
            return text.contains(named) && !text.contains("\n")
        })
    }

    @Test func attentionWithOneInputIsRefused() throws {
        let config = """
        {"class_name": "Functional", "config": {"name": "f", "layers": [
          {"class_name": "InputLayer", "name": "in", "config": {"name": "in", "batch_input_shape": [null, 5, 3]}, "inbound_nodes": []},
          {"class_name": "MultiHeadAttention", "name": "mha", "config": {"name": "mha", "num_heads": 1, "key_dim": 2},
           "inbound_nodes": [[["in", 0, 0, {}]]]}],
          "input_layers": [["in", 0, 0]], "output_layers": [["mha", 0, 0]]}}
        """
        #expect(performing: { try KerasModelBuilder.build(json: config, kerasVersion: "2.15") }, throws: { "\($0)".contains("mha") })
    }

    @Test func badTokenIdsAndMasksAreOneLineErrors() throws {
        let config = Self.sequential(input: "4", #"{"class_name": "Embedding", "config": {"name": "e", "input_dim": 5, "output_dim": 2, "mask_zero": true}}, {"class_name": "LSTM", "config": {"name": "l", "units": 3}}"#)
        let model = try KerasModelBuilder.build(json: config, kerasVersion: "2.15")
        #expect((model.layer(named: "l") as? Recurrent)?.masked == true)
        for bad: Float in [-1, 5, 1e30, .nan, .infinity, 0.5] {
            #expect(performing: { try model.predict([Tensor(shape: [1, 4], values: [1, bad, 0, 0])]) }, throws: { "\($0)".contains("token id") })
        }
        #expect(performing: { try model.predict([Tensor(shape: [0, 4], values: [])]) }, throws: { "\($0)".contains("layer l") })
        // A fully padded sequence keeps the initial (zero) state.
        #expect(try model.predict([Tensor(shape: [1, 4], values: [0, 0, 0, 0])])[0].scalars == [0, 0, 0])
    }
}
