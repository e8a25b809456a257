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
        case .scale(let s): return "scale:\(s)"
        case .caffe: return "caffe"
        case .tf: return "tf"
        case .torch: return "torch"
        case .meanStd(let m, let s): return "mean:\(m),std:\(s)"
        case .none: return "none"
        }
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

/// Turns dataset images into model-ready batches: size fitting, channel conversion, preprocessing.
public struct Preprocessor: Sendable {
    /// How an image is fitted to the model's size.
    public enum Fit: String, Sendable, Codable {
        /// Centre it on a zero canvas (28×28 → 32×32 for LeNet-5); crop when larger.
        case pad
        /// Bilinear resize to the target size.
        case resize
        /// Nearest-neighbour resize.
        case nearest
    }

    public var targetShape: [Int]
    public var fit: Fit
    public var mode: PreprocessMode

    public init(targetShape: [Int], fit: Fit = .pad, mode: PreprocessMode) {
        self.targetShape = targetShape
        self.fit = fit
        self.mode = mode
    }

    /// The batch tensor `[n, H, W, C]` for the samples at `indices`, and their labels.
    public func batch(_ data: ImageDataset, _ indices: [Int]) -> (Tensor, [Int]) {
        let (H, W, C) = (targetShape[0], targetShape[1], targetShape[2])
        let size = H * W * C
        var out = Tensor(uninitializedShape: [indices.count, H, W, C])
        let src = data.imageShape
        out.withUnsafeMutableBufferPointer { o in
            data.pixels.withUnsafeBufferPointer { px in
                Parallel.forEach(indices.count, grain: 16) { range in
                    for k in range {
                        let dst = o.baseAddress! + k * size
                        let image = px.baseAddress! + indices[k] * data.imageSize
                        Preprocessor.place(image, src, into: dst, H, W, C, fit: fit)
                        mode.apply(dst, count: size, channels: C)
                    }
                }
            }
        }
        return (out, indices.map { data.labels[$0] })
    }

    /// Copies one image into a `H×W×C` slot: channel conversion (gray ↔ RGB, dropping alpha), then fitting.
    static func place(_ image: UnsafePointer<Float>, _ s: [Int], into dst: UnsafeMutablePointer<Float>,
                      _ H: Int, _ W: Int, _ C: Int, fit: Fit) {
        let (sh, sw, sc) = (s[0], s[1], s[2])
        @inline(__always) func pixel(_ y: Int, _ x: Int, _ c: Int) -> Float {
            let base = image + (y * sw + x) * sc
            if sc == C { return base[c] }
            if sc == 1 { return base[0] }                                   // gray → RGB
            if C == 1 { return (base[0] * 0.299 + base[1] * 0.587 + base[2] * 0.114) }  // RGB(A) → gray (ITU-R 601)
            return base[min(c, sc - 1)]                                     // RGBA → RGB
        }
        switch fit {
        case .pad:
            dst.update(repeating: 0, count: H * W * C)
            let oy = (H - sh) / 2, ox = (W - sw) / 2
            for y in 0..<sh where y + oy >= 0 && y + oy < H {
                for x in 0..<sw where x + ox >= 0 && x + ox < W {
                    for c in 0..<C { dst[((y + oy) * W + x + ox) * C + c] = pixel(y, x, c) }
                }
            }
        case .nearest:
            for y in 0..<H {
                let sy = min(sh - 1, y * sh / H)
                for x in 0..<W {
                    let sx = min(sw - 1, x * sw / W)
                    for c in 0..<C { dst[(y * W + x) * C + c] = pixel(sy, sx, c) }
                }
            }
        case .resize:
            for y in 0..<H {
                let fy = max(0, (Float(y) + 0.5) * Float(sh) / Float(H) - 0.5)
                let y0 = min(Int(fy), sh - 1), y1 = min(y0 + 1, sh - 1), dy = fy - Float(y0)
                for x in 0..<W {
                    let fx = max(0, (Float(x) + 0.5) * Float(sw) / Float(W) - 0.5)
                    let x0 = min(Int(fx), sw - 1), x1 = min(x0 + 1, sw - 1), dx = fx - Float(x0)
                    for c in 0..<C {
                        let top = pixel(y0, x0, c) * (1 - dx) + pixel(y0, x1, c) * dx
                        let bottom = pixel(y1, x0, c) * (1 - dx) + pixel(y1, x1, c) * dx
                        dst[(y * W + x) * C + c] = top * (1 - dy) + bottom * dy
                    }
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
