import Foundation
import Testing
import GraftNN
import GraftTensor
@testable import GraftKeras

/// Functional configs list their layers in any order; building one is linear-ish in its size whatever the order
/// (24,000 layers in reverse took 73 s with repeated passes; see the closing note of issue 18 for the timing).
struct LayerOrderTests {
    /// A Keras 2 functional config: an input, then a chain of `n` activations with a residual Add every 10,
    /// listed in config order or reversed.
    static func chain(_ n: Int, reversed: Bool) throws -> String {
        var layers: [[String: Any]] = [["class_name": "InputLayer", "name": "in",
                                        "config": ["name": "in", "batch_input_shape": [NSNull(), 4]], "inbound_nodes": [] as [Any]]]
        var previous = "in"
        for i in 0..<n {
            let name = "a\(i)"
            var inbound: [[Any]] = [[previous, 0, 0, [String: Any]()]]
            var entry: [String: Any] = ["class_name": "Activation", "name": name, "config": ["name": name, "activation": "tanh"]]
            if i % 10 == 9 {
                inbound.append(["a\(i - 5)", 0, 0, [String: Any]()])
                entry = ["class_name": "Add", "name": name, "config": ["name": name]]
            }
            entry["inbound_nodes"] = [inbound]
            layers.append(entry)
            previous = name
        }
        if reversed { layers.reverse() }
        let config: [String: Any] = ["class_name": "Functional", "config": ["name": "chain", "layers": layers,
                                      "input_layers": [["in", 0, 0]], "output_layers": [[previous, 0, 0]]]]
        return String(decoding: try JSONSerialization.data(withJSONObject: config), as: UTF8.self)
    }

    @Test func reversedConfigBuildsTheSameModel() throws {
        let sorted = try KerasModelBuilder.build(json: try Self.chain(3000, reversed: false), kerasVersion: "2.15.0")
        let reversed = try KerasModelBuilder.build(json: try Self.chain(3000, reversed: true), kerasVersion: "2.15.0")
        #expect(sorted.nodes.map(\.layer.name) == reversed.nodes.map(\.layer.name))
        #expect(sorted.nodes.map(\.layer.name).prefix(3) == ["in", "a0", "a1"])
        let x = Tensor(shape: [2, 4], values: [0.1, -0.2, 0.3, 0.05, 1, 2, -1, 0])
        #expect(try sorted.predict([x])[0] == reversed.predict([x])[0])
    }

    @Test func aCycleIsNamed() throws {
        var json = try Self.chain(20, reversed: false)
        json = json.replacingOccurrences(of: "[[[\"in\",0,0,{}]]]", with: "[[[\"a3\",0,0,{}]]]")   // a0 now reads a3
        do {
            _ = try KerasModelBuilder.build(json: json, kerasVersion: "2.15.0")
            Issue.record("a cyclic config built")
        } catch let e as KerasError {
            #expect(e.message.contains("can never be computed"), "\(e)")
        }
    }

    /// Layer and model names with ANSI escapes or newlines, or megabytes long, are refused while building (they
    /// reached the terminal raw through summary; a 10 MB name made 126 MB of it), with a readable excerpt.
    @Test func unprintableNamesAreRefused() throws {
        for evil in ["a0\u{1B}[31mred", "a0\nsecond line", "a0" + String(repeating: "x", count: 2 << 20)] {
            let json = try Self.chain(3, reversed: false).replacingOccurrences(of: "\"a0\"", with: "\"\(evil.replacingOccurrences(of: "\n", with: "\\n").replacingOccurrences(of: "\u{1B}", with: "\\u001b"))\"")
            do {
                _ = try KerasModelBuilder.build(json: json, kerasVersion: "2.15.0")
                Issue.record("built with name \(evil.prefix(20))")
            } catch {
                let text = "\(error)"
                #expect(text.contains("name") && text.count < 300 && !text.contains("\u{1B}") && !text.contains("\n"), "\(text.prefix(300))")
            }
        }
    }
}
