import Foundation
import Testing
import GraftTestSupport
@testable import GraftKeras

/// README.md's table of Keras layer classes (tools/layer_table.py) says exactly what the loader builds.
struct KerasLayerTableTests {
    /// (class, Graft column ticked) for each row of the table.
    static func rows() throws -> [(String, Bool)] {
        let readme = TestSupport.fixturesDirectory.deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("README.md")
        let text = try String(contentsOf: readme, encoding: .utf8)
        guard let begin = text.range(of: "<!-- keras-layers:begin -->"), let end = text.range(of: "<!-- keras-layers:end -->") else {
            Issue.record("README.md has no keras-layers table")
            return []
        }
        return text[begin.upperBound..<end.lowerBound].split(separator: "\n").compactMap { line in
            let cells = line.split(separator: "|", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            guard cells.count >= 4, cells[1].hasPrefix("`"), cells[1].hasSuffix("`") else { return nil }
            return (String(cells[1].dropFirst().dropLast()), cells[2] == "✓")
        }
    }

    @Test func theGraftColumnIsWhatTheLoaderBuilds() throws {
        let rows = try Self.rows()
        #expect(rows.count > 100)
        for (name, ticked) in rows {
            #expect(ticked == KerasLayerFactory.accepted.contains(name), "README says \(name) is \(ticked ? "" : "not ")read")
        }
        // Every class the loader builds has a row, but for the aliases Keras never writes into a config.
        let listed = Set(rows.map(\.0))
        let aliases = KerasLayerFactory.accepted.filter { name in
            name.hasPrefix("MaxPool") && !name.hasPrefix("MaxPooling") || name.hasPrefix("AvgPool")
                || name.hasPrefix("GlobalAvgPool") || name.hasPrefix("GlobalMaxPool") && !name.hasPrefix("GlobalMaxPooling")
                || name.hasPrefix("Convolution") || name.hasPrefix("SeparableConvolution") || name == "Deconvolution2D"
        }
        #expect(KerasLayerFactory.accepted.subtracting(aliases).subtracting(listed).sorted() == [])
    }

    /// A class without a tick is refused with its name (Lambda with the reason).
    @Test func anUntickedClassIsRefused() throws {
        for name in try Self.rows().filter({ !$0.1 }).map(\.0).prefix(200) {
            let config = """
            {"class_name": "Sequential", "config": {"name": "s", "layers": [
              {"class_name": "InputLayer", "config": {"name": "in", "batch_input_shape": [null, 4, 4, 2]}},
              {"class_name": "\(name)", "config": {"name": "x"}}]}}
            """
            #expect(performing: { try KerasModelBuilder.build(json: config, kerasVersion: "3.15") }, throws: { error in
                "\(error)".contains(name) && (error as? KerasError)?.context.layer == "x"
            })
        }
    }
}
