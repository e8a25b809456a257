import Foundation
import Testing
import GraftData
import GraftNN
import GraftTrain
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

    /// Recipe keys decode into the typed stage values the CLI's flags make (one parser for both).
    @Test func stagesDecodeIntoTypedValues() throws {
        let text = """
        model: {checkpoint: m.h5}
        data: {train: t}
        augment: [flip:h, rotate:15:nearest]
        stages:
          - {name: warm, freeze: until:conv2, epochs: 4, optimizer: AdamW, learning_rate: 0.01, schedule: cosine:1:0.1}
          - {name: tune, unfreeze: "block5_*,fc?", epochs: 2, schedule: exponential:100:0.5, batch_norm: train}
        outputs: {directory: out}
        """
        let recipe = try Recipe.parse(text, file: "r.yaml")
        var expected = [StageConfig(name: "warm", freeze: .until("conv2"), epochs: 4, optimizer: .adamw, learningRate: 0.01,
                                    schedule: .cosine(warmupEpochs: 1, alpha: 0.1)),
                        StageConfig(name: "tune", unfreeze: .patterns(["block5_*", "fc?"]), epochs: 2,
                                    schedule: .exponential(decaySteps: 100, rate: 0.5))]
        expected[1].batchNorm = .train
        #expect(recipe.config.stages == expected)
        #expect(recipe.config.augment == [.flip(horizontal: true, vertical: false), .rotate(degrees: 15, fill: .nearest)])
        // The resolved recipe reads back to the same typed values.
        #expect(try Recipe.parse(recipe.resolvedYAML(graftVersion: "t"), file: "resolved.yaml").config.stages == expected)
    }

    /// An error in a value given by `--set` names the override (it has no line in the file); one in the file keeps its line.
    @Test func overrideErrorsNameTheOverride() throws {
        #expect { try Recipe.parse(Self.text, file: "r.yaml", overrides: ["stages.1.schedule=cosin"]) } throws: {
            "\($0)" == #"r.yaml: --set stages[1].schedule: unknown schedule "cosin" (constant, step, exponential, cosine, onecycle); did you mean cosine?"#
        }
        #expect { try Recipe.parse(Self.text.replacingOccurrences(of: "clip_norm: 1.5}", with: "clip_norm: 1.5, optimizer: adma}"), file: "r.yaml",
                                 overrides: ["stages.1.epochs=3"]) } throws: {
            "\($0)".hasPrefix("r.yaml:") && "\($0)".contains("stages[0].optimizer") && !"\($0)".contains("--set")
        }
    }
}
