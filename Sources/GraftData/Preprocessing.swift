import Foundation
import GraftTensor

/// How raw pixels (0…255) become model inputs; the modes match `keras.applications` `preprocess_input`.
public enum PreprocessMode: Sendable, Equatable, Codable, CustomStringConvertible {
    /// `x · scale` (`1/255` maps to [0, 1]).
    case scale(Float)
    /// `caffe`: RGB → BGR, then subtract the ImageNet mean (103.939, 116.779, 123.68), no scaling.
    case caffe
    /// `tf`: scale to [−1, 1].
    case tf
    /// `torch`: scale to [0, 1], subtract (0.485, 0.456, 0.406), divide by (0.229, 0.224, 0.225).
    case torch
    /// Explicit per-channel mean and standard deviation on the 0…255 scale.
    case meanStd(mean: [Float], std: [Float])
    /// Pixels as they are.
    case none

    public var description: String {
        switch self {
        case .scale(let s): return s == 1 / 255 ? "1/255" : "scale:\(s)"   // as typed, and as `init(parsing:)` reads it
        case .caffe: return "caffe"
        case .tf: return "tf"
        case .torch: return "torch"
        case .meanStd(let m, let s): return "mean:\(m),std:\(s)"
        case .none: return "none"
        }
    }

    /// The `preprocess_input` mode of a keras.applications architecture, recognised by model name
    /// (`vgg16`, `resnet50`, `mobilenetv2_1.00_224`, …); `1/255` for anything else.
    public static func `default`(forModel name: String) -> PreprocessMode {
        let n = name.lowercased()
        if n.hasPrefix("vgg") || n == "resnet50" || n.hasPrefix("resnet101") && !n.hasSuffix("v2") || n.hasPrefix("resnet152") && !n.hasSuffix("v2") {
            return .caffe
        }
        if n.hasPrefix("mobilenet") || n.hasPrefix("inception") || n.hasPrefix("xception") || n.hasPrefix("nasnet") || n.hasSuffix("v2") && n.hasPrefix("resnet") {
            return .tf
        }
        if n.hasPrefix("densenet") { return .torch }
        if n.hasPrefix("efficientnet") || n.hasPrefix("convnext") || n.hasPrefix("regnet") { return .none }   // rescaling is inside the model
        return .scale(1.0 / 255)
    }

    /// Parses `caffe`, `tf`, `torch`, `none`, `scale:0.00392`, `1/255`.
    public init(parsing text: String) throws {
        switch text {
        case "caffe": self = .caffe
        case "tf": self = .tf
        case "torch": self = .torch
        case "none", "raw": self = .none
        case "1/255", "unit": self = .scale(1.0 / 255)
        default:
            if text.hasPrefix("scale:"), let v = Float(text.dropFirst(6)) { self = .scale(v); return }
            throw DataError("preprocess", "unknown mode \"\(text)\" (caffe, tf, torch, 1/255, scale:S, none)")
        }
    }

    /// Applies the mode in place to `count` pixels of `channels` interleaved channels.
    public func apply(_ p: UnsafeMutablePointer<Float>, count: Int, channels: Int) {
        switch self {
        case .none: return
        case .scale(let s): for i in 0..<count { p[i] *= s }
        case .tf: for i in 0..<count { p[i] = p[i] / 127.5 - 1 }
        case .caffe:
            let mean: [Float] = [103.939, 116.779, 123.68]
            guard channels == 3 else { for i in 0..<count { p[i] -= mean[0] }; return }
            var i = 0
            while i + 2 < count {
                let r = p[i], b = p[i + 2]
                p[i] = b - mean[0]
                p[i + 1] -= mean[1]
                p[i + 2] = r - mean[2]
                i += 3
            }
        case .torch:
            let mean: [Float] = [0.485, 0.456, 0.406], std: [Float] = [0.229, 0.224, 0.225]
            for i in 0..<count { let c = channels == 3 ? i % 3 : 0; p[i] = (p[i] / 255 - mean[c]) / std[c] }
        case .meanStd(let mean, let std):
            for i in 0..<count {
                let c = i % max(channels, 1)
                p[i] = (p[i] - mean[min(c, mean.count - 1)]) / std[min(c, std.count - 1)]
            }
        }
    }
}

