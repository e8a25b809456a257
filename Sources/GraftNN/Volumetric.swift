import GraftTensor

// Keras's 3-D layers (`[N, D, H, W, C]`: video clips, volumes) built from the 2-D kernels: a 3-D convolution is a
// sum over the kernel's depth of 2-D convolutions of depth slices (oneDNN or im2col, forward and backward), and 3-D
// pooling is 2-D pooling of each slice followed by pooling across slices.

/// Keras `Conv3D`: kernel `[kD, kH, kW, in, filters]`, bias `[filters]`.
public final class Conv3D: LinearThenActivation {
    public let name: String
    public let filters: Int
    public let kernelSize: [Int], strides: [Int], dilation: [Int]
    public let padding: Padding
    public let useBias: Bool
    public let activation: ActivationKind
    public var kerasClassName: String { "Conv3D" }
    public private(set) var kernel = Variable(Tensor(shape: [0]))
    public private(set) var bias: Variable?
    private var inChannels = 0

    public init(name: String, filters: Int, kernelSize: [Int], strides: [Int] = [1, 1, 1], padding: Padding = .valid,
                dilation: [Int] = [1, 1, 1], useBias: Bool = true, activation: ActivationKind = .linear) {
        self.name = name
        self.filters = filters
        (self.kernelSize, self.strides, self.dilation, self.padding) = (kernelSize, strides, dilation, padding)
        self.useBias = useBias
        self.activation = activation
    }

    public var variables: [(key: String, variable: Variable)] {
        [("kernel", kernel)] + (bias.map { [("bias", $0)] } ?? [])
    }

    public func build(inputShapes: [[Int]], rng: inout SplitMix64) throws -> [Int] {
        try requireInputs(inputShapes, count: 1)
        let s = inputShapes[0]
        try requireRank(s, 4)
        for (what, v) in [("kernel size", kernelSize), ("strides", strides), ("dilation rate", dilation)] {
            guard v.count == 3, v.allSatisfy({ (1...65_536).contains($0) }) else {
                throw LayerError(name, "\(what) \(v) must be three whole numbers from 1 to 65536")
            }
        }
        guard padding != .causal else { throw LayerError(name, "padding \"causal\" is not supported (valid or same)") }
        guard let c = s.last, c > 0, filters > 0 else { throw LayerError(name, "needs a known channel count and filters, got \(Shape.describe([-1] + s))") }
        inChannels = c
        let shape = kernelSize + [c, filters]
        try requireAllocatable([shape] + (useBias ? [[filters]] : []))
        kernel = Variable(Initializer.glorotUniform(shape, rng: &rng))
        bias = useBias ? Variable(Tensor(shape: [filters])) : nil
        let out = (0..<3).map { i -> Int in
            s[i] < 0 ? -1 : AxisGeometry(input: s[i], kernel: kernelSize[i], stride: strides[i], dilation: dilation[i], padding: padding).output
        }
        guard out.allSatisfy({ $0 != 0 }) else { throw LayerError(name, "input \(Shape.describe([-1] + s)) is smaller than the \(kernelSize) kernel") }
        return out + [filters]
    }

    /// The depth axis and the 2-D convolution of one slice pair over the whole batch of output depths.
    func geometry(_ x: Tensor) throws -> (depth: AxisGeometry, plane: ConvGeometry) {
        guard x.rank == 5, x.shape[4] == inChannels else {
            throw LayerError(name, "expects [batch, depth, height, width, \(inChannels)] input, got \(Shape.describe(x.shape))")
        }
        let d = AxisGeometry(input: x.shape[1], kernel: kernelSize[0], stride: strides[0], dilation: dilation[0], padding: padding)
        let g = ConvGeometry(input: [x.shape[0] * max(d.output, 0), x.shape[2], x.shape[3], inChannels], outChannels: filters,
                             kernel: Array(kernelSize[1...]), strides: Array(strides[1...]), dilation: Array(dilation[1...]), padding: padding)
        guard d.output > 0, g.h.output > 0, g.w.output > 0 else { throw LayerError(name, "input \(Shape.describe(x.shape)) is smaller than the kernel") }
        return (d, g)
    }

    /// The input slice that kernel depth `z` meets at each output depth: `[N·outD, H, W, C]`, zeros in the padding.
    static func slices(_ x: Tensor, depth d: AxisGeometry, at z: Int) -> Tensor {
        let (N, D) = (x.shape[0], x.shape[1]), plane = x.count / max(N * D, 1)
        var out = Tensor(shape: [N * d.output] + Array(x.shape[2...]), repeating: 0)
        out.withUnsafeMutableBufferPointer { o in
            x.withUnsafeBufferPointer { p in
                for n in 0..<N {
                    for od in 0..<d.output {
                        let source = od * d.stride + z * d.dilation - d.padBefore
                        guard source >= 0 && source < D else { continue }
                        (o.baseAddress! + (n * d.output + od) * plane).update(from: p.baseAddress! + (n * D + source) * plane, count: plane)
                    }
                }
            }
        }
        return out
    }

