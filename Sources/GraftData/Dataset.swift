import Foundation
import GraftTensor

/// How an image is fitted to the model's input size.
public enum ImageFit: String, Sendable, Codable, CaseIterable {
    /// Centre it on a zero canvas (28×28 → 32×32 for LeNet-5); crop the middle when larger.
    case pad
    /// Bilinear resize to the target size (half-pixel centres, as TensorFlow/Keras resize).
    case resize
    /// Nearest-neighbour resize.
    case nearest
    /// Centre-crop to the target's aspect ratio, then bilinear resize (Keras `crop_to_aspect_ratio`).
    case crop
    /// Pad to the target's aspect ratio, then bilinear resize (Keras `pad_to_aspect_ratio`).
    case padAspect = "pad-aspect"
}

/// Labelled images that can be read one at a time: in memory (IDX, NPY/NPZ) or from files (folders, CSV).
/// Labels, ids and class names are always in memory; pixels of file sources are decoded on demand.
public protocol ImageSource: Sendable {
    var labels: [Int] { get }
    /// The source id of every sample: its file path, or its index.
    var ids: [String] { get }
    var classNames: [String] { get }
    /// The shape every image has, when known without decoding (in-memory sources); nil for files.
    var imageShape: [Int]? { get }
    /// The samples at `indices`, in that order.
    func subset(_ indices: [Int]) -> Self
    /// The same images with new labels and class names.
    func relabeled(_ labels: [Int], classNames: [String]) -> Self
    /// Sample `i`'s own shape `[H, W, C]`, found by decoding it whole (damage is an error naming its source).
    func imageShape(of i: Int) throws -> [Int]
    /// Writes sample `i`, fitted to `target` (`[H, W, C]`) with channel conversion, on the 0…255 scale, at `dst`.
    func fill(_ i: Int, target: [Int], fit: ImageFit, into dst: UnsafeMutablePointer<Float>) throws
}

extension ImageSource {
    public var count: Int { labels.count }

    /// Keeps the listed classes and renumbers them 0…k−1 in the order given (`[5, 6, 7, 8, 9]` → 0…4).
    public func selectingClasses(_ classes: [Int]) throws -> Self {
        for c in classes where c < 0 || c >= classNames.count {
            throw DataError("classes", "class \(c) does not exist (the data has \(classNames.count) classes)")
        }
        guard Set(classes).count == classes.count else { throw DataError("classes", "a class is listed twice in \(classes)") }
        let map = Dictionary(uniqueKeysWithValues: classes.enumerated().map { ($1, $0) })
        let keep = labels.indices.filter { map[labels[$0]] != nil }
        let sub = subset(keep)
        return sub.relabeled(sub.labels.map { map[$0] ?? 0 }, classNames: classes.map { classNames[$0] })
    }

    /// The same samples labelled by position in `names` (a model's classes in output order), matched by class
    /// name: a test set may hold any subset of them. A class `names` lacks is an error naming it and `model`.
    public func matchingClasses(_ names: [String], model: String) throws -> Self {
        let position = Dictionary(names.enumerated().map { ($1, $0) }, uniquingKeysWith: { a, _ in a })
        let map = try classNames.map { name -> Int in
            guard let p = position[name] else {
                let known = names.prefix(10).joined(separator: ", ") + (names.count > 10 ? ", … (\(names.count) in all)" : "")
                throw DataError("class \(name)", "is not one of the classes of \(model) (\(known))")
            }
            return p
        }
        if map == Array(0..<names.count) { return self }
        return relabeled(labels.map { $0 >= 0 && $0 < map.count ? map[$0] : $0 }, classNames: names)
    }

    /// At most `perClass` samples of each class: the first ones in source order, or a seeded random choice.
    public func limitingPerClass(_ perClass: Int, seed: UInt64? = nil) -> Self {
        var order = Array(labels.indices)
        if let seed {
            var rng = SeededGenerator(seed: seed)
            order.shuffle(using: &rng)
        }
        var taken = [Int: Int]()
        var keep: [Int] = []
        for i in order where taken[labels[i], default: 0] < perClass {
            taken[labels[i], default: 0] += 1
            keep.append(i)
        }
        return subset(keep.sorted())
    }

