import Foundation
import GraftTensor

/// What a source's images are, found before the first batch: every file decoded once (damage anywhere is found
/// then, not epochs later), its size and channels recorded.
public struct ImageSurvey: Sendable {
    /// `[H, W, C]` of every image kept, in source order.
    public var shapes: [[Int]]
    /// Images left out as damaged (`skipBad`), with the problem: `(id, problem)`.
    public var damaged: [(id: String, problem: String)]

    /// Decodes every image of `source` (in parallel; a JPEG at 1/8 scale, which reads all of its data). A damaged
    /// image is an error naming its file, or with `skipBad` is left out of the returned source and counted.
    /// `progress(done, total)` is called between chunks.
    public static func survey(_ source: any ImageSource, skipBad: Bool,
                              progress: ((Int, Int) -> Void)? = nil) throws -> (any ImageSource, ImageSurvey) {
        if let shape = source.imageShape {
            return (source, ImageSurvey(shapes: Array(repeating: shape, count: source.count), damaged: []))
        }
        var results = [Result<[Int], Error>](repeating: .success([]), count: source.count)
        let chunk = 256
        for start in stride(from: 0, to: source.count, by: chunk) {
            let end = min(start + chunk, source.count)
            results.withUnsafeMutableBufferPointer { out in
                let base = out.baseAddress!
                Parallel.forEach(end - start) { range in
                    for k in range { base[start + k] = Result { try source.imageShape(of: start + k) } }
                }
            }
            progress?(end, source.count)
        }
        var keep: [Int] = [], shapes: [[Int]] = [], damaged: [(id: String, problem: String)] = []
        for (i, result) in results.enumerated() {
            switch result {
            case .success(let shape):
                keep.append(i)
                shapes.append(shape)
            case .failure(let error):
                guard skipBad else { throw error }
                damaged.append((source.ids[i], (error as? DataError)?.message ?? "\(error)"))
            }
        }
        return (damaged.isEmpty ? source : source.subset(keep), ImageSurvey(shapes: shapes, damaged: damaged))
    }

    static func channelName(_ c: Int) -> String {
        switch c {
        case 1: return "gray"
        case 2: return "gray+alpha"
        case 3: return "RGB"
        case 4: return "RGBA"
        default: return "\(c) channels"
        }
    }

    /// One line: how many images, their size range and channels, and what is done to them to meet `target`
    /// (`[H, W, C]`) with `fit`: channel conversions, crops, pads and resizes, counted.
    /// `96 images of 64×48 to 160×160, RGB; for the 28×28×1 input: RGB → gray (96), resized (fit resize)`.
    public func describe(target: [Int], fit: ImageFit) -> String {
        guard !shapes.isEmpty else { return "no images" }
        let (H, W, C) = (target[0], target[1], target[2])
        let areas = shapes.map { $0[0] * $0[1] }
        let small = shapes[areas.firstIndex(of: areas.min()!)!], large = shapes[areas.firstIndex(of: areas.max()!)!]
        let size = small == large ? "\(small[0])×\(small[1])" : "\(small[0])×\(small[1]) to \(large[0])×\(large[1])"
        var byChannels: [Int: Int] = [:]
        for s in shapes { byChannels[s[2], default: 0] += 1 }
        let channels = byChannels.keys.sorted().map { c in
            byChannels.count == 1 ? Self.channelName(c) : "\(Self.channelName(c)) \(byChannels[c]!)"
        }.joined(separator: ", ")
        var steps: [String] = []
        for c in byChannels.keys.sorted() where c != C {
            let n = byChannels[c]!
            switch (c, C) {
            case (1, _), (2, _): steps.append("gray → \(Self.channelName(C)) (\(n))")
            case (_, 1): steps.append("\(Self.channelName(c)) → gray by luma (\(n))")
            default: steps.append("alpha dropped (\(n))")
            }
        }
        let same = shapes.filter { $0[0] == H && $0[1] == W }.count
        let other = shapes.count - same
        func aspectDiffers(_ s: [Int]) -> Bool { s[0] * W != s[1] * H }
        let skewed = shapes.filter(aspectDiffers).count
        if other > 0 {
            switch fit {
            case .resize, .nearest:
                steps.append("\(other == shapes.count ? "" : "\(other) ")resized\(fit == .nearest ? " (nearest neighbour)" : "")"
                             + (skewed > 0 ? ", \(skewed) of them stretched to the input's aspect ratio" : ""))
            case .crop:
                steps.append("\(other == shapes.count ? "" : "\(other) ")resized" + (skewed > 0 ? ", \(skewed) of them first centre-cropped to the input's aspect ratio" : ""))
            case .padAspect:
                steps.append("\(other == shapes.count ? "" : "\(other) ")resized" + (skewed > 0 ? ", \(skewed) of them first padded with zeros to the input's aspect ratio" : ""))
            case .pad:
                let larger = shapes.filter { $0[0] > H || $0[1] > W }.count
                let smaller = shapes.filter { ($0[0] < H || $0[1] < W) }.count
                if larger > 0 { steps.append("\(larger) centre-cropped to \(H)×\(W)") }
                if smaller > 0 { steps.append("\(smaller) padded with zeros to \(H)×\(W)") }
            }
        }
        let work = steps.isEmpty ? "used as they are" : steps.joined(separator: ", ")
        return "\(shapes.count) images of \(size), \(channels); for the \(H)×\(W)×\(C) input: \(work) (fit \(fit.rawValue))"
    }
}
