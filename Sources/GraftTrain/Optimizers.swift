import Foundation
import GraftCore
import GraftNN
import GraftTensor

/// An optimizer: per-parameter state keyed by path, updated from each variable's `grad`. Formulas follow Keras
/// (Keras 3 `keras.optimizers`), so a step here equals a step there.
public protocol Optimizer: AnyObject {
    var name: String { get }
    var learningRate: Float { get set }
    /// Steps taken so far (Keras's `iterations`).
    var iterations: Int { get set }
    /// Slot tensors per parameter path (`m`, `v`, `momentum`, …), for checkpoints.
    var slots: [String: [String: Tensor]] { get set }
    /// One update of every trainable variable that has a gradient.
    func step(_ parameters: [(path: String, variable: Variable)])
}

extension Optimizer {
    func slot(_ path: String, _ key: String, like v: Variable) -> Tensor {
        slots[path]?[key] ?? Tensor(shape: v.shape, repeating: 0)
    }

    func setSlot(_ path: String, _ key: String, _ t: Tensor) {
        slots[path, default: [:]][key] = t
    }

    /// Runs `body(param, grad, path)` on every trainable variable that has a gradient.
    func forEachTrainable(_ parameters: [(path: String, variable: Variable)],
                          _ body: (Variable, Tensor, String) -> Void) {
        for (path, v) in parameters where v.isTrainable {
            guard let g = v.grad else { continue }
            body(v, g, path)
        }
    }
}

/// Stochastic gradient descent with optional (Nesterov) momentum:
/// `v = μ·v − lr·g; p += v` (Nesterov: `p += μ·v − lr·g`).
public final class SGD: Optimizer {
    public let name = "sgd"
    public var learningRate: Float
    public var momentum: Float
    public var nesterov: Bool
    public var iterations = 0
    public var slots: [String: [String: Tensor]] = [:]

    public init(learningRate: Float = 0.01, momentum: Float = 0, nesterov: Bool = false) {
        self.learningRate = learningRate
        self.momentum = momentum
        self.nesterov = nesterov
    }

    public func step(_ parameters: [(path: String, variable: Variable)]) {
        let lr = learningRate, mu = momentum
        forEachTrainable(parameters) { v, g, path in
            var p = v.value
            let gs = g.scalars
            if mu == 0 {
                p.withUnsafeMutableBufferPointer { pp in for i in 0..<pp.count { pp[i] -= lr * gs[i] } }
            } else {
                var m = slot(path, "momentum", like: v)
                m.withUnsafeMutableBufferPointer { mm in
                    p.withUnsafeMutableBufferPointer { pp in
                        for i in 0..<pp.count {
                            mm[i] = mu * mm[i] - lr * gs[i]
                            pp[i] += nesterov ? mu * mm[i] - lr * gs[i] : mm[i]
                        }
                    }
                }
                setSlot(path, "momentum", m)
            }
            v.value = p
        }
        iterations += 1
    }
}

/// Adam (Keras): `m = β1·m + (1−β1)·g; v = β2·v + (1−β2)·g²;
/// p −= lr·√(1−β2ᵗ)/(1−β1ᵗ) · m / (√v + ε)`. AdamW adds decoupled weight decay `p −= lr·wd·p` first.
public final class Adam: Optimizer {
    public let name: String
    public var learningRate: Float
    public var beta1: Float, beta2: Float, epsilon: Float
    /// Decoupled weight decay (AdamW); 0 for plain Adam.
    public var weightDecay: Float
    public var iterations = 0
    public var slots: [String: [String: Tensor]] = [:]

    public init(learningRate: Float = 0.001, beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-7, weightDecay: Float = 0) {
        self.learningRate = learningRate
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.weightDecay = weightDecay
        name = weightDecay > 0 ? "adamw" : "adam"
    }

    public func step(_ parameters: [(path: String, variable: Variable)]) {
        let t = Double(iterations + 1)
        let lr = learningRate
        let alpha = Float(Double(lr) * (1 - pow(Double(beta2), t)).squareRoot() / (1 - pow(Double(beta1), t)))
        let (b1, b2, eps, wd) = (beta1, beta2, epsilon, weightDecay)
        forEachTrainable(parameters) { v, g, path in
            var p = v.value
            var m = slot(path, "m", like: v), s = slot(path, "v", like: v)
            let gs = g.scalars
            m.withUnsafeMutableBufferPointer { mm in
                s.withUnsafeMutableBufferPointer { vv in
                    p.withUnsafeMutableBufferPointer { pp in
                        for i in 0..<pp.count {
                            if wd > 0 { pp[i] -= lr * wd * pp[i] }
                            mm[i] = b1 * mm[i] + (1 - b1) * gs[i]
                            vv[i] = b2 * vv[i] + (1 - b2) * gs[i] * gs[i]
                            pp[i] -= alpha * mm[i] / (vv[i].squareRoot() + eps)
                        }
                    }
                }
            }
            setSlot(path, "m", m)
            setSlot(path, "v", s)
            v.value = p
        }
        iterations += 1
    }
}