    /// A stratified, seeded split: `fraction` of each class goes to the second part.
    public func stratifiedSplit(fraction: Double, seed: UInt64) throws -> (Self, Self) {
        guard fraction > 0 && fraction < 1 else { throw DataError("val-split", "fraction must be between 0 and 1, got \(fraction)") }
        var rng = SeededGenerator(seed: seed)
        var byClass: [Int: [Int]] = [:]
        for (i, l) in labels.enumerated() { byClass[l, default: []].append(i) }
        var a: [Int] = [], b: [Int] = []
        for c in byClass.keys.sorted() {
            var idx = byClass[c] ?? []
            idx.shuffle(using: &rng)
            let k = Int((Double(idx.count) * fraction).rounded())
            b += idx.prefix(k)
            a += idx.dropFirst(k)
        }
        return (subset(a.sorted()), subset(b.sorted()))
    }

    /// Samples per class, indexed by class.
    public var classCounts: [Int] {
        var c = [Int](repeating: 0, count: classNames.count)
        for l in labels where l >= 0 && l < c.count { c[l] += 1 }
        return c
    }
}

/// A labelled image dataset in memory: raw pixel values (0…255 for 8-bit sources), NHWC, with class names and
/// a source id per sample (file path or index), in source order.
public struct ImageDataset: InMemoryImages {
    /// `[H, W, C]` of every image.
    public var shape: [Int]
    /// `count · H · W · C` values.
    public var pixels: [Float]
    public var labels: [Int]
    public var ids: [String]
    public var classNames: [String]

    public init(imageShape: [Int], pixels: [Float], labels: [Int], ids: [String], classNames: [String]) {
        precondition(pixels.count == labels.count * imageShape.reduce(1, *), "pixels do not match the image count")
        self.shape = imageShape
        self.pixels = pixels
        self.labels = labels
        self.ids = ids
        self.classNames = classNames
    }


    public func subset(_ indices: [Int]) -> ImageDataset {
        let n = imageSize
        var px = [Float](repeating: 0, count: indices.count * n)
        px.withUnsafeMutableBufferPointer { dst in
            pixels.withUnsafeBufferPointer { src in
                for (k, i) in indices.enumerated() {
                    (dst.baseAddress! + k * n).update(from: src.baseAddress! + i * n, count: n)
                }
            }
        }
        return ImageDataset(imageShape: shape, pixels: px, labels: indices.map { labels[$0] },
                            ids: indices.map { ids[$0] }, classNames: classNames)
    }

    public func fill(_ i: Int, target: [Int], fit: ImageFit, into dst: UnsafeMutablePointer<Float>) throws {
        pixels.withUnsafeBufferPointer { px in
            ImagePlacement.place(px.baseAddress! + i * imageSize, shape, into: dst, target, fit: fit)
        }
    }
}

/// Images kept as the bytes an IDX file holds (Fashion-MNIST: 47 MB, not the 188 MB of floats), shared by every
/// subset: choosing classes, limiting per class and splitting off validation copy only the row numbers, and an
/// image becomes floats only when a batch asks for it.
public struct ByteImageSet: InMemoryImages {
    /// The file's bytes, immutable once read; image `r` is the `imageSize` bytes at `offset + r · imageSize`.
    final class Storage: Sendable {
        let bytes: [UInt8]
        let offset: Int
        init(bytes: [UInt8], offset: Int) {
            self.bytes = bytes
            self.offset = offset
        }
    }

    let storage: Storage
    /// The stored image each sample is.
    let rows: [Int]
    /// `[H, W, C]` of every image.
    public let shape: [Int]
    public var labels: [Int]
    public var ids: [String]
    public var classNames: [String]

    /// `bytes[offset...]` holds `labels.count` images of `shape`, one after another.
    public init(bytes: [UInt8], offset: Int, imageShape: [Int], labels: [Int], ids: [String], classNames: [String]) {
        precondition(bytes.count - offset >= labels.count * imageShape.reduce(1, *), "bytes do not hold the images")
        storage = Storage(bytes: bytes, offset: offset)
        rows = Array(labels.indices)
        shape = imageShape
        self.labels = labels
        self.ids = ids
        self.classNames = classNames
    }

    private init(storage: Storage, rows: [Int], shape: [Int], labels: [Int], ids: [String], classNames: [String]) {
        (self.storage, self.rows, self.shape, self.labels, self.ids, self.classNames) = (storage, rows, shape, labels, ids, classNames)
    }


