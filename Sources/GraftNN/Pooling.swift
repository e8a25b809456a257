import GraftTensor

/// Keras `MaxPooling2D` / `AveragePooling2D` (and sum pooling, which Keras lacks).
public final class Pooling2D: Layer {
    public let name: String
    public let kind: PoolKind
    public let poolSize: [Int]
    public let strides: [Int]
    public let padding: Padding
    public var kerasClassName: String {
        switch kind {
        case .max: return "MaxPooling2D"
        case .average: return "AveragePooling2D"
        case .sum: return "SumPooling2D"
        }
    }
    public var variables: [(key: String, variable: Variable)] { [] }

    public init(name: String, kind: PoolKind, poolSize: [Int], strides: [Int]? = nil, padding: Padding = .valid) {
        self.name = name
        self.kind = kind
        self.poolSize = poolSize
        self.strides = strides ?? poolSize
        self.padding = padding
    }

    public func build(inputShapes: [[Int]], rng: inout SplitMix64) throws -> [Int] {
        try requireInputs(inputShapes, count: 1)
        let s = inputShapes[0]
        try requireRank(s, 3)
        let (h, w) = try convOutputSpatial(name, input: s, kernel: poolSize, strides: strides, dilation: [1, 1], padding: padding)
        return [h, w, s[2]]
    }

    public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor {
        let x = inputs[0]
        guard x.rank == 4 else { throw LayerError(name, "expects NHWC input, got \(Shape.describe(x.shape))") }
        let h = AxisGeometry(input: x.shape[1], kernel: poolSize[0], stride: strides[0], padding: padding)
        let w = AxisGeometry(input: x.shape[2], kernel: poolSize[1], stride: strides[1], padding: padding)
        guard h.output > 0, w.output > 0 else { throw LayerError(name, "input \(Shape.describe(x.shape)) is smaller than the pool window") }
        var out = Tensor(uninitializedShape: [x.shape[0], h.output, w.output, x.shape[3]])
        out.withUnsafeMutableBufferPointer { o in
            x.withUnsafeBufferPointer { xi in
                PoolingKernels.pool2dForward(kind, batch: x.shape[0], channels: x.shape[3], h: h, w: w,
                                             input: xi.baseAddress!, output: o.baseAddress!)
            }
        }
        return out
    }
}

/// Keras `GlobalAveragePooling2D` / `GlobalMaxPooling2D`: `[N, H, W, C]` → `[N, C]` (or `[N, 1, 1, C]` with `keepdims`).
public final class GlobalPooling2D: Layer {
    public let name: String
    public let kind: PoolKind
    public let keepDims: Bool
    public var kerasClassName: String { kind == .max ? "GlobalMaxPooling2D" : "GlobalAveragePooling2D" }
    public var variables: [(key: String, variable: Variable)] { [] }

    public init(name: String, kind: PoolKind, keepDims: Bool = false) {
        self.name = name
        self.kind = kind
        self.keepDims = keepDims
    }

    public func build(inputShapes: [[Int]], rng: inout SplitMix64) throws -> [Int] {
        try requireInputs(inputShapes, count: 1)
        let s = inputShapes[0]
        try requireRank(s, 3)
        return keepDims ? [1, 1, s[2]] : [s[2]]
    }

    public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor {
        let x = inputs[0]
        guard x.rank == 4 else { throw LayerError(name, "expects NHWC input, got \(Shape.describe(x.shape))") }
        let (N, C) = (x.shape[0], x.shape[3])
        var out = Tensor(uninitializedShape: keepDims ? [N, 1, 1, C] : [N, C])
        out.withUnsafeMutableBufferPointer { o in
            x.withUnsafeBufferPointer { xi in
                PoolingKernels.globalPoolForward(kind, batch: N, spatial: x.shape[1] * x.shape[2], channels: C,
                                                 input: xi.baseAddress!, output: o.baseAddress!)
            }
        }
        return out
    }
}

// MARK: - training

extension Pooling2D {
    public func backward(_ inputs: [Tensor], output: Tensor, cache: Any?, gradOutput: Tensor,
                         needsInputGradients: [Bool], preActivation: Bool) throws -> [Tensor?] {
        let x = inputs[0]
        let h = AxisGeometry(input: x.shape[1], kernel: poolSize[0], stride: strides[0], padding: padding)
        let w = AxisGeometry(input: x.shape[2], kernel: poolSize[1], stride: strides[1], padding: padding)
        var dx = Tensor(uninitializedShape: x.shape)
        dx.withUnsafeMutableBufferPointer { d in
            x.withUnsafeBufferPointer { xi in
                gradOutput.withUnsafeBufferPointer { g in
                    PoolingKernels.pool2dBackward(kind, batch: x.shape[0], channels: x.shape[3], h: h, w: w,
                                                  input: xi.baseAddress!, gradOutput: g.baseAddress!, gradInput: d.baseAddress!)
                }
            }
        }
        return [dx]
    }
}

extension GlobalPooling2D {
    public func backward(_ inputs: [Tensor], output: Tensor, cache: Any?, gradOutput: Tensor,
                         needsInputGradients: [Bool], preActivation: Bool) throws -> [Tensor?] {
        let x = inputs[0]
        var dx = Tensor(uninitializedShape: x.shape)
        dx.withUnsafeMutableBufferPointer { d in
            x.withUnsafeBufferPointer { xi in
                gradOutput.withUnsafeBufferPointer { g in
                    PoolingKernels.globalPoolBackward(kind, batch: x.shape[0], spatial: x.shape[1] * x.shape[2], channels: x.shape[3],
                                                      input: xi.baseAddress!, gradOutput: g.baseAddress!, gradInput: d.baseAddress!)
                }
            }
        }
        return [dx]
    }
}
