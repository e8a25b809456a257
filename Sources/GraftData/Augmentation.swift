import Foundation
import GraftTensor

/// How pixels outside the source image are filled by geometric augmentations (Keras `fill_mode`).
public enum FillMode: String, Sendable, Codable, CaseIterable {
    case constant, nearest, reflect, wrap
}

/// One augmentation step. All run on the 0…255 scale before preprocessing, only on training batches. Encodes as
/// its text (`rotate:15`, `noise:0.05:3`), which parses back to the same step.
public enum AugmentOp: Sendable, Equatable, Codable, CustomStringConvertible {
    case flip(horizontal: Bool, vertical: Bool)
    /// Random rotation in ±degrees.
    case rotate(degrees: Float, fill: FillMode)
    /// Random shift of up to ±fraction of the height and width.
    case translate(fraction: Float, fill: FillMode)
    /// Random zoom: scale in [1 − f, 1 + f] (above 1 zooms out).
    case zoom(fraction: Float, fill: FillMode)
    /// Zero-pad by `padding` pixels, then crop back to size at a random offset.
    case crop(padding: Int)
    /// Add a random delta in ±factor·255.
    case brightness(factor: Float)
    /// Scale around the per-channel mean by a random factor in [1 − f, 1 + f].
    case contrast(factor: Float)
    /// Add Gaussian noise of standard deviation σ·255 (σ on the [0, 1] scale); the label is unchanged. With
    /// `copies` > 1 every epoch sees that many noisy copies of each training image.
    case noise(sigma: Float, copies: Int)
    /// Erase a random square of side `fraction` · min(H, W) (random erasing / cutout).
    case cutout(fraction: Float)
    /// Batch level: blend each image with another, λ ~ Beta(α, α); targets blend the same way.
    case mixup(alpha: Float)
    /// Batch level: paste a patch of another image covering 1 − λ of the area; targets weighted by area.
    case cutmix(alpha: Float)

    /// Parses one item of the spec syntax: `flip:h`, `rotate:15`, `rotate:15:nearest`, `zoom:0.1`, `noise:0.05`, …
    public init(parsing item: String) throws {
        let parts = item.split(separator: ":").map { String($0).trimmingCharacters(in: .whitespaces) }
        guard let name = parts.first, !name.isEmpty else { throw DataError("augment", "empty augmentation in the spec") }
        func number(_ i: Int) throws -> Float {
            guard i < parts.count, let v = Float(parts[i]), v.isFinite, v >= 0 else {
                throw DataError("augment", "\(item): \(name) needs a non-negative number")
            }
            return v
        }
        func fill(_ i: Int) throws -> FillMode {
            guard i < parts.count else { return .reflect }
            guard let f = FillMode(rawValue: parts[i]) else {
                throw DataError("augment", "\(item): fill mode must be constant, nearest, reflect or wrap")
            }
            return f
        }
        switch name {
        case "flip":
            let axes = parts.count > 1 ? parts[1] : "h"
            guard !axes.isEmpty, axes.allSatisfy({ $0 == "h" || $0 == "v" }) else { throw DataError("augment", "\(item): flip takes h, v or hv") }
            self = .flip(horizontal: axes.contains("h"), vertical: axes.contains("v"))
        case "rotate":
            let d = try number(1)
            guard d <= 360 else { throw DataError("augment", "\(item): rotate takes at most 360 degrees") }
            self = .rotate(degrees: d, fill: try fill(2))
        case "translate":
            let f = try number(1)
            guard f <= 1 else { throw DataError("augment", "\(item): translate is a fraction of the size, at most 1") }
            self = .translate(fraction: f, fill: try fill(2))
        case "zoom":
            let f = try number(1)
            guard f < 1 else { throw DataError("augment", "\(item): zoom must be below 1") }
            self = .zoom(fraction: f, fill: try fill(2))
        case "crop":
            let pad = try number(1)
            guard pad <= 4096 else { throw DataError("augment", "\(item): crop padding must be at most 4096 pixels") }
            self = .crop(padding: Int(pad))
        case "brightness": self = .brightness(factor: try number(1))
        case "contrast":
            let f = try number(1)
            guard f <= 1 else { throw DataError("augment", "\(item): contrast must be at most 1") }
            self = .contrast(factor: f)
        case "noise":
            let c = parts.count > 2 ? try number(2) : 1
            guard c >= 1 && c <= 100 && c == c.rounded() else { throw DataError("augment", "\(item): copies must be a whole number 1…100") }
            let copies = Int(c)
            self = .noise(sigma: try number(1), copies: copies)
        case "cutout", "erase":
            let f = try number(1)
            guard f <= 1 else { throw DataError("augment", "\(item): cutout must be at most 1") }
            self = .cutout(fraction: f)
        case "mixup": self = .mixup(alpha: max(try number(1), 1e-3))
        case "cutmix": self = .cutmix(alpha: max(try number(1), 1e-3))
        default:
            throw DataError("augment", "unknown augmentation \"\(name)\" (flip, rotate, translate, zoom, crop, brightness, contrast, noise, cutout, mixup, cutmix)")
        }
    }
}

