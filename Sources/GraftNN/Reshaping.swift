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
