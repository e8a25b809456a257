import ArgumentParser
import Foundation
import GraftData
import GraftKeras
import GraftNN
import GraftTensor
import GraftTrain

/// `graft bench MODEL --batch N [--train frozen-base|full] [--iterations K] [--json]`: the Graft side of `tools/bench`.
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure inference or training speed of a model (the Graft side of tools/bench).",
        discussion: """
        Times `--iterations` runs after `--warmup` untimed ones on random inputs and reports the median. MODEL is a
        checkpoint or a built-in architecture (zoo:NAME?no-top&input=H,W,C). With --train, a new head of
        --classes classes is grafted (global average pooling + Dense) and one Adam step is timed: with the base
        frozen (frozen-base) or everything trainable (full). With --epoch DATA, one training epoch on DATA is timed.

        Examples:
          graft bench zoo:resnet50 --batch 8
          graft bench zoo:resnet50?no-top --batch 32 --train frozen-base --json
          graft bench zoo:lenet5?input=32,32,1 --epoch fashion-mnist:train --batch 64
          graft bench sgemm:2048     (the GEMM rate convolutions are compared with, GFLOP/s)
        """)

    enum TrainMode: String, ExpressibleByArgument, CaseIterable {
        case frozenBase = "frozen-base"
        case full
    }

    @Argument(help: "A Keras checkpoint or zoo:NAME (random weights).")
    var model: String

    @Option(help: "Architecture for a weights-only checkpoint.")
    var architecture: String?

    @Option(help: "Images per batch.")
    var batch = 8

    @Option(help: "Time training steps instead of inference: frozen-base or full.")
    var train: TrainMode?

    @Option(help: "Classes of the head grafted for --train.")
    var classes = 10

    @Option(help: "Timed iterations (the median is reported).")
    var iterations = 5

    @Option(help: "Untimed iterations first.")
    var warmup = 1

    @Option(help: "Time one training epoch (Adam 1e-3) on this data source instead, e.g. fashion-mnist:train.")
    var epoch: String?

    @Flag(help: "Print one JSON object.")
    var json = false

    func validate() throws {
        guard batch > 0 else { throw ValidationError("--batch must be positive, got \(batch)") }
        guard iterations > 0 else { throw ValidationError("--iterations must be positive, got \(iterations)") }
        guard warmup >= 0 else { throw ValidationError("--warmup must be zero or more, got \(warmup)") }
        guard classes > 0 else { throw ValidationError("--classes must be positive, got \(classes)") }
    }

    func run() throws {
        if model.hasPrefix("sgemm:") { return try benchGEMM() }
        let loadStart = Date()
        let loaded: Model = model.hasPrefix("zoo:")
            ? try KerasLoader.loadArchitecture(model)
            : try KerasLoader.load(model, architecture: architecture).model
        let loadSeconds = Date().timeIntervalSince(loadStart)
        var net = loaded
        if train != nil || epoch != nil {
            if net.outputShapes.first?.count != 1 || train != nil {
                net = try Self.withNewHead(net, classes: classes, freezeBase: train == .frozenBase)
            }
        }
        guard net.inputShapes.count == 1, let inputShape = net.inputShapes.first, inputShape.allSatisfy({ $0 > 0 }) else {
            throw CLIError("\(model): bench needs one input of known size; give zoo:NAME?input=H,W,C")
        }
        var result: [String: Any] = [
            "model": model, "batch": batch, "parameters": net.parameterCounts.total,
            "trainable_parameters": net.parameterCounts.trainable, "load_seconds": loadSeconds,
            "threads": Parallel.workers,
        ]
        if let epoch {
            let seconds = try timeEpoch(net, data: epoch, inputShape: inputShape)
            result["mode"] = "epoch"
            result["epoch_seconds"] = seconds.seconds
            result["images"] = seconds.images
            result["images_per_second"] = Double(seconds.images) / seconds.seconds
        } else {
            var rng = SplitMix64(seed: 1)
            let x = Tensor(shape: [batch] + inputShape, values: (0..<(batch * inputShape.reduce(1, *))).map { _ in rng.uniform() })
            let step: () throws -> Void
            if train != nil {
                let trainer = Trainer(model: net, optimizer: Adam(learningRate: 1e-3), preprocessor: Preprocessor(targetShape: inputShape, mode: .none))
                let labels = (0..<batch).map { $0 % classes }
                var context = TrainingContext(seed: 1)
                step = { _ = try trainer.trainStep(x, labels: labels, loss: Loss(), clipNorm: nil, context: &context) }
            } else {
                step = { _ = try net.predict([x]) }
            }
            for _ in 0..<warmup { try step() }
            var times: [Double] = []
            for _ in 0..<iterations {
                let t0 = Date()
                try step()
                times.append(Date().timeIntervalSince(t0))
            }
            times.sort()
            let median = times.count % 2 == 1 ? times[times.count / 2] : (times[times.count / 2 - 1] + times[times.count / 2]) / 2
            result["mode"] = train?.rawValue ?? "inference"
            result["iterations"] = iterations
            result["median_seconds"] = median
            result["min_seconds"] = times.first ?? median
            result["images_per_second"] = Double(batch) / median
        }
        result["peak_rss_mb"] = Self.peakResidentMegabytes()
        if json {
            print(String(decoding: try JSONSerialization.data(withJSONObject: result, options: [.sortedKeys]), as: UTF8.self))
        } else {
            let mode = result["mode"] as? String ?? ""
            var line = "\(model) \(mode) batch \(batch): "
            if let s = result["median_seconds"] as? Double {
                line += String(format: "%.4f s per step (median of %d), %.2f images/s", s, iterations, Double(batch) / s)
            } else if let s = result["epoch_seconds"] as? Double, let n = result["images"] as? Int {
                line += String(format: "one epoch of %d images in %.2f s, %.0f images/s", n, s, Double(n) / s)
            }
            line += String(format: "; load %.3f s; peak memory %.0f MB; %d threads", loadSeconds, Self.peakResidentMegabytes(), Parallel.workers)
            print(line)
        }
    }

    /// `sgemm:N`: an N×N by N×N single-precision product through Graft's GEMM (OpenBLAS split over the workers).
    func benchGEMM() throws {
        guard let n = Int(model.dropFirst("sgemm:".count)), n > 0, n <= 16384 else {
            throw CLIError("\(model): give sgemm:N with N from 1 to 16384")
        }
        var rng = SplitMix64(seed: 1)
        let a = (0..<(n * n)).map { _ in rng.uniform(-1, 1) }, b = (0..<(n * n)).map { _ in rng.uniform(-1, 1) }
        var c = [Float](repeating: 0, count: n * n)
        var times: [Double] = []
        for i in 0..<(warmup + iterations) {
            let t0 = Date()
            a.withUnsafeBufferPointer { ap in
                b.withUnsafeBufferPointer { bp in
                    c.withUnsafeMutableBufferPointer { cp in
                        sgemm(m: n, n: n, k: n, a: ap.baseAddress!, lda: n, b: bp.baseAddress!, ldb: n, c: cp.baseAddress!, ldc: n)
                    }
                }
            }
            if i >= warmup { times.append(Date().timeIntervalSince(t0)) }
        }
        times.sort()
        let median = times[times.count / 2]
        let gflops = 2 * Double(n) * Double(n) * Double(n) / median / 1e9
        if json {
            let result: [String: Any] = ["model": model, "median_seconds": median, "gflops": gflops, "threads": Parallel.workers]
            print(String(decoding: try JSONSerialization.data(withJSONObject: result, options: [.sortedKeys]), as: UTF8.self))
        } else {
            print(String(format: "sgemm %d×%d×%d: %.4f s (median of %d), %.1f GFLOP/s; %d threads", n, n, n, median, iterations, gflops, Parallel.workers))
        }
    }

    /// The model with its classifier replaced: cut before a Dense/Flatten head when it has one, then pooling + Dense.
    static func withNewHead(_ model: Model, classes: Int, freezeBase: Bool) throws -> Model {
        var base = model
        if let last = model.outputNodes.first, model.nodes[last].layer is Dense, let feed = model.nodes[last].inputs.first {
            base = try model.cut(at: model.nodes[feed].layer.name)
        }
        if freezeBase { _ = try base.freeze(.all) }
        let pooling: HeadConfig.Pooling = (base.outputShapes.first?.count ?? 1) == 3 ? .avg : .none
        return try base.replacingHead(HeadConfig(classes: classes, pooling: pooling), seed: 17)
    }

    func timeEpoch(_ net: Model, data: String, inputShape: [Int]) throws -> (seconds: Double, images: Int) {
        let (source, _) = try DataSource.load(data)
        let trainer = Trainer(model: net, optimizer: Adam(learningRate: 1e-3),
                              preprocessor: Preprocessor(targetShape: inputShape, fit: .pad, mode: .scale(1.0 / 255)))
        var options = FitOptions(epochs: 1, batchSize: batch)
        options.showProgress = false
        let start = Date()
        try trainer.fit(train: source, validation: nil, options: options)
        return (Date().timeIntervalSince(start), source.count)
    }

    /// Peak resident memory of this process so far (getrusage's ru_maxrss, in MB).
    static func peakResidentMegabytes() -> Double {
        var usage = rusage()
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
        return Double(usage.ru_maxrss) / 1024
    }
}