extension AugmentOp {
    public var description: String {
        func n(_ v: Float) -> String { v == v.rounded() && abs(v) < 1e7 ? String(Int(v)) : "\(v)" }
        func fill(_ f: FillMode) -> String { f == .reflect ? "" : ":\(f.rawValue)" }
        switch self {
        case .flip(let h, let v): return "flip:" + (h ? "h" : "") + (v ? "v" : "")
        case .rotate(let d, let f): return "rotate:\(n(d))\(fill(f))"
        case .translate(let t, let f): return "translate:\(n(t))\(fill(f))"
        case .zoom(let z, let f): return "zoom:\(n(z))\(fill(f))"
        case .crop(let pad): return "crop:\(pad)"
        case .brightness(let f): return "brightness:\(n(f))"
        case .contrast(let f): return "contrast:\(n(f))"
        case .noise(let s, let copies): return "noise:\(n(s))" + (copies == 1 ? "" : ":\(copies)")
        case .cutout(let f): return "cutout:\(n(f))"
        case .mixup(let a): return "mixup:\(n(a))"
        case .cutmix(let a): return "cutmix:\(n(a))"
        }
    }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        do { self = try AugmentOp(parsing: text) } catch let e as DataError {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: e.message))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }
}

/// A seeded augmentation pipeline built from a spec (`flip:h,rotate:15,zoom:0.1,noise:0.05`) or a list of items.
public struct Augmenter: Sendable, Equatable, Codable {
    public var ops: [AugmentOp]

    public init(ops: [AugmentOp]) { self.ops = ops }

    /// Parses the compact CLI form: comma-separated items.
    public init(spec: String) throws {
        ops = try spec.split(separator: ",").map { try AugmentOp(parsing: String($0)) }
    }

    /// Parses the recipe list form: one item per entry.
    public init(items: [String]) throws {
        ops = try items.map { try AugmentOp(parsing: $0) }
    }

    /// Applies the per-image steps to one `H×W×C` image in place.
    public func augmentImage(_ p: UnsafeMutablePointer<Float>, _ H: Int, _ W: Int, _ C: Int, rng: inout SeededGenerator) {
        var angle: Float = 0, ty: Float = 0, tx: Float = 0, scale: Float = 1
        var fill = FillMode.reflect
        var geometric = false
        for op in ops {
            switch op {
            case .flip(let h, let v):
                let doH = h && rng.uniform() < 0.5, doV = v && rng.uniform() < 0.5
                if doH || doV { Augmentations.flip(p, H, W, C, horizontal: doH, vertical: doV) }
            case .rotate(let d, let f): angle = (rng.uniform() * 2 - 1) * d; fill = f; geometric = true
            case .translate(let t, let f):
                ty = (rng.uniform() * 2 - 1) * t * Float(H); tx = (rng.uniform() * 2 - 1) * t * Float(W); fill = f; geometric = true
            case .zoom(let z, let f): scale = 1 + (rng.uniform() * 2 - 1) * z; fill = f; geometric = true
            case .crop(let pad):
                let oy = Int(rng.next() % UInt64(2 * pad + 1)) - pad, ox = Int(rng.next() % UInt64(2 * pad + 1)) - pad
                Augmentations.shiftWithZeros(p, H, W, C, dy: oy, dx: ox)
            case .brightness(let f):
                let delta = (rng.uniform() * 2 - 1) * f * 255
                for i in 0..<(H * W * C) { p[i] = min(255, max(0, p[i] + delta)) }
            case .contrast(let f):
                let factor = 1 + (rng.uniform() * 2 - 1) * f
                Augmentations.contrast(p, H, W, C, factor: factor)
            case .noise(let s, _):
                var g = GaussianSampler()
                for i in 0..<(H * W * C) { p[i] = min(255, max(0, p[i] + s * 255 * g.next(&rng))) }
            case .cutout(let f):
                let side = max(1, Int((f * Float(min(H, W))).rounded()))
                let cy = Int(rng.next() % UInt64(H)), cx = Int(rng.next() % UInt64(W))
                Augmentations.erase(p, H, W, C, y0: cy - side / 2, x0: cx - side / 2, height: side, width: side)
            case .mixup, .cutmix:
                break
            }
        }
        // Rotation, translation and zoom are drawn in order and applied as one warp.
        if geometric { Augmentations.affine(p, H, W, C, degrees: angle, ty: ty, tx: tx, scale: scale, fill: fill) }
    }

