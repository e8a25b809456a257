import GraftTensor

/// Keras `ZeroPadding2D` (positive amounts) and `Cropping2D` (stored as negative amounts).
public final class Padding2D: Layer {
    public let name: String
    /// ((top, bottom), (left, right)) as Keras writes them; always non-negative.
    public let amounts: [[Int]]
    public let isCropping: Bool
    public var kerasClassName: String { isCropping ? "Cropping2D" : "ZeroPadding2D" }
    public var variables: [(key: String, variable: Variable)] { [] }

    public init(name: String, amounts: [[Int]], cropping: Bool) {
        self.name = name
        self.amounts = amounts
        self.isCropping = cropping
    }

    var sign: Int { isCropping ? -1 : 1 }

    public func build(inputShapes: [[Int]], rng: inout SplitMix64) throws -> [Int] {
        try requireInputs(inputShapes, count: 1)
        let s = inputShapes[0]
        try requireRank(s, 3)
        guard amounts.count == 2, amounts.allSatisfy({ $0.count == 2 && $0.allSatisfy { $0 >= 0 && $0 <= 65_536 } }) else {
            throw LayerError(name, "amounts \(amounts) must be ((top, bottom), (left, right)) from 0 to 65536")
        }
        let h = s[0] < 0 ? -1 : s[0] + sign * (amounts[0][0] + amounts[0][1])
        let w = s[1] < 0 ? -1 : s[1] + sign * (amounts[1][0] + amounts[1][1])
        if (s[0] >= 0 && h <= 0) || (s[1] >= 0 && w <= 0) {
            throw LayerError(name, "cropping \(amounts) leaves nothing of \(Shape.describe([-1] + s))")
        }
        return [h, w, s[2]]
    }

    public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor {
        do {
            return try inputs[0].padded2D(top: sign * amounts[0][0], bottom: sign * amounts[0][1],
                                          left: sign * amounts[1][0], right: sign * amounts[1][1])
        } catch let e as ShapeError {
            throw LayerError(name, e.description)
        }
    }
}

/// Keras `UpSampling2D` with `nearest` or `bilinear` interpolation.
public final class UpSampling2D: Layer {
    public let name: String
    public let size: [Int]
    public let bilinear: Bool
    public var kerasClassName: String { "UpSampling2D" }
    public var variables: [(key: String, variable: Variable)] { [] }

    public init(name: String, size: [Int], bilinear: Bool = false) {
        self.name = name
        self.size = size
        self.bilinear = bilinear
    }

    public func build(inputShapes: [[Int]], rng: inout SplitMix64) throws -> [Int] {
        try requireInputs(inputShapes, count: 1)
        let s = inputShapes[0]
        try requireRank(s, 3)
        guard size.count == 2, size.allSatisfy({ $0 >= 1 && $0 <= 65_536 }) else {
            throw LayerError(name, "size \(size) must be two whole numbers from 1 to 65536")
        }
        return [s[0] < 0 ? -1 : s[0] * size[0], s[1] < 0 ? -1 : s[1] * size[1], s[2]]
    }

    public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor {
        do {
            return bilinear ? try inputs[0].upsampledBilinear(size[0], size[1]) : try inputs[0].upsampledNearest(size[0], size[1])
        } catch let e as ShapeError {
            throw LayerError(name, e.description)
        }
    }
}

// MARK: - training

extension Padding2D {
    public func backward(_ inputs: [Tensor], output: Tensor, cache: Any?, gradOutput: Tensor,
                         needsInputGradients: [Bool], preActivation: Bool) throws -> [Tensor?] {
        // The adjoint of padding is cropping, and of cropping, zero-padding.
        let s = -sign
        return [try gradOutput.padded2D(top: s * amounts[0][0], bottom: s * amounts[0][1],
                                        left: s * amounts[1][0], right: s * amounts[1][1])]
    }
}

