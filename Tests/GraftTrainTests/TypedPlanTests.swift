import Foundation
import Testing
import GraftData
import GraftNN
@testable import GraftTrain

/// The typed values a run is made of (stage, optimizer, schedule, freeze, augmentation): each parses once, with
/// its range checks, and encodes as the text it parses back from.
struct TypedPlanTests {
    @Test(arguments: ["constant", "step", "step:3:0.2", "exponential", "exponential:100:0.5", "exponential:epoch:0.5",
                      "cosine", "cosine:1.5:0.1", "onecycle", "onecycle:0.4", "one-cycle:0.25"])
    func schedulesReadBackFromTheirText(_ text: String) throws {
        let spec = try ScheduleSpec(parsing: text)
        #expect(try ScheduleSpec(parsing: spec.description) == spec, "\(text) → \(spec)")
        // The spec and the schedule parsed from text in one go agree.
        #expect(try spec.schedule(epochs: 4, stepsPerEpoch: 7) == LearningRateSchedule(parsing: text, epochs: 4, stepsPerEpoch: 7))
    }

    @Test(arguments: ["step:nan:0.5", "cosine:1e30", "onecycle:nan", "exponential:-1e20:0.5", "step:0:0.5", "step:2.5",
                      "exponential:9223372036854775807", "onecycle:0", "cosine:1:2", "constant:1", "step:1:inf"])
    func hostileScheduleNumbersAreRefused(_ text: String) {
        #expect(throws: TrainError.self) { try ScheduleSpec(parsing: text) }
    }

    @Test func aWarmUpLongerThanTheStageIsRefusedAgainstItsLength() throws {
        let spec = try ScheduleSpec(parsing: "cosine:5")
        #expect { try spec.schedule(epochs: 3, stepsPerEpoch: 10) } throws: { "\($0)".contains("from 0 to 3") }
        #expect(try spec.schedule(epochs: 5, stepsPerEpoch: 10) == .cosine(warmupSteps: 50, totalSteps: 50, alpha: 0))
        #expect { try ScheduleSpec.constant.schedule(epochs: Int.max, stepsPerEpoch: 3) } throws: { "\($0)".contains("too long") }
    }

    @Test func mistypedNamesGetTheNearest() throws {
        #expect { try ScheduleSpec(parsing: "cosin") } throws: { "\($0)".contains("did you mean cosine?") }
        #expect { try OptimizerKind(parsing: "adma") } throws: { "\($0)".contains("did you mean adam?") }
        #expect(try OptimizerKind(parsing: "AdamW") == .adamw)
    }

    @Test func freezeSpecsReadBackFromTheirText() {
        let specs: [FreezeSpec] = [.all, .none, .until("conv2"), .from("block5_conv1"), .patterns(["block5_*", "fc?"]),
                                   .patterns(["all"]), .patterns(["until:x"])]
        for spec in specs { #expect(FreezeSpec(parsing: spec.description) == spec, "\(spec)") }
    }

    @Test(arguments: ["flip:h", "flip:hv", "rotate:15", "rotate:12.5:nearest", "translate:0.1:wrap", "zoom:0.2", "crop:4",
                      "brightness:0.2", "contrast:0.3", "noise:0.05", "noise:0.05:3", "cutout:0.25", "mixup:0.2", "cutmix:1"])
    func augmentationsReadBackFromTheirText(_ text: String) throws {
        let op = try AugmentOp(parsing: text)
        #expect(op.description == text)
        #expect(try AugmentOp(parsing: op.description) == op)
    }

    /// A stage encodes as the recipe's words (`"schedule": "step:3:0.2"`), decodes to the same value, and a bad
    /// value in the JSON is a decoding error, not a stage.
    @Test func stagesEncodeAsTheirTextAndDecodeChecked() throws {
        var stage = StageConfig(name: "finetune", freeze: .until("conv2"), unfreeze: .patterns(["fc*"]), epochs: 3,
                                optimizer: .adamw, learningRate: 1e-4, schedule: try ScheduleSpec(parsing: "step:3:0.2"))
        stage.batchNorm = .train
        let json = String(decoding: try JSONEncoder().encode(stage), as: UTF8.self)
        for part in [#""schedule":"step:3:0.2""#, #""freeze":"until:conv2""#, #""optimizer":"adamw""#, #""unfreeze":"fc*""#] {
            #expect(json.contains(part), "\(json)")
        }
        #expect(try JSONDecoder().decode(StageConfig.self, from: Data(json.utf8)) == stage)
        let bad = json.replacingOccurrences(of: "step:3:0.2", with: "step:nan:0.5")
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(StageConfig.self, from: Data(bad.utf8)) }
        let augment = try JSONEncoder().encode([try AugmentOp(parsing: "rotate:15")])
        #expect(String(decoding: augment, as: UTF8.self) == #"["rotate:15"]"#)
    }
}
