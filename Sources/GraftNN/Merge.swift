import GraftTensor

/// Keras merge layers: `Add`, `Subtract`, `Multiply`, `Average`, `Maximum`, `Minimum` (with broadcasting).
public final class Merge: Layer {
    /// The merge, by its Keras class name.
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

    /// The element-wise operation combining the inputs (`average` adds, then scales).
    var binaryOp: BinaryOp {
        switch kind {
        case .add, .average: .add
        case .subtract: .subtract
        case .multiply: .multiply
        case .maximum: .maximum
        case .minimum: .minimum
        }
    }

    public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor {
        let op = binaryOp
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
    /// One operand: the layer's input at an index, or a scalar constant.
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

// MARK: - training

/// Gradients of `op(a, b)` with broadcasting, reduced back to each operand's shape.
func binaryGradients(_ op: BinaryOp, _ a: Tensor, _ b: Tensor, _ dy: Tensor) throws -> (Tensor, Tensor) {
    switch op {
    case .add:
        return (dy.reduced(toShape: a.shape), dy.reduced(toShape: b.shape))
    case .subtract:
        return (dy.reduced(toShape: a.shape),
                try dy.elementwise(.multiply, Tensor(shape: [1], repeating: -1)).reduced(toShape: b.shape))
    case .multiply:
        return (try dy.elementwise(.multiply, b).reduced(toShape: a.shape), try dy.elementwise(.multiply, a).reduced(toShape: b.shape))
    case .divide:
        let da = try dy.elementwise(.divide, b)
        let db = try (try da.elementwise(.multiply, a)).elementwise(.divide, b)
        return (da.reduced(toShape: a.shape), try db.elementwise(.multiply, Tensor(shape: [1], repeating: -1)).reduced(toShape: b.shape))
    case .maximum, .minimum:
        // The gradient goes to the chosen operand (ties to the first, as Keras/TensorFlow do).
        let shape = Tensor.broadcastShape(a.shape, b.shape) ?? dy.shape
        let ab = try Tensor(shape: shape, repeating: 0).elementwise(.add, a)
        let bb = try Tensor(shape: shape, repeating: 0).elementwise(.add, b)
        var ma = Tensor(uninitializedShape: shape), mb = Tensor(uninitializedShape: shape)
        ma.withUnsafeMutableBufferPointer { pa in
            mb.withUnsafeMutableBufferPointer { pb in
                ab.withUnsafeBufferPointer { va in
                    bb.withUnsafeBufferPointer { vb in
                        for i in 0..<va.count {
                            let first = op == .maximum ? va[i] >= vb[i] : va[i] <= vb[i]
                            pa[i] = first ? 1 : 0
                            pb[i] = first ? 0 : 1
                        }
                    }
                }
            }
        }
        return (try dy.elementwise(.multiply, ma).reduced(toShape: a.shape), try dy.elementwise(.multiply, mb).reduced(toShape: b.shape))
    }
}

extension Merge {
    /// Sums and averages pass the gradient on without looking at the result or the inputs (only their shapes,
    /// which the training-mode forward pass keeps).
    public var backwardReadsOutput: Bool { !(kind == .add || kind == .average) }
    public var backwardReadsInputs: Bool { !(kind == .add || kind == .average) }

    public func forwardTrain(_ inputs: [Tensor], context: inout TrainingContext) throws -> (output: Tensor, cache: Any?) {
        (try forward(inputs, training: true), inputs.map(\.shape))
    }

    public func backward(_ inputs: [Tensor], output: Tensor, cache: Any?, gradOutput: Tensor,
                         needsInputGradients: [Bool], preActivation: Bool) throws -> [Tensor?] {
        let shapes = cache as? [[Int]] ?? inputs.map(\.shape)
        switch kind {
        case .add:
            return shapes.map { gradOutput.reduced(toShape: $0) }
        case .average:
            let g = try gradOutput.elementwise(.multiply, Tensor(shape: [1], repeating: 1 / Float(inputs.count)))
            return shapes.map { g.reduced(toShape: $0) }
        case .subtract:
            let (da, db) = try binaryGradients(.subtract, inputs[0], inputs[1], gradOutput)
            return [da, db]
        case .multiply:
            // d/dx_i of Π x_j = dy · Π_{j≠i} x_j.
            return try inputs.indices.map { i in
                var others = gradOutput
                for (j, x) in inputs.enumerated() where j != i { others = try others.elementwise(.multiply, x) }
                return others.reduced(toShape: inputs[i].shape)
            }
        case .maximum, .minimum:
            // Re-run the chain of pairwise choices, sending the gradient to the winner of each.
            let op: BinaryOp = kind == .maximum ? .maximum : .minimum
            var acc = inputs[0]
            var partials: [Tensor] = []
            for x in inputs.dropFirst() {
                partials.append(acc)
                acc = try acc.elementwise(op, x)
            }
            var grads = [Tensor?](repeating: nil, count: inputs.count)
            var g = gradOutput
            for i in stride(from: inputs.count - 1, through: 1, by: -1) {
                let (dPrev, dX) = try binaryGradients(op, partials[i - 1], inputs[i], g)
                grads[i] = dX
                g = dPrev
            }
            grads[0] = g.reduced(toShape: inputs[0].shape)
            return grads
        }
    }
}

extension Concatenate {
    public func backward(_ inputs: [Tensor], output: Tensor, cache: Any?, gradOutput: Tensor,
                         needsInputGradients: [Bool], preActivation: Bool) throws -> [Tensor?] {
        let ax = axis < 0 ? axis + gradOutput.rank : axis
        return gradOutput.split(axis: ax, sizes: inputs.map { $0.shape[ax] })
    }
}

extension TensorOp {
    public func backward(_ inputs: [Tensor], output: Tensor, cache: Any?, gradOutput: Tensor,
                         needsInputGradients: [Bool], preActivation: Bool) throws -> [Tensor?] {
        func value(_ o: Operand) -> Tensor {
            switch o {
            case .input(let i): return inputs[i]
            case .constant(let c): return Tensor(shape: [1], repeating: c)
            }
        }
        let (da, db) = try binaryGradients(op, value(operands[0]), value(operands[1]), gradOutput)
        var grads = [Tensor?](repeating: nil, count: inputs.count)
        for (o, g) in zip(operands, [da, db]) {
            if case .input(let i) = o { grads[i] = try grads[i].map { try $0.elementwise(.add, g) } ?? g }
        }
        return grads
    }
}