/// RMSprop (Keras): `a = ρ·a + (1−ρ)·g²; p −= lr·g / (√a + ε)`; with momentum `m = μ·m + lr·g/(√a + ε); p −= m`.
public final class RMSprop: Optimizer {
    public let name = "rmsprop"
    public var learningRate: Float
    public var rho: Float, momentum: Float, epsilon: Float
    public var iterations = 0
    public var slots: [String: [String: Tensor]] = [:]

    public init(learningRate: Float = 0.001, rho: Float = 0.9, momentum: Float = 0, epsilon: Float = 1e-7) {
        self.learningRate = learningRate
        self.rho = rho
        self.momentum = momentum
        self.epsilon = epsilon
    }

    public func step(_ parameters: [(path: String, variable: Variable)]) {
        let (lr, rho, mu, eps) = (learningRate, rho, momentum, epsilon)
        forEachTrainable(parameters) { v, g, path in
            var p = v.value
            var a = slot(path, "velocity", like: v), m = slot(path, "momentum", like: v)
            let gs = g.scalars
            a.withUnsafeMutableBufferPointer { aa in
                m.withUnsafeMutableBufferPointer { mm in
                    p.withUnsafeMutableBufferPointer { pp in
                        for i in 0..<pp.count {
                            aa[i] = rho * aa[i] + (1 - rho) * gs[i] * gs[i]
                            let inc = lr * gs[i] / (aa[i].squareRoot() + eps)
                            if mu > 0 {
                                mm[i] = mu * mm[i] + inc
                                pp[i] -= mm[i]
                            } else {
                                pp[i] -= inc
                            }
                        }
                    }
                }
            }
            setSlot(path, "velocity", a)
            if mu > 0 { setSlot(path, "momentum", m) }
            v.value = p
        }
        iterations += 1
    }
}

/// The optimizers a stage can use: `sgd`, `momentum` (SGD 0.9), `nesterov`, `adam`, `adamw`, `rmsprop`, as recipes and `--optimizer` name them.
public enum OptimizerKind: String, Codable, CaseIterable, Sendable, CustomStringConvertible {
    case sgd, momentum, nesterov, adam, adamw, rmsprop

    /// A name as a user writes it (any case); an unknown one is an error listing the names and the nearest.
    public init(parsing text: String) throws {
        guard let kind = OptimizerKind(rawValue: text.lowercased()) else {
            let names = Self.allCases.map(\.rawValue)
            let hint = Suggestions.didYouMean(text, among: names)
            throw TrainError("optimizer", "unknown optimizer \"\(text)\" (\(names.joined(separator: ", ")))\(hint)")
        }
        self = kind
    }

    public var description: String { rawValue }

    public func make(learningRate: Float, weightDecay: Float = 0.004, momentum: Float = 0.9) -> any Optimizer {
        switch self {
        case .sgd: return SGD(learningRate: learningRate)
        case .momentum: return SGD(learningRate: learningRate, momentum: momentum)
        case .nesterov: return SGD(learningRate: learningRate, momentum: momentum, nesterov: true)
        case .adam: return Adam(learningRate: learningRate)
        case .adamw: return Adam(learningRate: learningRate, weightDecay: weightDecay)
        case .rmsprop: return RMSprop(learningRate: learningRate)
        }
    }
}

/// Builds an optimizer by name (`OptimizerKind`).
public func makeOptimizer(_ name: String, learningRate: Float, weightDecay: Float = 0.004, momentum: Float = 0.9) throws -> any Optimizer {
    try OptimizerKind(parsing: name).make(learningRate: learningRate, weightDecay: weightDecay, momentum: momentum)
}

/// Scales all gradients so their global L2 norm is at most `maxNorm` (Keras `global_clipnorm`). Returns the norm before.
@discardableResult
public func clipGradients(_ parameters: [(path: String, variable: Variable)], maxNorm: Float) -> Float {
    var sq = 0.0
    for (_, v) in parameters where v.isTrainable {
        v.grad?.withUnsafeBufferPointer { g in for x in g { sq += Double(x) * Double(x) } }
    }
    let norm = Float(sq.squareRoot())
    if norm > maxNorm && norm > 0 {
        let s = maxNorm / norm
        for (_, v) in parameters where v.isTrainable {
            if var g = v.grad {
                g.withUnsafeMutableBufferPointer { for i in 0..<$0.count { $0[i] *= s } }
                v.grad = g
            }
        }
    }
    return norm
}

/// Errors from training set-up and runs; each names the option, file or epoch involved.
public struct TrainError: GraftError {
    /// The setting or file the message is about; it starts the description.
    public let subject: String
    public let message: String
    public let context: ErrorContext
    /// An error about a setting: `key` is its name (`schedule`, `stages[1].epochs`, `--batch`).
    public init(_ key: String, _ message: String) {
        (subject, self.message, context) = (key, message, ErrorContext(key: key))
    }
    /// An error about a file or folder.
    public init(file: String, _ message: String) {
        (subject, self.message, context) = (file, message, ErrorContext(file: file))
    }
    public var description: String { "\(subject): \(message)" }
}