    /// Applies the batch-level steps (mixup, cutmix), filling `batch.targets` with the mixed one-hot targets.
    public func augmentBatch(_ batch: inout Preprocessor.Batch, classes: Int, rng: inout SeededGenerator) {
        let n = batch.labels.count
        guard n > 1 else { return }
        for op in ops {
            let alpha: Float
            let cut: Bool
            switch op {
            case .mixup(let a): alpha = a; cut = false
            case .cutmix(let a): alpha = a; cut = true
            default: continue
            }
            var targets = batch.targets ?? oneHot(batch.labels, classes)
            let (_, H, W, C) = (batch.x.shape[0], batch.x.shape[1], batch.x.shape[2], batch.x.shape[3])
            let size = H * W * C
            let perm = Array(0..<n).shuffled(using: &rng)
            var lam = GammaSampler.beta(alpha, alpha, &rng)
            let original = batch.x
            let origTargets = targets
            batch.x.withUnsafeMutableBufferPointer { x in
                original.withUnsafeBufferPointer { o in
                    if cut {
                        // Box covering (1 − λ) of the image, clipped; λ recomputed from the clipped area.
                        let ratio = (1 - lam).squareRoot()
                        let bh = Int(Float(H) * ratio), bw = Int(Float(W) * ratio)
                        let cy = Int(rng.next() % UInt64(H)), cx = Int(rng.next() % UInt64(W))
                        let y0 = max(0, cy - bh / 2), y1 = min(H, cy + bh / 2), x0 = max(0, cx - bw / 2), x1 = min(W, cx + bw / 2)
                        lam = 1 - Float((y1 - y0) * (x1 - x0)) / Float(H * W)
                        for i in 0..<n {
                            let j = perm[i]
                            for y in y0..<y1 { for xx in x0..<x1 { for c in 0..<C {
                                x[i * size + (y * W + xx) * C + c] = o[j * size + (y * W + xx) * C + c]
                            } } }
                        }
                    } else {
                        for i in 0..<n {
                            let j = perm[i]
                            for k in 0..<size { x[i * size + k] = lam * o[i * size + k] + (1 - lam) * o[j * size + k] }
                        }
                    }
                }
            }
            targets.withUnsafeMutableBufferPointer { t in
                origTargets.withUnsafeBufferPointer { ot in
                    for i in 0..<n { for k in 0..<classes { t[i * classes + k] = lam * ot[i * classes + k] + (1 - lam) * ot[perm[i] * classes + k] } }
                }
            }
            batch.targets = targets
        }
    }

    func oneHot(_ labels: [Int], _ k: Int) -> Tensor {
        var t = [Float](repeating: 0, count: labels.count * k)
        for (i, l) in labels.enumerated() where l >= 0 && l < k { t[i * k + l] = 1 }
        return Tensor(shape: [labels.count, k], values: t)
    }

    /// How many times each training image is drawn per epoch (noisy copies; 1 otherwise).
    public var copies: Int {
        ops.reduce(1) { if case .noise(_, let c) = $1 { return max($0, c) }; return $0 }
    }

    /// True when the pipeline has batch-level steps that produce soft targets.
    public var mixesLabels: Bool {
        ops.contains { if case .mixup = $0 { return true }; if case .cutmix = $0 { return true }; return false }
    }
}

/// The pure geometric and photometric kernels behind the augmentations (tested for exact geometry).
public enum Augmentations {
    public static func flip(_ p: UnsafeMutablePointer<Float>, _ H: Int, _ W: Int, _ C: Int, horizontal: Bool, vertical: Bool) {
        if horizontal {
            for y in 0..<H { for x in 0..<(W / 2) { for c in 0..<C {
                let a = (y * W + x) * C + c, b = (y * W + W - 1 - x) * C + c
                (p[a], p[b]) = (p[b], p[a])
            } } }
        }
        if vertical {
            for y in 0..<(H / 2) { for x in 0..<W { for c in 0..<C {
                let a = (y * W + x) * C + c, b = ((H - 1 - y) * W + x) * C + c
                (p[a], p[b]) = (p[b], p[a])
            } } }
        }
    }

    /// Moves the image content by (dy, dx) pixels, filling with zeros (padding + random crop).
    public static func shiftWithZeros(_ p: UnsafeMutablePointer<Float>, _ H: Int, _ W: Int, _ C: Int, dy: Int, dx: Int) {
        let copy = Array(UnsafeBufferPointer(start: p, count: H * W * C))
        for y in 0..<H { for x in 0..<W {
            let sy = y - dy, sx = x - dx
            for c in 0..<C { p[(y * W + x) * C + c] = sy >= 0 && sy < H && sx >= 0 && sx < W ? copy[(sy * W + sx) * C + c] : 0 }
        } }
    }