extension UpSampling2D {
    public func backward(_ inputs: [Tensor], output: Tensor, cache: Any?, gradOutput: Tensor,
                         needsInputGradients: [Bool], preActivation: Bool) throws -> [Tensor?] {
        [bilinear ? gradOutput.upsampleBilinearBackward(size[0], size[1]) : gradOutput.upsampleNearestBackward(size[0], size[1])]
    }
}

/// Keras `Resizing`: images resized to `height`×`width` (bilinear or nearest, as `tf.image.resize`).
public final class Resizing: Layer {
    public let name: String
    public let height: Int, width: Int
    public let bilinear: Bool
    public var kerasClassName: String { "Resizing" }
    public var variables: [(key: String, variable: Variable)] { [] }

    public init(name: String, height: Int, width: Int, bilinear: Bool = true) {
        self.name = name
        (self.height, self.width, self.bilinear) = (height, width, bilinear)
    }

    public func build(inputShapes: [[Int]], rng: inout SplitMix64) throws -> [Int] {
        try requireInputs(inputShapes, count: 1)
        try requireRank(inputShapes[0], 3)
        guard (1...65_536).contains(height), (1...65_536).contains(width) else {
            throw LayerError(name, "size \(height)×\(width) must be whole numbers from 1 to 65536")
        }
        return [height, width, inputShapes[0][2]]
    }

    public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor {
        do {
            return bilinear ? try inputs[0].resizedBilinear(height: height, width: width)
                : try inputs[0].resizedNearest(height: height, width: width)
        } catch let e as ShapeError {
            throw LayerError(name, e.description)
        }
    }

    public var backwardReadsOutput: Bool { false }

    public func backward(_ inputs: [Tensor], output: Tensor, cache: Any?, gradOutput: Tensor,
                         needsInputGradients: [Bool], preActivation: Bool) throws -> [Tensor?] {
        let (h, w) = (inputs[0].shape[1], inputs[0].shape[2])
        return [bilinear ? gradOutput.resizeBilinearBackward(height: h, width: w) : gradOutput.resizeNearestBackward(height: h, width: w)]
    }
}

/// Keras `CenterCrop`: the central `height`×`width` window (offsets `(H − height) / 2` rounded down). An image
/// smaller than the window is refused (Keras resizes it first).
public final class CenterCrop: Layer {
    public let name: String
    public let height: Int, width: Int
    public var kerasClassName: String { "CenterCrop" }
    public var variables: [(key: String, variable: Variable)] { [] }

    public init(name: String, height: Int, width: Int) {
        self.name = name
        (self.height, self.width) = (height, width)
    }

    public func build(inputShapes: [[Int]], rng: inout SplitMix64) throws -> [Int] {
        try requireInputs(inputShapes, count: 1)
        let s = inputShapes[0]
        try requireRank(s, 3)
        guard (1...65_536).contains(height), (1...65_536).contains(width) else {
            throw LayerError(name, "size \(height)×\(width) must be whole numbers from 1 to 65536")
        }
        if (s[0] >= 0 && s[0] < height) || (s[1] >= 0 && s[1] < width) { throw smaller(s) }
        return [height, width, s[2]]
    }

    func smaller(_ s: [Int]) -> LayerError {
        LayerError(name, "input \(Shape.describe([-1] + s)) is smaller than the \(height)×\(width) crop (Graft crops only; resize first)")
    }

    /// `[top, bottom, left, right]` amounts cut from an `h`×`w` image.
    func amounts(_ h: Int, _ w: Int) -> [Int] {
        let top = (h - height) / 2, left = (w - width) / 2
        return [top, h - height - top, left, w - width - left]
    }

    public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor {
        let x = inputs[0]
        guard x.rank == 4 else { throw LayerError(name, "expects NHWC input, got \(Shape.describe(x.shape))") }
        guard x.shape[1] >= height, x.shape[2] >= width else { throw smaller(Array(x.shape.dropFirst())) }
        let a = amounts(x.shape[1], x.shape[2])
        return try x.padded2D(top: -a[0], bottom: -a[1], left: -a[2], right: -a[3])
    }

    public var backwardReadsOutput: Bool { false }