/// Turns dataset images into model-ready batches: size fitting, channel conversion, augmentation, preprocessing.
public struct Preprocessor: Sendable {
    public typealias Fit = ImageFit

    public var targetShape: [Int]
    public var fit: ImageFit
    public var mode: PreprocessMode
    /// Batches are `[n, C, H, W]` (for a model that reads channels-first images) instead of `[n, H, W, C]`;
    /// `targetShape` stays `[H, W, C]`.
    public var channelsFirst: Bool

    public init(targetShape: [Int], fit: ImageFit = .pad, mode: PreprocessMode, channelsFirst: Bool = false) {
        self.targetShape = targetShape
        self.fit = fit
        self.mode = mode
        self.channelsFirst = channelsFirst
    }

    /// The model input size to fit images to: the model's own `[H, W, C]`, with unknown sizes (-1) taken from
    /// `size` (`[H, W]`) or else from the data's fixed image size. Throws naming `model` when neither says.
    public static func targetShape(modelInput: [Int], size: [Int]?, data: [Int]?, model: String) throws -> [Int] {
        var target = modelInput
        for i in 0..<min(2, target.count) where target[i] < 0 {
            guard let s = size.flatMap({ i < $0.count ? $0[i] : nil }) ?? data?[i] else {
                throw DataError(model, "the model accepts any image size and the data has none fixed; give an input size H,W")
            }
            target[i] = s
        }
        return target
    }

    /// A prepared batch: inputs `[n, H, W, C]` (`[n, C, H, W]` with `channelsFirst`), integer labels, and soft targets when mixup/cutmix mixed them.
    public struct Batch {
        public var x: Tensor
        public var labels: [Int]
        public var targets: Tensor?
    }

    /// The batch for the samples at `indices`: decoded and fitted in parallel, augmented on the 0…255 scale (when
    /// an augmenter is given), then preprocessed.
    public func batch(_ data: any ImageSource, _ indices: [Int], augmenter: Augmenter? = nil,
                      rng: inout SeededGenerator) throws -> Batch {
        let (H, W, C) = (targetShape[0], targetShape[1], targetShape[2])
        let size = H * W * C
        var out = Tensor(uninitializedShape: [indices.count, H, W, C])
        let failure = FirstError()
        // Per-image seeds drawn up front keep augmentation deterministic however the work is split.
        let seeds = indices.map { _ in rng.next() }
        out.withUnsafeMutableBufferPointer { o in
            let base = o.baseAddress!
            Parallel.forEach(indices.count, grain: 4) { range in
                for k in range {
                    let dst = base + k * size
                    do {
                        try data.fill(indices[k], target: targetShape, fit: fit, into: dst)
                    } catch {
                        failure.record(error)
                        dst.update(repeating: 0, count: size)
                    }
                    if let augmenter {
                        var r = SeededGenerator(seed: seeds[k])
                        augmenter.augmentImage(dst, H, W, C, rng: &r)
                    }
                }
            }
        }
        if let error = failure.error { throw error }
        var batch = Batch(x: out, labels: indices.map { data.labels[$0] }, targets: nil)
        if let augmenter { augmenter.augmentBatch(&batch, classes: data.classNames.count, rng: &rng) }
        batch.x.withUnsafeMutableBufferPointer { o in
            let base = o.baseAddress!
            Parallel.forEach(indices.count, grain: 16) { range in
                for k in range { mode.apply(base + k * size, count: size, channels: C) }
            }
        }
        if channelsFirst { batch.x = batch.x.movingAxis(3, to: 1) }
        return batch
    }

    /// Convenience without augmentation.
    public func batch(_ data: any ImageSource, _ indices: [Int]) throws -> (Tensor, [Int]) {
        var rng = SeededGenerator(seed: 0)
        let b = try batch(data, indices, augmenter: nil, rng: &rng)
        return (b.x, b.labels)
    }
}

/// Keeps the first error thrown by parallel workers.
final class FirstError: @unchecked Sendable {
    private let lock = NSLock()
    private(set) var error: Error?
    func record(_ e: Error) {
        lock.lock()
        if error == nil { error = e }
        lock.unlock()
    }
}

