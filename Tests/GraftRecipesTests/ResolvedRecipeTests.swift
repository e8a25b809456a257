import Foundation
import Testing
@testable import GraftRecipes

/// The resolved recipe written into a run folder: numbers as typed, and it reads back to the same recipe.
struct ResolvedRecipeTests {
    static let text = """
    model: {checkpoint: m.h5, head: {classes: auto, dropout: 0.2}}
    data: {train: fashion-mnist:train, validation_split: 0.15, test: fashion-mnist:test}
    stages:
      - {name: warmup, epochs: 2, learning_rate: 0.0001, clip_norm: 1.5}
      - {name: finetune, epochs: 3, learning_rate: 0.00003, schedule: cosine}
    outputs: {directory: runs/r}
    baseline: {from_scratch: true, epochs: 4, learning_rate: 0.001}
    """

    @Test func numbersPrintAsTyped() throws {
        let recipe = try Recipe.parse(Self.text, file: "r.yaml")
        let yaml = recipe.resolvedYAML(graftVersion: "t")
        for line in ["dropout: 0.2", "validation_split: 0.15", "learning_rate: 0.0001", "clip_norm: 1.5", "learning_rate: 0.00003",
                     "learning_rate: 0.001"] {
            #expect(yaml.contains(line + "\n"), "\(line) missing in\n\(yaml)")
        }
        #expect(!yaml.contains("e-"), "\(yaml)")
        let again = try Recipe.parse(yaml, file: "resolved.yaml")
        #expect(again.config.stages == recipe.config.stages)
        #expect(again.config.head?.dropout == recipe.config.head?.dropout && again.config.validationSplit == 0.15)
    }

    @Test(arguments: [("1e-05", "0.00001"), ("-2.5e-07", "-0.00000025"), ("0.001", "0.001"), ("1e-20", "1e-20"), ("3.0", "3.0")])
    func plainDecimals(_ swift: String, _ written: String) {
        #expect(TypedNumber.plain(swift) == written)
    }
}