    /// Adds `slices`' gradient back into the input's (the adjoint of `slices`).
    static func addSlices(_ grad: Tensor, into dx: inout Tensor, depth d: AxisGeometry, at z: Int) {
        let (N, D) = (dx.shape[0], dx.shape[1]), plane = dx.count / max(N * D, 1)
        dx.withUnsafeMutableBufferPointer { o in
            grad.withUnsafeBufferPointer { g in
                for n in 0..<N {
                    for od in 0..<d.output {
                        let target = od * d.stride + z * d.dilation - d.padBefore
                        guard target >= 0 && target < D else { continue }
                        let dst = o.baseAddress! + (n * D + target) * plane, src = g.baseAddress! + (n * d.output + od) * plane
                        for i in 0..<plane { dst[i] += src[i] }
                    }
                }
            }
        }
    }

    /// Kernel depth `z`: `[kH, kW, in, filters]`.
    func kernelSlice(_ z: Int) -> Tensor {
        let size = kernel.value.count / kernelSize[0]
        return Tensor(shape: Array(kernelSize[1...]) + [inChannels, filters], values: Array(kernel.value.scalars[(z * size)..<((z + 1) * size)]))
    }

    /// The 3-D convolution plus bias, before the activation.
    public func linearForward(_ x: Tensor) throws -> Tensor {
        let (d, g) = try geometry(x)
        var sum: Tensor?
        for z in 0..<kernelSize[0] {
            let part = Self.slices(x, depth: d, at: z).convolved(g, kernel: kernelSlice(z), bias: z == 0 ? bias?.value : nil)
            sum = try sum.map { try $0.elementwise(.add, part) } ?? part
        }
        return sum!.reshaped([x.shape[0], d.output, g.h.output, g.w.output, filters])
    }

    public func backward(_ inputs: [Tensor], output: Tensor, cache: Any?, gradOutput: Tensor,
                         needsInputGradients: [Bool], preActivation: Bool) throws -> [Tensor?] {
        let x = inputs[0]
        let (d, g) = try geometry(x)
        let dz = preActivationGradient(activation, cache: cache, output: output, gradOutput: gradOutput, preActivation: preActivation)
            .reshaped(g.outputShape)
        var dx: Tensor? = needsInputGradients[0] ? Tensor(shape: x.shape, repeating: 0) : nil
        let size = kernel.value.count / kernelSize[0]
        var gk = kernel.takeTrainableGradient(), gb = bias?.takeTrainableGradient()
        defer {
            kernel.restoreGradient(gk)
            bias?.restoreGradient(gb)
        }
        for z in 0..<kernelSize[0] {
            var gkz: Tensor? = gk == nil ? nil : Tensor(shape: Array(kernelSize[1...]) + [inChannels, filters], repeating: 0)
            var none: Tensor? = nil
            let dslices = Tensor.convolutionBackward(g, input: Self.slices(x, depth: d, at: z), kernel: kernelSlice(z), gradOutput: dz,
                                                     needInput: dx != nil, kernelGradient: &gkz, biasGradient: &none)
            if let gkz {
                gk?.withUnsafeMutableBufferPointer { p in gkz.withUnsafeBufferPointer { q in for i in 0..<size { p[z * size + i] += q[i] } } }
            }
            if let dslices, dx != nil { Self.addSlices(dslices, into: &dx!, depth: d, at: z) }
        }
        if gb != nil {
            let sum = dz.channelSums()
            gb!.withUnsafeMutableBufferPointer { p in for f in 0..<filters { p[f] += sum[f] } }
        }
        return [dx]
    }
}

/// Keras `MaxPooling3D` / `AveragePooling3D`: 2-D pooling of each depth slice, then pooling across slices (average
/// pooling's count is the product of the two, as TensorFlow's is when padding is left out).
public final class Pooling3D: Layer {
    public let name: String
    public let kind: PoolKind
    public let poolSize: [Int], strides: [Int]
    public let padding: Padding
    public var kerasClassName: String { kind == .max ? "MaxPooling3D" : "AveragePooling3D" }
    public var variables: [(key: String, variable: Variable)] { [] }
    private let planes: Pooling2D, across: Pooling2D

    public init(name: String, kind: PoolKind, poolSize: [Int], strides: [Int]? = nil, padding: Padding = .valid) {
        self.name = name
        self.kind = kind
        self.poolSize = poolSize
        self.strides = strides ?? poolSize
        self.padding = padding
        planes = Pooling2D(name: name, kind: kind, poolSize: Array(poolSize.dropFirst()), strides: Array(self.strides.dropFirst()), padding: padding)
        across = Pooling2D(name: name, kind: kind, poolSize: [poolSize.first ?? 1, 1], strides: [self.strides.first ?? 1, 1], padding: padding)
    }