    public func backward(_ inputs: [Tensor], output: Tensor, cache: Any?, gradOutput: Tensor,
                         needsInputGradients: [Bool], preActivation: Bool) throws -> [Tensor?] {
        let a = amounts(inputs[0].shape[1], inputs[0].shape[2])
        return [try gradOutput.padded2D(top: a[0], bottom: a[1], left: a[2], right: a[3])]
    }
}

/// Keras `Permute`: the non-batch axes reordered (`dims` counts them from 1, as Keras does).
public final class Permute: Layer {
    public let name: String
    public let dims: [Int]
    public var kerasClassName: String { "Permute" }
    public var variables: [(key: String, variable: Variable)] { [] }

    public init(name: String, dims: [Int]) {
        self.name = name
        self.dims = dims
    }

    public func build(inputShapes: [[Int]], rng: inout SplitMix64) throws -> [Int] {
        try requireInputs(inputShapes, count: 1)
        let s = inputShapes[0]
        guard dims.sorted() == Array(1...max(s.count, 1)), dims.count == s.count else {
            throw LayerError(name, "dims \(dims) are not a permutation of 1…\(s.count) for input \(Shape.describe([-1] + s))")
        }
        return dims.map { s[$0 - 1] }
    }

    var axes: [Int] { [0] + dims }

    public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor {
        guard inputs[0].rank == dims.count + 1 else { throw LayerError(name, "expects rank \(dims.count + 1), got \(Shape.describe(inputs[0].shape))") }
        return inputs[0].permuted(axes)
    }

    public var backwardReadsInputs: Bool { false }
    public var backwardReadsOutput: Bool { false }

    public func backward(_ inputs: [Tensor], output: Tensor, cache: Any?, gradOutput: Tensor,
                         needsInputGradients: [Bool], preActivation: Bool) throws -> [Tensor?] {
        var inverse = [Int](repeating: 0, count: axes.count)
        for (i, a) in axes.enumerated() { inverse[a] = i }
        return [gradOutput.permuted(inverse)]
    }
}

/// Keras `RepeatVector`: `[N, F]` → `[N, n, F]`, the vector repeated `n` times.
public final class RepeatVector: Layer {
    public let name: String
    public let count: Int
    public var kerasClassName: String { "RepeatVector" }
    public var variables: [(key: String, variable: Variable)] { [] }

    public init(name: String, count: Int) {
        self.name = name
        self.count = count
    }

    public func build(inputShapes: [[Int]], rng: inout SplitMix64) throws -> [Int] {
        try requireInputs(inputShapes, count: 1)
        try requireRank(inputShapes[0], 1)
        guard (1...65_536).contains(count) else { throw LayerError(name, "n \(count) must be from 1 to 65536") }
        return [count, inputShapes[0][0]]
    }

    public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor {
        let x = inputs[0]
        guard x.rank == 2 else { throw LayerError(name, "expects [batch, features], got \(Shape.describe(x.shape))") }
        let (n, f) = (x.shape[0], x.shape[1])
        var out = Tensor(uninitializedShape: [n, count, f])
        out.withUnsafeMutableBufferPointer { o in
            x.withUnsafeBufferPointer { p in
                for b in 0..<n { for t in 0..<count { (o.baseAddress! + (b * count + t) * f).update(from: p.baseAddress! + b * f, count: f) } }
            }
        }
        return out
    }

    public var backwardReadsInputs: Bool { false }
    public var backwardReadsOutput: Bool { false }

    public func backward(_ inputs: [Tensor], output: Tensor, cache: Any?, gradOutput: Tensor,
                         needsInputGradients: [Bool], preActivation: Bool) throws -> [Tensor?] {
        let (n, f) = (gradOutput.shape[0], gradOutput.shape[2])
        var dx = Tensor(shape: [n, f], repeating: 0)
        dx.withUnsafeMutableBufferPointer { d in
            gradOutput.withUnsafeBufferPointer { g in
                for b in 0..<n { for t in 0..<count { for j in 0..<f { d[b * f + j] += g[(b * count + t) * f + j] } } }
            }
        }
        return [dx]
    }
}
