import Foundation

/// Which compute paths Graft's kernels take. Every choice gives the same results within float rounding (the suite
/// runs each against the others); they exist for comparisons and to rule a backend out when something looks wrong.
///
/// The process default is `RuntimeOptions.current.compute`; code can choose per call, on any thread:
///
/// ```swift
/// var options = ComputeOptions.current
/// options.oneDNN = false
/// let y = try ComputeOptions.with(options) { try model.predict([x]) }
/// ```
///
/// The choice is task-local: it applies to the work started inside `with`, including the parts that
/// `Parallel.forEach` runs on other threads, and to nothing else running at the same time.
public struct ComputeOptions: Sendable, Equatable, CustomStringConvertible {
    /// Convolutions through oneDNN (else im2col + OpenBLAS, and Graft's own depthwise loops).
    public var oneDNN = true
    /// 1×1 stride-1 convolutions through oneDNN too (else a plain OpenBLAS GEMM).
    public var oneDNNPointwise = true
    /// Depthwise convolutions through oneDNN as grouped convolutions (else Graft's own loops).
    public var oneDNNDepthwise = true
    /// At inference and in a frozen base, BatchNormalization folds into the convolution before it and activations
    /// run as the output is written (else every layer runs on its own).
    public var fusion = true
    /// exp, tanh and sigmoid over arrays with the AVX2 + FMA build when the CPU has it (else the baseline build).
    public var simd = true

    public init(oneDNN: Bool = true, oneDNNPointwise: Bool = true, oneDNNDepthwise: Bool = true, fusion: Bool = true,
                simd: Bool = true) {
        self.oneDNN = oneDNN
        self.oneDNNPointwise = oneDNNPointwise
        self.oneDNNDepthwise = oneDNNDepthwise
        self.fusion = fusion
        self.simd = simd
    }

    /// The options in force for the current task or thread: those chosen around this work, else the process's
    /// (`RuntimeOptions.current.compute`).
    public static var current: ComputeOptions { RuntimeOptions.current.compute }

    /// Runs `body` (and the work it hands to `Parallel.forEach`) with `options` and the other settings in force.
    @discardableResult
    public static func with<R>(_ options: ComputeOptions, _ body: () throws -> R) rethrows -> R {
        var runtime = RuntimeOptions.current
        runtime.compute = options
        return try RuntimeOptions.with(runtime, body)
    }

    /// Every combination of the switches (32), for tests that compare the paths.
    public static var allCombinations: [ComputeOptions] {
        (0..<32).map { bits in
            ComputeOptions(oneDNN: bits & 1 != 0, oneDNNPointwise: bits & 2 != 0, oneDNNDepthwise: bits & 4 != 0,
                           fusion: bits & 8 != 0, simd: bits & 16 != 0)
        }
    }

    public var description: String {
        "oneDNN \(oneDNN ? "on" : "off") (pointwise \(oneDNNPointwise ? "on" : "off"), depthwise \(oneDNNDepthwise ? "on" : "off")), "
            + "fusion \(fusion ? "on" : "off"), SIMD \(simd ? "on" : "off")"
    }
}
