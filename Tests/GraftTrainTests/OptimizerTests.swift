import Foundation
import Testing
import GraftNN
import GraftTensor
import GraftTestSupport
@testable import GraftTrain

/// Optimizer steps against Keras 3's own (Tests/Fixtures/optimizers.json from tools/make_fixtures.py).
struct OptimizerTests {
    struct Fixture: Decodable {
        let start: [Float]
        let gradients: [[Float]]
        let trajectories: [String: [[Float]]]
    }

    static let fixture: Fixture? = {
        guard let data = try? Data(contentsOf: URL(fileURLWithPath: TestSupport.fixture("optimizers.json"))) else { return nil }
        return try? JSONDecoder().decode(Fixture.self, from: data)
    }()

    static func make(_ name: String) -> any Optimizer {
        switch name {
        case "sgd": return SGD(learningRate: 0.1)
        case "momentum": return SGD(learningRate: 0.1, momentum: 0.9)
        case "nesterov": return SGD(learningRate: 0.1, momentum: 0.9, nesterov: true)
        case "adam": return Adam(learningRate: 0.01)
        case "adamw": return Adam(learningRate: 0.01, weightDecay: 0.004)
        case "rmsprop": return RMSprop(learningRate: 0.01)
        default: return RMSprop(learningRate: 0.01, momentum: 0.5)
        }
    }

    @Test(arguments: ["sgd", "momentum", "nesterov", "adam", "adamw", "rmsprop", "rmsprop_momentum"])
    func matchesKeras(_ name: String) throws {
        let f = try #require(Self.fixture)
        let expected = try #require(f.trajectories[name])
        let v = Variable(Tensor(f.start))
        let opt = Self.make(name)
        for (step, g) in f.gradients.enumerated() {
            v.grad = Tensor(g)
            opt.step([("w", v)])
            let err = zip(v.value.scalars, expected[step]).map { abs($0 - $1) }.max() ?? 1
            #expect(err < 2e-6, "\(name) step \(step + 1): max error \(err)")
        }
        #expect(opt.iterations == 3)
    }

    @Test func frozenAndGradientlessVariablesAreUntouched() {
        let a = Variable(Tensor([1, 2])), b = Variable(Tensor([3, 4])), c = Variable(Tensor([5, 6]), isBuffer: true)
        a.grad = Tensor([1, 1]); b.grad = Tensor([1, 1]); c.grad = Tensor([1, 1])
        b.frozen = true
        let opt = Adam(learningRate: 0.1)
        opt.step([("a", a), ("b", b), ("c", c)])
        #expect(a.value.scalars != [1, 2])
        #expect(b.value.scalars == [3, 4])
        #expect(c.value.scalars == [5, 6])
    }

    @Test func clippingByGlobalNorm() {
        let a = Variable(Tensor([0, 0])), b = Variable(Tensor([0]))
        a.grad = Tensor([3, 0]); b.grad = Tensor([4])
        let norm = clipGradients([("a", a), ("b", b)], maxNorm: 1)
        #expect(norm == 5)
        #expect(a.grad?.scalars == [0.6, 0])
        #expect(b.grad?.scalars == [0.8])
    }

    @Test func schedules() throws {
        #expect(LearningRateSchedule.constant.rate(base: 0.1, step: 50, stepsPerEpoch: 10) == 0.1)
        let step = LearningRateSchedule.step(everyEpochs: 2, factor: 0.5)
        #expect(step.rate(base: 1, step: 19, stepsPerEpoch: 10) == 1)
        #expect(step.rate(base: 1, step: 20, stepsPerEpoch: 10) == 0.5)
        #expect(step.rate(base: 1, step: 45, stepsPerEpoch: 10) == 0.25)
        let exp = LearningRateSchedule.exponential(decaySteps: 10, rate: 0.5)
        #expect(abs(exp.rate(base: 1, step: 10, stepsPerEpoch: 5) - 0.5) < 1e-6)
        let cos = LearningRateSchedule.cosine(warmupSteps: 10, totalSteps: 110, alpha: 0)
        #expect(abs(cos.rate(base: 1, step: 4, stepsPerEpoch: 10) - 0.5) < 1e-6)
        #expect(abs(cos.rate(base: 1, step: 60, stepsPerEpoch: 10) - 0.5) < 1e-6)
        #expect(cos.rate(base: 1, step: 110, stepsPerEpoch: 10) < 1e-6)
        let one = LearningRateSchedule.oneCycle(totalSteps: 100, pctStart: 0.3, div: 25, finalDiv: 1e4)
        #expect(abs(one.rate(base: 1, step: 0, stepsPerEpoch: 10) - 0.04) < 1e-6)
        #expect(abs(one.rate(base: 1, step: 30, stepsPerEpoch: 10) - 1) < 1e-6)
        #expect(one.rate(base: 1, step: 100, stepsPerEpoch: 10) < 1e-5)
        #expect(throws: TrainError.self) { try LearningRateSchedule(parsing: "wavy", epochs: 1, stepsPerEpoch: 1) }
        #expect(try LearningRateSchedule(parsing: "step:3:0.2", epochs: 9, stepsPerEpoch: 5) == .step(everyEpochs: 3, factor: 0.2))
    }
}