    public func build(inputShapes: [[Int]], rng: inout SplitMix64) throws -> [Int] {
        try requireInputs(inputShapes, count: 1)
        let s = inputShapes[0]
        try requireRank(s, 4)
        guard poolSize.count == 3, strides.count == 3 else { throw LayerError(name, "pool size \(poolSize) and strides \(strides) need three numbers each") }
        let hw = try planes.build(inputShapes: [Array(s[1...])], rng: &rng)
        let d = try across.build(inputShapes: [[s[0], hw[0] < 0 || hw[1] < 0 ? -1 : hw[0] * hw[1], s[3]]], rng: &rng)
        return [d[0], hw[0], hw[1], s[3]]
    }

    func check(_ x: Tensor) throws {
        guard x.rank == 5 else { throw LayerError(name, "expects [batch, depth, height, width, channels], got \(Shape.describe(x.shape))") }
    }

    /// The slices pooled, as `[N, D, oH·oW, C]`, and the output.
    func run(_ x: Tensor) throws -> (mid: Tensor, y: Tensor) {
        try check(x)
        let (N, D, C) = (x.shape[0], x.shape[1], x.shape[4])
        let mid = try planes.forward([x.reshaped([N * D] + Array(x.shape[2...]))], training: false)
        let (oH, oW) = (mid.shape[1], mid.shape[2])
        let m = mid.reshaped([N, D, oH * oW, C])
        let y = try across.forward([m], training: false)
        return (m, y.reshaped([N, y.shape[1], oH, oW, C]))
    }

    public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor { try run(inputs[0]).y }

    public func backward(_ inputs: [Tensor], output: Tensor, cache: Any?, gradOutput: Tensor,
                         needsInputGradients: [Bool], preActivation: Bool) throws -> [Tensor?] {
        let x = inputs[0]
        let (mid, y) = try run(x)
        let (N, D, C) = (x.shape[0], x.shape[1], x.shape[4])
        let dy = gradOutput.reshaped([N, y.shape[1], mid.shape[2], C])
        let dmid = try across.backward([mid], output: y.reshaped(dy.shape), cache: nil, gradOutput: dy,
                                       needsInputGradients: [true], preActivation: false)[0]!
        let slices = x.reshaped([N * D] + Array(x.shape[2...]))
        let dslices = try planes.backward([slices], output: Tensor(shape: [0]), cache: nil,
                                          gradOutput: dmid.reshaped([N * D, y.shape[2], y.shape[3], C]),
                                          needsInputGradients: [true], preActivation: false)[0]!
        return [dslices.reshaped(x.shape)]
    }
}

/// Keras `GlobalAveragePooling3D` / `GlobalMaxPooling3D`: `[N, D, H, W, C]` → `[N, C]` (or `[N, 1, 1, 1, C]`).
public final class GlobalPooling3D: Layer {
    public let name: String
    public let kind: PoolKind
    public let keepDims: Bool
    public var kerasClassName: String { kind == .max ? "GlobalMaxPooling3D" : "GlobalAveragePooling3D" }
    public var variables: [(key: String, variable: Variable)] { [] }
    private let inner: GlobalPooling2D

    public init(name: String, kind: PoolKind, keepDims: Bool = false) {
        self.name = name
        self.kind = kind
        self.keepDims = keepDims
        inner = GlobalPooling2D(name: name, kind: kind)
    }

    public func build(inputShapes: [[Int]], rng: inout SplitMix64) throws -> [Int] {
        try requireInputs(inputShapes, count: 1)
        try requireRank(inputShapes[0], 4)
        let c = inputShapes[0][3]
        return keepDims ? [1, 1, 1, c] : [c]
    }

    /// `[N, D·H, W, C]`: the same values as one 2-D image per sample.
    func flat(_ x: Tensor) throws -> Tensor {
        guard x.rank == 5 else { throw LayerError(name, "expects [batch, depth, height, width, channels], got \(Shape.describe(x.shape))") }
        return x.reshaped([x.shape[0], x.shape[1] * x.shape[2], x.shape[3], x.shape[4]])
    }

    public func forward(_ inputs: [Tensor], training: Bool) throws -> Tensor {
        let y = try inner.forward([try flat(inputs[0])], training: false)
        return keepDims ? y.reshaped([y.shape[0], 1, 1, 1, y.shape[1]]) : y
    }

    public func backward(_ inputs: [Tensor], output: Tensor, cache: Any?, gradOutput: Tensor,
                         needsInputGradients: [Bool], preActivation: Bool) throws -> [Tensor?] {
        let x = inputs[0]
        let dy = gradOutput.reshaped([gradOutput.shape[0], gradOutput.shape.last ?? 1])
        let flatOutput = output.count == dy.count ? output.reshaped(dy.shape) : output
        return try inner.backward([try flat(x)], output: flatOutput, cache: nil, gradOutput: dy, needsInputGradients: needsInputGradients,
                                  preActivation: false).map { $0?.reshaped(x.shape) }
    }
}