/// Fitting one decoded image into a model-sized slot.
public enum ImagePlacement {
    /// Copies an image of shape `s` into a `target` slot: channel conversion (gray ↔ RGB via ITU-R 601 luma,
    /// alpha dropped), then the fit.
    public static func place(_ image: UnsafePointer<Float>, _ s: [Int], into dst: UnsafeMutablePointer<Float>,
                             _ target: [Int], fit: ImageFit) {
        let (H, W, C) = (target[0], target[1], target[2])
        let (sh, sw, sc) = (s[0], s[1], s[2])
        @inline(__always) func pixel(_ y: Int, _ x: Int, _ c: Int) -> Float {
            let base = image + (y * sw + x) * sc
            if sc == C { return base[c] }
            if sc <= 2 { return base[0] }                                              // gray(+alpha) → RGB
            if C == 1 { return base[0] * 0.299 + base[1] * 0.587 + base[2] * 0.114 }     // RGB(A) → gray
            return base[min(c, 2)]                                                      // RGBA → RGB
        }
        // The source window that maps onto the target (the whole image, or an aspect-ratio crop or pad).
        var y0 = 0.0, x0 = 0.0, hh = Double(sh), ww = Double(sw)
        switch fit {
        case .pad:
            dst.update(repeating: 0, count: H * W * C)
            let oy = (H - sh) / 2, ox = (W - sw) / 2
            for y in 0..<sh where y + oy >= 0 && y + oy < H {
                for x in 0..<sw where x + ox >= 0 && x + ox < W {
                    for c in 0..<C { dst[((y + oy) * W + x + ox) * C + c] = pixel(y, x, c) }
                }
            }
            return
        case .nearest:
            for y in 0..<H {
                let sy = min(sh - 1, y * sh / H)
                for x in 0..<W {
                    let sx = min(sw - 1, x * sw / W)
                    for c in 0..<C { dst[(y * W + x) * C + c] = pixel(sy, sx, c) }
                }
            }
            return
        case .resize:
            break
        case .crop:
            let targetAspect = Double(W) / Double(H)
            if Double(sw) / Double(sh) > targetAspect { ww = Double(sh) * targetAspect; x0 = (Double(sw) - ww) / 2 }
            else { hh = Double(sw) / targetAspect; y0 = (Double(sh) - hh) / 2 }
        case .padAspect:
            let targetAspect = Double(W) / Double(H)
            if Double(sw) / Double(sh) > targetAspect { hh = Double(sw) / targetAspect; y0 = (Double(sh) - hh) / 2 }
            else { ww = Double(sh) * targetAspect; x0 = (Double(sw) - ww) / 2 }
        }
        // Bilinear with half-pixel centres over the window; outside the image (pad-aspect) reads 0.
        for y in 0..<H {
            let fy = y0 + max(0, (Double(y) + 0.5) * hh / Double(H) - 0.5)
            let iy0 = Int(fy.rounded(.down)), dy = Float(fy - Double(iy0))
            for x in 0..<W {
                let fx = x0 + max(0, (Double(x) + 0.5) * ww / Double(W) - 0.5)
                let ix0 = Int(fx.rounded(.down)), dx = Float(fx - Double(ix0))
                for c in 0..<C {
                    func at(_ yy: Int, _ xx: Int) -> Float {
                        if fit == .padAspect && (yy < 0 || yy >= sh || xx < 0 || xx >= sw) { return 0 }
                        return pixel(min(max(yy, 0), sh - 1), min(max(xx, 0), sw - 1), c)
                    }
                    let top = at(iy0, ix0) * (1 - dx) + at(iy0, ix0 + 1) * dx
                    let bottom = at(iy0 + 1, ix0) * (1 - dx) + at(iy0 + 1, ix0 + 1) * dx
                    dst[(y * W + x) * C + c] = top * (1 - dy) + bottom * dy
                }
            }
        }
    }
}

/// Batch index lists for one epoch: shuffled with a seed, or in order.
public func epochBatches(count: Int, batchSize: Int, shuffle: Bool, seed: UInt64) -> [[Int]] {
    var order = Array(0..<count)
    if shuffle {
        var rng = SeededGenerator(seed: seed)
        order.shuffle(using: &rng)
    }
    return stride(from: 0, to: count, by: batchSize).map { Array(order[$0..<min($0 + batchSize, count)]) }
}
