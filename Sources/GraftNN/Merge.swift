import GraftTensor

/// Keras merge layers: `Add`, `Subtract`, `Multiply`, `Average`, `Maximum`, `Minimum` (with broadcasting).
public final class Merge: Layer {
    public enum Kind: String, Sendable { case add = "Add", subtract = "Subtract", multiply = "Multiply"
        case average = "Average", maximum = "Maximum", minimum = "Minimum" }
    public let name: String
    public let kind: Kind
    public var kerasClassName: String { kind.rawValue }
    public var variables: [(key: String, variable: Variable)] { [] }

    public init(name: String, kind: Kind) {
        self.name = name
        self.kind = kind
    }

    public func build(inputShapes: [[Int]], rng: inout SplitMix64) throws -> [Int] {
        guard inputShapes.count >= 2 else { throw LayerError(name, "needs at least 2 inputs, got \(inputShapes.count)") }
        if kind == .subtract && inputShapes.count != 2 { throw LayerError(name, "Subtract needs exactly 2 inputs") }
        var out = inputShapes[0]
        for s in inputShapes.dropFirst() {
            guard let b = broadcastKnown(out, s) else {
                throw LayerError(name, "cannot combine shapes \(inputShapes.map { Shape.describe([-1] + $0) }.joined(separator: ", "))")
            }
            out = b
        }
        return out
    }

    public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor {
        let op: BinaryOp
        switch kind {
        case .add, .average: op = .add
        case .subtract: op = .subtract
        case .multiply: op = .multiply
        case .maximum: op = .maximum
        case .minimum: op = .minimum
        }
        do {
            var acc = try inputs[0].elementwise(op, inputs[1])
            for x in inputs.dropFirst(2) { acc = try acc.elementwise(op, x) }
            if kind == .average {
                acc = try acc.elementwise(.multiply, Tensor(shape: [1], repeating: 1 / Float(inputs.count)))
            }
            return acc
        } catch let e as ShapeError {
            throw LayerError(name, e.description)
        }
    }
}

/// Broadcasting of build-time shapes where -1 means unknown.
func broadcastKnown(_ a: [Int], _ b: [Int]) -> [Int]? {
    let r = max(a.count, b.count)
    var out = [Int](repeating: 1, count: r)
    for i in 0..<r {
        let da = i < r - a.count ? 1 : a[i - (r - a.count)]
        let db = i < r - b.count ? 1 : b[i - (r - b.count)]
        if da == db || db == 1 { out[i] = da } else if da == 1 { out[i] = db } else if da < 0 || db < 0 { out[i] = max(da, db) } else { return nil }
    }
    return out
}

/// Keras `Concatenate` along `axis` (Keras counts the batch as axis 0; -1 is the channels).
public final class Concatenate: Layer {
    public let name: String
    public let axis: Int
    public var kerasClassName: String { "Concatenate" }
    public var variables: [(key: String, variable: Variable)] { [] }

    public init(name: String, axis: Int = -1) {
        self.name = name
        self.axis = axis
    }

    public func build(inputShapes: [[Int]], rng: inout SplitMix64) throws -> [Int] {
        guard let first = inputShapes.first, inputShapes.count >= 1 else { throw LayerError(name, "needs inputs") }
        let r = first.count + 1
        let ax = axis < 0 ? axis + r : axis
        guard ax >= 1 && ax < r else { throw LayerError(name, "axis \(axis) out of range for rank \(r)") }
        var out = first
        out[ax - 1] = 0
        for s in inputShapes {
            guard s.count == first.count, (0..<s.count).allSatisfy({ $0 == ax - 1 || s[$0] == first[$0] || s[$0] < 0 || first[$0] < 0 }) else {
                throw LayerError(name, "cannot concatenate \(inputShapes.map { Shape.describe([-1] + $0) }.joined(separator: ", ")) on axis \(axis)")
            }
            out[ax - 1] = (out[ax - 1] < 0 || s[ax - 1] < 0) ? -1 : out[ax - 1] + s[ax - 1]
        }
        return out
    }

    public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor {
        do {
            return try Tensor.concatenate(inputs, axis: axis)
        } catch let e as ShapeError {
            throw LayerError(name, e.description)
        }
    }
}

/// A bare math op recorded in a Keras config: Keras 3 `keras.src.ops.numpy` Add/Multiply/…, or Keras 2
/// `TFOpLambda` (`__operators__.add`, `math.multiply`, …). Operands are inputs or scalar constants, in order.
public final class TensorOp: Layer {
    public enum Operand: Sendable, Equatable { case input(Int), constant(Float) }
    public let name: String
    public let kerasClassName: String
    public let op: BinaryOp
    public let operands: [Operand]
    public var variables: [(key: String, variable: Variable)] { [] }

    public init(name: String, kerasClassName: String, op: BinaryOp, operands: [Operand]) {
        self.name = name
        self.kerasClassName = kerasClassName
        self.op = op
        self.operands = operands
    }

    public func build(inputShapes: [[Int]], rng: inout SplitMix64) throws -> [Int] {
        guard operands.count == 2 else { throw LayerError(name, "a binary op needs 2 operands, got \(operands.count)") }
        var shapes: [[Int]] = []
        for o in operands {
            switch o {
            case .input(let i):
                guard i < inputShapes.count else { throw LayerError(name, "operand refers to missing input \(i)") }
                shapes.append(inputShapes[i])
            case .constant: shapes.append([])
            }
        }
        guard let out = broadcastKnown(shapes[0], shapes[1]) else {
            throw LayerError(name, "cannot combine \(shapes.map { Shape.describe($0) }.joined(separator: ", "))")
        }
        return out
    }

    public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor {
        func value(_ o: Operand) -> Tensor {
            switch o {
            case .input(let i): return inputs[i]
            case .constant(let c): return Tensor(shape: [1], repeating: c)
            }
        }
        do {
            return try value(operands[0]).elementwise(op, value(operands[1]))
        } catch let e as ShapeError {
            throw LayerError(name, e.description)
        }
    }
}