    public static func contrast(_ p: UnsafeMutablePointer<Float>, _ H: Int, _ W: Int, _ C: Int, factor: Float) {
        for c in 0..<C {
            var mean: Float = 0
            for i in 0..<(H * W) { mean += p[i * C + c] }
            mean /= Float(H * W)
            for i in 0..<(H * W) { p[i * C + c] = min(255, max(0, (p[i * C + c] - mean) * factor + mean)) }
        }
    }

    public static func erase(_ p: UnsafeMutablePointer<Float>, _ H: Int, _ W: Int, _ C: Int, y0: Int, x0: Int, height: Int, width: Int) {
        for y in max(0, y0)..<min(H, y0 + height) { for x in max(0, x0)..<min(W, x0 + width) { for c in 0..<C { p[(y * W + x) * C + c] = 0 } } }
    }

    /// Rotation by `degrees` (counter-clockwise, as Keras RandomRotation with a positive factor), shift by (ty, tx)
    /// pixels and scale (above 1 zooms out), about the image centre, with bilinear sampling and `fill` outside.
    public static func affine(_ p: UnsafeMutablePointer<Float>, _ H: Int, _ W: Int, _ C: Int,
                              degrees: Float, ty: Float, tx: Float, scale: Float, fill: FillMode) {
        let copy = Array(UnsafeBufferPointer(start: p, count: H * W * C))
        let a = degrees * .pi / 180
        let (cs, sn) = (cos(a), sin(a))
        let cy = Float(H - 1) / 2, cx = Float(W - 1) / 2
        func index(_ v: Int, _ n: Int) -> Int? {
            if v >= 0 && v < n { return v }
            switch fill {
            case .constant: return nil
            case .nearest: return min(max(v, 0), n - 1)
            case .wrap: return ((v % n) + n) % n
            case .reflect:
                if n == 1 { return 0 }
                let period = 2 * n
                var m = ((v % period) + period) % period
                if m >= n { m = period - 1 - m }
                return m
            }
        }
        for y in 0..<H {
            for x in 0..<W {
                // Output pixel → source: undo the shift, the scale and the rotation about the centre.
                let oy = (Float(y) - cy - ty) * scale, ox = (Float(x) - cx - tx) * scale
                let sy = cs * oy + sn * ox + cy
                let sx = -sn * oy + cs * ox + cx
                let y0 = Int(sy.rounded(.down)), x0 = Int(sx.rounded(.down))
                let fy = sy - Float(y0), fx = sx - Float(x0)
                for c in 0..<C {
                    func at(_ yy: Int, _ xx: Int) -> Float {
                        guard let iy = index(yy, H), let ix = index(xx, W) else { return 0 }
                        return copy[(iy * W + ix) * C + c]
                    }
                    let top = at(y0, x0) * (1 - fx) + at(y0, x0 + 1) * fx
                    let bottom = at(y0 + 1, x0) * (1 - fx) + at(y0 + 1, x0 + 1) * fx
                    p[(y * W + x) * C + c] = top * (1 - fy) + bottom * fy
                }
            }
        }
    }
}

/// Standard normal samples (Box–Muller, both values used).
struct GaussianSampler {
    var spare: Float?
    mutating func next(_ rng: inout SeededGenerator) -> Float {
        if let s = spare { spare = nil; return s }
        let u1 = max(Double(rng.next() >> 11) / Double(1 << 53), 1e-300), u2 = Double(rng.next() >> 11) / Double(1 << 53)
        let r = (-2 * log(u1)).squareRoot()
        spare = Float(r * sin(2 * .pi * u2))
        return Float(r * cos(2 * .pi * u2))
    }
}

/// Gamma and Beta samples (Marsaglia–Tsang), for mixup and cutmix.
enum GammaSampler {
    static func gamma(_ shape: Float, _ rng: inout SeededGenerator) -> Float {
        if shape < 1 { return gamma(shape + 1, &rng) * pow(max(rng.uniform(), 1e-12), 1 / shape) }
        let d = shape - 1.0 / 3, c = 1 / (9 * d).squareRoot()
        var g = GaussianSampler()
        while true {
            var x: Float, v: Float
            repeat { x = g.next(&rng); v = 1 + c * x } while v <= 0
            v = v * v * v
            let u = max(rng.uniform(), 1e-12)
            if log(u) < 0.5 * x * x + d - d * v + d * log(v) { return d * v }
        }
    }

    static func beta(_ a: Float, _ b: Float, _ rng: inout SeededGenerator) -> Float {
        let x = gamma(a, &rng), y = gamma(b, &rng)
        return x + y > 0 ? x / (x + y) : 0.5
    }
}