    public func subset(_ indices: [Int]) -> ByteImageSet {
        ByteImageSet(storage: storage, rows: indices.map { rows[$0] }, shape: shape, labels: indices.map { labels[$0] },
                     ids: indices.map { ids[$0] }, classNames: classNames)
    }

    public func fill(_ i: Int, target: [Int], fit: ImageFit, into dst: UnsafeMutablePointer<Float>) throws {
        let n = imageSize
        storage.bytes.withUnsafeBufferPointer { all in
            let image = all.baseAddress! + storage.offset + rows[i] * n
            if target == shape {   // already the model's size: straight to floats
                for k in 0..<n { dst[k] = Float(image[k]) }
                return
            }
            withUnsafeTemporaryAllocation(of: Float.self, capacity: n) { floats in
                for k in 0..<n { floats[k] = Float(image[k]) }
                ImagePlacement.place(floats.baseAddress!, shape, into: dst, target, fit: fit)
            }
        }
    }
}

/// A source whose images all have one shape known up front (arrays in memory): relabelling swaps the labels only.
public protocol InMemoryImages: ImageSource {
    /// `[H, W, C]` of every image.
    var shape: [Int] { get }
    var labels: [Int] { get set }
    var classNames: [String] { get set }
}

extension InMemoryImages {
    public var imageShape: [Int]? { shape }
    public var imageSize: Int { shape.reduce(1, *) }
    public func imageShape(of i: Int) throws -> [Int] { shape }

    public func relabeled(_ labels: [Int], classNames: [String]) -> Self {
        var d = self
        d.labels = labels
        d.classNames = classNames
        return d
    }
}

/// The data side's name for the one seeded generator (SplitMix64, shared with initialisation and dropout).
public typealias SeededGenerator = SplitMix64

/// Built-in datasets from Debian packages.
public enum BuiltinDatasets {
    public static let fashionMNISTDirectory = "/usr/share/datasets/fashion-mnist"
    public static let fashionMNISTClasses = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                             "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]

    /// `fashion-mnist:train` (60,000 images) or `fashion-mnist:test` (10,000), 28×28×1, from `dataset-fashion-mnist`.
    public static func fashionMNIST(split: String, directory: String = fashionMNISTDirectory) throws -> ByteImageSet {
        let prefix: String
        switch split {
        case "train": prefix = "train"
        case "test": prefix = "t10k"
        default: throw DataError("fashion-mnist:\(split)", "unknown split; use fashion-mnist:train or fashion-mnist:test")
        }
        let images = "\(directory)/\(prefix)-images-idx3-ubyte.gz", labels = "\(directory)/\(prefix)-labels-idx1-ubyte.gz"
        guard FileManager.default.fileExists(atPath: images) else {
            throw DataError("fashion-mnist:\(split)", "\(images) is missing; install the Debian package dataset-fashion-mnist (tools/setup does)")
        }
        return try idxPair(images: images, labels: labels, classNames: fashionMNISTClasses, label: "fashion-mnist:\(split)")
    }

    /// An IDX image file (N×H×W) with its IDX label file (N).
    public static func idxPair(images: String, labels: String, classNames: [String]? = nil, label: String? = nil) throws -> ByteImageSet {
        let (shape, px, start) = try IDX.readInPlace(images)
        let (lshape, lb) = try IDX.read(labels)
        guard shape.count == 3 || shape.count == 4 else { throw DataError(images, "expected N×H×W images, found shape \(shape)") }
        guard lshape.count == 1, lshape[0] == shape[0] else {
            throw DataError(labels, "\(lshape.first ?? 0) labels for \(shape[0]) images")
        }
        let labelInts = lb.map(Int.init)
        let k = classNames?.count ?? ((labelInts.max() ?? 0) + 1)
        if let bad = labelInts.first(where: { $0 >= k }) { throw DataError(labels, "label \(bad) outside 0..<\(k)") }
        let names = classNames ?? (0..<k).map(String.init)
        let imageShape = shape.count == 3 ? [shape[1], shape[2], 1] : Array(shape[1...])
        return ByteImageSet(bytes: px, offset: start, imageShape: imageShape, labels: labelInts,
                            ids: (0..<shape[0]).map(String.init), classNames: names)
    }
}
